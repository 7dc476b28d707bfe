package pruner_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/pruner"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// TestGarbageCollectWithoutFlushServesStaleCache reproduces the bug the
// flush prevents: after a GC without it, Redis still says a swept layer
// exists, so a push skips uploading it, the registry accepts the manifest,
// and the pull of that layer fails. Flushing the cache cures it.
func TestGarbageCollectWithoutFlushServesStaleCache(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	creds, err := addons.NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	rdb := startRedis(t, creds.RedisPassword())
	reg := startRegistry(t, rdb, fastAuth(t, creds))
	client, err := pruner.NewClient(reg.URL, creds.Username(), creds.Password())
	if err != nil {
		t.Fatal(err)
	}

	base, gone := randomLayer(t), randomLayer(t)
	goneDigest := digestOf(t, gone)
	reg.mustPush(ctx, t, "app/a:old", newImage(t, time.Now(), base, gone))
	reg.mustPush(ctx, t, "app/a:keep", newImage(t, time.Now(), base, randomLayer(t)))
	if err := client.DeleteTag(ctx, "app/a", "old"); err != nil {
		t.Fatal(err)
	}
	if ok, err := rdb.Client.SIsMember(ctx, "repository::app/a::blobs", goneDigest).Result(); err != nil || !ok {
		t.Fatalf("the layer is not in the cache before GC (%v, %v)", ok, err)
	}

	// GC without the flush.
	if err := reg.SetReadOnly(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := reg.GarbageCollect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := reg.SetReadOnly(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(reg.blobPath(goneDigest)); !os.IsNotExist(err) {
		t.Fatalf("GC did not sweep the layer: %v", err)
	}

	// A new image that uses the swept layer: the push skips it...
	reg.uploads.reset()
	reg.mustPush(ctx, t, "app/a:new", newImage(t, time.Now(), base, gone))
	if n := reg.uploads.committed(goneDigest); n != 0 {
		t.Fatalf("the layer was uploaded %d times; the stale cache did not show", n)
	}
	// ...and the pull fails: the registry has no such blob. With the
	// filesystem driver distribution v3.1.2 answers 200 with the cached
	// Content-Length and an empty body (the client sees unexpected EOF);
	// other drivers answer 404 BLOB_UNKNOWN. Either way the image is broken.
	err = reg.pull(ctx, t, "app/a:new")
	var te *transport.Error
	broken := errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &te) && te.StatusCode == http.StatusNotFound
	if !broken || !strings.Contains(err.Error(), goneDigest) {
		t.Fatalf("pull after a GC without flush: %v, want a failure to fetch %s", err, goneDigest)
	}
	t.Logf("without the flush: push skipped %s, pull failed: %v", goneDigest, err)

	// The flush cures it: a push of another image with that layer uploads
	// it, and both images pull.
	n, err := pruner.FlushBlobDescriptorCache(ctx, rdb.Client, 100)
	if err != nil || n == 0 {
		t.Fatalf("flush: %d keys, %v", n, err)
	}
	reg.uploads.reset()
	reg.mustPush(ctx, t, "app/a:newer", newImage(t, time.Now().Add(time.Minute), base, gone))
	if n := reg.uploads.committed(goneDigest); n != 1 {
		t.Fatalf("after the flush the layer was uploaded %d times, want 1", n)
	}
	for _, tg := range []string{"app/a:newer", "app/a:new"} {
		if err := reg.pull(ctx, t, tg); err != nil {
			t.Fatalf("pull %s after flush and re-push: %v", tg, err)
		}
	}
	if err := reg.pull(ctx, t, "app/a:keep"); err != nil {
		t.Fatalf("kept image: %v", err)
	}
}

// TestGarbageCollectWithInMemoryCache: the chart's cache on one replica on
// a volume is inmemory, which garbage collection does not flush. It needs
// no flush because the registry restarts with an empty cache when gc
// switches it read-only and back (a rolled Deployment; the harness starts a
// new App). Shown both ways on the real registry: a sweep while the same
// App keeps serving leaves its cache claiming a swept layer (the push skips
// it), while pruner.CollectGarbage, which switches, leaves none: the layer
// is uploaded again and every image pulls.
func TestGarbageCollectWithInMemoryCache(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	creds, err := addons.NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	reg := startRegistryWith(t, nil, fastAuth(t, creds), registryOptions{inMemoryCache: true})
	if c := reg.parseConfig(false).Storage["cache"]["blobdescriptor"]; c != "inmemory" {
		t.Fatalf("the registry's cache is %v, want inmemory", c)
	}
	client, err := pruner.NewClient(reg.URL, creds.Username(), creds.Password())
	if err != nil {
		t.Fatal(err)
	}
	base := randomLayer(t)
	// orphan pushes, deletes and sweeps an image with a layer of its own,
	// and returns that layer.
	orphan := func(tag string, sweep func() error) v1.Layer {
		t.Helper()
		gone := randomLayer(t)
		reg.mustPush(ctx, t, "app/a:"+tag, newImage(t, time.Now(), base, gone))
		if err := reg.pull(ctx, t, "app/a:"+tag); err != nil { // the cache learns the layer
			t.Fatal(err)
		}
		if err := client.DeleteTag(ctx, "app/a", tag); err != nil {
			t.Fatal(err)
		}
		if err := sweep(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(reg.blobPath(digestOf(t, gone))); !os.IsNotExist(err) {
			t.Fatalf("GC did not sweep the layer: %v", err)
		}
		return gone
	}
	reg.mustPush(ctx, t, "app/a:keep", newImage(t, time.Now(), base, randomLayer(t)))

	// A sweep under the serving App: its cache still claims the layer.
	gone := orphan("old", func() error { return reg.GarbageCollect(ctx) })
	reg.uploads.reset()
	reg.mustPush(ctx, t, "app/a:stale", newImage(t, time.Now(), base, gone))
	if n := reg.uploads.committed(digestOf(t, gone)); n != 0 {
		t.Fatalf("the swept layer was uploaded %d times: the inmemory cache did not remember it", n)
	}

	// CollectGarbage: read-only (a new App), sweep, read-write.
	gone = orphan("older", func() error {
		_, err := pruner.CollectGarbage(ctx, reg, pruner.GCOptions{})
		return err
	})
	reg.uploads.reset()
	reg.mustPush(ctx, t, "app/a:new", newImage(t, time.Now(), base, gone))
	if n := reg.uploads.committed(digestOf(t, gone)); n != 1 {
		t.Fatalf("after CollectGarbage the swept layer was uploaded %d times, want 1", n)
	}
	for _, tg := range []string{"app/a:new", "app/a:keep"} {
		if err := reg.pull(ctx, t, tg); err != nil {
			t.Fatalf("pull %s after CollectGarbage: %v", tg, err)
		}
	}
}

// TestExecuteWithoutTagDeletion runs against the real registry behind a
// filter that answers 405 to DELETE by tag, like registries before v3: a
// manifest is deleted by digest only when every tag on it goes.
func TestExecuteWithoutTagDeletion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	creds, err := addons.NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	reg := startRegistry(t, startRedis(t, creds.RedisPassword()), fastAuth(t, creds))
	a := newImage(t, time.Now().Add(-48*time.Hour), randomLayer(t))
	b := newImage(t, time.Now().Add(-48*time.Hour), randomLayer(t))
	reg.mustPush(ctx, t, "app/a:PR-1", a)
	reg.mustPush(ctx, t, "app/a:PR-2", a)
	reg.mustPush(ctx, t, "app/a:PR-3", b)
	reg.mustPush(ctx, t, "app/a:1.0.0", b)
	noTagDelete := func(r *http.Request) int {
		if r.Method == http.MethodDelete && strings.Contains(r.URL.Path, "/manifests/") && !strings.Contains(r.URL.Path, "/manifests/sha256:") {
			return http.StatusMethodNotAllowed
		}
		return 0
	}
	reg.reject.Store(&noTagDelete)

	client, err := pruner.NewClient(reg.URL, creds.Username(), creds.Password())
	if err != nil {
		t.Fatal(err)
	}
	if err := client.DeleteTag(ctx, "app/a", "PR-1"); !errors.Is(err, pruner.ErrTagDeleteUnsupported) {
		t.Fatalf("DeleteTag: %v, want ErrTagDeleteUnsupported", err)
	}
	plan, err := pruner.NewPlan(ctx, client, mustRules(t, "rules: [{match: ['^PR-'], keepLatest: 0}]"), pruner.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := pruner.Execute(ctx, client, plan, pruner.ExecuteOptions{Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]pruner.Status{}
	for _, o := range res.Outcomes {
		status[o.Tag] = o.Status
	}
	want := map[string]pruner.Status{"PR-1": pruner.DeletedManifest, "PR-2": pruner.DeletedManifest, "PR-3": pruner.Skipped}
	if len(status) != len(want) {
		t.Fatalf("outcomes %+v", res.Outcomes)
	}
	for tg, s := range want {
		if status[tg] != s {
			t.Errorf("%s: %s, want %s", tg, status[tg], s)
		}
	}
	if got := listAll(ctx, t, client); strings.Join(got, " ") != "app/a:1.0.0 app/a:PR-3" {
		t.Fatalf("left %q, want 1.0.0 and PR-3", got)
	}
}
