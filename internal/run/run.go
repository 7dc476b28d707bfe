package run

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Change is one planned modification.
type Change struct {
	// Host is what the change modifies: a host's inventory name, a release
	// "namespace/name", a DNS name (the Host of its events).
	Host string
	// Description says what will change, in a few words; never a secret.
	Description string
	Apply       func(ctx context.Context) error
}

// Step is one entry of a run's list: it plans changes, or, with Check
// instead of Plan, checks what the steps before it did.
type Step struct {
	// Phase names the step in its events.
	Phase string
	// Host, when set, is what the whole step is about (a release): the
	// Host of the step's own events.
	Host string
	// Plan looks without changing anything and returns the changes the step
	// would make. An error stops the run.
	Plan func(ctx context.Context, s *State) ([]Change, error)
	// Done, when set, is the message of a planned step with nothing to do,
	// instead of "nothing to do" (a step that only prepares, like loading
	// charts).
	Done string
	// Check, for a step with no Plan, runs in a real run once the steps
	// before it are applied, reporting its findings as events; an error
	// stops the run. A dry run reports the check as planned, with
	// Description, and does not run it.
	Check       func(ctx context.Context, s *State) error
	Description string
}

// Options tune a run.
type Options struct {
	// DryRun plans every step and applies nothing.
	DryRun bool
	// Parallel bounds the hosts a step's changes are applied to at once
	// (all at once when < 1).
	Parallel int
	// Report hears of every step's outcome and every change.
	Report Reporter
}

// State is what a step sees of the run while it plans, applies or checks.
type State struct {
	opts    Options
	pending []Step          // a dry run's steps that planned changes, in order
	planned map[string]bool // phase + "\x00" + host of a dry run's planned changes
	phase   string          // of the step at hand
}

// DryRun says whether the run applies nothing.
func (s *State) DryRun() bool { return s.opts.DryRun }

// Pending names the latest earlier step of a dry run that planned changes
// (which a dry run does not apply) and is of one of the phases given, or,
// without any, of another phase than the step at hand; "" when there is
// none, as always in a real run. A step whose plan depends on what those
// phases do uses it to defer its plan with After (the add-ons wait for the
// control plane, the joins and the kubeconfig). The steps of one phase (the
// add-ons' releases) are made to plan independently of each other's
// pending changes.
func (s *State) Pending(phases ...string) string {
	for _, st := range slices.Backward(s.pending) {
		if len(phases) == 0 && st.Phase != s.phase || slices.Contains(phases, st.Phase) {
			return st.name()
		}
	}
	return ""
}

// Planned says whether an earlier step of this dry run, of the phase given,
// planned a change of host (which a dry run does not apply); always false
// in a real run. A step whose plan for a host depends on what that phase
// does there uses it to defer that host's plan with After.
func (s *State) Planned(phase, host string) bool { return s.planned[phase+"\x00"+host] }

// Report passes e on to the run's reporter.
func (s *State) Report(e Event) { s.opts.Report.Report(e) }

// afterPrefix starts a deferred plan's description.
const afterPrefix = "after "

// After describes a change a step will make once the earlier step pending
// has been applied: "after control plane: install cert-manager v1.21.1".
func After(pending, description string) string {
	return afterPrefix + pending + ": " + description
}

// Deferred returns the description of a change made by After without its
// prefix, and whether it was deferred.
func Deferred(description string) (string, bool) {
	rest, ok := strings.CutPrefix(description, afterPrefix)
	if !ok {
		return description, false
	}
	_, what, ok := strings.Cut(rest, ": ")
	if !ok {
		return description, false
	}
	return what, true
}

// Do runs the steps in order: each plans and its changes are applied (or,
// in a dry run, reported as planned) before the next one plans. It stops at
// the first step that fails; a step that fails on several hosts reports
// every host's error.
func Do(ctx context.Context, steps []Step, o Options) error {
	s := &State{opts: o, planned: map[string]bool{}}
	for _, st := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.do(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

func (s *State) do(ctx context.Context, st Step) error {
	s.phase = st.Phase
	start := time.Now()
	report := func(status Status, msg string) {
		s.Report(Event{Phase: st.Phase, Host: st.Host, Status: status, Message: msg, Duration: time.Since(start)})
	}
	if st.Plan == nil {
		if s.DryRun() {
			s.Report(Event{Phase: st.Phase, Host: st.Host, Status: Planned, Message: st.Description})
			return nil
		}
		if err := st.Check(ctx, s); err != nil {
			report(Failed, err.Error())
			return &Error{Phase: st.Phase, Host: st.Host, Err: err}
		}
		return nil
	}
	changes, err := st.Plan(ctx, s)
	if err != nil {
		report(Failed, err.Error())
		return &Error{Phase: st.Phase, Host: st.Host, Err: err}
	}
	if len(changes) == 0 {
		report(OK, cmp.Or(st.Done, "nothing to do"))
		return nil
	}
	if s.DryRun() {
		for _, ch := range changes {
			s.Report(Event{Phase: st.Phase, Host: ch.Host, Status: Planned, Message: ch.Description})
			s.planned[st.Phase+"\x00"+ch.Host] = true
		}
		s.pending = append(s.pending, st)
		return nil
	}
	if err := s.apply(ctx, st.Phase, changes); err != nil {
		return err
	}
	report(OK, fmt.Sprintf("%d change(s) applied", len(changes)))
	return nil
}

func (st Step) name() string {
	if st.Host != "" {
		return st.Phase + " " + st.Host
	}
	return st.Phase
}

// apply applies a step's changes: one host's changes in order, hosts in
// parallel. Every host's failure is reported.
func (s *State) apply(ctx context.Context, phase string, changes []Change) error {
	var order []string
	byHost := map[string][]Change{}
	for _, ch := range changes {
		if _, ok := byHost[ch.Host]; !ok {
			order = append(order, ch.Host)
		}
		byHost[ch.Host] = append(byHost[ch.Host], ch)
	}
	errs := Parallel(len(order), s.opts.Parallel, func(i int) error {
		host := order[i]
		for _, ch := range byHost[host] {
			start := time.Now()
			err := ctx.Err()
			if err == nil {
				err = Protect(func() error { return ch.Apply(ctx) })
			}
			if err != nil {
				s.Report(Event{Phase: phase, Host: host, Status: Failed, Message: ch.Description + ": " + err.Error(), Duration: time.Since(start)})
				return &Error{Phase: phase, Host: host, Description: ch.Description, Err: err}
			}
			s.Report(Event{Phase: phase, Host: host, Status: Changed, Message: ch.Description, Duration: time.Since(start)})
		}
		return nil
	})
	return errors.Join(errs...)
}

// Error is a step's failure: its plan's or check's (no Description), or one
// change's.
type Error struct {
	Phase, Host, Description string
	Err                      error
}

func (e *Error) Error() string {
	switch {
	case e.Description != "":
		return fmt.Sprintf("%s on %s: %s: %v", e.Phase, e.Host, e.Description, e.Err)
	case e.Host != "":
		return fmt.Sprintf("%s %s: %v", e.Phase, e.Host, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Phase, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Cause returns the error of the first failure in err (a step's or a
// change's), without the run's words around it; err itself when it holds no
// Error.
func Cause(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e.Err
	}
	return err
}
