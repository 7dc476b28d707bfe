package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bootctl/boot/nodes"
)

// forHosts runs fn on the given hosts in parallel (bounded by c.Parallel)
// and returns every host's error, each naming the host.
func forHosts(ctx context.Context, c *Cluster, hs []*Host, fn func(context.Context, *Host) error) error {
	hosts := make([]*nodes.Host, len(hs))
	byHost := make(map[*nodes.Host]*Host, len(hs))
	for i, h := range hs {
		hosts[i] = h.Conn
		byHost[h.Conn] = h
	}
	results := nodes.ForEach(ctx, hosts, c.Parallel, func(ctx context.Context, h *nodes.Host) error {
		return fn(ctx, byHost[h])
	})
	var errs []error
	for i, r := range results {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", hs[i].Spec.Name, r.Err))
		}
	}
	return errors.Join(errs...)
}

// controlPlane returns the cluster's control plane host.
func (c *Cluster) controlPlane() *Host {
	name := c.Inventory.ControlPlane().Name
	for _, h := range c.Hosts {
		if h.Spec.Name == name {
			return h
		}
	}
	return nil
}

// workers returns the cluster's worker hosts.
func (c *Cluster) workers() []*Host {
	cp := c.controlPlane()
	var ws []*Host
	for _, h := range c.Hosts {
		if h != cp {
			ws = append(ws, h)
		}
	}
	return ws
}

// script is a rendered host script (see package scripts): run with
// `check` it only reports what it would change.
type script struct {
	name string // e.g. "host-prep.sh", for errors and logs
	text string
}

// check runs the script in check mode and returns its "would: ..." lines:
// empty when the host already is as the script wants it. A probe: its
// output is not streamed.
func (s script) check(ctx context.Context, h *Host) ([]string, error) {
	out, err := h.Conn.Sudo(ctx, "bash -s check", nodes.Stdin(strings.NewReader(s.text)), nodes.Stream(nil), nodes.Label(s.name+" check"))
	if err != nil {
		return nil, scriptError(s.name+" check", out, err)
	}
	var would []string
	for _, l := range strings.Split(out.Stdout, "\n") {
		if w, ok := strings.CutPrefix(l, "would: "); ok {
			would = append(would, w)
		}
	}
	return would, nil
}

// apply runs the script for real; its output is streamed, prefixed by the
// host's name, when the cluster was connected with ConnectOptions.Output.
func (s script) apply(ctx context.Context, h *Host) error {
	out, err := h.Conn.Sudo(ctx, "bash -s", nodes.Stdin(strings.NewReader(s.text)), nodes.Label(s.name))
	if err != nil {
		return scriptError(s.name, out, err)
	}
	return nil
}

// scriptError adds a failed script's "error: ..." lines to its error.
func scriptError(what string, out nodes.Output, err error) error {
	var msgs []string
	for _, l := range strings.Split(out.Stderr, "\n") {
		if m, ok := strings.CutPrefix(l, "error: "); ok {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 0 {
		return err
	}
	return fmt.Errorf("%s: %s: %w", what, strings.Join(msgs, "; "), err)
}

// scriptChanges checks each host's script (rendered by render) and plans
// one change per host that is not yet as the script wants it. The change's
// description lists what the script said it would do.
func scriptChanges(ctx context.Context, c *Cluster, hs []*Host, render func(*Host) (script, error)) ([]Change, error) {
	changes := make([]*Change, len(hs))
	err := forHosts(ctx, c, hs, func(ctx context.Context, h *Host) error {
		s, err := render(h)
		if err != nil {
			return err
		}
		would, err := s.check(ctx, h)
		if err != nil || len(would) == 0 {
			return err
		}
		changes[indexOf(hs, h)] = &Change{
			Host:        h.Spec.Name,
			Description: describe(would),
			Apply:       func(ctx context.Context) error { return s.apply(ctx, h) },
		}
		return nil
	})
	return compact(changes), err
}

// describe joins a script's planned steps into one description, at most
// maxSteps of them.
func describe(steps []string) string {
	const maxSteps = 8
	if len(steps) <= maxSteps {
		return strings.Join(steps, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(steps[:maxSteps], "; "), len(steps)-maxSteps)
}

// poll calls try every 2 seconds until it reports done, ctx ends, or timeout
// has passed; then it returns failed(the last state try reported).
func poll(ctx context.Context, timeout time.Duration, try func() (done bool, state string), failed func(last string) error) error {
	deadline := time.Now().Add(timeout)
	for {
		done, last := try()
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return failed(last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}
