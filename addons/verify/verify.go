// Package verify checks the registry boot installed as a user of it would:
// it logs in with the generated credentials, pushes a small generated image,
// pulls it back and compares digests, then deletes it again. It also reports
// whether the Redis cache is in use, the TLS certificate chain the registry
// presents, cert-manager's Certificate and, with a DNS provider, whether the
// registry's host name resolves to the expected addresses.
//
// Each check's result is a run.Event of phase "verify" whose Host names the
// check: "tls", "auth", "push", "pull", "cleanup", "cache", "certificate",
// "dns".
package verify

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
	"github.com/bootctl/boot/pruner"
)

// Phase is the phase of every event verify reports.
const Phase = "verify"

// Options say which registry to check and how.
type Options struct {
	// Inventory names the registry, its namespace, the cluster's kubeconfig
	// (whose API server must be reachable) and the DNS record's addresses.
	Inventory *inventory.Inventory
	// ControlPlane connects to the control plane; with ThroughService the
	// registry's Service is reached through it. Run closes the host. (The
	// metrics are read through the API server's port-forward to a registry
	// pod: its debug listener is on the pod's loopback.)
	ControlPlane func(ctx context.Context) (*nodes.Host, error)
	// ThroughService goes to the registry's Service instead of
	// https://<registry.host>, through the ingress.
	ThroughService bool
	// Insecure does not check the registry's certificate at all.
	Insecure bool
	// Roots, when set, are the only CAs the registry's certificate is
	// checked against (see LoadRoots); nil: this machine's trust store.
	Roots *x509.CertPool
	// JustInstalled: the certificate and DNS may lag a fresh install; their
	// problems are warnings then, and a wrong DNS answer is asked again for
	// a minute.
	JustInstalled bool
	// DNSServer (HOST:PORT), when set, answers the DNS check and resolves
	// the registry's host name instead of this machine's resolver.
	DNSServer string
}

// checks collects the checks' results, reports them, and remembers which
// failed.
type checks struct {
	report    run.Reporter
	failed    []string
	lenient   map[string]bool // checks whose failures are only warnings
	cacheName string          // the blob-descriptor cache, as events name it
}

// cacheName names the registry's blob-descriptor cache as events do.
func cacheName(inv *inventory.Inventory) string {
	if c := inv.Registry.Cache(); c != inventory.CacheRedis {
		return c
	}
	return "Redis"
}

func event(check string, status run.Status, msg string) run.Event {
	return run.Event{Phase: Phase, Host: check, Status: status, Message: msg}
}

// add reports e, a warning instead of a failure for a lenient check, and
// remembers a failure.
func (c *checks) add(e run.Event) {
	if e.Status == run.Failed {
		if c.lenient[e.Host] {
			e.Status = run.Warning
		} else {
			c.failed = append(c.failed, e.Host)
		}
	}
	c.report.Report(e)
}

func (c *checks) ok(check, msg string)   { c.add(event(check, run.OK, msg)) }
func (c *checks) warn(check, msg string) { c.add(event(check, run.Warning, msg)) }
func (c *checks) fail(check, msg string) { c.add(event(check, run.Failed, msg)) }

// Run checks the registry, reporting one event per check's result and, when
// all passed, a last one "the registry works". It returns an error naming
// the checks that failed, or why it could not check.
func Run(ctx context.Context, o Options, report run.Reporter) error {
	start := time.Now()
	inv := o.Inventory
	cfg, cs, err := clientOf(inv)
	if err != nil {
		return err
	}
	ns := inv.Registry.Namespace
	secret, err := cs.CoreV1().Secrets(ns).Get(ctx, addons.RegistryCredentialsSecret, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("the registry's credentials (Secret %s/%s): %w (run boot addons first)", ns, addons.RegistryCredentialsSecret, err)
	}
	creds, err := addons.RegistryCredentialsFromSecret(secret)
	if err != nil {
		return err
	}
	svc, err := cs.CoreV1().Services(ns).Get(ctx, addons.DefaultRegistryRelease, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("the registry's Service %s/%s: %w", ns, addons.DefaultRegistryRelease, err)
	}
	c := &checks{report: report, cacheName: cacheName(inv)}
	if o.JustInstalled {
		c.lenient = map[string]bool{"certificate": true, "dns": true}
	}
	registry := inv.Registry.Host
	nameOpts := []name.Option{name.StrictValidation}
	transport := Transport(o.Roots, o.Insecure, inv.Registry.Host, resolver(o.DNSServer))
	var tr http.RoundTripper = transport
	if o.ThroughService {
		// The Service is reached through the control plane, and with token
		// authentication the token service's too: the realm the registry
		// names is its public host.
		cp, err := o.ControlPlane(ctx)
		if err != nil {
			return err
		}
		defer cp.Close()
		fwd, err := nodes.Forward(cp, "127.0.0.1:0", net.JoinHostPort(svc.Spec.ClusterIP, "5000"))
		if err != nil {
			return err
		}
		defer fwd.Close()
		registry = fwd.Addr()
		nameOpts = append(nameOpts, name.Insecure)
		if inv.Registry.Auth.Mode == inventory.AuthToken {
			tsvc, err := cs.CoreV1().Services(ns).Get(ctx, addons.RegistryTokenService, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("the registry's token Service %s/%s: %w", ns, addons.RegistryTokenService, err)
			}
			tfwd, err := nodes.Forward(cp, "127.0.0.1:0", net.JoinHostPort(tsvc.Spec.ClusterIP, "5001"))
			if err != nil {
				return err
			}
			defer tfwd.Close()
			tr = pruner.TokenRedirect(transport, registry, &url.URL{Scheme: "http", Host: tfwd.Addr(), Path: "/token"})
		}
	}
	if !o.ThroughService {
		c.add(TLS(ctx, transport, inv.Registry.Host, "443"))
	}
	c.pushPull(ctx, registry, nameOpts, tr, creds)

	c.metrics(ctx, cfg, cs, svc)
	c.certificate(ctx, cfg, ns)
	if inv.DNS.Provider != inventory.DNSNone {
		// A record boot has just written is served once the zone's name
		// servers have it: Route53 says INSYNC within about a minute, a
		// server that mirrors the zone (CoreDNS' route53 plugin) after its
		// next refresh.
		var settle time.Duration
		if o.JustInstalled {
			settle = time.Minute
		}
		c.dns(ctx, o.DNSServer, inv.Registry.Host, inv.RecordAddresses(), settle)
	}
	if len(c.failed) > 0 {
		return fmt.Errorf("verify: %s failed, see above", strings.Join(c.failed, ", "))
	}
	report.Report(run.Event{Phase: Phase, Status: run.OK, Message: "the registry works", Duration: time.Since(start)})
	return nil
}

// clientOf is a client of the cluster at the inventory's kubeconfig.
func clientOf(inv *inventory.Inventory) (*rest.Config, kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", inv.Cluster.Kubeconfig)
	if err != nil {
		return nil, nil, fmt.Errorf("kubeconfig %s: %w", inv.Cluster.Kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, cs, nil
}
