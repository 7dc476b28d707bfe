package bootstrap

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
)

// APITarget is the API server's address as the control plane reaches it:
// its private address and the cluster's API server port.
func APITarget(inv *inventory.Inventory) string {
	return net.JoinHostPort(inv.ControlPlane().PrivateAddress, strconv.Itoa(inv.Cluster.APIServerPort))
}

// Tunnel forwards a local address to the API server (APITarget) through an
// SSH connection to the control plane, which it owns.
type Tunnel struct {
	*nodes.Forwarder
	conn *nodes.Host
}

// Close stops forwarding and closes the SSH connection.
func (t *Tunnel) Close() error {
	err := t.Forwarder.Close()
	t.conn.Close()
	return err
}

// OpenTunnel dials the control plane and forwards local (host:port) to its
// API server until the tunnel is closed.
func OpenTunnel(ctx context.Context, inv *inventory.Inventory, local string, log *slog.Logger) (*Tunnel, error) {
	h, err := DialHost(ctx, inv, inv.ControlPlane(), log)
	if err != nil {
		return nil, err
	}
	f, err := nodes.Forward(h, local, APITarget(inv))
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	return &Tunnel{Forwarder: f, conn: h}, nil
}

// EnsureAPI makes the cluster's API server reachable through its
// kubeconfig (cluster.kubeconfig): when that points at 127.0.0.1 and nothing
// answers there (boot up wrote it for a tunnel because the API port cannot
// be reached from here), it opens the tunnel (OpenTunnel), which stays open
// until closeTunnel is called. Otherwise it opens nothing and closeTunnel
// does nothing.
func EnsureAPI(ctx context.Context, inv *inventory.Inventory, log *slog.Logger) (closeTunnel func(), err error) {
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
	t, err := OpenTunnel(ctx, inv, u.Host, log)
	if err != nil {
		return nil, err
	}
	return func() { t.Close() }, nil
}
