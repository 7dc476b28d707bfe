package cmd

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/addons/verify"
	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
)

// statusFlags are `boot status`'s own flags.
type statusFlags struct {
	registryCA      string
	dnsServer       string
	route53Endpoint string
}

func newStatusCmd(g *globals) *cobra.Command {
	var f statusFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster's and the registry's state in one table (read-only)",
		Long: `status shows, read-only, what boot built: every host (reached over SSH or
not, its OS, role, its Node's Ready condition, the kubelet's and kubeadm's
versions), the control plane (the API server's /readyz and /readyz/etcd, and
the certificate kubeadm manages that expires first, from kubeadm certs
check-expiration on the control plane), the Helm releases boot manages
(chart, version, status), the registry (the certificate it presents at
https://<registry.host>, cert-manager's Certificate, the Redis cache's hit
rate, and with a DNS provider the host name's addresses) and, with dns.provider
route53, whether the DNS record is as boot would write it.

It changes nothing anywhere: nothing is pushed to the registry, no credentials
are read, and the DNS record is only read. When the API server answers only
on the control plane, it goes through an SSH tunnel as boot addons does.

With -o json it prints one JSON document (not one event per line): hosts,
controlPlane, releases, registry, dnsRecord, problems and warnings.

It exits 0 when everything is healthy and 1 when something is not, each reason
on its own line ("problems" in JSON). A control-plane certificate expiring
within 30 days, and registry checks that cannot tell (the cache's metrics
off), are warnings and do not change the exit code. A host the network does
not reach is a line of the table; a host whose key or login is refused stops
it (exit 3), as for every command.`,
		Example: `  # the table
  boot status -i inventory.yaml

  # the same as one JSON document, for tools
  boot status -i inventory.yaml -o json | jq -r '.problems[]'`,
		Args: usage(cobra.NoArgs),
		RunE: g.withInventory(func(ctx context.Context, inv *inventory.Inventory, log *slog.Logger) error {
			return runStatus(ctx, g, inv, f, log)
		}),
	}
	cmd.Flags().StringVar(&f.registryCA, "registry-ca", "", "check the registry's certificate against the CA certificates in this PEM file only, instead of this machine's trust store")
	cmd.Flags().Var((*dnsServerValue)(&f.dnsServer), "dns-server", dnsServerUsage)
	cmd.Flags().StringVar(&f.route53Endpoint, "route53-endpoint", "", "send Route53 calls to this URL instead of AWS (tests, proxies)")
	return cmd
}

// statusReport is what `boot status` shows; with -o json, as one document.
type statusReport struct {
	Cluster      string                  `json:"cluster"`
	Healthy      bool                    `json:"healthy"`
	Hosts        []bootstrap.HostStatus  `json:"hosts"`
	ControlPlane controlPlaneStatus      `json:"controlPlane"`
	Releases     []addons.ManagedRelease `json:"releases"`
	Registry     registryStatus          `json:"registry"`
	DNSRecord    *dnsRecordStatus        `json:"dnsRecord,omitempty"`
	Problems     []string                `json:"problems"`
	Warnings     []string                `json:"warnings"`
}

type controlPlaneStatus struct {
	Host string `json:"host"`
	API  string `json:"api"`  // "ok", or why /readyz did not say so
	Etcd string `json:"etcd"` // "ok", or why /readyz/etcd did not say so
	// FirstToExpire is the certificate kubeadm manages that expires first.
	FirstToExpire *bootstrap.CertExpiry `json:"firstToExpire,omitempty"`
}

type registryStatus struct {
	Host   string        `json:"host"`
	Checks []checkStatus `json:"checks"`
}

type checkStatus struct {
	Check   string     `json:"check"`
	Status  run.Status `json:"status"`
	Message string     `json:"message"`
}

type dnsRecordStatus struct {
	Name     string `json:"name"`
	UpToDate bool   `json:"upToDate"`
	// Differs is what boot addons would write, when the record is not so.
	Differs string `json:"differs,omitempty"`
}

// problem adds one reason the cluster is degraded, on one line.
func (r *statusReport) problem(format string, a ...any) {
	r.Problems = append(r.Problems, oneLine(fmt.Sprintf(format, a...)))
}

// warning adds one thing to look at that does not make the cluster
// degraded, on one line.
func (r *statusReport) warning(format string, a ...any) {
	r.Warnings = append(r.Warnings, oneLine(fmt.Sprintf(format, a...)))
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// runStatus gathers the report, prints it and returns an exit-1 error when
// it lists problems.
func runStatus(ctx context.Context, g *globals, inv *inventory.Inventory, f statusFlags, log *slog.Logger) error {
	var roots *x509.CertPool
	if f.registryCA != "" {
		var err error
		if roots, err = verify.LoadRoots(f.registryCA); err != nil {
			return withExit(ExitInvalid, fmt.Errorf("--registry-ca: %w", err))
		}
	}
	r, err := gatherStatus(ctx, inv, f, roots, bootstrap.ConnectOptions{Parallel: g.Parallel, Log: log}, log, time.Now())
	if err != nil {
		return err
	}
	if g.Output == "json" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "%s\n", b)
	} else {
		printStatus(g.stdout, r)
	}
	if len(r.Problems) > 0 {
		return withExit(ExitFailure, fmt.Errorf("cluster %s is degraded: %d problem(s)", inv.Metadata.Name, len(r.Problems)))
	}
	return nil
}

// gatherStatus reads everything status shows, changing nothing, and lists
// the problems and warnings it found.
func gatherStatus(ctx context.Context, inv *inventory.Inventory, f statusFlags, roots *x509.CertPool, co bootstrap.ConnectOptions, log *slog.Logger, now time.Time) (*statusReport, error) {
	r := &statusReport{Cluster: inv.Metadata.Name, Problems: []string{}, Warnings: []string{}, Releases: []addons.ManagedRelease{}}
	hosts, certs, certErr, err := bootstrap.HostsStatus(ctx, inv, co)
	if err != nil {
		return nil, err
	}
	r.Hosts = hosts
	cp := inv.ControlPlane().Name
	r.ControlPlane.Host = cp
	switch {
	case certErr != nil:
		r.problem("control plane %s: certificates: %v", cp, certErr)
	default:
		first := bootstrap.FirstToExpire(certs)
		r.ControlPlane.FirstToExpire = &first
		left := first.Expires.Sub(now)
		switch {
		case left <= 0:
			r.problem("control plane %s: certificate %s expired on %s (kubeadm certs renew)", cp, first.Name, first.Expires.Format(time.DateOnly))
		case left < bootstrap.CertWarning:
			r.warning("control plane %s: certificate %s expires on %s, in %d day(s) (kubeadm certs renew)", cp, first.Name, first.Expires.Format(time.DateOnly), int(left.Hours()/24))
		}
	}

	// The tunnel, when the API server needs one, serves every read below.
	closeTunnel, tunnelErr := bootstrap.EnsureAPI(ctx, inv, log)
	if tunnelErr == nil {
		defer closeTunnel()
	}
	api := apiStatus(ctx, inv, tunnelErr)
	r.ControlPlane.API, r.ControlPlane.Etcd = api.Ready, api.Etcd
	if api.Ready != "ok" {
		r.problem("API server: %s", api.Ready)
	}
	if api.Etcd != "ok" {
		r.problem("etcd: %s", api.Etcd)
	}
	if api.NodesErr != nil {
		r.problem("Nodes: %v", api.NodesErr)
	}
	for i := range r.Hosts {
		h := &r.Hosts[i]
		switch {
		case !h.Reachable:
			r.problem("host %s: unreachable over SSH: %s", h.Name, h.Error)
		case h.Error != "":
			r.problem("host %s: %s", h.Name, h.Error)
		}
		if api.Nodes == nil {
			continue
		}
		n, ok := api.Nodes[h.Name]
		switch {
		case !ok:
			r.problem("host %s: no Node %s (not joined)", h.Name, h.Name)
			continue
		case n.Ready == "":
			r.problem("host %s: Node has no Ready condition yet", h.Name)
		case n.Ready != "True":
			r.problem("host %s: Node not Ready: Ready=%s (%s: %s)", h.Name, n.Ready, n.Reason, n.Message)
		}
		h.Node = &n
	}

	helm := addons.Helm{Kubeconfig: inv.Cluster.Kubeconfig, Log: func(format string, v ...any) { log.Debug(fmt.Sprintf(format, v...)) }}
	if rels, err := helm.Managed(); err != nil {
		r.problem("releases: %v", err)
	} else {
		r.Releases = rels
		for _, rel := range rels {
			if rel.Status != "deployed" {
				r.problem("release %s/%s: %s (revision %d)", rel.Namespace, rel.Name, rel.Status, rel.Revision)
			}
		}
	}

	r.Registry = registryStatus{Host: inv.Registry.Host, Checks: []checkStatus{}}
	err = verify.ReadOnly(ctx, verify.Options{Inventory: inv, Roots: roots, DNSServer: f.dnsServer}, func(e run.Event) {
		r.Registry.Checks = append(r.Registry.Checks, checkStatus{Check: e.Host, Status: e.Status, Message: e.Message})
		switch e.Status {
		case run.Failed:
			r.problem("registry %s: %s", e.Host, e.Message)
		case run.Warning:
			r.warning("registry %s: %s", e.Host, e.Message)
		}
	})
	var failed bool
	for _, c := range r.Registry.Checks {
		failed = failed || c.Status == run.Failed
	}
	if err != nil && !failed { // it could not check at all
		r.problem("registry: %v", err)
	}

	if err := dnsRecordStatusOf(ctx, inv, f, r); err != nil {
		r.problem("DNS record %s: %v", inv.Registry.Host, err)
	}
	r.Healthy = len(r.Problems) == 0
	return r, nil
}

// apiStatus reads the API server's health and Nodes, unless the tunnel it
// needs could not be opened (tunnelErr); what failed is in the result, for
// the report.
func apiStatus(ctx context.Context, inv *inventory.Inventory, tunnelErr error) bootstrap.APIStatus {
	s, err := bootstrap.APIStatus{}, tunnelErr
	if err == nil {
		s, err = bootstrap.ReadAPIStatus(ctx, inv.Cluster.Kubeconfig)
	}
	if err != nil {
		return bootstrap.APIStatus{Ready: err.Error(), Etcd: "not checked: the API server was not reached", NodesErr: errors.New("not listed: the API server was not reached")}
	}
	return s
}

// dnsRecordStatusOf reads the registry's DNS record as boot addons would
// before writing it, with dns.provider route53.
func dnsRecordStatusOf(ctx context.Context, inv *inventory.Inventory, f statusFlags, r *statusReport) error {
	d, err := dnsFor(ctx, inv, addonsFlags{route53Endpoint: f.route53Endpoint})
	if err != nil || d == nil {
		return err
	}
	differs, err := d.Drift(ctx)
	if err != nil {
		return err
	}
	r.DNSRecord = &dnsRecordStatus{Name: inv.Registry.Host, UpToDate: differs == "", Differs: differs}
	if differs != "" {
		r.problem("DNS record %s differs from what boot writes: boot addons would %s", inv.Registry.Host, differs)
	}
	return nil
}

// printStatus renders the report for a person.
func printStatus(w io.Writer, r *statusReport) {
	state := "healthy"
	if !r.Healthy {
		state = "degraded"
	}
	fmt.Fprintf(w, "Cluster %s: %s\n\n", r.Cluster, state)
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tROLE\tADDRESS\tSSH\tOS\tNODE\tKUBELET\tKUBEADM")
	for _, h := range r.Hosts {
		ssh, node, kubelet := "ok", "-", "-"
		if !h.Reachable {
			ssh = "unreachable"
		}
		if h.Node != nil {
			node, kubelet = "NotReady", dash(h.Node.Kubelet)
			if h.Node.Ready == "True" {
				node = "Ready"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.Role, h.Address, ssh, dash(h.OS), node, kubelet, dash(h.Kubeadm))
	}
	tw.Flush()

	cp := r.ControlPlane
	fmt.Fprintf(w, "\nControl plane %s: API %s, etcd %s", cp.Host, short(cp.API), short(cp.Etcd))
	if c := cp.FirstToExpire; c != nil {
		fmt.Fprintf(w, ", first certificate to expire: %s on %s", c.Name, c.Expires.Format(time.DateOnly))
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w)
	if len(r.Releases) == 0 {
		fmt.Fprintln(w, "Releases: none of boot's")
	} else {
		fmt.Fprintln(tw, "RELEASE\tCHART\tVERSION\tAPP\tSTATUS\tREVISION")
		for _, rel := range r.Releases {
			fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%d\n", rel.Namespace, rel.Name, rel.Chart, rel.Version, dash(rel.AppVersion), rel.Status, rel.Revision)
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\nRegistry %s:\n", r.Registry.Host)
	for _, c := range r.Registry.Checks {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.Check, c.Status, c.Message)
	}
	tw.Flush()
	if d := r.DNSRecord; d != nil {
		if d.UpToDate {
			fmt.Fprintf(w, "DNS record %s: as boot writes it\n", d.Name)
		} else {
			fmt.Fprintf(w, "DNS record %s: differs (boot addons would %s)\n", d.Name, d.Differs)
		}
	}

	for _, list := range []struct {
		title string
		lines []string
	}{{"Problems", r.Problems}, {"Warnings", r.Warnings}} {
		if len(list.lines) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", list.title)
		for _, l := range list.lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}

// short is a health result for the summary line: "ok", or "failing" (the
// reason is among the problems).
func short(health string) string {
	if health == "ok" {
		return "ok"
	}
	return "failing"
}
