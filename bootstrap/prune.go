package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
)

// controlPlaneLabel marks a control-plane Node (kubeadm sets it).
const controlPlaneLabel = "node-role.kubernetes.io/control-plane"

// Prune finds the Nodes of the cluster that are no host of the inventory:
// workers that left it. Without Remove it only warns of each; with Remove
// it drains each (as teardown does), deletes its Node and resets its host
// with the teardown script, reached over SSH at the Node's InternalIP with
// the inventory's ssh settings (its host key must be known already). A
// host that cannot be reached is still drained and deleted, and named by
// NotReset. A control-plane Node missing from the inventory is an error:
// boot never removes a control plane.
type Prune struct {
	Remove bool

	mu       sync.Mutex
	conns    []*nodes.Host     // opened while planning; Close closes them
	reset    []*Host           // hosts reset, for PrunedCluster
	notReset []UnreachableHost // Nodes removed whose host was not reset
}

// Name implements Phase.
func (*Prune) Name() string { return "prune" }

// extraNode is a Node of the cluster that is no inventory host.
type extraNode struct {
	Name         string
	InternalIP   string
	ControlPlane bool
}

// extraNodes lists, sorted by name, the cluster's Nodes that are no host of
// the inventory, through kubectl on the control plane cp.
func extraNodes(ctx context.Context, inv *inventory.Inventory, cp *Host) ([]extraNode, error) {
	list, err := listNodes(ctx, cp)
	if err != nil {
		return nil, err
	}
	var extra []extraNode
	for _, it := range list.Items {
		name := it.Metadata.Name
		if slices.ContainsFunc(inv.Hosts, func(h inventory.Host) bool { return h.Name == name }) {
			continue
		}
		n := extraNode{Name: name} // a DNS subdomain: the API server checks it
		_, n.ControlPlane = it.Metadata.Labels[controlPlaneLabel]
		for _, a := range it.Status.Addresses {
			if a.Type == "InternalIP" && n.InternalIP == "" {
				n.InternalIP = nodes.EscapeHostText(a.Address)
			}
		}
		extra = append(extra, n)
	}
	slices.SortFunc(extra, func(a, b extraNode) int { return strings.Compare(a.Name, b.Name) })
	return extra, nil
}

// Plan implements Phase. It refuses a control-plane Node that is no
// inventory host before anything changes, and with Remove it connects to
// each host to reset now, so that a host key that is not known stops the
// run before any Node is drained.
func (p *Prune) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	cp := c.controlPlane()
	up, err := exists(ctx, cp, adminConf)
	if err != nil || !up {
		return nil, err
	}
	extra, err := extraNodes(ctx, c.Inventory, cp)
	if err != nil {
		return nil, err
	}
	for _, n := range extra {
		if n.ControlPlane {
			return nil, fmt.Errorf("node %s is a control plane of the cluster and no host of the inventory %s: boot never removes a control plane; put it back in the inventory", n.Name, c.Inventory.Path)
		}
	}
	var changes []Change
	for _, n := range extra {
		if !p.Remove {
			c.report(run.Event{Phase: p.Name(), Host: n.Name, Status: run.Warning,
				Message: "remove " + n.Name + ": left the inventory: not removed; run with --prune to drain, delete and reset it"})
			continue
		}
		ch, err := p.removal(ctx, c, cp, n)
		if err != nil {
			return nil, err
		}
		changes = append(changes, ch)
	}
	return changes, nil
}

// removal plans the removal of the Node n: it connects to its host at its
// InternalIP; an unreachable host is drained and deleted but not reset.
func (p *Prune) removal(ctx context.Context, c *Cluster, cp *Host, n extraNode) (Change, error) {
	drain := func(ctx context.Context) error { return drainNode(ctx, cp, n.Name) }
	if n.InternalIP == "" {
		return Change{}, fmt.Errorf("node %s (no host of the inventory) has no InternalIP: boot cannot reach its host to reset it; no Node was drained", n.Name)
	}
	spec := inventory.Host{Name: n.Name, Address: n.InternalIP, PrivateAddress: n.InternalIP, Role: inventory.RoleWorker}
	conn, dialErr := nodes.Dial(ctx, nodeConfig(c.Inventory.SSHFor(spec)), nodes.WithLogger(c.Log))
	if errors.Is(dialErr, nodes.ErrUnreachable) {
		return Change{
			Host:        n.Name,
			Description: fmt.Sprintf("remove %s: drain it and delete the Node (its host %s is unreachable: not reset)", n.Name, n.InternalIP),
			Apply: func(ctx context.Context) error {
				if err := drain(ctx); err != nil {
					return err
				}
				p.mu.Lock()
				defer p.mu.Unlock()
				p.notReset = append(p.notReset, UnreachableHost{Name: n.Name, Err: dialErr})
				return nil
			},
		}, nil
	}
	if dialErr != nil {
		return Change{}, fmt.Errorf("node %s (no host of the inventory), host %s: %w; no Node was drained", n.Name, n.InternalIP, dialErr)
	}
	p.mu.Lock()
	p.conns = append(p.conns, conn)
	p.mu.Unlock()
	h := &Host{Spec: spec, Conn: conn}
	return Change{
		Host:        n.Name,
		Description: fmt.Sprintf("remove %s: drain it, delete the Node and reset its host %s with the teardown script", n.Name, n.InternalIP),
		Apply: func(ctx context.Context) error {
			if err := drain(ctx); err != nil {
				return err
			}
			text, err := c.teardownScript(false)
			if err != nil {
				return err
			}
			if err := (script{"teardown.sh", text}).apply(ctx, h); err != nil {
				return fmt.Errorf("node %s drained and deleted, but its host %s was not reset: %w", n.Name, n.InternalIP, err)
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			p.reset = append(p.reset, h)
			return nil
		},
	}, nil
}

// NotReset lists the Nodes removed whose host could not be reached, and
// so was not reset.
func (p *Prune) NotReset() []UnreachableHost {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.notReset)
}

// PrunedCluster is the cluster of the hosts p reset, for Verify and
// ForgetSnapshots: their snapshots are c's (named after the Node).
func (p *Prune) PrunedCluster(c *Cluster) *Cluster {
	p.mu.Lock()
	defer p.mu.Unlock()
	return &Cluster{Inventory: c.Inventory, Hosts: slices.Clone(p.reset), Parallel: c.Parallel, Log: c.Log, Report: c.Report}
}

// Close closes the connections Plan opened.
func (p *Prune) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.conns {
		h.Close()
	}
	p.conns = nil
}
