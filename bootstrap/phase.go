// Package bootstrap holds the phases that turn hosts into a cluster and back.
//
// A run is an ordered list of phases. Each phase first plans: it inspects the
// hosts (read-only) and returns the changes it would make, host by host. An
// empty plan means the phase has nothing to do, so a re-run on a converged
// cluster changes nothing. The runner then applies the planned changes, unless
// the run is a dry run, in which case it only reports them. Phases never
// change a host while planning: every change is a Change value, applied by
// the runner and nowhere else, so the dry-run plan is by construction exactly
// what a real run would do.
package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
)

// Event statuses.
const (
	StatusOK      = "ok"
	StatusPlanned = "planned"
	StatusChanged = "changed"
	StatusWarning = "warning"
	StatusFailed  = "failed"
)

// Event is one thing that happened during a run, for the operator's output.
type Event struct {
	Phase    string
	Host     string // empty for the whole cluster
	Status   string
	Message  string
	Duration time.Duration
}

// Node is one inventory host with its connection and facts.
type Node struct {
	Spec  inventory.Host
	Conn  *nodes.Host
	Facts *nodes.Facts
}

// Cluster is what phases work on.
type Cluster struct {
	Inventory *inventory.Inventory
	Nodes     []*Node
	Parallel  int // hosts worked on at once
	Log       *slog.Logger
	Report    func(Event)

	bundleOnce bundleOnce
	staged     stagedNodes
}

func (c *Cluster) report(e Event) {
	if c.Report != nil {
		c.Report(e)
	}
}

// Change is one planned modification of one host.
type Change struct {
	Host        string // inventory host name
	Description string // what will change, in a few words; never a secret
	Apply       func(ctx context.Context) error
}

// Phase is one step of a run.
type Phase interface {
	Name() string
	// Plan inspects the cluster without changing it and returns the changes
	// the phase would make. An error stops the run before anything changes.
	Plan(ctx context.Context, c *Cluster) ([]Change, error)
}

// Run plans and (unless dryRun) applies the phases in order. It stops at the
// first phase that fails; a failed phase reports every host's error.
func Run(ctx context.Context, c *Cluster, phases []Phase, dryRun bool) error {
	for _, p := range phases {
		start := time.Now()
		changes, err := p.Plan(ctx, c)
		if err != nil {
			c.report(Event{Phase: p.Name(), Status: StatusFailed, Message: err.Error(), Duration: time.Since(start)})
			return fmt.Errorf("%s: %w", p.Name(), err)
		}
		if len(changes) == 0 {
			c.report(Event{Phase: p.Name(), Status: StatusOK, Message: "nothing to do", Duration: time.Since(start)})
			continue
		}
		if dryRun {
			for _, ch := range changes {
				c.report(Event{Phase: p.Name(), Host: ch.Host, Status: StatusPlanned, Message: ch.Description})
			}
			continue
		}
		if err := apply(ctx, c, p.Name(), changes); err != nil {
			return err
		}
		c.report(Event{Phase: p.Name(), Status: StatusOK, Message: fmt.Sprintf("%d change(s) applied", len(changes)), Duration: time.Since(start)})
	}
	return nil
}

// apply runs a phase's changes: one host's changes in order, hosts in
// parallel (bounded by c.Parallel). Every host's failure is reported.
func apply(ctx context.Context, c *Cluster, phase string, changes []Change) error {
	var order []string
	byHost := map[string][]Change{}
	for _, ch := range changes {
		if _, ok := byHost[ch.Host]; !ok {
			order = append(order, ch.Host)
		}
		byHost[ch.Host] = append(byHost[ch.Host], ch)
	}
	sem := make(chan struct{}, max(c.Parallel, 1))
	errs := make([]error, len(order))
	var wg sync.WaitGroup
	for i, host := range order {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			for _, ch := range byHost[host] {
				start := time.Now()
				if err := ch.Apply(ctx); err != nil {
					c.report(Event{Phase: phase, Host: host, Status: StatusFailed, Message: ch.Description + ": " + err.Error(), Duration: time.Since(start)})
					errs[i] = fmt.Errorf("%s on %s: %s: %w", phase, host, ch.Description, err)
					return
				}
				c.report(Event{Phase: phase, Host: host, Status: StatusChanged, Message: ch.Description, Duration: time.Since(start)})
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
