package run

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder collects events and applied changes.
type recorder struct {
	mu      sync.Mutex
	events  []Event
	applied []string
}

func (r *recorder) report(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) change(host, what string, err error) Change {
	return Change{Host: host, Description: what, Apply: func(context.Context) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.applied = append(r.applied, host+":"+what)
		return err
	}}
}

// fixed is a step with a fixed plan.
func fixed(name string, changes []Change, err error) Step {
	return Step{Phase: name, Plan: func(context.Context, *State) ([]Change, error) { return changes, err }}
}

func TestDryRunAppliesNothingAndReportsThePlan(t *testing.T) {
	r := &recorder{}
	steps := []Step{
		fixed("one", []Change{r.change("a", "write x", nil), r.change("b", "write y", nil)}, nil),
		fixed("two", nil, nil),
	}
	if err := Do(context.Background(), steps, Options{DryRun: true, Parallel: 2, Report: r.report}); err != nil {
		t.Fatal(err)
	}
	if len(r.applied) != 0 {
		t.Errorf("dry run applied %v", r.applied)
	}
	want := []Event{
		{Phase: "one", Host: "a", Status: Planned, Message: "write x"},
		{Phase: "one", Host: "b", Status: Planned, Message: "write y"},
		{Phase: "two", Status: OK, Message: "nothing to do"},
	}
	for i := range r.events {
		r.events[i].Duration = 0
	}
	if !slices.Equal(r.events, want) {
		t.Errorf("events\n got %+v\nwant %+v", r.events, want)
	}
}

func TestRunAppliesInOrderPerHostAndReportsEveryFailure(t *testing.T) {
	r := &recorder{}
	boom := errors.New("disk full")
	steps := []Step{
		fixed("one", []Change{
			r.change("a", "1", nil), r.change("b", "1", boom), r.change("a", "2", nil),
			r.change("b", "2", nil), r.change("c", "1", boom),
		}, nil),
		fixed("never", []Change{r.change("a", "3", nil)}, nil),
	}
	err := Do(context.Background(), steps, Options{Parallel: 3, Report: r.report})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	for _, host := range []string{"on b: 1", "on c: 1"} {
		if !strings.Contains(err.Error(), host) {
			t.Errorf("error does not name %q: %v", host, err)
		}
	}
	slices.Sort(r.applied)
	if want := []string{"a:1", "a:2", "b:1", "c:1"}; !slices.Equal(r.applied, want) {
		t.Errorf("applied %v, want %v (b stops at its failure, later phases never run)", r.applied, want)
	}
	// a's changes ran in plan order.
	var aOrder []string
	for _, e := range r.events {
		if e.Host == "a" && e.Status == Changed {
			aOrder = append(aOrder, e.Message)
		}
	}
	if !slices.Equal(aOrder, []string{"1", "2"}) {
		t.Errorf("host a applied in order %v", aOrder)
	}
}

func TestRunStopsBeforeChangingWhenAPlanFails(t *testing.T) {
	r := &recorder{}
	bad := errors.New("cannot inspect")
	err := Do(context.Background(), []Step{
		fixed("one", nil, bad),
		fixed("two", []Change{r.change("a", "1", nil)}, nil),
	}, Options{Parallel: 1, Report: r.report})
	if !errors.Is(err, bad) || !strings.HasPrefix(err.Error(), "one: ") {
		t.Fatalf("err = %v", err)
	}
	if len(r.applied) != 0 {
		t.Errorf("applied %v after a failed plan", r.applied)
	}
}

func TestApplyBoundsParallelism(t *testing.T) {
	var mu sync.Mutex
	running, peak := 0, 0
	var changes []Change
	for i := range 12 {
		changes = append(changes, Change{Host: fmt.Sprint("h", i), Description: "x", Apply: func(context.Context) error {
			mu.Lock()
			running++
			peak = max(peak, running)
			mu.Unlock()
			for range 1000 { // let other goroutines get scheduled
				runtime.Gosched()
			}
			mu.Lock()
			running--
			mu.Unlock()
			return nil
		}})
	}
	if err := Do(context.Background(), []Step{fixed("p", changes, nil)}, Options{Parallel: 3}); err != nil {
		t.Fatal(err)
	}
	if peak > 3 || peak < 1 {
		t.Errorf("peak concurrency %d, want 1..3", peak)
	}
}

// TestDryRunDefersPlansAfterPendingSteps checks what a step sees of a dry
// run: the first earlier step with planned changes, which a real run never
// has; and that a check runs only in a real run, after the changes before it.
func TestDryRunDefersPlansAfterPendingSteps(t *testing.T) {
	for _, dry := range []bool{true, false} {
		r := &recorder{}
		var seen []string
		checked := false
		probe := func(name string) Step {
			return Step{Phase: name, Plan: func(_ context.Context, s *State) ([]Change, error) {
				seen = append(seen, name+"<"+s.Pending()+">")
				if p := s.Pending(); p != "" {
					return []Change{{Host: "x", Description: After(p, "do "+name)}}, nil
				}
				return nil, nil
			}}
		}
		sibling := fixed("release", []Change{r.change("c", "1", nil)}, nil)
		steps := []Step{
			probe("first"),
			fixed("cluster", []Change{r.change("a", "1", nil)}, nil),
			fixed("other", []Change{r.change("b", "1", nil)}, nil),
			sibling, // of the same phase: not pending for the next one
			probe("release"),
			{Phase: "verify", Description: "push and pull", Check: func(context.Context, *State) error {
				checked = len(r.applied) == 3
				return nil
			}},
		}
		if err := Do(context.Background(), steps, Options{DryRun: dry, Report: r.report}); err != nil {
			t.Fatal(err)
		}
		if got := steps[3].Plan; got != nil {
			steps[3].Plan = func(ctx context.Context, s *State) ([]Change, error) {
				if s.Planned("cluster", "a") != dry || s.Planned("cluster", "b") {
					t.Errorf("dry %v: Planned(cluster, a) = %v, Planned(cluster, b) = %v", dry, s.Planned("cluster", "a"), s.Planned("cluster", "b"))
				}
				return got(ctx, s)
			}
		}
		want := []string{"first<>", "release<>"}
		if dry {
			want = []string{"first<>", "release<other>"}
			last := r.events[len(r.events)-1]
			if last.Status != Planned || last.Phase != "verify" || last.Message != "push and pull" || checked {
				t.Errorf("dry run: the check ran (%v) or was not planned: %+v", checked, last)
			}
			deferred := r.events[len(r.events)-2]
			if what, ok := Deferred(deferred.Message); !ok || what != "do release" || deferred.Message != "after other: do release" {
				t.Errorf("deferred plan %q", deferred.Message)
			}
		} else if !checked {
			t.Error("real run: the check did not run after the changes")
		}
		if !slices.Equal(seen, want) {
			t.Errorf("dry %v: pending seen %q, want %q", dry, seen, want)
		}
	}
}

// TestPanicInAChangeIsItsError checks that a change that panics fails its
// step with the panic in the error, and the run goes no further.
func TestPanicInAChangeIsItsError(t *testing.T) {
	r := &recorder{}
	steps := []Step{
		fixed("one", []Change{{Host: "a", Description: "x", Apply: func(context.Context) error { panic("nil map") }}}, nil),
		fixed("two", []Change{r.change("b", "1", nil)}, nil),
	}
	err := Do(context.Background(), steps, Options{Report: r.report})
	var e *Error
	if !errors.As(err, &e) || e.Host != "a" || !strings.Contains(err.Error(), "panic: nil map") {
		t.Fatalf("err = %v", err)
	}
	if Cause(err) == err || !strings.HasPrefix(Cause(err).Error(), "panic: nil map") {
		t.Errorf("Cause(err) = %v", Cause(err))
	}
	if len(r.applied) != 0 {
		t.Errorf("applied %v after a panic", r.applied)
	}
}

// TestFailedCheckAndPlanAndDone checks the outcome of a step that has
// nothing to do with Done set, of a check that fails (a failed event, the
// run stops, Cause gives the check's error) and of a plan that fails.
func TestFailedCheckAndPlanAndDone(t *testing.T) {
	r := &recorder{}
	bad := errors.New("pull failed")
	steps := []Step{
		{Phase: "charts", Done: "loaded", Plan: func(context.Context, *State) ([]Change, error) { return nil, nil }},
		{Phase: "verify", Check: func(context.Context, *State) error { return bad }},
		fixed("never", []Change{r.change("a", "1", nil)}, nil),
	}
	err := Do(context.Background(), steps, Options{Report: r.report})
	if Cause(err) != bad || err.Error() != "verify: pull failed" {
		t.Fatalf("err = %v, cause %v", err, Cause(err))
	}
	if len(r.events) != 2 || r.events[0].Message != "loaded" || r.events[1].Status != Failed || r.events[1].Phase != "verify" || len(r.applied) != 0 {
		t.Errorf("events %+v, applied %v", r.events, r.applied)
	}
	err = Do(context.Background(), []Step{{Phase: "addons", Host: "ns/app", Plan: func(context.Context, *State) ([]Change, error) { return nil, bad }}}, Options{})
	if Cause(err) != bad || err.Error() != "addons ns/app: pull failed" {
		t.Errorf("plan error = %v", err)
	}
}

// TestPendingOfPhases checks that Pending with phases names only steps of
// those phases, the latest first.
func TestPendingOfPhases(t *testing.T) {
	var got []string
	steps := []Step{
		fixed("snapshot", []Change{{Host: "a", Description: "x"}}, nil),
		fixed("control plane", []Change{{Host: "a", Description: "x"}}, nil),
		fixed("helm cli", []Change{{Host: "a", Description: "x"}}, nil),
		{Phase: "addons", Plan: func(_ context.Context, s *State) ([]Change, error) {
			got = append(got, s.Pending("control plane", "kubeconfig"), s.Pending("kubeconfig"), s.Pending())
			return nil, nil
		}},
	}
	if err := Do(context.Background(), steps, Options{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"control plane", "", "helm cli"}; !slices.Equal(got, want) {
		t.Errorf("Pending = %q, want %q", got, want)
	}
}

// Parallel starts calls in index order, at most limit at a time: with one
// slot the calls run in order, and a call that waits for an earlier one
// never deadlocks, whatever the limit.
func TestParallelStartsInOrder(t *testing.T) {
	for range 20 {
		var mu sync.Mutex
		var order []int
		Parallel(8, 1, func(i int) error {
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			return nil
		})
		if !slices.Equal(order, []int{0, 1, 2, 3, 4, 5, 6, 7}) {
			t.Fatalf("limit 1: calls ran in the order %v", order)
		}
	}
	for _, limit := range []int{1, 2, 3} {
		done := make([]chan struct{}, 6)
		for i := range done {
			done[i] = make(chan struct{})
		}
		finished := make(chan struct{})
		go func() {
			Parallel(6, limit, func(i int) error {
				defer close(done[i])
				if i > 0 {
					<-done[i-1]
				}
				return nil
			})
			close(finished)
		}()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Fatalf("limit %d: calls waiting for earlier ones deadlocked", limit)
		}
	}
}
