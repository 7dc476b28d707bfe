package cmd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/inventory"
)

type teardownFlags struct {
	addons     addonsFlags
	verify     bool
	purge      bool
	mergedInto string
}

func newTeardownCmd(g *globals) *cobra.Command {
	var f teardownFlags
	cmd := &cobra.Command{
		Use:   "teardown",
		Short: "Remove the cluster boot made and leave the hosts as they were, after asking",
		Long: `teardown undoes boot up: it removes the registry's DNS record (only if boot
owns it) and boot's Helm releases, drains and deletes the workers, runs kubeadm reset
on every host, stops and removes what boot installed (in bundle mode containerd,
runc, the CNI plugins, kubeadm, kubelet, kubectl, helm and their units; online,
the packages only with --purge), the cluster's state and configuration, pod
network interfaces and namespaces, Kubernetes' iptables rules (other rules are
kept), boot's sysctl and module files and /etc/hosts lines, and the admin
kubeconfig it wrote.

It asks for confirmation (type the cluster's name) unless --yes is given.
With --dry-run it prints what it would remove and removes nothing.

With --verify it then compares every host with the snapshot boot up recorded
before its first change (packages, units, files under the paths boot touches,
interfaces, iptables rules) and prints any difference; a difference makes it
exit 1. After a clean comparison the snapshots are deleted, so the next
boot up records the hosts afresh.`,
		Example: `  # see what would be removed
  boot teardown -i inventory.yaml --dry-run

  # remove it all without asking, then check the hosts are as before boot up
  boot teardown -i inventory.yaml --yes --verify`,
		Args: usage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runTeardown(ctx, g, f, c.InOrStdin())
		},
	}
	cmd.Flags().BoolVar(&f.verify, "verify", false, "compare every host with its snapshot from before boot up and print the differences")
	cmd.Flags().BoolVar(&f.purge, "purge", false, "with packages from online: also purge the packages and their apt repositories")
	cmd.Flags().StringVar(&f.mergedInto, "merged-kubeconfig", "", "the kubeconfig boot up --merge merged into (default ~/.kube/config)")
	cmd.Flags().DurationVar(&f.addons.timeout, "timeout", addons.DefaultReleaseTimeout, "how long removing each release may take")
	cmd.Flags().StringVar(&f.addons.route53Endpoint, "route53-endpoint", "", "send Route53 calls to this URL instead of AWS (tests, proxies)")
	return cmd
}

func runTeardown(ctx context.Context, g *globals, f teardownFlags, stdin io.Reader) error {
	inv, log, closeLog, err := g.inventoryAndLog()
	if err != nil {
		return err
	}
	defer closeLog()
	if !g.Yes && !g.DryRun {
		if err := confirm(g.stderr, stdin, inv); err != nil {
			return err
		}
	}
	out := newPrinter(g.stdout, g.Output)
	start := time.Now()
	cluster, err := g.connectCluster(ctx, inv, log, out)
	if err != nil {
		return err
	}
	defer cluster.Close()
	// The DNS record first (it lives outside the cluster), then boot's
	// releases, while the API server still answers. A cluster that does not
	// answer loses them with its state anyway.
	if !g.DryRun {
		if err := removeDNS(ctx, inv, f.addons, out); err != nil {
			return err
		}
		if err := removeReleases(ctx, inv, f.addons, log, out); err != nil {
			out.Emit(Event{Phase: "addons", Status: bootstrap.StatusWarning, Message: "releases not removed through the API (the reset removes them with the cluster's state): " + err.Error()})
		}
	}
	phases := bootstrap.TeardownPhases(bootstrap.TeardownOptions{Purge: f.purge, MergedInto: f.mergedInto})
	if err := bootstrap.Run(ctx, cluster, phases, g.DryRun); err != nil {
		return err
	}
	if g.DryRun {
		out.Emit(Event{Phase: "teardown", Status: bootstrap.StatusOK, Message: "dry run: nothing was changed", Duration: time.Since(start)})
		return nil
	}
	if f.verify {
		vstart := time.Now()
		diffs, err := bootstrap.Verify(ctx, cluster)
		if err != nil {
			return err
		}
		total := 0
		for host, lines := range diffs {
			for _, l := range lines {
				out.Emit(Event{Phase: "verify", Host: host, Status: bootstrap.StatusWarning, Message: l})
			}
			total += len(lines)
		}
		if total > 0 {
			return fmt.Errorf("verify: %d difference(s) from the hosts' state before boot up, listed above", total)
		}
		if err := bootstrap.ForgetSnapshots(cluster); err != nil {
			return err
		}
		out.Emit(Event{Phase: "verify", Status: bootstrap.StatusOK, Message: "every host is as it was before boot up", Duration: time.Since(vstart)})
	}
	out.Emit(Event{Phase: "teardown", Status: bootstrap.StatusOK, Message: "cluster " + inv.Metadata.Name + " is gone", Duration: time.Since(start)})
	return nil
}

// confirm asks the operator to type the cluster's name.
func confirm(w io.Writer, r io.Reader, inv *inventory.Inventory) error {
	var hosts []string
	for _, h := range inv.Hosts {
		hosts = append(hosts, h.Name)
	}
	fmt.Fprintf(w, "This removes cluster %q and everything boot installed from %s.\nType the cluster's name to go on: ", inv.Metadata.Name, strings.Join(hosts, ", "))
	line, err := bufio.NewReader(r).ReadString('\n')
	if strings.TrimSpace(line) == inv.Metadata.Name {
		return nil
	}
	if err != nil && strings.TrimSpace(line) == "" {
		return withExit(ExitInvalid, fmt.Errorf("no confirmation on standard input: give --yes to tear down without asking"))
	}
	return withExit(ExitInvalid, fmt.Errorf("confirmation %q is not the cluster's name %q: nothing was changed", strings.TrimSpace(line), inv.Metadata.Name))
}
