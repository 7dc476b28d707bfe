package cmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/internal/run"
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

A worker that cannot be reached does not stop it: the other hosts are torn
down, the worker is named and teardown exits 3; run it again once the worker
is reachable to finish (with --verify the snapshots are kept until then). An
unreachable control plane stops it before any change.

It asks for confirmation (type the cluster's name) unless --yes is given.
With --dry-run it prints what it would remove, the DNS record and every
release and Secret of boot's included (read from Route53 and the API server),
and removes nothing.

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
			return runTeardown(c.Context(), g, f, c.InOrStdin())
		},
	}
	g.verboseFlag(cmd)
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
	cluster, unreachable, err := bootstrap.ConnectReachable(ctx, inv, g.connectOptions(log, out))
	if err != nil {
		return err
	}
	defer cluster.Close()
	if err := controlPlaneReached(inv, unreachable); err != nil {
		return err
	}
	steps, closeAPI, err := teardownSteps(ctx, inv, f, cluster, len(unreachable) == 0, log, out)
	if err != nil {
		return err
	}
	defer closeAPI()
	if err := run.Do(ctx, steps, g.runOptions(out)); err != nil {
		return err
	}
	if err := unreachableHosts(unreachable, out, "teardown", "not torn down: unreachable; run boot teardown again once it is reachable",
		"not torn down (unreachable; the other hosts are): run boot teardown again once reachable"); err != nil {
		return err
	}
	msg := "cluster " + inv.Metadata.Name + " is gone"
	if g.DryRun {
		msg = "dry run: nothing was changed"
	}
	out.Emit(run.Event{Phase: "teardown", Status: run.OK, Message: msg, Duration: time.Since(start)})
	return nil
}

// controlPlaneReached refuses a teardown whose control plane is unreachable,
// before anything changes: the add-ons' removal and the workers' drain need
// it, and workers reset while it stays would be Node objects that a later
// drain waits for in vain.
func controlPlaneReached(inv *inventory.Inventory, unreachable []bootstrap.UnreachableHost) error {
	cp := inv.ControlPlane().Name
	for _, u := range unreachable {
		if u.Name == cp {
			return fmt.Errorf("the control plane %s is unreachable and teardown needs it first: nothing was changed: %w", cp, u.Err)
		}
	}
	return nil
}

// unreachableHosts names, each with a failed event of phase saying event,
// the hosts a run could not reach (the others were done); the error, whose
// message is the hosts' names and then what, wraps their connection errors
// (exit 3).
func unreachableHosts(unreachable []bootstrap.UnreachableHost, out *printer, phase, event, what string) error {
	if len(unreachable) == 0 {
		return nil
	}
	names := make([]string, len(unreachable))
	errs := make([]error, len(unreachable))
	for i, u := range unreachable {
		names[i], errs[i] = u.Name, u.Err
		out.Emit(run.Event{Phase: phase, Host: u.Name, Status: run.Failed, Message: event})
	}
	return fmt.Errorf("%s %s: %w", strings.Join(names, ", "), what, errors.Join(errs...))
}

// teardownSteps lists what teardown does, in order: the DNS record first (it
// lives outside the cluster), then boot's releases and Secrets while the API
// server still answers (one that does not loses them with its state), the
// hosts' phases, and with --verify the comparison with the snapshots (which
// are forgotten only when cluster holds every host: a re-run that finishes
// an unreachable host's teardown compares them all). The returned function
// closes the tunnel to the API server, if one was opened.
func teardownSteps(ctx context.Context, inv *inventory.Inventory, f teardownFlags, cluster *bootstrap.Cluster, allHosts bool, log *slog.Logger, out *printer) ([]run.Step, func(), error) {
	var steps []run.Step
	d, err := dnsFor(ctx, inv, f.addons)
	if err != nil {
		return nil, nil, err
	}
	if d != nil {
		steps = append(steps, d.RemoveStep())
	}
	a := &addonRun{close: func() {}}
	in := &addons.Installer{Helm: addons.Helm{Kubeconfig: inv.Cluster.Kubeconfig}, Inventory: inv, Timeout: f.addons.timeout, Report: out.Emit, Connect: a.connect(inv, log)}
	steps = append(steps, in.TeardownSteps()...)
	steps = append(steps, bootstrap.Steps(cluster, bootstrap.TeardownPhases(bootstrap.TeardownOptions{Purge: f.purge, MergedInto: f.mergedInto}))...)
	if f.verify {
		steps = append(steps, run.Step{Phase: "verify", Description: "compare every host with its snapshot from before boot up",
			Check: func(ctx context.Context, _ *run.State) error { return compareSnapshots(ctx, cluster, allHosts, out) }})
	}
	return steps, a.Close, nil
}

// compareSnapshots reports every difference of the hosts from their state
// before boot up; without any, and with forget, it forgets the snapshots.
func compareSnapshots(ctx context.Context, cluster *bootstrap.Cluster, forget bool, out *printer) error {
	start := time.Now()
	diffs, err := bootstrap.Verify(ctx, cluster)
	if err != nil {
		return err
	}
	total := 0
	for host, lines := range diffs {
		for _, l := range lines {
			out.Emit(run.Event{Phase: "verify", Host: host, Status: run.Warning, Message: l})
		}
		total += len(lines)
	}
	if total > 0 {
		return fmt.Errorf("%d difference(s) from the hosts' state before boot up, listed above", total)
	}
	if !forget {
		out.Emit(run.Event{Phase: "verify", Status: run.OK, Message: "every host reached is as it was before boot up (snapshots kept for the re-run)", Duration: time.Since(start)})
		return nil
	}
	if err := bootstrap.ForgetSnapshots(cluster); err != nil {
		return err
	}
	out.Emit(run.Event{Phase: "verify", Status: run.OK, Message: "every host is as it was before boot up", Duration: time.Since(start)})
	return nil
}

// confirm asks the operator to type the cluster's name before teardown.
func confirm(w io.Writer, r io.Reader, inv *inventory.Inventory) error {
	var hosts []string
	for _, h := range inv.Hosts {
		hosts = append(hosts, h.Name)
	}
	return confirmName(w, r, inv.Metadata.Name, fmt.Sprintf("This removes cluster %q and everything boot installed from %s.", inv.Metadata.Name, strings.Join(hosts, ", ")), "tear down")
}

// confirmName shows what, asks the operator to type the cluster's name and
// goes on only when the line read is that name; without a line it says to
// give --yes to verb without asking.
func confirmName(w io.Writer, r io.Reader, name, what, verb string) error {
	fmt.Fprintf(w, "%s\nType the cluster's name to go on: ", what)
	line, err := bufio.NewReader(r).ReadString('\n')
	got := strings.TrimSpace(line)
	switch {
	case got == name:
		return nil
	case err != nil && got == "":
		return withExit(ExitInvalid, fmt.Errorf("no confirmation on standard input: give --yes to %s without asking", verb))
	}
	return withExit(ExitInvalid, fmt.Errorf("confirmation %q is not the cluster's name %q: nothing was changed", got, name))
}
