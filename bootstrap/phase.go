// Package bootstrap holds the phases that turn hosts into a cluster and back.
//
// Each phase first plans: it inspects the hosts (read-only) and returns the
// changes it would make, host by host. An empty plan means the phase has
// nothing to do, so a re-run on a converged cluster changes nothing. Phases
// never change a host while planning: every change is a Change, applied by
// the runner of package run and nowhere else. Steps turns phases into steps
// of a run, beside the add-ons' steps; in a real run each phase plans once
// the phases before it have been applied. A dry run applies nothing, so a
// phase whose plan depends on what an earlier phase would do on these hosts
// (the kubeconfig of a control plane not yet initialised) says so in its
// change's description.
package bootstrap

import (
	"context"
	"log/slog"

	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
)

// Host is one inventory host as the phases work on it: what the inventory
// says of it, its open SSH connection and the facts gathered over that
// connection. (Not a Kubernetes Node: a host becomes one once it has
// joined.)
type Host struct {
	Spec  inventory.Host // the host's entry in the inventory
	Conn  *nodes.Host    // its SSH connection
	Facts *nodes.Facts   // OS, architecture, hostname... as found on it
}

// Cluster is what phases work on.
type Cluster struct {
	Inventory *inventory.Inventory
	// Hosts holds every inventory host, connected and with its facts, in
	// the inventory's order.
	Hosts    []*Host
	Parallel int // hosts worked on at once
	Log      *slog.Logger
	Report   run.Reporter

	bundleOnce bundleOnce
	staged     stagedHosts
	run        *run.State // of the run whose phase is planning
}

func (c *Cluster) report(e run.Event) { c.Report.Report(e) }

// Change is one planned modification of one host (Host is its inventory
// name).
type Change = run.Change

// Phase is one step of a run.
type Phase interface {
	Name() string
	// Plan inspects the cluster without changing it and returns the changes
	// the phase would make. An error stops the run before anything changes.
	Plan(ctx context.Context, c *Cluster) ([]Change, error)
}

// Steps turns phases into steps of a run (see package run) on c: each step
// plans its phase against c.
func Steps(c *Cluster, phases []Phase) []run.Step {
	steps := make([]run.Step, len(phases))
	for i, p := range phases {
		steps[i] = run.Step{Phase: p.Name(), Plan: func(ctx context.Context, s *run.State) ([]run.Change, error) {
			c.run = s
			return p.Plan(ctx, c)
		}}
	}
	return steps
}
