package cmd

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/inventory"
)

func newUpCmd(g *globals) *cobra.Command {
	var o bootstrap.UpOptions
	var af addonsFlags
	var clusterOnly bool
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

With --dry-run it stops after printing the plan: what each phase would change
on each host. Nothing is changed on any host before the inventory is valid and
every preflight check has passed.`,
		Example: `  # what would change, host by host, as text
  boot up -i inventory.yaml --dry-run

  # the same as JSON lines, for a pipeline
  boot up -i inventory.yaml --dry-run -o json | jq -c 'select(.status=="planned")'

  # the real run, 4 hosts at a time, with a debug log on the side
  boot up -i inventory.yaml --parallel 4 --log-file boot.log

  # only the cluster, merged into ~/.kube/config
  boot up -i inventory.yaml --cluster-only --merge`,
		Args: usage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runUp(ctx, g, o, af, clusterOnly)
		},
	}
	cmd.Flags().BoolVar(&o.MergeKubeconfig, "merge", false, "also merge the admin kubeconfig into ~/.kube/config, as a context named after the cluster")
	cmd.Flags().BoolVar(&clusterOnly, "cluster-only", false, "build the cluster and stop: no add-ons, no DNS (boot addons does them later)")
	af.register(cmd)
	return cmd
}

func runUp(ctx context.Context, g *globals, o bootstrap.UpOptions, af addonsFlags, clusterOnly bool) error {
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
	if err := bootstrap.Run(ctx, cluster, bootstrap.UpPhases(o), g.DryRun); err != nil {
		return err
	}
	if !clusterOnly {
		if err := runAddons(ctx, g, inv, af, log, out); err != nil {
			return err
		}
	}
	if g.DryRun {
		out.Emit(Event{Phase: "up", Status: bootstrap.StatusOK, Message: "dry run: nothing was changed", Duration: time.Since(start)})
		return nil
	}
	out.Emit(Event{Phase: "up", Status: bootstrap.StatusOK, Message: fmt.Sprintf("cluster %s is up; kubeconfig: %s", inv.Metadata.Name, inv.Cluster.Kubeconfig), Duration: time.Since(start)})
	return nil
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
