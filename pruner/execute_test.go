package pruner_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bootctl/boot/pruner"
)

// memRegistry is an in-memory Source and Deleter for the executor's own
// logic (ordering, bounds, failures); the real registry is exercised by
// the end-to-end tests.
type memRegistry struct {
	mu       sync.Mutex
	tags     map[string][]pruner.Tag
	fail     map[string]bool // "repo:tag" deletions that fail
	order    []string
	inFlight atomic.Int32
	maxSeen  atomic.Int32
	// With gate > 0, deletions wait until gate of them run at once (then
	// opened is closed), so a test sees the executor's parallelism without
	// relying on timing.
	gate   int32
	opened chan struct{}
	open   sync.Once
}

func (m *memRegistry) Repositories(context.Context) ([]string, error) {
	var out []string
	for r := range m.tags {
		out = append(out, r)
	}
	return out, nil
}

func (m *memRegistry) Tags(_ context.Context, repo string) ([]pruner.Tag, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]pruner.Tag(nil), m.tags[repo]...), nil
}

func (m *memRegistry) DeleteTag(_ context.Context, repo, tag string) error {
	n := m.inFlight.Add(1)
	defer m.inFlight.Add(-1)
	for {
		old := m.maxSeen.Load()
		if n <= old || m.maxSeen.CompareAndSwap(old, n) {
			break
		}
	}
	if m.gate > 0 {
		if n >= m.gate {
			m.open.Do(func() { close(m.opened) })
		}
		select {
		case <-m.opened:
		case <-time.After(time.Minute):
			return errors.New("the deletions never ran in parallel")
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.order = append(m.order, repo+":"+tag)
	if m.fail[repo+":"+tag] {
		return errors.New("503 from the registry")
	}
	kept := m.tags[repo][:0]
	for _, t := range m.tags[repo] {
		if t.Name != tag {
			kept = append(kept, t)
		}
	}
	m.tags[repo] = kept
	return nil
}

func (m *memRegistry) DeleteManifest(context.Context, string, string) error {
	return errors.New("not used")
}

func TestExecuteReferrersFirstAndNeverOrphaned(t *testing.T) {
	ctx := context.Background()
	sig1 := "sha256-" + sha(1)[7:] + ".sig"
	sig2 := "sha256-" + sha(2)[7:] + ".sig"
	m := &memRegistry{
		tags: map[string][]pruner.Tag{"app": {
			tag("PR-1", sha(1), daysAgo(9), 1), tag(sig1, sha(11), daysAgo(9), 2),
			tag("PR-2", sha(2), daysAgo(8), 3), tag(sig2, sha(12), daysAgo(8), 4),
			tag("PR-3", sha(3), daysAgo(1), 5),
		}},
		fail: map[string]bool{"app:" + sig2: true},
	}
	plan, err := pruner.NewPlan(ctx, m, mustRules(t, "rules: [{match: ['^PR-'], keepLatest: 1}]"), pruner.PlanOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Summary.Delete != 4 {
		t.Fatalf("plan %+v", plan.Summary)
	}
	res, err := pruner.Execute(ctx, m, plan, pruner.ExecuteOptions{Parallel: 1})
	if err == nil || !strings.Contains(err.Error(), "1 of 4 deletions failed") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("error %v", err)
	}
	// Referrers were deleted before any subject.
	if len(m.order) != 3 || !strings.HasPrefix(m.order[0], "app:sha256-") || !strings.HasPrefix(m.order[1], "app:sha256-") || m.order[2] != "app:PR-1" {
		t.Fatalf("deletion order %q", m.order)
	}
	got := map[string]pruner.Status{}
	for _, o := range res.Outcomes {
		got[o.Tag] = o.Status
	}
	want := map[string]pruner.Status{"PR-1": pruner.Deleted, sig1: pruner.Deleted, sig2: pruner.Failed, "PR-2": pruner.Skipped}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}
	// PR-2 stays with its signature: nothing orphaned.
	left, _ := m.Tags(ctx, "app")
	var names []string
	for _, tg := range left {
		names = append(names, tg.Name)
	}
	if strings.Join(names, " ") != "PR-2 "+sig2+" PR-3" {
		t.Errorf("left %q", names)
	}
}

func TestExecuteBoundsParallelism(t *testing.T) {
	ctx := context.Background()
	var tags []pruner.Tag
	for i := range 40 {
		tags = append(tags, tag("PR-"+string(rune('a'+i%26))+string(rune('a'+i/26)), sha(i), daysAgo(i+1), i+1))
	}
	for _, parallel := range []int{1, 3} {
		m := &memRegistry{
			tags: map[string][]pruner.Tag{"app": append([]pruner.Tag(nil), tags...)},
			gate: int32(parallel), opened: make(chan struct{}),
		}
		plan, err := pruner.NewPlan(ctx, m, mustRules(t, "rules: [{keepLatest: 0}]"), pruner.PlanOptions{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		res, err := pruner.Execute(ctx, m, plan, pruner.ExecuteOptions{Parallel: parallel, MaxDeletions: 40})
		if err != nil || res.Count(pruner.Deleted) != 40 {
			t.Fatalf("parallel %d: %v, %d deleted", parallel, err, res.Count(pruner.Deleted))
		}
		if got := m.maxSeen.Load(); got != int32(parallel) {
			t.Errorf("parallel %d: %d deletions ran at once", parallel, got)
		}
	}
}

func TestExecuteGuardAndDryRunTouchNothing(t *testing.T) {
	ctx := context.Background()
	m := &memRegistry{tags: map[string][]pruner.Tag{"app": {tag("a", sha(1), daysAgo(1), 1), tag("b", sha(2), daysAgo(2), 2)}}}
	plan, err := pruner.NewPlan(ctx, m, mustRules(t, "rules: [{keepLatest: 0}]"), pruner.PlanOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pruner.Execute(ctx, m, plan, pruner.ExecuteOptions{MaxDeletions: 1}); !errors.Is(err, pruner.ErrTooManyDeletions) || !strings.Contains(err.Error(), "2 tags to delete, the limit is 1") {
		t.Fatalf("guard: %v", err)
	}
	res, err := pruner.Execute(ctx, m, plan, pruner.ExecuteOptions{DryRun: true, MaxDeletions: 2})
	if err != nil || res.Count(pruner.WouldDelete) != 2 || !res.DryRun {
		t.Fatalf("dry run: %+v %v", res, err)
	}
	if len(m.order) != 0 {
		t.Fatalf("deleted %q", m.order)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	res, err = pruner.Execute(cctx, m, plan, pruner.ExecuteOptions{})
	if err == nil || res.Count(pruner.Failed) != 2 || len(m.order) != 0 {
		t.Fatalf("cancelled: %v %+v %q", err, res, m.order)
	}
}
