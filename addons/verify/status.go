package verify

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/internal/dnsquery"
	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
)

// ReadOnly runs the checks of Run that change nothing and need no
// credentials, for `boot status`: the certificate the registry presents
// at https://<registry.host> ("tls"), the Redis cache counters ("cache"),
// cert-manager's Certificate ("certificate") and, with a DNS provider, the
// registry host's addresses ("dns"). Nothing is pushed, and the registry's
// credentials are not read. Only o's Inventory, Insecure, Roots and
// DNSServer are used. It reports one event per result and returns an error
// naming the checks that failed, or why it could not check.
func ReadOnly(ctx context.Context, o Options, report run.Reporter) error {
	inv := o.Inventory
	cfg, cs, err := clientOf(inv)
	if err != nil {
		return err
	}
	c := &checks{report: report, cacheName: cacheName(inv)}
	c.add(TLS(ctx, Transport(o.Roots, o.Insecure, inv.Registry.Host, resolver(o.DNSServer)), inv.Registry.Host, "443"))
	ns := inv.Registry.Namespace
	if svc, err := cs.CoreV1().Services(ns).Get(ctx, addons.DefaultRegistryRelease, metav1.GetOptions{}); err != nil {
		c.fail("cache", fmt.Sprintf("the registry's Service %s/%s: %v", ns, addons.DefaultRegistryRelease, err))
	} else {
		c.metrics(ctx, cfg, cs, svc)
	}
	c.certificate(ctx, cfg, ns)
	if inv.DNS.Provider != inventory.DNSNone {
		c.dns(ctx, o.DNSServer, inv.Registry.Host, inv.RecordAddresses(), 0)
	}
	if len(c.failed) > 0 {
		return fmt.Errorf("registry: %d check(s) failed", len(c.failed))
	}
	return nil
}

// resolver resolves host names by asking server (HOST:PORT) only; nil, for
// this machine's resolver, when server is empty.
func resolver(server string) func(ctx context.Context, host string) ([]string, error) {
	if server == "" {
		return nil
	}
	return func(ctx context.Context, host string) ([]string, error) {
		return dnsquery.LookupHost(ctx, server, host)
	}
}
