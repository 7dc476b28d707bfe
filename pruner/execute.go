package pruner

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Deleter removes tags and manifests; *Client is the real one.
type Deleter interface {
	DeleteTag(ctx context.Context, repository, tag string) error
	DeleteManifest(ctx context.Context, repository, digest string) error
}

// ExecuteOptions tune Execute.
type ExecuteOptions struct {
	// DryRun executes nothing; the result lists what would be deleted.
	DryRun bool
	// MaxDeletions refuses the whole plan when it deletes more tags than
	// this (0 = no limit).
	MaxDeletions int
	// Parallel bounds concurrent deletes (default 4).
	Parallel int
}

// ErrTooManyDeletions is returned, before anything is deleted, when the plan
// exceeds ExecuteOptions.MaxDeletions.
var ErrTooManyDeletions = errors.New("plan exceeds the maximum number of deletions")

// Status of one deletion.
type Status string

// The statuses of an Outcome.
const (
	WouldDelete     Status = "would-delete"     // dry run
	Deleted         Status = "deleted"          // the tag was deleted
	DeletedManifest Status = "deleted-manifest" // the registry cannot delete tags; the manifest (and all its tags, all planned) was deleted
	Skipped         Status = "skipped"          // not deleted on purpose; see Detail
	Failed          Status = "failed"
)

// Outcome is what happened to one planned deletion.
type Outcome struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	Digest     string `json:"digest"`
	Status     Status `json:"status"`
	Detail     string `json:"detail,omitempty"`
}

// Result lists the outcome of every planned deletion.
type Result struct {
	DryRun   bool      `json:"dryRun"`
	Outcomes []Outcome `json:"outcomes"`
}

// Count returns how many outcomes have the status.
func (r *Result) Count(s Status) int {
	n := 0
	for _, o := range r.Outcomes {
		if o.Status == s {
			n++
		}
	}
	return n
}

// Execute carries out a plan's deletions. Referrer tags (signatures,
// attestations, SBOMs) go first; a subject whose referrer could not be
// deleted is kept so that nothing is orphaned. Tags are deleted by name, so a
// manifest that a kept tag also points at stays. On a registry that cannot
// delete single tags, a manifest is deleted by digest only when the plan
// deletes every tag on it; other such tags are skipped.
// The error is ErrTooManyDeletions (nothing done) or sums up failures.
func Execute(ctx context.Context, d Deleter, p *Plan, opts ExecuteOptions) (*Result, error) {
	dels := p.Deletions()
	if opts.MaxDeletions > 0 && len(dels) > opts.MaxDeletions {
		return nil, fmt.Errorf("%w: %d tags to delete, the limit is %d; nothing was deleted", ErrTooManyDeletions, len(dels), opts.MaxDeletions)
	}
	if opts.Parallel < 1 {
		opts.Parallel = 4
	}
	res := &Result{DryRun: opts.DryRun, Outcomes: make([]Outcome, len(dels))}
	var referrers, plain []int
	for i, del := range dels {
		res.Outcomes[i] = Outcome{Repository: del.Repository, Tag: del.Name, Digest: del.Digest}
		if del.Referrer != "" {
			referrers = append(referrers, i)
		} else {
			plain = append(plain, i)
		}
	}
	if opts.DryRun {
		for i := range res.Outcomes {
			res.Outcomes[i].Status = WouldDelete
		}
		return res, nil
	}

	e := &executor{d: d, manifests: map[string]*manifestDeletion{}}
	// Phase 1: referrer tags. Remember subjects whose referrer survived.
	kept := map[string]bool{} // repo@subject digest
	var mu sync.Mutex
	e.run(ctx, opts.Parallel, dels, referrers, res, func(i int) {
		if res.Outcomes[i].Status == Failed {
			mu.Lock()
			kept[dels[i].Repository+"@"+dels[i].Referrer] = true
			mu.Unlock()
		}
	})
	// Phase 2: the other tags, except subjects of failed referrers.
	var rest []int
	for _, i := range plain {
		if kept[dels[i].Repository+"@"+dels[i].Digest] {
			res.Outcomes[i].Status = Skipped
			res.Outcomes[i].Detail = "a referrer tag of this digest could not be deleted; kept so it is not orphaned"
			continue
		}
		rest = append(rest, i)
	}
	e.run(ctx, opts.Parallel, dels, rest, res, nil)

	var failed []string
	for _, o := range res.Outcomes {
		if o.Status == Failed {
			failed = append(failed, o.Repository+":"+o.Tag+": "+o.Detail)
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return res, fmt.Errorf("%d of %d deletions failed: %s", len(failed), len(dels), strings.Join(failed, "; "))
	}
	return res, nil
}

type executor struct {
	d         Deleter
	mu        sync.Mutex
	manifests map[string]*manifestDeletion
}

// manifestDeletion deletes one manifest by digest at most once.
type manifestDeletion struct {
	once sync.Once
	err  error
}

func (e *executor) run(ctx context.Context, parallel int, dels []Deletion, idx []int, res *Result, after func(int)) {
	var g errgroup.Group
	g.SetLimit(parallel)
	for _, i := range idx {
		g.Go(func() error {
			res.Outcomes[i].Status, res.Outcomes[i].Detail = e.delete(ctx, dels[i])
			if after != nil {
				after(i)
			}
			return nil
		})
	}
	_ = g.Wait() // the goroutines report through res, never by error
}

func (e *executor) delete(ctx context.Context, del Deletion) (Status, string) {
	if err := ctx.Err(); err != nil {
		return Failed, err.Error()
	}
	err := e.d.DeleteTag(ctx, del.Repository, del.Name)
	if err == nil {
		return Deleted, ""
	}
	if !errors.Is(err, ErrTagDeleteUnsupported) {
		return Failed, err.Error()
	}
	if !del.LastTagOfDigest {
		return Skipped, "the registry cannot delete a single tag and the manifest is also tagged " + strings.Join(del.SharedWith, ", ")
	}
	key := del.Repository + "@" + del.Digest
	e.mu.Lock()
	md, ok := e.manifests[key]
	if !ok {
		md = &manifestDeletion{}
		e.manifests[key] = md
	}
	e.mu.Unlock()
	md.once.Do(func() { md.err = e.d.DeleteManifest(ctx, del.Repository, del.Digest) })
	if md.err != nil {
		return Failed, md.err.Error()
	}
	return DeletedManifest, "the registry cannot delete a single tag; every tag on " + del.Digest + " is planned for deletion, so the manifest was deleted"
}
