package cmd

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/addons/verify"
	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
)

type verifyFlags struct {
	throughService bool
	insecure       bool
	// registryCA (a PEM file), when set, holds the only roots the
	// registry's certificate is checked against.
	registryCA string
	// justInstalled: the certificate and DNS may lag a fresh install; their
	// problems are warnings then.
	justInstalled bool
	// dnsServer (HOST:PORT), when set, answers the DNS check instead of
	// this machine's resolver.
	dnsServer string
}

// dnsServerUsage is --dns-server's help, shared by verify, addons and up.
const dnsServerUsage = "check registry.host's DNS by asking this server (HOST:PORT) instead of this machine's resolver: " +
	"the zone's authoritative server (e.g. one of its Route53 name servers) shows a new or changed record before resolver caches expire, " +
	"and answers as the outside world sees it where split-horizon DNS gives this machine other addresses"

// dnsServerValue is a --dns-server flag: HOST:PORT, checked when set.
type dnsServerValue string

func (v *dnsServerValue) String() string { return string(*v) }
func (v *dnsServerValue) Type() string   { return "HOST:PORT" }

func (v *dnsServerValue) Set(s string) error {
	host, port, err := net.SplitHostPort(s)
	switch {
	case err != nil:
		return fmt.Errorf("want HOST:PORT, e.g. ns-1.awsdns-00.com:53, 192.0.2.53:53 or [2001:db8::53]:53 (%v)", err)
	case host == "":
		return fmt.Errorf("%q has no host before the port (want HOST:PORT)", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	if _, err := netip.ParseAddr(host); err != nil && !inventory.IsDNSName(host) {
		return fmt.Errorf("host %q is neither an IP address nor a DNS name", host)
	}
	*v = dnsServerValue(s)
	return nil
}

func newVerifyCmd(g *globals) *cobra.Command {
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the registry end to end: log in, push, pull, cache, certificate, DNS",
		Long: `verify checks the registry boot installed, as a user of it would: it logs in
with the generated credentials (read from their Secret), pushes a small
generated image, pulls it back and compares digests, then deletes it again.
It reports whether the Redis cache is in use (the registry's cache request
and hit counters), the TLS certificate's state (cert-manager's Certificate)
and, with a DNS provider, whether registry.host resolves to the expected
addresses. A failed push or pull, a digest mismatch, a wrong DNS answer or a
certificate that is not ready make it exit 1.

By default it goes to https://<registry.host>, through the ingress, and
reports the certificate chain the registry presents, checked against this
machine's trust store or, with --registry-ca, against those CAs only. With
--dns-server the registry's host name is also resolved by that server.
--through-service goes instead to the registry's Service through an SSH
tunnel to the control plane (to tell registry problems from ingress, DNS or
certificate problems, or where the host name does not resolve yet).

The DNS check asks this machine's resolver by default. --dns-server asks the
given server instead, and only it (no hosts file, no search domains, no
cache): the zone's authoritative server shows the record boot just wrote
before resolvers' caches expire, and under split-horizon DNS it shows what
the outside world sees rather than what this machine is told.`,
		Example: `  # as a user would, through the ingress
  boot verify -i inventory.yaml

  # straight to the registry's Service, through SSH
  boot verify -i inventory.yaml --through-service

  # the record as the zone's authoritative server has it now
  boot verify -i inventory.yaml --dns-server ns-1.awsdns-00.com:53

  # a certificate from a private ACME CA
  boot verify -i inventory.yaml --registry-ca acme-root.pem`,
		Args: usage(cobra.NoArgs),
		RunE: g.withInventory(func(ctx context.Context, inv *inventory.Inventory, log *slog.Logger) error {
			return runVerify(ctx, inv, f, log, newPrinter(g.stdout, g.Output))
		}),
	}
	cmd.Flags().BoolVar(&f.throughService, "through-service", false, "reach the registry's Service through an SSH tunnel to the control plane instead of its host name")
	cmd.Flags().BoolVar(&f.insecure, "insecure-skip-tls-verify", false, "do not check the registry's certificate at all (prefer --registry-ca)")
	cmd.Flags().StringVar(&f.registryCA, "registry-ca", "", "check the registry's certificate against the CA certificates in this PEM file only, instead of this machine's trust store (a private ACME CA's root, the self-signed issuer's CA)")
	cmd.Flags().Var((*dnsServerValue)(&f.dnsServer), "dns-server", dnsServerUsage)
	return cmd
}

// runVerify checks the registry (package verify) and renders its events.
func runVerify(ctx context.Context, inv *inventory.Inventory, f verifyFlags, log *slog.Logger, out *printer) error {
	var roots *x509.CertPool
	if f.registryCA != "" {
		var err error
		if roots, err = verify.LoadRoots(f.registryCA); err != nil {
			return withExit(ExitInvalid, fmt.Errorf("--registry-ca: %w", err))
		}
	}
	closeTunnel, err := bootstrap.EnsureAPI(ctx, inv, log)
	if err != nil {
		return err
	}
	defer closeTunnel()
	return verify.Run(ctx, verify.Options{
		Inventory: inv,
		ControlPlane: func(ctx context.Context) (*nodes.Host, error) {
			return bootstrap.DialHost(ctx, inv, inv.ControlPlane(), log)
		},
		ThroughService: f.throughService, Insecure: f.insecure, Roots: roots,
		JustInstalled: f.justInstalled, DNSServer: f.dnsServer,
	}, out.Emit)
}
