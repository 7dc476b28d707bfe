package cmd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
)

func newUpCmd(g *globals) *cobra.Command {
	var o bootstrap.UpOptions
	var af addonsFlags
	var clusterOnly bool
	var pf pruneFlags
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring the cluster and the registry up, converging from whatever state the hosts are in",
		Long: `up reads the inventory, connects to every host over SSH (in parallel,
verifying host keys), gathers facts, runs preflight checks, and then runs the
phases that turn the hosts into the cluster described by the inventory:
a snapshot of each host (for teardown --verify), the bundle staged (bundle
mode), host preparation, containerd, kubeadm/kubelet/kubectl, kubeadm init
once, the workers joined, flannel, a wait until every node is Ready, helm on
the control plane and the admin kubeconfig (cluster.kubeconfig, 0600; --merge
also merges it into ~/.kube/config). Then, unless --cluster-only, it does what
boot addons does. Every phase checks before it changes: a re-run on a
converged cluster changes nothing.

Everything is one ordered list of steps (the phases, then the add-ons' steps,
the DNS record and the closing verify); each step looks before it changes and
plans once the steps before it have been applied. With --dry-run boot prints
that plan and changes nothing: what each phase would change on each host, and
what each release, Secret and the DNS record would get. A step that depends on
an earlier step's pending changes (the add-ons on a cluster not made yet) says
"after <step>: ..." instead of guessing. Nothing is changed on any host before
the inventory is valid and every preflight check has passed.

A Node of the cluster that is no host of the inventory (a worker removed
from it) is listed as "remove <node>" with a warning, and left alone. With
--prune boot drains it (evictions respect PodDisruptionBudgets, as in
teardown), deletes the Node and resets its host with the teardown script,
reaching it at the Node's InternalIP with the inventory's ssh settings (its
host key must be known already). A host that cannot be reached is still
drained and deleted; boot names it as not reset and exits 3. With --verify
each host reset is then compared with its snapshot from before boot up, as
teardown --verify does. A control-plane Node missing from the inventory is an
error: boot never removes a control plane.

Upgrading Kubernetes is converging too: raise cluster.kubernetesVersion by
a patch or one minor (with a bundle, one that carries that version: boot
bundle build --kubernetes OLD,NEW carries both) and run boot up. Preflight
refuses a downgrade or a skipped minor (exit 4). Before anything changes,
boot backs up etcd, the PKI and kubeadm's configuration into the cluster's
state folder (as boot backup does); then kubeadm upgrade apply on the
control plane, the control plane's kubelet and kubectl with its Node
drained, then the workers --max-unavailable at a time (default 1): kubeadm
upgrade node, the Node cordoned and drained (evictions respect
PodDisruptionBudgets; a drain that does not finish within --drain-timeout
names the pods still on it), kubelet at the new version, the Node Ready at
it, uncordoned. Each step is planned from what the cluster runs, so a run
stopped anywhere continues from there when run again, and --dry-run shows
what is left, host by host.`,
		Example: `  # what would change, host by host, as text
  boot up -i inventory.yaml --dry-run

  # the same as JSON lines, for a pipeline
  boot up -i inventory.yaml --dry-run -o json | jq -c 'select(.status=="planned")'

  # the real run, 4 hosts at a time, with a debug log on the side
  boot up -i inventory.yaml --parallel 4 --log-file boot.log

  # only the cluster, merged into ~/.kube/config
  boot up -i inventory.yaml --cluster-only --merge

  # follow what the hosts' commands print, each line prefixed by its host
  boot up -i inventory.yaml --verbose

  # after raising cluster.kubernetesVersion from v1.36.3 to v1.37.2: the
  # upgrade, host by host, then done two workers at a time
  boot up -i inventory.yaml --dry-run
  boot up -i inventory.yaml --max-unavailable 2

  # w3 was removed from the inventory: see, then drain, delete and reset it
  boot up -i inventory.yaml --prune --dry-run
  boot up -i inventory.yaml --prune --verify`,
		Args: usage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if o.MaxUnavailable < 1 {
				return withExit(ExitInvalid, fmt.Errorf("--max-unavailable %d: at least 1 worker is upgraded at a time", o.MaxUnavailable))
			}
			if o.DrainTimeout <= 0 {
				return withExit(ExitInvalid, fmt.Errorf("--drain-timeout %s: give a positive duration, e.g. 5m", o.DrainTimeout))
			}
			if pf.verify && !pf.prune {
				return withExit(ExitInvalid, errors.New("--verify needs --prune: it compares the hosts --prune resets with their snapshots"))
			}
			return runUp(c.Context(), g, o, af, clusterOnly, pf)
		},
	}
	cmd.Flags().BoolVar(&o.MergeKubeconfig, "merge", false, "also merge the admin kubeconfig into ~/.kube/config, as a context named after the cluster")
	g.verboseFlag(cmd)
	cmd.Flags().BoolVar(&clusterOnly, "cluster-only", false, "build the cluster and stop: no add-ons, no DNS (boot addons does them later)")
	cmd.Flags().BoolVar(&pf.prune, "prune", false, "drain, delete and reset the Nodes that are no host of the inventory (workers removed from it)")
	cmd.Flags().BoolVar(&pf.verify, "verify", false, "with --prune: compare each host reset with its snapshot from before boot up")
	cmd.Flags().IntVar(&o.MaxUnavailable, "max-unavailable", 1, "upgrading Kubernetes: how many workers are drained and upgraded at once")
	cmd.Flags().DurationVar(&o.DrainTimeout, "drain-timeout", bootstrap.DefaultDrainTimeout, "upgrading Kubernetes: how long a Node's drain may take before boot stops and names the pods left on it")
	af.register(cmd)
	return cmd
}

// pruneFlags are boot up's flags for the Nodes that left the inventory.
type pruneFlags struct{ prune, verify bool }

func runUp(ctx context.Context, g *globals, o bootstrap.UpOptions, af addonsFlags, clusterOnly bool, pf pruneFlags) error {
	inv, log, closeLog, err := g.inventoryAndLog()
	if err != nil {
		return err
	}
	defer closeLog()
	out := newPrinter(g.stdout, g.Output)
	start := time.Now()
	cluster, err := g.connectCluster(ctx, inv, log, out)
	if err != nil {
		return err
	}
	defer cluster.Close()
	prune := &bootstrap.Prune{Remove: pf.prune}
	defer prune.Close()
	steps := bootstrap.Steps(cluster, append(bootstrap.UpPhases(o), prune))
	if pf.verify {
		steps = append(steps, run.Step{Phase: "verify", Description: "compare each host pruned with its snapshot from before boot up",
			Check: func(ctx context.Context, _ *run.State) error {
				pruned := prune.PrunedCluster(cluster)
				if len(pruned.Hosts) == 0 {
					out.Emit(run.Event{Phase: "verify", Status: run.OK, Message: "no host was reset: nothing to compare"})
					return nil
				}
				return compareSnapshots(ctx, pruned, true, out)
			}})
	}
	var a *addonRun
	if !clusterOnly {
		if a, err = newAddonRun(ctx, inv, af, log, out); err != nil {
			return err
		}
		a.in.After = bootstrap.APIPhases()
		defer a.Close()
		// The add-ons' charts load right after preflight: a chart that
		// cannot be had, or whose kubeVersion cluster.kubernetesVersion
		// does not meet (an upgrade), stops the run before any change.
		steps = slices.Insert(append(steps, a.steps[1:]...), 1, a.steps[0])
	}
	if err := run.Do(ctx, steps, g.runOptions(out)); err != nil {
		return err
	}
	if err := unreachableHosts(prune.NotReset(), out, "prune",
		"drained and deleted, but its host was not reset (unreachable): boot no longer sees it; once it is reachable, reset it by hand (kubeadm reset -f)",
		"drained and deleted but not reset (unreachable)"); err != nil {
		return err
	}
	if g.DryRun {
		out.Emit(run.Event{Phase: "up", Status: run.OK, Message: "dry run: nothing was changed", Duration: time.Since(start)})
		return nil
	}
	if a != nil {
		a.printAccess(g.stdout, g.Output)
	}
	out.Emit(run.Event{Phase: "up", Status: run.OK, Message: fmt.Sprintf("cluster %s is up; kubeconfig: %s", inv.Metadata.Name, inv.Cluster.Kubeconfig), Duration: time.Since(start)})
	return nil
}

// runOptions are a run's options from the global flags, its events
// rendered by out.
func (g *globals) runOptions(out *printer) run.Options {
	return run.Options{DryRun: g.DryRun, Parallel: g.Parallel, Report: out.Emit}
}

// loadInventory loads and validates the inventory named by -i.
func (g *globals) loadInventory() (*inventory.Inventory, error) {
	path, err := g.requireInventory()
	if err != nil {
		return nil, err
	}
	inv, err := inventory.Load(path)
	if err != nil { // unreadable or invalid: either way the input is at fault
		return nil, withExit(ExitInvalid, err)
	}
	return inv, nil
}
