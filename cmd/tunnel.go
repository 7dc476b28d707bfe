package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
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
			f, err := openTunnel(ctx, inv, local, log)
			if err != nil {
				return err
			}
			defer f.Close()
			out := newPrinter(g.stdout, g.Output)
			out.Emit(run.Event{Phase: "tunnel", Host: inv.ControlPlane().Name, Status: run.OK,
				Message: fmt.Sprintf("forwarding %s to the API server %s; interrupt to stop", f.Addr(), apiTarget(inv))})
			<-ctx.Done()
			return nil
		}),
	}
	cmd.Flags().StringVar(&local, "local", "", "local address to listen on (default 127.0.0.1:<cluster.apiServerPort>)")
	return cmd
}

// apiTarget is the API server's address as the control plane reaches it.
func apiTarget(inv *inventory.Inventory) string {
	return net.JoinHostPort(inv.ControlPlane().PrivateAddress, strconv.Itoa(inv.Cluster.APIServerPort))
}

// tunnel is a forwarder with the connection it owns.
type tunnel struct {
	*nodes.Forwarder
	host *nodes.Host
}

// Close stops forwarding and closes the connection.
func (t *tunnel) Close() error {
	err := t.Forwarder.Close()
	t.host.Close()
	return err
}

// openTunnel dials the control plane and forwards local to its API server.
func openTunnel(ctx context.Context, inv *inventory.Inventory, local string, log *slog.Logger) (*tunnel, error) {
	h, err := bootstrap.DialHost(ctx, inv, inv.ControlPlane(), log)
	if err != nil {
		return nil, err
	}
	f, err := nodes.Forward(h, local, apiTarget(inv))
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	return &tunnel{Forwarder: f, host: h}, nil
}

// ensureAPI makes the cluster's API server reachable through its
// kubeconfig: when that points at a loopback address nothing answers on
// (boot up wrote it for a tunnel), it opens the tunnel for as long as the
// returned function is not called.
func ensureAPI(ctx context.Context, inv *inventory.Inventory, log *slog.Logger) (func(), error) {
	cfg, err := clientcmd.LoadFromFile(inv.Cluster.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", inv.Cluster.Kubeconfig, err)
	}
	noop := func() {}
	cur := cfg.Contexts[cfg.CurrentContext]
	if cur == nil || cfg.Clusters[cur.Cluster] == nil {
		return noop, nil
	}
	u, err := url.Parse(cfg.Clusters[cur.Cluster].Server)
	if err != nil || u.Hostname() != "127.0.0.1" {
		return noop, nil
	}
	if conn, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		conn.Close() // a tunnel runs already
		return noop, nil
	}
	f, err := openTunnel(ctx, inv, u.Host, log)
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}
