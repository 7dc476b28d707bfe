package pruner_test

import (
	"context"
	"testing"
	"time"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/pruner"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestClientCreationTimes reads creation times from the real registry: an
// image's config "created"; a multi-arch index's
// org.opencontainers.image.created annotation, else its newest child; and
// no time for a reproducible build's epoch, which keepLatest and keepDays
// then treat as unknown.
func TestClientCreationTimes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	creds, err := addons.NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	reg := startRegistry(t, startRedis(t, creds.RedisPassword()), fastAuth(t, creds))
	day := func(d int) time.Time { return time.Date(2026, 11, d, 8, 0, 0, 0, time.UTC) }
	older, newer := newImage(t, day(1), randomLayer(t)), newImage(t, day(3), randomLayer(t))
	annotated := mutate.Annotations(newIndex(t, older, newer), map[string]string{
		"org.opencontainers.image.created": day(5).Format(time.RFC3339),
	}).(v1.ImageIndex)
	reg.mustPush(ctx, t, "app/multi:image", older)
	reg.mustPush(ctx, t, "app/multi:index", newIndex(t, older, newer))
	reg.mustPush(ctx, t, "app/multi:annotated", annotated)
	reg.mustPush(ctx, t, "app/multi:epoch", newImage(t, time.Unix(0, 0), randomLayer(t)))

	client, err := pruner.NewClient(reg.URL, creds.Username(), creds.Password())
	if err != nil {
		t.Fatal(err)
	}
	tags, err := client.Tags(ctx, "app/multi")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{"image": day(1), "index": day(3), "annotated": day(5), "epoch": time.Unix(0, 0)}
	if len(tags) != len(want) {
		t.Fatalf("tags %+v", tags)
	}
	for _, tg := range tags {
		if !tg.Created.Equal(want[tg.Name]) {
			t.Errorf("%s: created %s, want %s", tg.Name, tg.Created, want[tg.Name])
		}
	}
	// The epoch counts as unknown age, which keepDays keeps.
	rs := mustRules(t, "rules: [{keepDays: 1}]")
	for _, d := range rs.Evaluate("app/multi", tags, day(20)) {
		if (d.Action == pruner.Keep) != (d.Name == "epoch") {
			t.Errorf("keepDays 1 on %s: %s (%s)", d.Name, d.Action, d.Reason)
		}
	}
}
