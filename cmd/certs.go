package cmd

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/inventory"
)

func newCertsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Manage the control plane's certificates",
		Long: `certs works on the certificates kubeadm manages on the control plane. boot
status shows the first of them to expire, and boot up warns when one expires
within 30 days.`,
		Example: `  boot certs renew -i inventory.yaml --dry-run`,
		Args:    usage(cobra.NoArgs),
	}
	cmd.AddCommand(newCertsRenewCmd(g))
	return cmd
}

func newCertsRenewCmd(g *globals) *cobra.Command {
	var o bootstrap.CertsRenewOptions
	cmd := &cobra.Command{
		Use:   "renew",
		Short: "Renew every kubeadm certificate and restart the control plane to use them, after asking",
		Long: `renew renews every certificate kubeadm manages on the control plane (kubeadm
certs renew all: the API server's, etcd's, the front proxy's and those in
the kubeconfig files; the CAs are kept), then restarts the control plane's
static pods one at a time so that they load them: kube-apiserver,
kube-controller-manager, kube-scheduler, etcd. For each, its manifest is
moved out of /etc/kubernetes/manifests, the kubelet is waited for to stop the
pod, the manifest is put back and the pod is waited for to run again in a new
container; the API server must answer /readyz before the next one. With one
control plane the API server does not answer while it, and etcd, restart. A
manifest held out by a failed run is put back. Then it writes the admin
kubeconfig (cluster.kubeconfig) again, as boot up does: its client
certificate changed.

It asks for confirmation (type the cluster's name) unless --yes is given.
With --dry-run it lists the certificates it would renew, the first of them
to expire and the pods it would restart, and changes nothing. Keys are never
printed.`,
		Example: `  # what would be renewed and restarted
  boot certs renew -i inventory.yaml --dry-run

  # renew without asking, waiting at most 5 minutes for each restart
  boot certs renew -i inventory.yaml --yes --timeout 5m`,
		Args: usage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return runCertsRenew(c.Context(), g, o, c.InOrStdin())
		},
	}
	g.verboseFlag(cmd)
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 2*time.Minute, "how long each wait of a restart may take (the pod stopped, running again, the API server ready)")
	cmd.Flags().BoolVar(&o.Merge, "merge", false, "also merge the renewed admin kubeconfig into ~/.kube/config, as boot up --merge does")
	return cmd
}

func runCertsRenew(ctx context.Context, g *globals, o bootstrap.CertsRenewOptions, stdin io.Reader) error {
	if o.Timeout < time.Second {
		return withExit(ExitInvalid, fmt.Errorf("--timeout %s: expected at least 1s", o.Timeout))
	}
	inv, log, closeLog, err := g.inventoryAndLog()
	if err != nil {
		return err
	}
	defer closeLog()
	if !g.Yes && !g.DryRun {
		if err := confirmRenew(g.stderr, stdin, inv); err != nil {
			return err
		}
	}
	return g.runPhases(ctx, inv, log, bootstrap.CertsRenewPhases(o), "certs renew",
		fmt.Sprintf("certificates of cluster %s renewed and the control plane restarted; kubeconfig: %s", inv.Metadata.Name, inv.Cluster.Kubeconfig))
}

// confirmRenew asks the operator to type the cluster's name before the
// control plane restarts.
func confirmRenew(w io.Writer, r io.Reader, inv *inventory.Inventory) error {
	return confirmName(w, r, inv.Metadata.Name, fmt.Sprintf("This renews the certificates of cluster %q and restarts its control plane on %s (the API server does not answer for a while).",
		inv.Metadata.Name, inv.ControlPlane().Name), "renew")
}
