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
}

// CollectGarbage runs the maintenance in the only safe order: prune (API) ->
// read-only -> garbage-collect --delete-untagged -> delete the Redis
// blob-descriptor keys -> read-write. Flushing after the sweep matters:
// otherwise Redis still claims the swept blobs exist, pushes skip those
// layers and pulls then fail with "blob unknown".
//
// If a step fails the procedure stops and the registry is switched back to
// read-write. When the garbage collection itself fails (it may have deleted
// some blobs), the cache is still flushed before read-write. Once read-only
// has been requested, read-write is restored even if ctx is cancelled.
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
		return rep, errors.Join(fmt.Errorf("set read-only: %w", err), restore(ctx, m, opts, rep))
	}
	gcErr := m.GarbageCollect(ctx)
	if gcErr != nil {
		gcErr = fmt.Errorf("garbage-collect: %w", gcErr)
	} else {
		rep.Collected = true
	}
	var flushErr error
	if opts.Redis != nil {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.RestoreTimeout)
		rep.FlushedKeys, flushErr = FlushBlobDescriptorCache(fctx, opts.Redis, opts.Batch)
		cancel()
		if flushErr != nil {
			flushErr = fmt.Errorf("flush the blob-descriptor cache (it may be stale: run the maintenance again before pushing): %w", flushErr)
		} else {
			rep.CacheFlushed = true
		}
	}
	return rep, errors.Join(gcErr, flushErr, restore(ctx, m, opts, rep))
}

func restore(ctx context.Context, m Maintenance, opts GCOptions, rep *GCReport) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.RestoreTimeout)
	defer cancel()
	if err := m.SetReadOnly(rctx, false); err != nil {
		return fmt.Errorf("set read-write again: %w", err)
	}
	rep.ReadWriteBack = true
	return nil
}
