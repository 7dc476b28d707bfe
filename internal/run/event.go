// Package run carries out boot's plans and tells the operator about them.
//
// A run is an ordered list of steps: the cluster's phases, the add-ons'
// releases, the DNS record, the checks. Each step first plans: it looks at
// what is there (read-only) and returns the changes it would make. An empty
// plan means the step has nothing to do. The runner then applies the
// changes, or, in a dry run, reports them as planned and applies nothing.
// Steps never change anything while planning: every change is a Change
// applied by the runner and nowhere else.
//
// In a real run each step plans once the steps before it have been applied,
// so it plans against what is really there. In a dry run nothing is applied,
// so a step whose plan depends on an earlier step's pending changes (a
// release on a cluster not yet made) cannot know its plan: it says so, with
// a description made by After, instead of guessing.
//
// Everything boot reports is an Event: the runner's, a step's notes while
// it plans or applies, a check's results. cmd renders events as text or
// JSON lines and nothing else.
package run

import "time"

// Status says what an event reports.
type Status string

// Statuses, in the words the operator reads.
const (
	OK      Status = "ok"      // done, or nothing to do
	Planned Status = "planned" // a dry run's change, not applied
	Changed Status = "changed" // a change applied
	Warning Status = "warning" // done, with something the operator should know
	Failed  Status = "failed"  // not done; the run stops
)

// Event is one thing that happened during a run.
type Event struct {
	// Phase names the step: "control plane", "addons", "dns", "verify".
	Phase string
	// Host is what the event is about within the step: a host's inventory
	// name, a release "namespace/name", a DNS name, a check's name; empty
	// for the whole step.
	Host     string
	Status   Status
	Message  string // never a secret
	Duration time.Duration
}

// Reporter receives events; it may be called from several goroutines at
// once. A nil Reporter drops them.
type Reporter func(Event)

// Report passes e on.
func (r Reporter) Report(e Event) {
	if r != nil {
		r(e)
	}
}
