package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
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

// fixed is a phase with a fixed plan.
type fixed struct {
	name    string
	changes []Change
	err     error
}

func (f fixed) Name() string { return f.name }
func (f fixed) Plan(context.Context, *Cluster) ([]Change, error) {
	return f.changes, f.err
}

func TestDryRunAppliesNothingAndReportsThePlan(t *testing.T) {
	r := &recorder{}
	c := &Cluster{Parallel: 2, Report: r.report}
	phases := []Phase{
		fixed{name: "one", changes: []Change{r.change("a", "write x", nil), r.change("b", "write y", nil)}},
		fixed{name: "two"},
	}
	if err := Run(context.Background(), c, phases, true); err != nil {
		t.Fatal(err)
	}
	if len(r.applied) != 0 {
		t.Errorf("dry run applied %v", r.applied)
	}
	want := []Event{
		{Phase: "one", Host: "a", Status: StatusPlanned, Message: "write x"},
		{Phase: "one", Host: "b", Status: StatusPlanned, Message: "write y"},
		{Phase: "two", Status: StatusOK, Message: "nothing to do"},
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
	c := &Cluster{Parallel: 3, Report: r.report}
	boom := errors.New("disk full")
	phases := []Phase{
		fixed{name: "one", changes: []Change{
			r.change("a", "1", nil), r.change("b", "1", boom), r.change("a", "2", nil),
			r.change("b", "2", nil), r.change("c", "1", boom),
		}},
		fixed{name: "never", changes: []Change{r.change("a", "3", nil)}},
	}
	err := Run(context.Background(), c, phases, false)
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
		if e.Host == "a" && e.Status == StatusChanged {
			aOrder = append(aOrder, e.Message)
		}
	}
	if !slices.Equal(aOrder, []string{"1", "2"}) {
		t.Errorf("host a applied in order %v", aOrder)
	}
}

func TestRunStopsBeforeChangingWhenAPlanFails(t *testing.T) {
	r := &recorder{}
	c := &Cluster{Parallel: 1, Report: r.report}
	bad := errors.New("cannot inspect")
	err := Run(context.Background(), c, []Phase{
		fixed{name: "one", err: bad},
		fixed{name: "two", changes: []Change{r.change("a", "1", nil)}},
	}, false)
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
	c := &Cluster{Parallel: 3}
	if err := apply(context.Background(), c, "p", changes); err != nil {
		t.Fatal(err)
	}
	if peak > 3 || peak < 1 {
		t.Errorf("peak concurrency %d, want 1..3", peak)
	}
}
