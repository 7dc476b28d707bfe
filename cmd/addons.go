package cmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/internal/quote"
	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
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

With --dry-run it loads the charts, plans every step against the cluster
(read-only: each release with a server-side dry run compared with what is
deployed, the Secrets, the node labels, the DNS record) and prints what a real
run would change; on a converged cluster, nothing.`,
		Example: `  # install or upgrade the add-ons on the cluster boot up made
  boot addons -i inventory.yaml

  # what would change, release by release (nothing, once converged)
  boot addons -i inventory.yaml --dry-run`,
		Args: usage(cobra.NoArgs),
		RunE: g.withInventory(func(ctx context.Context, inv *inventory.Inventory, log *slog.Logger) error {
			return runAddons(ctx, g, inv, f, log, newPrinter(g.stdout, g.Output))
		}),
	}
	f.register(cmd)
	return cmd
}

// runAddons runs the add-ons' steps, the DNS record's and the closing
// verify, then prints what the operator needs to use the registry.
func runAddons(ctx context.Context, g *globals, inv *inventory.Inventory, f addonsFlags, log *slog.Logger, out *printer) error {
	start := time.Now()
	a, err := newAddonRun(ctx, inv, f, log, out)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := run.Do(ctx, a.steps, g.runOptions(out)); err != nil {
		return err
	}
	if g.DryRun {
		out.Emit(run.Event{Phase: addons.Phase, Status: run.OK, Message: "dry run: nothing was changed", Duration: time.Since(start)})
		return nil
	}
	out.Emit(run.Event{Phase: addons.Phase, Status: run.OK, Message: fmt.Sprintf("%d release(s) in place", len(a.in.Result().Releases)), Duration: time.Since(start)})
	a.printAccess(g.stdout, g.Output)
	return nil
}

// addonRun is the add-ons' part of a run: the Installer's steps, the DNS
// record's and, with --wait, the closing verify. Close closes the tunnel to
// the API server when one was opened.
type addonRun struct {
	inv   *inventory.Inventory
	in    *addons.Installer
	steps []run.Step
	close func()
}

// newAddonRun lists the add-ons' steps, the DNS record's and the closing
// verify.
func newAddonRun(ctx context.Context, inv *inventory.Inventory, f addonsFlags, log *slog.Logger, out *printer) (*addonRun, error) {
	for _, w := range inv.Warnings() {
		out.Emit(run.Event{Phase: "inventory", Status: run.Warning, Message: w.String()})
	}
	a := &addonRun{inv: inv, close: func() {}}
	a.in = &addons.Installer{
		Helm:      addons.Helm{Kubeconfig: inv.Cluster.Kubeconfig, Log: func(format string, v ...any) { log.Debug(fmt.Sprintf(format, v...)) }},
		Inventory: inv,
		Wait:      f.wait,
		Timeout:   f.timeout,
		Route53:   addons.Route53Config{Endpoint: f.route53Endpoint},
		Report:    out.Emit,
		Connect:   a.connect(inv, log),
	}
	steps, err := a.in.Steps()
	if err != nil {
		return nil, err
	}
	if d, err := dnsFor(ctx, inv, f); err != nil {
		return nil, err
	} else if d != nil {
		steps = append(steps, d.EnsureStep())
	}
	if f.wait {
		steps = append(steps, run.Step{Phase: "verify",
			Description: "push and pull through the registry's Service; the cache, certificate and DNS",
			Check: func(ctx context.Context, _ *run.State) error {
				// The registry is up: push and pull through its Service.
				// (boot verify also goes through the ingress and the DNS name.)
				return runVerify(ctx, inv, f.verifyFlags(), log, out)
			}})
	}
	a.steps = steps
	return a, nil
}

// connect returns the Installer's Connect: it opens a tunnel to the API
// server when the kubeconfig points at one that does not answer.
func (a *addonRun) connect(inv *inventory.Inventory, log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		closeTunnel, err := bootstrap.EnsureAPI(ctx, inv, log)
		if err == nil {
			a.close = closeTunnel
		}
		return err
	}
}

func (a *addonRun) Close() { a.close() }

func (a *addonRun) printAccess(w io.Writer, format string) {
	printAccess(w, format, a.inv, a.in.Result())
}

// dnsFor returns the registry's DNS record manager, or nil without a DNS
// provider.
func dnsFor(ctx context.Context, inv *inventory.Inventory, f addonsFlags) (*addons.DNS, error) {
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
	}, nil
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
	q := quote.Shell
	// read prints the password kept in Secret "namespace/name", under key.
	read := func(secret, key string) string {
		ns, name, _ := strings.Cut(secret, "/")
		return fmt.Sprintf("kubectl --kubeconfig %s -n %s get secret %s -o %s | base64 -d",
			q(inv.Cluster.Kubeconfig), q(ns), q(name), q("jsonpath={.data."+key+"}"))
	}
	if format == "json" {
		return // the events said what happened; secrets and instructions stay off JSON
	}
	admin := read(res.CredentialsSecret, addons.CredentialsKeyPassword)
	fmt.Fprintf(w, "\nRegistry:   https://%s\nUser:       %s\n", inv.Registry.Host, res.Credentials.Username())
	if res.Credentials.Generated() {
		fmt.Fprintf(w, "Password:   %s   (generated now and shown once; kept in Secret %s)\n", res.Credentials.Password(), res.CredentialsSecret)
	} else {
		fmt.Fprintf(w, "Password:   in Secret %s; read it with:\n            %s\n", res.CredentialsSecret, admin)
	}
	fmt.Fprintf(w, "Log in:     %s | docker login %s -u %s --password-stdin\n", admin, q(inv.Registry.Host), q(res.Credentials.Username()))
	for i, u := range res.Users {
		label := ""
		if i == 0 {
			label = "Users:"
		}
		fmt.Fprintf(w, "%-11s %s (%s), password in Secret %s:\n            %s\n", label, u.Name, u.Role, u.Secret, read(u.Secret, corev1.BasicAuthPasswordKey))
	}
	fmt.Fprintf(w, "Kubeconfig: %s\n", inv.Cluster.Kubeconfig)
}
