package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
)

// ConnectOptions tune Connect.
type ConnectOptions struct {
	Parallel int // hosts connected at once
	Log      *slog.Logger
	Report   run.Reporter
	// Output receives the hosts' command output, line by line, prefixed
	// "[host] ": every command's except the read-only probes' and those
	// whose output is a secret, which are never streamed; nil discards it.
	Output io.Writer
}

// Connect opens one SSH connection per inventory host, in parallel, verifying
// host keys, and gathers each host's facts. It returns every host's failure,
// not just the first; on error the hosts that did connect are closed.
func Connect(ctx context.Context, inv *inventory.Inventory, o ConnectOptions) (*Cluster, error) {
	c, _, err := connect(ctx, inv, o, false)
	return c, err
}

// UnreachableHost is an inventory host the network did not reach, and why.
type UnreachableHost struct {
	Name string
	Err  error // wraps nodes.ErrUnreachable
}

// ConnectReachable is Connect for work that is worth doing on the hosts it
// can reach (teardown): a host the network does not reach
// (nodes.ErrUnreachable) is reported, left out of the Cluster's Hosts and
// returned among the unreachable, in the inventory's order, instead of
// failing. Every other failure (host key, authentication, settings, facts)
// still fails it.
func ConnectReachable(ctx context.Context, inv *inventory.Inventory, o ConnectOptions) (*Cluster, []UnreachableHost, error) {
	return connect(ctx, inv, o, true)
}

func connect(ctx context.Context, inv *inventory.Inventory, o ConnectOptions, skipUnreachable bool) (*Cluster, []UnreachableHost, error) {
	c := &Cluster{Inventory: inv, Parallel: o.Parallel, Log: o.Log, Report: o.Report}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	cfgs := make([]nodes.Config, len(inv.Hosts))
	for i, h := range inv.Hosts {
		cfgs[i] = nodeConfig(inv.SSHFor(h))
	}
	opts := []nodes.Option{nodes.WithLogger(c.Log)}
	if o.Output != nil {
		opts = append(opts, nodes.WithOutput(o.Output))
	}
	conns, errs := nodes.Connect(ctx, cfgs, o.Parallel, opts...)
	var unreachable []UnreachableHost
	for i, h := range inv.Hosts {
		if errs[i] != nil {
			c.report(run.Event{Phase: "connect", Host: h.Name, Status: run.Failed, Message: errs[i].Error()})
			if skipUnreachable && errors.Is(errs[i], nodes.ErrUnreachable) {
				unreachable = append(unreachable, UnreachableHost{Name: h.Name, Err: errs[i]})
				errs[i] = nil
			}
			continue
		}
		c.Hosts = append(c.Hosts, &Host{Spec: h, Conn: conns[i]})
		c.report(run.Event{Phase: "connect", Host: h.Name, Status: run.OK, Message: fmt.Sprintf("%s@%s", cfgs[i].User, conns[i].Config().Address)})
	}
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, nil, err
	}

	hosts := make([]*nodes.Host, len(c.Hosts))
	for i, h := range c.Hosts {
		hosts[i] = h.Conn
	}
	results := nodes.ForEach(ctx, hosts, o.Parallel, func(ctx context.Context, h *nodes.Host) error {
		_, err := h.Facts(ctx)
		return err
	})
	for i, r := range results {
		h := c.Hosts[i]
		if r.Err != nil {
			c.report(run.Event{Phase: "facts", Host: h.Spec.Name, Status: run.Failed, Message: r.Err.Error(), Duration: r.Duration})
			continue
		}
		h.Facts, _ = h.Conn.Facts(ctx) // cached by the call above
		c.report(run.Event{Phase: "facts", Host: h.Spec.Name, Status: run.OK, Message: summary(h), Duration: r.Duration})
	}
	if err := nodes.Errors(results); err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, unreachable, nil
}

// DialHost opens an SSH connection to one inventory host (verifying its
// host key), without gathering facts: for commands that need one host, such
// as the API server tunnel through the control plane.
func DialHost(ctx context.Context, inv *inventory.Inventory, h inventory.Host, log *slog.Logger) (*nodes.Host, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return nodes.Dial(ctx, nodeConfig(inv.SSHFor(h)), nodes.WithLogger(log))
}

// Close closes every host connection.
func (c *Cluster) Close() {
	for _, h := range c.Hosts {
		h.Conn.Close()
	}
}

// nodeConfig turns the inventory's view of a host's SSH settings into the
// nodes package's connection settings. Secrets stay behind their env vars
// until the connection needs them.
func nodeConfig(r inventory.ResolvedSSH) nodes.Config {
	cfg := loginConfig(r.Host, inventory.ResolvedBastion{
		Address:          r.Address,
		Port:             r.Port,
		User:             r.User,
		KeyPath:          r.KeyPath,
		KeyPassphraseEnv: r.KeyPassphraseEnv,
		Agent:            r.Agent,
		PasswordEnv:      r.PasswordEnv,
		HostKey:          r.HostKey,
		KnownHosts:       r.KnownHosts,
		HostKeyPolicy:    r.HostKeyPolicy,
	})
	cfg.ConnectTimeout = r.ConnectTimeout
	if r.NeedsSudo() && r.SudoPasswordEnv != "" {
		cfg.SudoPassword = nodes.EnvSecret(r.SudoPasswordEnv)
	}
	if b := r.Bastion; b != nil {
		bc := loginConfig(r.Host+" via bastion "+b.Address, *b)
		cfg.Bastion = &bc
	}
	return cfg
}

// loginConfig builds the settings shared by a host and its bastion: where
// to connect, how to log in and how to check the host key. (A
// ResolvedBastion holds exactly these.)
func loginConfig(name string, l inventory.ResolvedBastion) nodes.Config {
	cfg := nodes.Config{
		Name:           name,
		Address:        l.Address,
		Port:           l.Port,
		User:           l.User,
		KeyPath:        l.KeyPath,
		Agent:          useAgent(l.Agent),
		KnownHostsPath: l.KnownHosts,
		HostKeyPolicy:  nodes.HostKeyPolicy(l.HostKeyPolicy),
		PinnedHostKey:  l.HostKey,
	}
	if l.KeyPath != "" {
		cfg.KeyPassphrase = nodes.EnvOrPrompt(l.KeyPassphraseEnv, "passphrase for "+l.KeyPath)
	}
	if l.PasswordEnv != "" {
		cfg.Password = nodes.EnvSecret(l.PasswordEnv)
	}
	return cfg
}

// useAgent applies the inventory's rule for agent: true, "use the ssh-agent
// when $SSH_AUTH_SOCK is set"; without an agent the other methods remain.
func useAgent(wanted bool) bool {
	return wanted && os.Getenv("SSH_AUTH_SOCK") != ""
}

// UpOptions tune the phases of `boot up`.
type UpOptions struct {
	// MergeKubeconfig also merges the admin kubeconfig into
	// ~/.kube/config (or MergeInto).
	MergeKubeconfig bool
	MergeInto       string
	// MaxUnavailable is how many workers an upgrade drains at once
	// (default 1); DrainTimeout bounds each drain (default
	// DefaultDrainTimeout).
	MaxUnavailable int
	DrainTimeout   time.Duration
}

// APIPhases names the phases of UpPhases whose changes the cluster's API
// depends on: the control plane, the workers' joins (their Nodes) and the
// kubeconfig that reaches it. A dry run's later steps that plan against the
// API wait for them (see addons.Installer.After).
func APIPhases() []string {
	return []string{ControlPlane{}.Name(), Join{}.Name(), Kubeconfig{}.Name()}
}

// UpPhases lists, in order, the phases of `boot up`.
func UpPhases(o UpOptions) []Phase {
	return []Phase{
		Preflight{},
		Snapshot{},
		Stage{},
		HostPrep{},
		Runtime{},
		KubePackages{},
		UpgradeControlPlane{DrainTimeout: o.DrainTimeout},
		UpgradeWorkers{MaxUnavailable: o.MaxUnavailable, DrainTimeout: o.DrainTimeout},
		ControlPlane{},
		Join{},
		KubeletConfig{},
		CNI{},
		WaitReady{},
		HelmCLI{},
		Kubeconfig{Merge: o.MergeKubeconfig, MergeInto: o.MergeInto},
	}
}
