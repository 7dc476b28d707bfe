package cmd

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"
	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bootctl/boot/addons"
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
	if _, err := netip.ParseAddr(host); err != nil && (len(host) > 253 || !hostnameRe.MatchString(host)) {
		return fmt.Errorf("host %q is neither an IP address nor a DNS name", host)
	}
	*v = dnsServerValue(s)
	return nil
}

var hostnameRe = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$`)

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

// verifyReport collects the checks' results as events; failures make the
// command fail.
type verifyReport struct {
	out     *printer
	failed  []string
	lenient map[string]bool // checks whose failures are only warnings
}

func (r *verifyReport) ok(check, msg string) {
	r.out.Emit(Event{Phase: "verify", Host: check, Status: bootstrap.StatusOK, Message: msg})
}

func (r *verifyReport) warn(check, msg string) {
	r.out.Emit(Event{Phase: "verify", Host: check, Status: bootstrap.StatusWarning, Message: msg})
}

func (r *verifyReport) fail(check, msg string) {
	if r.lenient[check] {
		r.warn(check, msg)
		return
	}
	r.out.Emit(Event{Phase: "verify", Host: check, Status: bootstrap.StatusFailed, Message: msg})
	r.failed = append(r.failed, check)
}

func runVerify(ctx context.Context, inv *inventory.Inventory, f verifyFlags, log *slog.Logger, out *printer) error {
	start := time.Now()
	var roots *x509.CertPool
	if f.registryCA != "" {
		var err error
		if roots, err = loadRoots(f.registryCA); err != nil {
			return withExit(ExitInvalid, fmt.Errorf("--registry-ca: %w", err))
		}
	}
	closeTunnel, err := ensureAPI(ctx, inv, log)
	if err != nil {
		return err
	}
	defer closeTunnel()
	cfg, err := clientcmd.BuildConfigFromFlags("", inv.Cluster.Kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", inv.Cluster.Kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
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
	// The metrics (and with --through-service the registry) are reached on
	// the Service, through the control plane.
	cp, err := bootstrap.DialHost(ctx, inv, inv.ControlPlane(), log)
	if err != nil {
		return err
	}
	defer cp.Close()
	forward := func(port string) (string, func(), error) {
		fwd, err := nodes.Forward(cp, "127.0.0.1:0", net.JoinHostPort(svc.Spec.ClusterIP, port))
		if err != nil {
			return "", nil, err
		}
		return fwd.Addr(), func() { fwd.Close() }, nil
	}

	r := &verifyReport{out: out}
	if f.justInstalled {
		r.lenient = map[string]bool{"certificate": true, "dns": true}
	}
	registry := inv.Registry.Host
	nameOpts := []name.Option{name.StrictValidation}
	if f.throughService {
		addr, done, err := forward("5000")
		if err != nil {
			return err
		}
		defer done()
		registry = addr
		nameOpts = append(nameOpts, name.Insecure)
	}
	var resolve func(ctx context.Context, host string) ([]string, error)
	if f.dnsServer != "" {
		resolve = func(ctx context.Context, host string) ([]string, error) { return lookupAt(ctx, f.dnsServer, host) }
	}
	transport := registryTransport(roots, f.insecure, inv.Registry.Host, resolve)
	if !f.throughService {
		r.tlsCheck(ctx, transport, inv.Registry.Host, "443")
	}
	r.pushPull(ctx, registry, nameOpts, transport, creds)

	if slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "metrics" }) {
		addr, done, err := forward("5001")
		if err != nil {
			return err
		}
		defer done()
		r.cache(ctx, "http://"+addr+"/metrics")
	} else {
		r.warn("cache", "the registry's metrics are off (metrics.enabled): cannot tell whether Redis is used")
	}
	r.certificate(ctx, cfg, ns)
	if inv.DNS.Provider != inventory.DNSNone {
		// A record boot has just written is served once the zone's name
		// servers have it: Route53 says INSYNC within about a minute, a
		// server that mirrors the zone (CoreDNS' route53 plugin) after its
		// next refresh.
		var settle time.Duration
		if f.justInstalled {
			settle = time.Minute
		}
		r.dns(ctx, f.dnsServer, inv.Registry.Host, inv.RecordAddresses(), settle)
	}
	if len(r.failed) > 0 {
		return fmt.Errorf("verify: %s failed, see above", strings.Join(r.failed, ", "))
	}
	out.Emit(Event{Phase: "verify", Status: bootstrap.StatusOK, Message: "the registry works", Duration: time.Since(start)})
	return nil
}

// pushPull logs in, pushes a small generated image, pulls it back, compares
// digests and deletes it again.
func (r *verifyReport) pushPull(ctx context.Context, registry string, opts []name.Option, tr http.RoundTripper, creds *addons.RegistryCredentials) {
	ref, err := name.NewTag(registry+"/boot-verify/probe:"+strconv.FormatInt(time.Now().Unix(), 10), opts...)
	if err != nil {
		r.fail("push", err.Error())
		return
	}
	ro := []remote.Option{remote.WithContext(ctx), remote.WithTransport(tr),
		remote.WithAuth(&authn.Basic{Username: creds.Username(), Password: creds.Password()})}
	// Without credentials the registry must refuse.
	if _, err := remote.Head(ref, remote.WithContext(ctx), remote.WithTransport(tr)); err == nil {
		r.fail("auth", "the registry answered without credentials")
	} else {
		r.ok("auth", "refused without credentials")
	}
	img, err := random.Image(64<<10, 2)
	if err != nil {
		r.fail("push", err.Error())
		return
	}
	want, _ := img.Digest()
	pushStart := time.Now()
	if err := remote.Write(ref, img, ro...); err != nil {
		r.fail("push", fmt.Sprintf("push %s as %s: %v", ref, creds.Username(), err))
		return
	}
	r.ok("push", fmt.Sprintf("pushed %s as %s (%s)", ref, creds.Username(), time.Since(pushStart).Round(time.Millisecond)))
	pulled, err := remote.Image(ref, ro...)
	if err == nil {
		var got v1.Hash
		if got, err = pulled.Digest(); err == nil && got != want {
			err = fmt.Errorf("digest %s, pushed %s", got, want)
		}
	}
	if err == nil {
		err = readLayers(pulled)
	}
	if err != nil {
		r.fail("pull", fmt.Sprintf("pull %s: %v", ref, err))
		return
	}
	r.ok("pull", "pulled it back whole, digest "+want.String())
	if err := remote.Delete(ref.Context().Digest(want.String()), ro...); err != nil {
		r.warn("cleanup", fmt.Sprintf("delete %s: %v (the next garbage collection removes it once untagged)", ref, err))
	}
}

// cache reads the registry's blob-descriptor cache counters.
func (r *verifyReport) cache(ctx context.Context, url string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		r.warn("cache", err.Error())
		return
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		r.warn("cache", "the registry's metrics: "+err.Error())
		return
	}
	defer resp.Body.Close()
	counters := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && strings.HasPrefix(f[0], "registry_storage_cache_") {
			v, _ := strconv.ParseFloat(f[1], 64)
			counters[f[0]] = v
		}
	}
	req2, hits := counters["registry_storage_cache_requests_total"], counters["registry_storage_cache_hits_total"]
	if req2 == 0 {
		r.warn("cache", "the blob-descriptor cache has served no request (is Redis enabled?)")
		return
	}
	r.ok("cache", fmt.Sprintf("Redis blob-descriptor cache in use: %.0f requests, %.0f hits (%.0f%%), %.0f errors",
		req2, hits, 100*hits/req2, counters["registry_storage_cache_errors_total"]))
}

var certificatesGVR = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}

// certificate reports the Ready condition of the registry's Certificates.
func (r *verifyReport) certificate(ctx context.Context, cfg *rest.Config, namespace string) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		r.warn("certificate", err.Error())
		return
	}
	list, err := dyn.Resource(certificatesGVR).Namespace(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		r.warn("certificate", "cannot list cert-manager Certificates: "+err.Error())
		return
	}
	if len(list.Items) == 0 {
		r.warn("certificate", "no Certificate in "+namespace+" (yet): cert-manager makes one from the Ingress")
		return
	}
	for _, c := range list.Items {
		conds, _, _ := unstructured.NestedSlice(c.Object, "status", "conditions")
		ready, msg := false, "no Ready condition yet"
		for _, x := range conds {
			m, _ := x.(map[string]any)
			if m["type"] == "Ready" {
				ready, msg = m["status"] == "True", fmt.Sprint(m["message"])
			}
		}
		if ready {
			r.ok("certificate", c.GetName()+": ready: "+msg)
		} else {
			r.fail("certificate", c.GetName()+": not ready: "+msg)
		}
	}
}

// dns checks that host resolves to exactly the expected addresses, asking
// server (HOST:PORT) when it is set, else this machine's resolver. A wrong
// answer is asked again every 2 seconds for up to settle.
func (r *verifyReport) dns(ctx context.Context, server, host string, want []string, settle time.Duration) {
	w := slices.Clone(want)
	slices.Sort(w)
	list := func(addrs []string) string {
		if len(addrs) == 0 {
			return "no address"
		}
		return strings.Join(addrs, ", ")
	}
	asked := ""
	if server != "" {
		asked = " (asked " + server + ")"
	}
	deadline := time.Now().Add(settle)
	for {
		got, err := resolveOnce(ctx, server, host)
		slices.Sort(got)
		problem := ""
		switch {
		case err != nil:
			problem = host + ": " + err.Error()
		case !slices.Equal(got, w):
			problem = fmt.Sprintf("%s resolves to %s, want %s%s", host, list(got), list(w), asked)
		default:
			r.ok("dns", host+" resolves to "+list(got)+asked)
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.fail("dns", problem)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

// resolveOnce asks server (HOST:PORT) for host's addresses, or this
// machine's resolver when server is empty, waiting at most 10 seconds.
func resolveOnce(ctx context.Context, server, host string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if server == "" {
		return net.DefaultResolver.LookupHost(ctx, host)
	}
	return lookupAt(ctx, server, host)
}

// lookupAt asks the DNS server at server (HOST:PORT) for host's A and AAAA
// records, over UDP, and over TCP when the answer comes truncated. Unlike the
// system resolver it reads no hosts file and appends no search domain: the
// answer is that server's.
func lookupAt(ctx context.Context, server, host string) ([]string, error) {
	fq := strings.ToLower(strings.TrimSuffix(host, ".")) + "."
	name, err := dnsmessage.NewName(fq)
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, typ := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA} {
		q := dnsmessage.Question{Name: name, Type: typ, Class: dnsmessage.ClassINET}
		m, err := askDNS(ctx, server, q)
		if err != nil {
			return nil, fmt.Errorf("asking %s: %w", server, err)
		}
		switch m.RCode {
		case dnsmessage.RCodeSuccess:
		case dnsmessage.RCodeNameError:
			return nil, fmt.Errorf("%s answered NXDOMAIN (no such name)", server)
		default:
			return nil, fmt.Errorf("%s answered %s to the %s query", server, rcodeName(m.RCode), strings.TrimPrefix(typ.String(), "Type"))
		}
		// The names that lead to the addresses: host and the CNAMEs the
		// answer gives for it.
		cnames := map[string]string{}
		for _, a := range m.Answers {
			if c, ok := a.Body.(*dnsmessage.CNAMEResource); ok {
				cnames[strings.ToLower(a.Header.Name.String())] = strings.ToLower(c.CNAME.String())
			}
		}
		names := map[string]bool{fq: true}
		for n, hops := fq, 0; cnames[n] != "" && hops < 8; hops++ {
			n = cnames[n]
			names[n] = true
		}
		for _, a := range m.Answers {
			if !names[strings.ToLower(a.Header.Name.String())] {
				continue
			}
			switch b := a.Body.(type) {
			case *dnsmessage.AResource:
				addrs = append(addrs, netip.AddrFrom4(b.A).String())
			case *dnsmessage.AAAAResource:
				addrs = append(addrs, netip.AddrFrom16(b.AAAA).String())
			}
		}
	}
	return addrs, nil
}

func rcodeName(c dnsmessage.RCode) string {
	switch c {
	case dnsmessage.RCodeServerFailure:
		return "SERVFAIL"
	case dnsmessage.RCodeRefused:
		return "REFUSED (it does not serve that name)"
	case dnsmessage.RCodeFormatError:
		return "FORMERR"
	case dnsmessage.RCodeNotImplemented:
		return "NOTIMP"
	}
	return c.String()
}

// askDNS sends one question to server: over UDP, up to 3 tries of 3 seconds
// each within ctx, then over TCP when the UDP answer is truncated.
func askDNS(ctx context.Context, server string, q dnsmessage.Question) (*dnsmessage.Message, error) {
	req := dnsmessage.Message{Header: dnsmessage.Header{ID: uint16(rand.Uint32()), RecursionDesired: true}, Questions: []dnsmessage.Question{q}}
	var opt dnsmessage.ResourceHeader
	if err := opt.SetEDNS0(1232, dnsmessage.RCodeSuccess, false); err != nil {
		return nil, err
	}
	req.Additionals = []dnsmessage.Resource{{Header: opt, Body: &dnsmessage.OPTResource{}}}
	msg, err := req.Pack()
	if err != nil {
		return nil, err
	}
	var m *dnsmessage.Message
	for try := 0; try < 3; try++ {
		m, err = exchangeDNS(ctx, "udp", server, msg, req.Header.ID, q)
		var ne net.Error
		if err == nil || ctx.Err() != nil || !errors.As(err, &ne) || !ne.Timeout() {
			break
		}
	}
	if err == nil && m.Truncated {
		m, err = exchangeDNS(ctx, "tcp", server, msg, req.Header.ID, q)
	}
	return m, err
}

// exchangeDNS sends a query message over network and returns the answer to
// it, waiting at most 3 seconds and never past ctx. Over UDP, datagrams that
// do not answer the query are ignored.
func exchangeDNS(ctx context.Context, network, server string, msg []byte, id uint16, q dnsmessage.Question) (*dnsmessage.Message, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, server)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	deadline := time.Now().Add(3 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := c.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if network == "tcp" {
		msg = append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)
	}
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	buf := make([]byte, 65535)
	for {
		var n int
		if network == "tcp" {
			var size [2]byte
			if _, err = io.ReadFull(c, size[:]); err == nil {
				n = int(binary.BigEndian.Uint16(size[:]))
				_, err = io.ReadFull(c, buf[:n])
			}
		} else {
			n, err = c.Read(buf)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		var m dnsmessage.Message
		if m.Unpack(buf[:n]) == nil && m.Response && m.ID == id &&
			(len(m.Questions) == 0 || len(m.Questions) == 1 && m.Questions[0].Type == q.Type && strings.EqualFold(m.Questions[0].Name.String(), q.Name.String())) {
			return &m, nil
		}
		if network == "tcp" {
			return nil, errors.New("the answer does not match the question")
		}
	}
}

// readLayers reads every layer of img, so that a missing blob shows.
func readLayers(img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
