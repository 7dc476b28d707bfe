package pruner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Maintenance is the part of garbage collection that depends on where the
// registry runs (a Kubernetes Deployment, a systemd unit, a test process).
type Maintenance interface {
	// SetReadOnly switches the registry into (true) or out of (false)
	// read-only mode (storage.maintenance.readonly.enabled) and returns
	// once the registry serves in that mode.
	SetReadOnly(ctx context.Context, readOnly bool) error
	// GarbageCollect runs `registry garbage-collect --delete-untagged`
	// against the registry's storage while it is read-only.
	GarbageCollect(ctx context.Context) error
}

// CacheKeyPatterns are the Redis keys the registry's blob-descriptor cache
// uses: blobs::<digest> and repository::<name>::blobs[::<digest>].
var CacheKeyPatterns = []string{"blobs::*", "repository::*"}

// FlushBlobDescriptorCache deletes the registry's blob-descriptor keys
// (CacheKeyPatterns) with SCAN and UNLINK in batches of batch keys, never
// FLUSHALL, so other data in the database stays. It returns how many keys
// were deleted.
func FlushBlobDescriptorCache(ctx context.Context, rdb redis.UniversalClient, batch int) (int64, error) {
	if batch < 1 {
		batch = 500
	}
	var total int64
	for _, pattern := range CacheKeyPatterns {
		var cursor uint64
		for {
			keys, next, err := rdb.Scan(ctx, cursor, pattern, int64(batch)).Result()
			if err != nil {
				return total, fmt.Errorf("redis SCAN %s: %w", pattern, err)
			}
			if len(keys) > 0 {
				n, err := rdb.Unlink(ctx, keys...).Result()
				if err != nil {
					return total, fmt.Errorf("redis UNLINK: %w", err)
				}
				total += n
			}
			cursor = next
			if cursor == 0 {
				break
			}
		}
	}
	return total, nil
}

// GCOptions tune CollectGarbage.
type GCOptions struct {
	// Prune, when set, runs first while the registry is still writable
	// (deletions go through the API, which read-only mode refuses).
	Prune func(ctx context.Context) error
	// Redis is the registry's blob-descriptor cache; nil when the registry
	// runs without Redis (then there is nothing to flush).
	Redis redis.UniversalClient
	// Batch is the SCAN/UNLINK batch size (default 500).
	Batch int
	// RestoreTimeout bounds switching back to read-write after a failure
	// or cancellation (default 2 minutes).
	RestoreTimeout time.Duration
}

// GCReport says what CollectGarbage did.
type GCReport struct {
	Pruned        bool  `json:"pruned"`
	Collected     bool  `json:"collected"`
	FlushedKeys   int64 `json:"flushedKeys"`
	CacheFlushed  bool  `json:"cacheFlushed"`
	ReadWriteBack bool  `json:"readWrite"`
	// LeftReadOnly is true when the procedure failed after blobs may have
	// been deleted and deliberately left the registry read-only.
	LeftReadOnly bool `json:"leftReadOnly,omitempty"`
}

// ErrGarbageCollectNotStarted is what a Maintenance's GarbageCollect wraps
// when it knows the garbage collection never started (no pod to run it in,
// the command could not be started), so nothing was deleted. Any other
// error from GarbageCollect counts as "may have deleted blobs".
var ErrGarbageCollectNotStarted = errors.New("garbage collection did not start")

// recovery is how an operator gets a registry that CollectGarbage left
// read-only back to read-write safely.
const recovery = "the registry stays read-only (pulls work, pushes are refused) because a stale blob-descriptor cache " +
	"would make pushes skip swept layers and break the images they push; to recover, fix the cause and run the " +
	"garbage collection again (it flushes the cache and switches back to read-write), or make sure no " +
	"garbage-collect is still running, delete the Redis keys blobs::* and repository::* by hand, then switch " +
	"the registry back to read-write"

// CollectGarbage runs the maintenance in the only safe order: prune (API) ->
// read-only -> garbage-collect --delete-untagged -> delete the Redis
// blob-descriptor keys -> read-write. Flushing after the sweep matters:
// otherwise Redis still claims the swept blobs exist, pushes skip those
// layers and pulls then fail with "blob unknown".
//
// Failure policy. A stale cache silently corrupts later pushes, while a
// read-only registry still serves every pull, so:
//   - a failure before anything can have been deleted (prune, the switch to
//     read-only, or a GarbageCollect error wrapping
//     ErrGarbageCollectNotStarted) switches the registry back to read-write;
//   - when garbage-collect fails otherwise it may have deleted blobs (and
//     may, for all we know, still be running): the cache is flushed all the
//     same, but the registry stays read-only;
//   - when the flush fails the registry stays read-only.
//
// Every failure is returned as an error; when the registry was left
// read-only the error says so and how to recover, and the report has
// LeftReadOnly set. Once read-only has been requested, the flush and the
// switch back run even if ctx is cancelled (bounded by RestoreTimeout).
func CollectGarbage(ctx context.Context, m Maintenance, opts GCOptions) (*GCReport, error) {
	if opts.RestoreTimeout <= 0 {
		opts.RestoreTimeout = 2 * time.Minute
	}
	rep := &GCReport{}
	if opts.Prune != nil {
		if err := opts.Prune(ctx); err != nil {
			return rep, fmt.Errorf("prune: %w (registry left read-write, nothing collected)", err)
		}
		rep.Pruned = true
	}
	if err := m.SetReadOnly(ctx, true); err != nil {
		return rep, errors.Join(fmt.Errorf("set read-only: %w (nothing collected)", err), restore(ctx, m, opts, rep))
	}
	if err := m.GarbageCollect(ctx); err != nil {
		if errors.Is(err, ErrGarbageCollectNotStarted) {
			return rep, errors.Join(fmt.Errorf("garbage-collect: %w (nothing was deleted)", err), restore(ctx, m, opts, rep))
		}
		rep.LeftReadOnly = true
		gcErr := fmt.Errorf("garbage-collect: %w; it may have deleted blobs, so %s", err, recovery)
		if flushErr := flush(ctx, opts, rep); flushErr != nil {
			return rep, errors.Join(gcErr, flushErr)
		}
		return rep, gcErr
	}
	rep.Collected = true
	if err := flush(ctx, opts, rep); err != nil {
		rep.LeftReadOnly = true
		return rep, fmt.Errorf("%w; %s", err, recovery)
	}
	return rep, restore(ctx, m, opts, rep)
}

// flush deletes the blob-descriptor keys when there is a cache.
func flush(ctx context.Context, opts GCOptions, rep *GCReport) error {
	if opts.Redis == nil {
		return nil
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.RestoreTimeout)
	defer cancel()
	n, err := FlushBlobDescriptorCache(fctx, opts.Redis, opts.Batch)
	rep.FlushedKeys = n
	if err != nil {
		return fmt.Errorf("flush the blob-descriptor cache: %w", err)
	}
	rep.CacheFlushed = true
	return nil
}

func restore(ctx context.Context, m Maintenance, opts GCOptions, rep *GCReport) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.RestoreTimeout)
	defer cancel()
	if err := m.SetReadOnly(rctx, false); err != nil {
		return fmt.Errorf("set read-write again: %w (the registry may still be read-only; the cache is consistent, so switch it to read-write)", err)
	}
	rep.ReadWriteBack = true
	return nil
}
