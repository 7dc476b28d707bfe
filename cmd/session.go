package cmd

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/bootstrap"
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
	report := func(e bootstrap.Event) {
		out.Emit(Event{Phase: e.Phase, Host: e.Host, Status: e.Status, Message: e.Message, Duration: e.Duration})
	}
	return bootstrap.Connect(ctx, inv, bootstrap.ConnectOptions{Parallel: g.Parallel, Log: log, Report: report})
}

// withInventory makes a command's RunE that loads the inventory, opens the
// log and runs fn with a context that ends on SIGINT or SIGTERM.
func (g *globals) withInventory(fn func(ctx context.Context, inv *inventory.Inventory, log *slog.Logger) error) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, _ []string) error {
		ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		inv, log, closeLog, err := g.inventoryAndLog()
		if err != nil {
			return err
		}
		defer closeLog()
		return fn(ctx, inv, log)
	}
}
