package cmd

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
)

// inventoryAndLog loads the inventory named by -i and opens the logger;
// closeLog must be called when the command ends.
func (g *globals) inventoryAndLog() (inv *inventory.Inventory, log *slog.Logger, closeLog func() error, err error) {
	if inv, err = g.loadInventory(); err != nil {
		return nil, nil, nil, err
	}
	if log, closeLog, err = g.newLogger(); err != nil {
		return nil, nil, nil, err
	}
	return inv, log, closeLog, nil
}

// connectCluster connects to every inventory host (see bootstrap.Connect),
// reporting each step through out. On error no connection stays open.
func (g *globals) connectCluster(ctx context.Context, inv *inventory.Inventory, log *slog.Logger, out *printer) (*bootstrap.Cluster, error) {
	return bootstrap.Connect(ctx, inv, g.connectOptions(log, out))
}

// runPhases connects to the inventory's hosts, runs phases on them and
// ends with an event of phase saying done (or, in a dry run, that nothing
// was changed).
func (g *globals) runPhases(ctx context.Context, inv *inventory.Inventory, log *slog.Logger, phases []bootstrap.Phase, phase, done string) error {
	out := newPrinter(g.stdout, g.Output)
	start := time.Now()
	cluster, err := g.connectCluster(ctx, inv, log, out)
	if err != nil {
		return err
	}
	defer cluster.Close()
	if err := run.Do(ctx, bootstrap.Steps(cluster, phases), g.runOptions(out)); err != nil {
		return err
	}
	if g.DryRun {
		done = "dry run: nothing was changed"
	}
	out.Emit(run.Event{Phase: phase, Status: run.OK, Message: done, Duration: time.Since(start)})
	return nil
}

// verboseFlag adds --verbose to a command that runs commands on the hosts.
func (g *globals) verboseFlag(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&g.Verbose, "verbose", "v", false, "stream the hosts' command output to stderr, each line prefixed by its host (secrets masked)")
}

// connectOptions are the global flags' connection settings: --parallel,
// and with --verbose the hosts' output streamed to stderr.
func (g *globals) connectOptions(log *slog.Logger, out *printer) bootstrap.ConnectOptions {
	o := bootstrap.ConnectOptions{Parallel: g.Parallel, Log: log, Report: out.Emit}
	if g.Verbose {
		o.Output = g.stderr
	}
	return o
}

// withInventory makes a command's RunE that loads the inventory, opens the
// log and runs fn with the command's context (which ends on SIGINT or
// SIGTERM, see Execute).
func (g *globals) withInventory(fn func(ctx context.Context, inv *inventory.Inventory, log *slog.Logger) error) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, _ []string) error {
		inv, log, closeLog, err := g.inventoryAndLog()
		if err != nil {
			return err
		}
		defer closeLog()
		return fn(c.Context(), inv, log)
	}
}
