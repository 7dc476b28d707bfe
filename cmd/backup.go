package cmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
)

func newBackupCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Copy an etcd snapshot, the PKI and kubeadm's configuration to this machine",
		Long: `backup takes an etcd snapshot of the control plane (through SSH, from etcd's
client port, with kubeadm's health-check client certificate) and copies it,
with every file of /etc/kubernetes/pki and kubeadm's cluster configuration,
to a folder on this machine: files 0600, folders 0700 (the PKI holds the
cluster's private keys: keep the folder as you would keep them). The
snapshot is checked as etcdutl snapshot status does (its hash, revision and
keys) and backup.json, written last, lists every file with its sha256.

Nothing changes on the hosts. The folder (--out) must not exist or be
empty; by default it is .boot/<cluster>/backups/<UTC time> beside the
inventory. A backup that fails is removed. boot restore --from puts the
snapshot back.`,
		Example: `  boot backup -i inventory.yaml
  boot backup -i inventory.yaml --out /srv/backups/prod-$(date +%F)`,
		Args: usage(cobra.NoArgs),
		RunE: g.withInventory(func(ctx context.Context, inv *inventory.Inventory, log *slog.Logger) error {
			return runBackup(ctx, g, inv, out, log)
		}),
	}
	cmd.Flags().StringVar(&out, "out", "", "folder to write the backup to (default .boot/<cluster>/backups/<UTC time> beside the inventory)")
	return cmd
}

func runBackup(ctx context.Context, g *globals, inv *inventory.Inventory, dir string, log *slog.Logger) error {
	now := time.Now()
	if dir == "" {
		dir = bootstrap.DefaultBackupDir(inv, now)
	}
	out := newPrinter(g.stdout, g.Output)
	cp := inv.ControlPlane()
	if g.DryRun {
		out.Emit(run.Event{Phase: "backup", Host: cp.Name, Status: run.Planned, Message: "would copy an etcd snapshot, the PKI and kubeadm's configuration to " + dir})
		return nil
	}
	h, err := bootstrap.DialHost(ctx, inv, cp, log)
	if err != nil {
		return err
	}
	defer h.Close()
	b, err := bootstrap.TakeBackup(ctx, inv, h, dir, now)
	if err != nil {
		return fmt.Errorf("backup of %s: %w", cp.Name, err)
	}
	out.Emit(run.Event{Phase: "backup", Host: cp.Name, Status: run.OK, Duration: time.Since(now), Message: fmt.Sprintf(
		"%s: etcd snapshot of member %s (revision %d, %d keys, %d bytes, checked), %d files of the PKI and kubeadm's configuration",
		dir, b.Etcd.Member, b.Etcd.Revision, b.Etcd.Keys, b.Etcd.Size, len(b.Files))})
	return nil
}

func newRestoreCmd(g *globals) *cobra.Command {
	var o bootstrap.RestoreOptions
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Put a backup's etcd snapshot back on the control plane, after asking",
		Long: `restore checks the backup folder (--from, written by boot backup: every
file's sha256 and the snapshot's own hash), makes from the snapshot a data
folder for the control plane's etcd member with etcdutl's restore (the
member's name and peer URL read from its manifest; revisions bumped and
marked compacted, so that watches list again), uploads it and, with the
control plane's static pods stopped, puts it in place of etcd's data. The
old data folder is kept beside it as <data-dir>.before-restore-<UTC time>.
etcd starts first, then the other pods; the API server must answer. Then
every host's kubelet is restarted.

What comes back: everything the API server stores (namespaces, workloads,
Secrets, ConfigMaps, Helm's release records) as it was when the backup was
taken. What does not: data outside etcd (volumes, images in the registry,
files on the hosts), and what changed since is lost. The PKI and kubeadm's
configuration in the backup are for rebuilding a lost control plane by
hand; restore does not write them.

It asks for confirmation (type the cluster's name) unless --yes is given.
With --dry-run it checks the backup and the control plane and says what it
would do.`,
		Example: `  boot restore -i inventory.yaml --from .boot/prod/backups/20261207T150405Z --dry-run
  boot restore -i inventory.yaml --from /srv/backups/prod-2026-12-07 --yes`,
		Args: usage(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return runRestore(c.Context(), g, o, c.InOrStdin())
		},
	}
	g.verboseFlag(cmd)
	cmd.Flags().StringVar(&o.From, "from", "", "the backup folder (required)")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 3*time.Minute, "how long each wait may take (the pods stopped, etcd and the API server running again)")
	return cmd
}

func runRestore(ctx context.Context, g *globals, o bootstrap.RestoreOptions, stdin io.Reader) error {
	if o.From == "" {
		return withExit(ExitInvalid, fmt.Errorf("--from is required: the folder boot backup wrote"))
	}
	if o.Timeout < time.Second {
		return withExit(ExitInvalid, fmt.Errorf("--timeout %s: expected at least 1s", o.Timeout))
	}
	inv, log, closeLog, err := g.inventoryAndLog()
	if err != nil {
		return err
	}
	defer closeLog()
	b, err := bootstrap.ReadBackup(o.From)
	if err != nil {
		return withExit(ExitInvalid, fmt.Errorf("--from: %w", err))
	}
	if b.Cluster != inv.Metadata.Name {
		return withExit(ExitInvalid, fmt.Errorf("--from: the backup is of cluster %q, the inventory's is %q", b.Cluster, inv.Metadata.Name))
	}
	o.Backup = b
	if !g.Yes && !g.DryRun {
		msg := fmt.Sprintf("This puts cluster %q's etcd back as it was on %s (revision %d): what changed since is lost, and the control plane on %s stops meanwhile.",
			inv.Metadata.Name, b.Taken.Format(time.RFC3339), b.Etcd.Revision, inv.ControlPlane().Name)
		if err := confirmName(g.stderr, stdin, inv.Metadata.Name, msg, "restore"); err != nil {
			return err
		}
	}
	return g.runPhases(ctx, inv, log, bootstrap.RestorePhases(o), "restore",
		fmt.Sprintf("etcd of cluster %s restored from %s (taken %s)", inv.Metadata.Name, o.From, b.Taken.Format(time.RFC3339)))
}
