package pruner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/pruner"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// fixture is the realistic image set pushed to the registry.
type fixture struct {
	images map[string]artifact // "repo:tag" -> what was pushed
	// ownLayer is a layer only one image uses, by "repo:tag".
	ownLayer map[string]string
	layer123 v1.Image // app/web:1.2.3, whose own layer is re-pushed later
}

func pushFixture(ctx context.Context, t *testing.T, reg *registryStack, now time.Time) *fixture {
	t.Helper()
	ago := func(d int) time.Time { return now.Add(-time.Duration(d) * 24 * time.Hour) }
	base := randomLayer(t)
	f := &fixture{images: map[string]artifact{}, ownLayer: map[string]string{}}
	img := func(days int) (v1.Image, string) {
		own := randomLayer(t)
		return newImage(t, ago(days), base, own), digestOf(t, own)
	}
	add := func(repoTag string, x artifact, own string) {
		f.images[repoTag] = x
		if own != "" {
			f.ownLayer[repoTag] = own
		}
		reg.mustPush(ctx, t, repoTag, x)
	}
	simple := func(repoTag string, days int) v1.Image {
		x, own := img(days)
		add(repoTag, x, own)
		return x
	}

	// app/web: releases, pull requests, git SHAs, latest, signatures.
	f.layer123 = simple("app/web:1.2.3", 60)
	nineteen := simple("app/web:1.9.0", 55)
	add("app/web:deadbee", nineteen, "") // a SHA tag on the same digest as 1.9.0
	c := simple("app/web:1.10.0", 50)
	add("app/web:latest", c, "") // two tags, one digest
	rc := simple("app/web:v2.0.0-rc.1", 40)
	add("app/web:PR-99", rc, "") // a deleted tag on a kept digest
	simple("app/web:0.9.0", 70)
	simple("app/web:PR-7", 30)
	simple("app/web:PR-123", 2)
	simple("app/web:PR-124", 3)
	j := simple("app/web:3f9a2c1", 10)
	k := simple("app/web:a1b2c3d", 5)
	simple("app/web:0c0ffee", 1)
	simple("app/web:sha256-"+hexOf(t, j)+".sig", 10)
	simple("app/web:sha256-"+hexOf(t, k)+".sig", 5)

	// app/api: multi-arch indexes.
	multi := func(repoTag string, days int) {
		a, _ := img(days)
		b, _ := img(days + 1)
		add(repoTag, newIndex(t, a, b), "")
	}
	multi("app/api:1.0.0", 45)
	multi("app/api:1.1.0", 35)
	simple("app/api:1.2.0", 25)
	multi("app/api:PR-4", 25)
	simple("app/api:PR-5", 20)

	// tools/helper: only semantic versions survive, latest included.
	one := simple("tools/helper:1.0.0", 30)
	add("tools/helper:latest", one, "")
	edge := simple("tools/helper:edge", 1)
	simple("tools/helper:nightly-2026", 2)
	simple("tools/helper:sha256-"+hexOf(t, edge)+".att", 1)

	// lib/base: only the git-SHA rule applies.
	simple("lib/base:bookworm", 100)
	simple("lib/base:1.0", 90)
	simple("lib/base:abcdef1", 80)
	return f
}

func TestPruneAndCollectGarbageEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	creds, err := addons.NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	rdb := startRedis(t, creds.RedisPassword())
	reg := startRegistry(t, rdb, fastAuth(t, creds))
	now := time.Now().UTC()
	fx := pushFixture(ctx, t, reg, now)

	// The registry really caches blob descriptors in our Redis.
	if n, err := rdb.Client.Exists(ctx, "blobs::"+fx.ownLayer["app/web:1.2.3"]).Result(); err != nil || n != 1 {
		t.Fatalf("Redis holds no descriptor for a pushed layer (%d, %v): the registry is not using the cache", n, err)
	}

	client, err := pruner.NewClient(reg.URL, creds.Username(), creds.Password(), pruner.WithParallel(4))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := pruner.LoadRules("testdata/rules/e2e.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pruner.NewPlan(ctx, client, rules, pruner.PlanOptions{Now: now, Registry: client.String()})
	if err != nil {
		t.Fatal(err)
	}

	sigJ := "app/web:sha256-" + hexOf(t, fx.images["app/web:3f9a2c1"]) + ".sig"
	sigK := "app/web:sha256-" + hexOf(t, fx.images["app/web:a1b2c3d"]) + ".sig"
	attEdge := "tools/helper:sha256-" + hexOf(t, fx.images["tools/helper:edge"]) + ".att"
	wantDeleted := []string{
		"app/web:1.2.3", "app/web:1.9.0", "app/web:PR-7", "app/web:PR-99", "app/web:3f9a2c1", "app/web:deadbee", sigJ,
		"app/api:1.0.0", "app/api:PR-4",
		"tools/helper:latest", "tools/helper:edge", "tools/helper:nightly-2026", attEdge,
	}
	sort.Strings(wantDeleted)
	var wantKept []string
	for rt := range fx.images {
		if !slices.Contains(wantDeleted, rt) {
			wantKept = append(wantKept, rt)
		}
	}
	sort.Strings(wantKept)
	if !slices.Contains(wantKept, sigK) || !slices.Contains(wantKept, "app/web:latest") {
		t.Fatalf("fixture broken: %v", wantKept)
	}

	var planned []string
	for _, d := range plan.Deletions() {
		planned = append(planned, d.Repository+":"+d.Name)
	}
	sort.Strings(planned)
	if !reflect.DeepEqual(planned, wantDeleted) {
		var text bytes.Buffer
		_ = plan.WriteText(&text)
		t.Fatalf("planned deletions\n got %q\nwant %q\n%s", planned, wantDeleted, text.String())
	}

	t.Run("plan output", func(t *testing.T) {
		var text bytes.Buffer
		if err := plan.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		js, err := json.Marshal(plan)
		if err != nil {
			t.Fatal(err)
		}
		for _, out := range []string{text.String(), string(js)} {
			if strings.Contains(out, creds.Password()) || strings.Contains(out, creds.RedisPassword()) {
				t.Fatal("plan output reveals a password")
			}
		}
		for _, want := range []string{
			"delete  PR-99", "manifest stays: also tagged v2.0.0-rc.1",
			"latest is protected", "follows its subject", "keepSemver highest 2: version #1",
			"rule 1 (line 4) keepDays 7", "rule 3 (line 14) keepLatest 2: newest #1",
		} {
			if !strings.Contains(text.String(), want) {
				t.Errorf("text plan lacks %q:\n%s", want, text.String())
			}
		}
		var back pruner.Plan
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatal(err)
		}
		if back.Summary != plan.Summary || len(back.Deletions()) != len(wantDeleted) {
			t.Errorf("JSON plan round trip: %+v", back.Summary)
		}
		if plan.Summary.Delete != len(wantDeleted) || plan.Summary.Tags != len(fx.images) {
			t.Errorf("summary %+v, want %d tags, %d deletions", plan.Summary, len(fx.images), len(wantDeleted))
		}
	})

	t.Run("guard and dry run change nothing", func(t *testing.T) {
		_, err := pruner.Execute(ctx, client, plan, pruner.ExecuteOptions{MaxDeletions: len(wantDeleted) - 1})
		if !errors.Is(err, pruner.ErrTooManyDeletions) {
			t.Fatalf("error %v, want ErrTooManyDeletions", err)
		}
		res, err := pruner.Execute(ctx, client, plan, pruner.ExecuteOptions{DryRun: true})
		if err != nil || res.Count(pruner.WouldDelete) != len(wantDeleted) {
			t.Fatalf("dry run: %v %+v", err, res)
		}
		if got := listAll(ctx, t, client); !reflect.DeepEqual(got, sortedKeys(fx.images)) {
			t.Fatalf("registry changed: %q", got)
		}
	})

	res, err := pruner.Execute(ctx, client, plan, pruner.ExecuteOptions{MaxDeletions: len(wantDeleted), Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Count(pruner.Deleted) != len(wantDeleted) {
		t.Fatalf("outcomes %+v", res.Outcomes)
	}
	if got := listAll(ctx, t, client); !reflect.DeepEqual(got, wantKept) {
		t.Fatalf("surviving tags\n got %q\nwant %q", got, wantKept)
	}

	// Blobs only deleted images used, and those all kept images use.
	keptBlobs := map[string]bool{}
	for _, rt := range wantKept {
		for _, b := range blobsOf(t, fx.images[rt]) {
			keptBlobs[b] = true
		}
	}
	var goneBlobs []string
	for _, rt := range wantDeleted {
		for _, b := range blobsOf(t, fx.images[rt]) {
			if !keptBlobs[b] && !slices.Contains(goneBlobs, b) {
				goneBlobs = append(goneBlobs, b)
			}
		}
	}
	if len(goneBlobs) < 20 {
		t.Fatalf("only %d blobs to collect; fixture broken", len(goneBlobs))
	}
	for _, b := range goneBlobs {
		if _, err := os.Stat(reg.blobPath(b)); err != nil {
			t.Fatalf("blob %s missing before GC: %v", b, err)
		}
	}

	// Read-only really is on while the sweep runs.
	m := &checkReadOnly{registryStack: reg, ctx: ctx, t: t}
	report, err := pruner.CollectGarbage(ctx, m, pruner.GCOptions{Redis: rdb.Client, Batch: 7})
	if err != nil {
		t.Fatal(err)
	}
	if !m.refused || !report.Collected || !report.CacheFlushed || !report.ReadWriteBack || report.FlushedKeys == 0 {
		t.Fatalf("report %+v, push refused while read-only: %v", report, m.refused)
	}

	for _, b := range goneBlobs {
		if _, err := os.Stat(reg.blobPath(b)); !os.IsNotExist(err) {
			t.Errorf("blob %s still in storage after GC (%v)", b, err)
		}
	}
	for _, rt := range wantKept {
		if err := reg.pull(ctx, t, rt); err != nil {
			t.Errorf("kept %s does not pull completely: %v", rt, err)
		}
	}
	for b := range keptBlobs {
		if _, err := os.Stat(reg.blobPath(b)); err != nil {
			t.Errorf("kept blob %s: %v", b, err)
		}
	}
	// The pulls refilled the cache with kept blobs only.
	if n, _ := rdb.Client.Exists(ctx, "blobs::"+fx.ownLayer["app/web:1.10.0"]).Result(); n != 1 {
		t.Error("pulls did not refill the cache; the checks below would prove nothing")
	}
	repos := []string{"app/web", "app/api", "tools/helper", "lib/base"}
	for _, b := range goneBlobs {
		if n, err := rdb.Client.Exists(ctx, "blobs::"+b).Result(); err != nil || n != 0 {
			t.Errorf("Redis still describes deleted blob %s (%d, %v)", b, n, err)
		}
		for _, r := range repos {
			if ok, _ := rdb.Client.SIsMember(ctx, "repository::"+r+"::blobs", b).Result(); ok {
				t.Errorf("Redis still lists deleted blob %s in %s", b, r)
			}
		}
	}

	// Re-pushing a deleted layer uploads it again, and the image pulls.
	layer := fx.ownLayer["app/web:1.2.3"]
	if !slices.Contains(goneBlobs, layer) {
		t.Fatal("1.2.3's own layer was not collected")
	}
	reg.uploads.reset()
	reg.mustPush(ctx, t, "app/web:1.2.4", fx.layer123)
	if n := reg.uploads.committed(layer); n != 1 {
		t.Fatalf("re-push uploaded the deleted layer %d times, want 1", n)
	}
	if err := reg.pull(ctx, t, "app/web:1.2.4"); err != nil {
		t.Fatalf("re-pushed image does not pull: %v", err)
	}
}

// TestGeneratedCredentials runs the registry with the htpasswd entry and
// secrets exactly as addons generates them: the right password works, a
// wrong or missing one gets 401, and errors do not reveal the password.
func TestGeneratedCredentials(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	creds, err := addons.NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	reg := startRegistry(t, startRedis(t, creds.RedisPassword()), generatedAuth(creds))
	reg.mustPush(ctx, t, "app/x:1.0.0", newImage(t, time.Now(), randomLayer(t)))
	good, err := pruner.NewClient(reg.URL, creds.Username(), creds.Password())
	if err != nil {
		t.Fatal(err)
	}
	if repos, err := good.Repositories(ctx); err != nil || !slices.Equal(repos, []string{"app/x"}) {
		t.Fatalf("right password: %q, %v", repos, err)
	}
	for _, pw := range []string{"wrong-" + creds.Password(), ""} {
		c, err := pruner.NewClient(reg.URL, creds.Username(), pw)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Repositories(ctx)
		var te *transport.Error
		if !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
			t.Fatalf("password of %d characters: error %v, want 401", len(pw), err)
		}
		if pw != "" && strings.Contains(err.Error(), pw) {
			t.Fatalf("error reveals the password: %v", err)
		}
	}
	if _, err := pruner.NewClient("http://admin:x@"+reg.Host, "", ""); err == nil {
		t.Fatal("accepted credentials in the URL")
	}
}

// checkReadOnly wraps the registry's maintenance to check, during the
// sweep, that the registry refuses pushes.
type checkReadOnly struct {
	*registryStack
	ctx     context.Context
	t       *testing.T
	refused bool
}

func (c *checkReadOnly) GarbageCollect(ctx context.Context) error {
	err := c.push(c.ctx, c.t, "app/web:during-gc", newImage(c.t, time.Now(), randomLayer(c.t)))
	var te *transport.Error
	c.refused = errors.As(err, &te) && te.StatusCode == http.StatusMethodNotAllowed
	if !c.refused {
		c.t.Errorf("push while read-only: %v, want 405", err)
	}
	return c.registryStack.GarbageCollect(ctx)
}

// listAll returns every repo:tag in the registry.
func listAll(ctx context.Context, t *testing.T, c *pruner.Client) []string {
	t.Helper()
	repos, err := c.Repositories(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range repos {
		tags, err := c.Tags(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range tags {
			out = append(out, r+":"+tg.Name)
		}
	}
	sort.Strings(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func hexOf(t testing.TB, x artifact) string {
	t.Helper()
	return strings.TrimPrefix(digestOf(t, x), "sha256:")
}
