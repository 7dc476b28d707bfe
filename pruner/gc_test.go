package pruner_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/pruner"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/redis/go-redis/v9"
)

func TestFlushBlobDescriptorCache(t *testing.T) {
	ctx := context.Background()
	rdb := startRedis(t, "flush-test-password")
	c := rdb.Client
	// Keys the registry writes, and keys it does not (which must stay).
	for i := range 1200 {
		d := sha(i)
		c.HSet(ctx, "blobs::"+d, "digest", d, "size", 10)
		c.SAdd(ctx, fmt.Sprintf("repository::app/r%d::blobs", i%7), d)
		c.HSet(ctx, fmt.Sprintf("repository::app/r%d::blobs::%s", i%7, d), "mediatype", "x")
	}
	c.Set(ctx, "session:abc", "1", 0)
	c.Set(ctx, "blobs", "not a descriptor key", 0)
	c.HSet(ctx, "other::blobs::x", "a", "b")

	n, err := pruner.FlushBlobDescriptorCache(ctx, c, 50)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(1200 + 7 + 1200); n != want {
		t.Errorf("deleted %d keys, want %d", n, want)
	}
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if strings.Join(keys, " ") != "blobs other::blobs::x session:abc" {
		t.Errorf("left keys %q", keys)
	}
	// Idempotent: nothing more to delete.
	if n, err := pruner.FlushBlobDescriptorCache(ctx, c, 0); err != nil || n != 0 {
		t.Errorf("second flush: %d, %v", n, err)
	}
}

// recorder is a Maintenance that records calls and the registry's mode,
// and fails where told.
type recorder struct {
	calls             []string
	readOnly          bool
	failReadOnly      bool
	gcErr             error
	failReadWriteOnce bool
}

func (r *recorder) SetReadOnly(ctx context.Context, ro bool) error {
	r.calls = append(r.calls, fmt.Sprintf("readonly=%v", ro))
	if ro && r.failReadOnly {
		return errors.New("rollout failed")
	}
	if !ro && r.failReadWriteOnce {
		r.failReadWriteOnce = false
		return errors.New("rollout back failed")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.readOnly = ro
	return nil
}

func (r *recorder) GarbageCollect(context.Context) error {
	r.calls = append(r.calls, "gc")
	return r.gcErr
}

func TestCollectGarbageOrderAndFailures(t *testing.T) {
	rdb := startRedis(t, "gc-test-password")
	seed := func() {
		rdb.Client.HSet(context.Background(), "blobs::"+sha(1), "digest", sha(1))
	}
	flushed := func() bool {
		n, _ := rdb.Client.Exists(context.Background(), "blobs::"+sha(1)).Result()
		return n == 0
	}
	var m *recorder
	prune := func(fail bool) func(context.Context) error {
		return func(context.Context) error {
			m.calls = append(m.calls, "prune")
			if fail {
				return errors.New("registry unreachable")
			}
			return nil
		}
	}
	badRedis := redis.NewClient(&redis.Options{Addr: rdb.Addr, Password: "wrong", DialTimeout: 10 * time.Second})
	defer badRedis.Close()

	cases := []struct {
		name      string
		m         recorder
		prune     func(context.Context) error
		rdb       redis.UniversalClient
		cancelled bool
		calls     []string
		errWant   string // "" = no error
		flushed   bool
		readOnly  bool // the registry's mode at the end
		report    pruner.GCReport
	}{
		{
			name:    "all steps in order",
			prune:   prune(false),
			rdb:     rdb.Client,
			calls:   []string{"prune", "readonly=true", "gc", "readonly=false"},
			flushed: true,
			report:  pruner.GCReport{Pruned: true, Collected: true, FlushedKeys: 1, CacheFlushed: true, ReadWriteBack: true},
		},
		{
			name:    "prune fails: nothing else happens",
			prune:   prune(true),
			rdb:     rdb.Client,
			calls:   []string{"prune"},
			errWant: "prune: registry unreachable",
		},
		{
			name:    "read-only fails: back to read-write, no GC",
			m:       recorder{failReadOnly: true},
			rdb:     rdb.Client,
			calls:   []string{"readonly=true", "readonly=false"},
			errWant: "set read-only: rollout failed (nothing collected)",
			report:  pruner.GCReport{ReadWriteBack: true},
		},
		{
			name:     "GC fails: cache still flushed, registry stays read-only",
			m:        recorder{gcErr: errors.New("sweep failed half way")},
			rdb:      rdb.Client,
			calls:    []string{"readonly=true", "gc"},
			errWant:  "garbage-collect: sweep failed half way; it may have deleted blobs, so the registry stays read-only",
			flushed:  true,
			readOnly: true,
			report:   pruner.GCReport{FlushedKeys: 1, CacheFlushed: true, LeftReadOnly: true},
		},
		{
			name:     "GC and flush fail: registry stays read-only, both reported",
			m:        recorder{gcErr: errors.New("sweep failed half way")},
			rdb:      badRedis,
			calls:    []string{"readonly=true", "gc"},
			errWant:  "flush the blob-descriptor cache: redis SCAN blobs::*: ",
			readOnly: true,
			report:   pruner.GCReport{LeftReadOnly: true},
		},
		{
			name:    "GC did not start: nothing deleted, no flush, back to read-write",
			m:       recorder{gcErr: fmt.Errorf("no ready registry pod: %w", pruner.ErrGarbageCollectNotStarted)},
			rdb:     rdb.Client,
			calls:   []string{"readonly=true", "gc", "readonly=false"},
			errWant: "garbage-collect: no ready registry pod: garbage collection did not start (nothing was deleted)",
			report:  pruner.GCReport{ReadWriteBack: true},
		},
		{
			name:     "flush fails: registry stays read-only, error says how to recover",
			rdb:      badRedis,
			calls:    []string{"readonly=true", "gc"},
			errWant:  "flush the blob-descriptor cache: redis SCAN blobs::*: ",
			readOnly: true,
			report:   pruner.GCReport{Collected: true, LeftReadOnly: true},
		},
		{
			name:     "read-write fails: reported",
			m:        recorder{failReadWriteOnce: true},
			rdb:      rdb.Client,
			calls:    []string{"readonly=true", "gc", "readonly=false"},
			errWant:  "set read-write again: rollout back failed (the registry may still be read-only; the cache is consistent, so switch it to read-write)",
			flushed:  true,
			readOnly: true,
			report:   pruner.GCReport{Collected: true, FlushedKeys: 1, CacheFlushed: true},
		},
		{
			name:      "cancelled context: read-write is still restored",
			rdb:       rdb.Client,
			cancelled: true,
			calls:     []string{"readonly=true", "readonly=false"},
			errWant:   "set read-only: context canceled",
			report:    pruner.GCReport{ReadWriteBack: true},
		},
		{
			name:    "no Redis: nothing to flush",
			calls:   []string{"readonly=true", "gc", "readonly=false"},
			report:  pruner.GCReport{Collected: true, ReadWriteBack: true},
			flushed: false,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seed()
			m = &tc.m
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelled {
				cancel()
			}
			rep, err := pruner.CollectGarbage(ctx, m, pruner.GCOptions{Prune: tc.prune, Redis: tc.rdb, RestoreTimeout: 5 * time.Second})
			if !reflect.DeepEqual(m.calls, tc.calls) {
				t.Errorf("calls %q, want %q", m.calls, tc.calls)
			}
			switch {
			case tc.errWant == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.errWant != "" && (err == nil || !strings.Contains(err.Error(), tc.errWant)):
				t.Errorf("error %v, want %q", err, tc.errWant)
			}
			if flushed() != tc.flushed {
				t.Errorf("cache flushed = %v, want %v", flushed(), tc.flushed)
			}
			if *rep != tc.report {
				t.Errorf("report %+v, want %+v", *rep, tc.report)
			}
			if m.readOnly != tc.readOnly {
				t.Errorf("registry read-only = %v at the end, want %v", m.readOnly, tc.readOnly)
			}
			// Whenever the registry is left read-only on purpose, the
			// error says so and tells how to recover.
			if tc.report.LeftReadOnly {
				for _, want := range []string{"stays read-only", "pulls work", "run the garbage collection again", "blobs::* and repository::* by hand", "switch the registry back to read-write"} {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("error %v does not say %q", err, want)
					}
				}
			} else if err != nil && strings.Contains(err.Error(), "stays read-only") {
				t.Errorf("error %v claims read-only, but the registry is read-write", err)
			}
			if err != nil && strings.Contains(err.Error(), "gc-test-password") {
				t.Errorf("error reveals a password: %v", err)
			}
		})
	}
}

// TestCollectGarbageFlushFailureLeavesRealRegistryReadOnly runs the
// procedure against the real registry with a Redis client that cannot
// flush: the registry must stay read-only (pushes refused, pulls served),
// and running the garbage collection again with a working flush brings it
// back to read-write with a clean cache.
func TestCollectGarbageFlushFailureLeavesRealRegistryReadOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	creds, err := addons.NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	rdb := startRedis(t, creds.RedisPassword())
	reg := startRegistry(t, rdb, fastAuth(t, creds))
	base, gone := randomLayer(t), randomLayer(t)
	reg.mustPush(ctx, t, "app/a:keep", newImage(t, time.Now(), base))
	reg.mustPush(ctx, t, "app/a:old", newImage(t, time.Now(), base, gone))
	client, err := pruner.NewClient(reg.URL, creds.Username(), creds.Password())
	if err != nil {
		t.Fatal(err)
	}
	if err := client.DeleteTag(ctx, "app/a", "old"); err != nil {
		t.Fatal(err)
	}

	badRedis := redis.NewClient(&redis.Options{Addr: rdb.Addr, Password: "not-" + creds.RedisPassword(), DialTimeout: 10 * time.Second})
	defer badRedis.Close()
	rep, err := pruner.CollectGarbage(ctx, reg, pruner.GCOptions{Redis: badRedis, RestoreTimeout: 10 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "stays read-only") || !rep.Collected || !rep.LeftReadOnly || rep.ReadWriteBack {
		t.Fatalf("flush failure: report %+v, error %v", *rep, err)
	}
	if strings.Contains(err.Error(), creds.RedisPassword()) {
		t.Fatal("error reveals the Redis password")
	}
	// The sweep ran, the cache still describes the swept layer: exactly the
	// state in which a push would go wrong, and pushes are refused.
	if n, _ := rdb.Client.Exists(ctx, "blobs::"+digestOf(t, gone)).Result(); n != 1 {
		t.Fatal("the cache was flushed after all; this test proves nothing")
	}
	var te *transport.Error
	if err := reg.push(ctx, t, "app/a:new", newImage(t, time.Now(), base, gone)); !errors.As(err, &te) || te.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("push to the registry left read-only: %v, want 405", err)
	}
	if err := reg.pull(ctx, t, "app/a:keep"); err != nil {
		t.Fatalf("pull while read-only: %v", err)
	}

	// Recovery: run it again with a working flush.
	rep, err = pruner.CollectGarbage(ctx, reg, pruner.GCOptions{Redis: rdb.Client})
	if err != nil || !rep.CacheFlushed || !rep.ReadWriteBack || rep.LeftReadOnly {
		t.Fatalf("second run: report %+v, error %v", *rep, err)
	}
	reg.uploads.reset()
	reg.mustPush(ctx, t, "app/a:new", newImage(t, time.Now(), base, gone))
	if n := reg.uploads.committed(digestOf(t, gone)); n != 1 {
		t.Fatalf("after recovery the swept layer was uploaded %d times, want 1", n)
	}
	if err := reg.pull(ctx, t, "app/a:new"); err != nil {
		t.Fatalf("pull after recovery: %v", err)
	}
}
