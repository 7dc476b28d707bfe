//go:build lab

package cmd

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bootctl/boot/internal/run"
)

// dryRun runs boot with args, --dry-run and JSON output, fails the test
// unless it exits 0 and changed nothing, and returns its events.
func dryRun(t *testing.T, title string, args ...string) []event {
	t.Helper()
	code, stdout, stderr := runBoot(t, append(args, "--dry-run", "-o", "json")...)
	evs := parseEvents(t, stdout)
	if code != ExitOK {
		t.Fatalf("%s: exit %d\n%s%s", title, code, stdout, stderr)
	}
	if ch := changedEvents(evs); len(ch) > 0 {
		t.Fatalf("%s changed something: %+v", title, ch)
	}
	t.Logf("%s: %d change(s) planned", title, len(planned(evs)))
	return evs
}

// planned returns a dry run's planned changes (a check, phase verify, is
// not a change).
func planned(evs []event) []event {
	var out []event
	for _, e := range evs {
		if e.Status == string(run.Planned) && e.Phase != "verify" {
			out = append(out, e)
		}
	}
	return out
}

// checkPlan compares what a dry run planned with what the real run then
// changed: every change made was planned (a deferred plan, "after <step>:
// ...", matches by phase and host: it could not know more), and every
// change planned without deferral was made, in the same words.
func checkPlan(t *testing.T, title string, dry, real []event) {
	t.Helper()
	plan := planned(dry)
	used := make([]bool, len(plan))
	var problems []string
	for _, r := range real {
		if r.Status != string(run.Changed) {
			continue
		}
		i := slices.IndexFunc(plan, func(p event) bool {
			_, deferred := run.Deferred(p.Message)
			return p.Phase == r.Phase && p.Host == r.Host && (deferred || p.Message == r.Message)
		})
		for i >= 0 && used[i] { // the same change planned twice
			next := slices.IndexFunc(plan[i+1:], func(p event) bool { return p == plan[i] })
			if next < 0 {
				i = -1
				break
			}
			i += 1 + next
		}
		if i < 0 {
			problems = append(problems, fmt.Sprintf("made but not planned: %s [%s] %s", r.Phase, r.Host, r.Message))
			continue
		}
		used[i] = true
	}
	deferred := 0
	for i, p := range plan {
		if _, d := run.Deferred(p.Message); d {
			deferred++
		} else if !used[i] {
			problems = append(problems, fmt.Sprintf("planned but not made: %s [%s] %s", p.Phase, p.Host, p.Message))
		}
	}
	t.Logf("%s: %d change(s) planned (%d of them after an earlier step), %d made", title, len(plan), deferred, len(changedEvents(real)))
	if len(problems) > 0 {
		t.Errorf("%s: the dry run's plan is not what the run did:\n  %s", title, strings.Join(problems, "\n  "))
	}
}
