package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
)

func newTunnelCmd(g *globals) *cobra.Command {
	var local string
	cmd := &cobra.Command{
		Use:   "tunnel",
		Short: "Reach the API server through SSH when this machine cannot reach its port",
		Long: `tunnel forwards a local port to the API server through the SSH connection to
the control plane, like ssh -L, until interrupted. boot up writes a kubeconfig
that points at https://127.0.0.1:<apiServerPort> (checking the certificate's
name "kubernetes") when the control plane's API port cannot be reached from
here; kubectl and helm then work while boot tunnel runs. boot's own commands
open the same tunnel by themselves when they need the API.`,
		Example: `  # in one terminal
  boot tunnel -i inventory.yaml
  # in another
  kubectl --kubeconfig seed.kubeconfig get nodes`,
		Args: usage(cobra.NoArgs),
		RunE: g.withInventory(func(ctx context.Context, inv *inventory.Inventory, log *slog.Logger) error {
			if local == "" {
				local = net.JoinHostPort("127.0.0.1", strconv.Itoa(inv.Cluster.APIServerPort))
			}
			f, err := bootstrap.OpenTunnel(ctx, inv, local, log)
			if err != nil {
				return err
			}
			defer f.Close()
			out := newPrinter(g.stdout, g.Output)
			out.Emit(run.Event{Phase: "tunnel", Host: inv.ControlPlane().Name, Status: run.OK,
				Message: fmt.Sprintf("forwarding %s to the API server %s; interrupt to stop", f.Addr(), bootstrap.APITarget(inv))})
			<-ctx.Done()
			return nil
		}),
	}
	cmd.Flags().StringVar(&local, "local", "", "local address to listen on (default 127.0.0.1:<cluster.apiServerPort>)")
	return cmd
}
