package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/scripts"
)

// TeardownOptions tune the phases of `boot teardown`.
type TeardownOptions struct {
	// Purge, with packages from online, also purges the packages and
	// their apt repositories.
	Purge bool
	// MergedInto is the kubeconfig `boot up --merge` merged the cluster
	// into; its entries named after the cluster are removed.
	MergedInto string
}

// TeardownPhases lists, in order, the phases of `boot teardown`.
func TeardownPhases(o TeardownOptions) []Phase {
	return []Phase{Drain{}, Reset{Purge: o.Purge}, ForgetKubeconfig{MergedInto: o.MergedInto}}
}

// Drain drains every worker that is a node and deletes its Node object,
// through kubectl on the control plane.
type Drain struct{}

// Name implements Phase.
func (Drain) Name() string { return "drain" }

// Plan implements Phase.
func (Drain) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	cp := c.controlPlane()
	up, err := exists(ctx, cp, adminConf)
	if err != nil || !up {
		return nil, err
	}
	states, err := nodeStates(ctx, cp)
	if err != nil {
		// An admin.conf without an API server (a half-initialised control
		// plane): there is nothing to drain; Reset cleans up.
		c.Log.Warn("cannot list nodes; skipping the drain", "error", err)
		return nil, nil
	}
	var changes []Change
	for _, w := range c.workers() {
		name := w.Spec.Name
		if _, ok := states[name]; !ok {
			continue
		}
		changes = append(changes, Change{
			Host:        cp.Spec.Name,
			Description: "drain and delete node " + name,
			Apply:       func(ctx context.Context) error { return drainNode(ctx, cp, name) },
		})
	}
	return changes, nil
}

// drainNode drains the node name (evictions respect PodDisruptionBudgets;
// kubectl's error names what blocks them when its timeout ends) and deletes
// its Node object, through kubectl on the control plane cp.
func drainNode(ctx context.Context, cp *Host, name string) error {
	if err := kubectl(ctx, cp, nil, "drain", name, "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=120s"); err != nil {
		return fmt.Errorf("drain %s: %w", name, err)
	}
	return kubectl(ctx, cp, nil, "delete", "node", name, "--ignore-not-found")
}

// Reset undoes on every host what boot and the cluster did (see
// scripts.Teardown), workers first: kubeadm reset, the runtime's and the
// cluster's state, interfaces, iptables rules, and in bundle mode the files
// the bundle installed.
type Reset struct {
	Purge bool
}

// Name implements Phase.
func (Reset) Name() string { return "reset" }

// Plan implements Phase.
func (r Reset) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	text, err := c.teardownScript(r.Purge)
	if err != nil {
		return nil, err
	}
	changes, err := scriptChanges(ctx, c, c.Hosts, func(*Host) (script, error) { return script{"teardown.sh", text}, nil })
	// What a reset removes depends on the pods a host runs then: a drained
	// worker has fewer, and the pods drain evicts may start on the control
	// plane (the lab showed both). When a dry run drains (from the control
	// plane), every host's reset comes after it.
	if c.run != nil && c.run.Planned(Drain{}.Name(), c.controlPlane().Spec.Name) {
		for i, ch := range changes {
			changes[i].Description = run.After(Drain{}.Name(), ch.Description)
		}
	}
	return changes, err
}

// teardownScript renders the teardown script for the cluster's hosts: in
// bundle mode it also removes the files the bundle installed.
func (c *Cluster) teardownScript(purge bool) (string, error) {
	var installed []string
	if c.bundleMode() {
		b, err := c.bundle()
		if err != nil {
			return "", err
		}
		// kubeadm, kubelet and kubectl have the same names in every
		// version's folder.
		for _, f := range stagedFiles(b, inventory.RoleControlPlane, "bin") {
			switch dir, name := path.Split(f.Path); dir {
			case "bin/":
				installed = append(installed, "/usr/local/bin/"+name)
			case "cni/bin/":
				installed = append(installed, "/opt/cni/bin/"+name)
			case "systemd/":
				if strings.HasSuffix(name, ".service") || strings.HasSuffix(name, ".socket") {
					installed = append(installed, "/etc/systemd/system/"+name)
				}
			}
		}
	}
	return scripts.Teardown(scripts.TeardownParams{Source: c.Inventory.Packages.Source, Installed: installed, Purge: purge})
}

// ForgetKubeconfig removes, on the operator's machine, the admin kubeconfig
// `boot up` wrote and the entries it merged.
type ForgetKubeconfig struct {
	MergedInto string
}

// Name implements Phase.
func (ForgetKubeconfig) Name() string { return "kubeconfig" }

// Plan implements Phase.
func (f ForgetKubeconfig) Plan(_ context.Context, c *Cluster) ([]Change, error) {
	var changes []Change
	file := c.Inventory.Cluster.Kubeconfig
	if _, err := os.Stat(file); err == nil {
		changes = append(changes, Change{Host: operator, Description: "remove " + file,
			Apply: func(context.Context) error { return os.Remove(file) }})
	}
	into := f.MergedInto
	if into == "" {
		into = clientcmd.RecommendedHomeFile
	}
	cfg, err := clientcmd.LoadFromFile(into)
	if errors.Is(err, os.ErrNotExist) {
		return changes, nil
	}
	if err != nil {
		return nil, err
	}
	name := c.Inventory.Metadata.Name
	if _, ok := cfg.Contexts[name]; !ok {
		return changes, nil
	}
	delete(cfg.Contexts, name)
	delete(cfg.Clusters, name)
	delete(cfg.AuthInfos, name+"-admin")
	if cfg.CurrentContext == name {
		cfg.CurrentContext = ""
	}
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, err
	}
	return append(changes, Change{Host: operator, Description: fmt.Sprintf("remove context %q from %s", name, into),
		Apply: func(context.Context) error { return writeKubeconfig(into, b) }}), nil
}

// Verify compares each host with the snapshot `boot up` took before its
// first change and returns the differences by host (none: the host is as
// it was). A host without a snapshot is an error.
func Verify(ctx context.Context, c *Cluster) (map[string][]string, error) {
	diffs := map[string][]string{}
	results := make([][]string, len(c.Hosts))
	err := forHosts(ctx, c, c.Hosts, func(ctx context.Context, h *Host) error {
		before, err := os.ReadFile(snapshotPath(c.Inventory, h.Spec.Name))
		if err != nil {
			return fmt.Errorf("no snapshot from before boot up: %w", err)
		}
		after, err := takeSnapshot(ctx, h)
		if err != nil {
			return err
		}
		results[indexOf(c.Hosts, h)] = snapshotDiff(string(before), after)
		return nil
	})
	for i, h := range c.Hosts {
		if len(results[i]) > 0 {
			diffs[h.Spec.Name] = results[i]
		}
	}
	return diffs, err
}

// ForgetSnapshots removes the hosts' snapshots, so that the next `boot up`
// records the hosts afresh.
func ForgetSnapshots(c *Cluster) error {
	var errs []error
	for _, h := range c.Hosts {
		if err := os.Remove(snapshotPath(c.Inventory, h.Spec.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
