package pruner_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/pruner"
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

// recorder is a Maintenance that records calls and fails where told.
type recorder struct {
	calls             []string
	failReadOnly      bool
	failGC            bool
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
	return ctx.Err()
}

func (r *recorder) GarbageCollect(ctx context.Context) error {
	r.calls = append(r.calls, "gc")
	if r.failGC {
		return errors.New("sweep failed half way")
	}
	return nil
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
	badRedis := redis.NewClient(&redis.Options{Addr: rdb.Addr, Password: "wrong", DialTimeout: time.Second})
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
			errWant: "set read-only: rollout failed",
			report:  pruner.GCReport{ReadWriteBack: true},
		},
		{
			name:    "GC fails: cache still flushed, back to read-write",
			m:       recorder{failGC: true},
			rdb:     rdb.Client,
			calls:   []string{"readonly=true", "gc", "readonly=false"},
			errWant: "garbage-collect: sweep failed half way",
			flushed: true,
			report:  pruner.GCReport{FlushedKeys: 1, CacheFlushed: true, ReadWriteBack: true},
		},
		{
			name:    "flush fails: back to read-write, error says the cache may be stale",
			rdb:     badRedis,
			calls:   []string{"readonly=true", "gc", "readonly=false"},
			errWant: "cache (it may be stale",
			report:  pruner.GCReport{Collected: true, ReadWriteBack: true},
		},
		{
			name:    "read-write fails: reported",
			m:       recorder{failReadWriteOnce: true},
			rdb:     rdb.Client,
			calls:   []string{"readonly=true", "gc", "readonly=false"},
			errWant: "set read-write again: rollout back failed",
			flushed: true,
			report:  pruner.GCReport{Collected: true, FlushedKeys: 1, CacheFlushed: true},
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
			if err != nil && strings.Contains(err.Error(), "gc-test-password") {
				t.Errorf("error reveals a password: %v", err)
			}
		})
	}
}
