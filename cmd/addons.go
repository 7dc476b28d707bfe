package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/scripts"
)

// addonsFlags tune the add-on step of `boot addons` and `boot up`.
type addonsFlags struct {
	wait            bool
	timeout         time.Duration
	route53Endpoint string
	dnsServer       string // HOST:PORT answering the closing verify's DNS check
}

func (f *addonsFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.wait, "wait", true, "wait for each release's pods to be ready before the next one")
	cmd.Flags().DurationVar(&f.timeout, "timeout", addons.DefaultReleaseTimeout, "how long each release may take")
	cmd.Flags().StringVar(&f.route53Endpoint, "route53-endpoint", "", "send Route53 calls to this URL instead of AWS (tests, proxies)")
	cmd.Flags().Var((*dnsServerValue)(&f.dnsServer), "dns-server", dnsServerUsage)
}

// verifyFlags are the closing verify's: through the registry's Service (the
// ingress, certificate and DNS may still be settling, so their problems are
// warnings), with the DNS check asking --dns-server when given.
func (f addonsFlags) verifyFlags() verifyFlags {
	return verifyFlags{throughService: true, justInstalled: true, dnsServer: f.dnsServer}
}

func newAddonsCmd(g *globals) *cobra.Command {
	var f addonsFlags
	cmd := &cobra.Command{
		Use:   "addons",
		Short: "Install or upgrade only the add-ons (ingress, cert-manager, registry, pruner) and DNS",
		Long: `addons installs or upgrades, on an existing cluster (reached through the
inventory's cluster.kubeconfig, which boot up writes), the Helm releases boot
manages, in order: cert-manager, the ClusterIssuer, the ingress controller
(addons.ingress.controller: ingress-nginx, retired upstream in March 2026, or
its successor traefik; the other one's release, when boot installed it, is
removed first) and the registry with Redis and its prune and
garbage-collection schedules. It then points the registry's DNS record
(dns.provider route53) at the ingress hosts. With the DNS-01 solver
(registry.acme.solver dns01) cert-manager writes its challenges into the same
Route53 zone, with the static key pair of the AWS credentials boot uses
(kept in Secret cert-manager/route53-credentials), and reaches Route53 at
--route53-endpoint too when it is given.

Every step is idempotent: a re-run with nothing changed makes no new Helm
revision. The registry's admin password is generated once when the inventory
gives none, kept in a Secret and shown once, when it is made (never in JSON
output); the end of the run says where to read it again.

With --dry-run it loads the charts and lists the releases it would apply.`,
		Example: `  # install or upgrade the add-ons on the cluster boot up made
  boot addons -i inventory.yaml

  # list what would be applied
  boot addons -i inventory.yaml --dry-run`,
		Args: usage(cobra.NoArgs),
		RunE: g.withInventory(func(ctx context.Context, inv *inventory.Inventory, log *slog.Logger) error {
			return runAddons(ctx, g, inv, f, log, newPrinter(g.stdout, g.Output))
		}),
	}
	f.register(cmd)
	return cmd
}

// runAddons applies the add-ons and the DNS record and prints what the
// operator needs to use the registry.
func runAddons(ctx context.Context, g *globals, inv *inventory.Inventory, f addonsFlags, log *slog.Logger, out *printer) error {
	helm := addons.Helm{Kubeconfig: inv.Cluster.Kubeconfig, Log: func(format string, v ...any) { log.Debug(fmt.Sprintf(format, v...)) }}
	start := time.Now()
	for _, w := range inv.Warnings() {
		out.Emit(Event{Phase: "inventory", Status: bootstrap.StatusWarning, Message: w.String()})
	}
	in := &addons.Installer{
		Helm:      helm,
		Inventory: inv,
		Wait:      f.wait,
		Timeout:   f.timeout,
		Route53:   addons.Route53Config{Endpoint: f.route53Endpoint},
		Progress: func(e addons.Event) {
			switch {
			case e.Waiting != "":
				out.Emit(Event{Phase: "addons", Host: e.Step, Status: bootstrap.StatusWarning, Message: "waiting: " + e.Waiting})
			case e.Started:
			case e.Err != nil:
				out.Emit(Event{Phase: "addons", Host: e.Step, Status: bootstrap.StatusFailed, Message: e.Err.Error(), Duration: e.Elapsed})
			case e.Warning != "":
				out.Emit(Event{Phase: "addons", Host: e.Step, Status: bootstrap.StatusWarning, Message: e.Warning, Duration: e.Elapsed})
			case e.Changed:
				out.Emit(Event{Phase: "addons", Host: e.Step, Status: bootstrap.StatusChanged, Message: revision(e), Duration: e.Elapsed})
			case strings.HasPrefix(e.Step, "chart "):
				out.Emit(Event{Phase: "addons", Host: e.Step, Status: bootstrap.StatusOK, Message: "loaded", Duration: e.Elapsed})
			default:
				out.Emit(Event{Phase: "addons", Host: e.Step, Status: bootstrap.StatusOK, Message: "unchanged", Duration: e.Elapsed})
			}
		},
	}
	if g.DryRun {
		releases, err := in.Plan(ctx)
		if err != nil {
			return err
		}
		for _, r := range releases {
			msg := "remove if boot installed it (addons.ingress.controller is " + inv.Addons.Ingress.Controller + ")"
			if !r.Remove {
				msg = fmt.Sprintf("install or upgrade %s %s", r.Chart.Metadata.Name, r.Chart.Metadata.Version)
			}
			out.Emit(Event{Phase: "addons", Host: r.String(), Status: bootstrap.StatusPlanned, Message: msg})
		}
		if inv.DNS.Provider == inventory.DNSRoute53 {
			out.Emit(Event{Phase: "dns", Host: inv.Registry.Host, Status: bootstrap.StatusPlanned,
				Message: "A record -> " + strings.Join(inv.RecordAddresses(), ", ")})
		}
		return nil
	}
	if _, err := os.Stat(inv.Cluster.Kubeconfig); err != nil {
		return fmt.Errorf("no kubeconfig for the cluster at %s (cluster.kubeconfig): run boot up first: %w", inv.Cluster.Kubeconfig, err)
	}
	closeTunnel, err := ensureAPI(ctx, inv, log)
	if err != nil {
		return err
	}
	defer closeTunnel()
	res, err := in.Install(ctx)
	if err != nil {
		return err
	}
	if err := ensureDNS(ctx, inv, f, out); err != nil {
		return err
	}
	if f.wait {
		// The registry is up: push and pull through its Service. (boot
		// verify also goes through the ingress and the DNS name.)
		if err := runVerify(ctx, inv, f.verifyFlags(), log, out); err != nil {
			return err
		}
	}
	out.Emit(Event{Phase: "addons", Status: bootstrap.StatusOK, Message: fmt.Sprintf("%d release(s) in place", len(res.Releases)), Duration: time.Since(start)})
	printAccess(g.stdout, g.Output, inv, res)
	return nil
}

func revision(e addons.Event) string {
	if e.Revision > 0 {
		return fmt.Sprintf("revision %d", e.Revision)
	}
	return "changed"
}

// dnsFor returns the registry's DNS record manager, or nil without a DNS
// provider.
func dnsFor(ctx context.Context, inv *inventory.Inventory, f addonsFlags, out *printer) (*addons.DNS, error) {
	if inv.DNS.Provider != inventory.DNSRoute53 {
		return nil, nil
	}
	client, err := addons.NewRoute53Client(ctx, addons.Route53Config{Endpoint: f.route53Endpoint})
	if err != nil {
		return nil, err
	}
	return &addons.DNS{
		Client: client, Zone: inv.DNS.Zone, Host: inv.Registry.Host, TTL: int64(inv.DNS.TTL),
		Addresses: inv.RecordAddresses(), Owner: inv.Metadata.Name,
		Progress: func(s string) {
			out.Emit(Event{Phase: "dns", Host: inv.Registry.Host, Status: bootstrap.StatusOK, Message: s})
		},
	}, nil
}

func ensureDNS(ctx context.Context, inv *inventory.Inventory, f addonsFlags, out *printer) error {
	d, err := dnsFor(ctx, inv, f, out)
	if err != nil || d == nil {
		return err
	}
	start := time.Now()
	changed, err := d.Ensure(ctx)
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	status := bootstrap.StatusOK
	if changed {
		status = bootstrap.StatusChanged
	}
	out.Emit(Event{Phase: "dns", Host: inv.Registry.Host, Status: status, Message: "A record -> " + strings.Join(d.Addresses, ", "), Duration: time.Since(start)})
	return nil
}

// printAccess tells the operator how to use the registry. The password is
// printed only when this run generated it, and only as text: JSON output
// never carries it. The command lines are meant to be pasted, so every value
// they interpolate is one shell word (a user "$(id)" or a kubeconfig path
// with spaces stays a value).
func printAccess(w io.Writer, format string, inv *inventory.Inventory, res *addons.Result) {
	if res.Credentials == nil {
		return
	}
	q := scripts.ShellQuote
	ns, name, _ := strings.Cut(res.CredentialsSecret, "/")
	read := fmt.Sprintf("kubectl --kubeconfig %s -n %s get secret %s -o %s | base64 -d",
		q(inv.Cluster.Kubeconfig), q(ns), q(name), q("jsonpath={.data."+addons.CredentialsKeyPassword+"}"))
	if format == "json" {
		return // the events said what happened; secrets and instructions stay off JSON
	}
	fmt.Fprintf(w, "\nRegistry:   https://%s\nUser:       %s\n", inv.Registry.Host, res.Credentials.Username())
	if res.Credentials.Generated() {
		fmt.Fprintf(w, "Password:   %s   (generated now and shown once; kept in Secret %s)\n", res.Credentials.Password(), res.CredentialsSecret)
	} else {
		fmt.Fprintf(w, "Password:   in Secret %s; read it with:\n            %s\n", res.CredentialsSecret, read)
	}
	fmt.Fprintf(w, "Log in:     %s | docker login %s -u %s --password-stdin\nKubeconfig: %s\n",
		read, q(inv.Registry.Host), q(res.Credentials.Username()), inv.Cluster.Kubeconfig)
}

// removeDNS deletes the registry's DNS record when boot owns it.
func removeDNS(ctx context.Context, inv *inventory.Inventory, f addonsFlags, out *printer) error {
	d, err := dnsFor(ctx, inv, f, out)
	if err != nil || d == nil {
		return err
	}
	removed, err := d.Remove(ctx)
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	if removed {
		out.Emit(Event{Phase: "dns", Host: inv.Registry.Host, Status: bootstrap.StatusChanged, Message: "record removed"})
	}
	return nil
}

// removeReleases uninstalls boot's releases and Secrets through the API,
// when boot wrote a kubeconfig for the cluster.
func removeReleases(ctx context.Context, inv *inventory.Inventory, f addonsFlags, log *slog.Logger, out *printer) error {
	if _, err := os.Stat(inv.Cluster.Kubeconfig); errors.Is(err, os.ErrNotExist) {
		return nil // no cluster boot knows of: nothing installed
	}
	closeTunnel, err := ensureAPI(ctx, inv, log)
	if err != nil {
		return err
	}
	defer closeTunnel()
	in := &addons.Installer{Helm: addons.Helm{Kubeconfig: inv.Cluster.Kubeconfig}, Inventory: inv, Timeout: f.timeout}
	removed, err := in.Teardown(ctx)
	for _, r := range removed {
		out.Emit(Event{Phase: "addons", Host: r, Status: bootstrap.StatusChanged, Message: "removed"})
	}
	return err
}
