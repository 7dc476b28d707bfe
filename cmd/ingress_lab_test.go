//go:build lab

package cmd

import (
	"compress/gzip"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"gopkg.in/yaml.v3"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/addons/verify"
	"github.com/bootctl/boot/internal/dnsquery"
	"github.com/bootctl/boot/internal/route53test"
	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/lab"
)

// labWorld is the lab's outside world, as `boot lab up` recorded it: moto
// as Route53 (zone lab.test), the bundle's CoreDNS serving that zone (and
// nothing else) on the lab bridge, and Pebble as the ACME CA.
type labWorld struct {
	lab.Lab
}

// loadLabWorld reads the lab's state and gives boot (this process) the
// key the lab's moto accepts.
func loadLabWorld(t *testing.T, dir string) labWorld {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var w labWorld
	if err := json.Unmarshal(data, &w.Lab); err != nil {
		t.Fatal(err)
	}
	if w.Route53Endpoint == "" || w.DNSServer == "" || w.ACMEDirectory == "" || w.ACMERoot == "" {
		t.Fatalf("the lab's state has no outside world (Route53 %q, DNS %q, ACME %q, root %q)", w.Route53Endpoint, w.DNSServer, w.ACMEDirectory, w.ACMERoot)
	}
	route53test.SetCredentialsEnv(t, lab.LabAWSKey, lab.LabAWSKey)
	return w
}

// flags point boot at the lab's Route53 and, for verify's DNS check and
// the registry's name, at its DNS server.
func (w labWorld) flags() []string {
	return []string{"--route53-endpoint", w.Route53Endpoint, "--dns-server", w.DNSServer}
}

// recordSets lists the lab zone's record sets as "name TYPE ttl values".
func (w labWorld) recordSets(t *testing.T) []string {
	t.Helper()
	sets, err := w.listRecordSets()
	if err != nil {
		t.Fatalf("list the lab zone's records: %v", err)
	}
	return sets
}

func (w labWorld) listRecordSets() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := addons.NewRoute53Client(ctx, addons.Route53Config{Endpoint: w.Route53Endpoint})
	if err != nil {
		return nil, err
	}
	var sets []string
	in := &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(w.Route53ZoneID)}
	for {
		out, err := c.ListResourceRecordSets(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, rs := range out.ResourceRecordSets {
			var values []string
			for _, r := range rs.ResourceRecords {
				values = append(values, aws.ToString(r.Value))
			}
			slices.Sort(values)
			sets = append(sets, fmt.Sprintf("%s %s %d %s", aws.ToString(rs.Name), rs.Type, aws.ToInt64(rs.TTL), strings.Join(values, " ")))
		}
		if !out.IsTruncated {
			return sets, nil
		}
		in.StartRecordName, in.StartRecordType = out.NextRecordName, out.NextRecordType
	}
}

// checkRecord checks the zone holds the registry's A record (pointing at
// the ingress hosts) and boot's ownership TXT record, or neither.
func (w labWorld) checkRecord(t *testing.T, inv *inventory.Inventory, want bool) {
	t.Helper()
	sets := strings.Join(w.recordSets(t), "\n")
	host := inv.Registry.Host + "."
	addrs := slices.Clone(inv.RecordAddresses())
	slices.Sort(addrs)
	wantA := host + " A 300 " + strings.Join(addrs, " ")
	hasA := strings.Contains(sets, wantA)
	hasTXT := strings.Contains(sets, host+" TXT ")
	switch {
	case want && (!hasA || !hasTXT):
		t.Errorf("the zone lab.test lacks %q or boot's TXT record:\n%s", wantA, sets)
	case !want && (strings.Contains(sets, host+" A ") || hasTXT):
		t.Errorf("the zone lab.test still holds the registry's records:\n%s", sets)
	}
}

// challengeRecords are the zone's DNS-01 challenge records.
func challengeRecords(sets []string) []string {
	var out []string
	for _, s := range sets {
		if strings.HasPrefix(s, "_acme-challenge.") {
			out = append(out, s)
		}
	}
	return out
}

// editInventory writes to dst the inventory src with edit applied to it.
func editInventory(t *testing.T, src, dst string, edit func(m map[string]any)) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := inventory.Load(dst); err != nil {
		t.Fatalf("the edited inventory %s: %v", dst, err)
	}
	return dst
}

// section returns m[key] as a map, made when missing.
func section(m map[string]any, key string) map[string]any {
	s, ok := m[key].(map[string]any)
	if !ok {
		s = map[string]any{}
		m[key] = s
	}
	return s
}

// registryCertificate waits until the registry's Certificate is Ready and
// its Secret holds a certificate other than previous (a serial number;
// empty for any), checks that Secret's chain against Pebble's root for the
// registry's name and returns the leaf's serial number.
func registryCertificate(t *testing.T, k kube, w labWorld, host, previous string, within time.Duration) string {
	t.Helper()
	ns := "docker-registry"
	var leaf *x509.Certificate
	var chain []*x509.Certificate
	eventually(t, "the registry's Certificate Ready with a new certificate", within, func() string {
		out, err := k.run("", "-n", ns, "get", "certificates", "-o",
			`jsonpath={range .items[*]}{.metadata.name} {.spec.secretName} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		if err != nil {
			return err.Error()
		}
		f := strings.Fields(out)
		if len(f) != 3 || f[2] != "True" {
			return "certificates: " + out + " " + k.must("", "get", "orders,challenges", "-A", "-o", "wide")
		}
		enc, err := k.run("", "-n", ns, "get", "secret", f[1], "-o", `jsonpath={.data.tls\.crt}`)
		if err != nil {
			return err.Error()
		}
		pemData, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return err.Error()
		}
		chain = chain[:0]
		for rest := pemData; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return err.Error()
			}
			chain = append(chain, c)
		}
		if len(chain) == 0 {
			return "the certificate's Secret holds no certificate"
		}
		leaf = chain[0]
		if leaf.SerialNumber.String() == previous {
			return "still the previous certificate " + previous
		}
		return ""
	})
	rootPEM, err := os.ReadFile(w.ACMERoot)
	if err != nil {
		t.Fatal(err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("%s: no certificate", w.ACMERoot)
	}
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	verified, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter})
	if err != nil {
		t.Fatalf("the registry's certificate does not verify against Pebble's root: %v", err)
	}
	t.Logf("the registry's certificate (serial %s): %s", leaf.SerialNumber, verify.DescribeChain(verified[0]))
	return leaf.SerialNumber.String()
}

// verifyThroughIngress runs boot verify as a user reaches the registry:
// https://<registry.host> through the ingress, the name resolved by the
// lab's DNS, the certificate checked against Pebble's root only.
func verifyThroughIngress(t *testing.T, inv string, w labWorld) {
	t.Helper()
	parsed, err := inventory.Load(inv)
	if err != nil {
		t.Fatal(err)
	}
	host := parsed.Registry.Host
	roots, err := verify.LoadRoots(w.ACMERoot)
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(ctx context.Context, host string) ([]string, error) {
		return dnsquery.LookupHost(ctx, w.DNSServer, host)
	}
	tr := verify.Transport(roots, false, host, resolve)
	// The ingress controller loads the certificate's Secret when it sees it
	// change: a moment after the Certificate is Ready.
	start := time.Now()
	eventually(t, "the ingress serves the registry's certificate", 2*time.Minute, func() string {
		if e := verify.TLS(context.Background(), tr, host, "443"); e.Status == run.Failed {
			return e.Message
		}
		return ""
	})
	t.Logf("the ingress served the registry's certificate %s after it was Ready", time.Since(start).Round(time.Millisecond))
	code, stdout, stderr := runBoot(t, "verify", "-i", inv, "--registry-ca", w.ACMERoot, "--dns-server", w.DNSServer, "-o", "json")
	t.Logf("boot verify through the ingress: exit %d\n%s%s", code, stdout, stderr)
	if code != ExitOK {
		t.Fatalf("boot verify through the ingress: exit %d", code)
	}
	for _, check := range []string{"tls", "auth", "push", "pull", "certificate", "dns"} {
		if !strings.Contains(stdout, `"host":"`+check+`","status":"ok"`) {
			t.Errorf("boot verify through the ingress: no ok %s check", check)
		}
	}
}

// pushBig pushes an image with one layer of size random bytes to ref and
// returns how long the push took.
func pushBig(t *testing.T, k kube, ref name.Reference, seed uint64, size int64, opts ...remote.Option) time.Duration {
	t.Helper()
	var key [32]byte
	key[0] = byte(seed)
	l := stream.NewLayer(io.NopCloser(io.LimitReader(rand.NewChaCha8(key), size)), stream.WithCompressionLevel(gzip.NoCompression))
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := remote.Write(ref, img, opts...); err != nil {
		out, _ := k.run("", "-n", "docker-registry", "get", "pods,endpointslices", "-o", "wide")
		t.Fatalf("push %s (a %d MiB layer) after %s: %v\n%s", ref, size>>20, time.Since(start).Round(time.Millisecond), err, out)
	}
	took := time.Since(start)
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	// The registry holds the whole layer under its digest.
	blob, err := remote.Layer(ref.Context().Digest(d.String()), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := blob.Size(); err != nil || n < size {
		t.Fatalf("the pushed layer %s: %d bytes (%v), want at least %d", d, n, err, size)
	}
	return took
}

// bigPushes pushes an image with a 1 GiB layer through the ingress
// (https://<registry.host>, Traefik, TLS) and another through the
// registry's Service (an SSH tunnel), and reports both times side by side.
func bigPushes(t *testing.T, k kube, inv *inventory.Inventory, w labWorld, svc serviceAccess, password string) {
	t.Helper()
	const size = 1 << 30
	roots, err := verify.LoadRoots(w.ACMERoot)
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(ctx context.Context, host string) ([]string, error) {
		return dnsquery.LookupHost(ctx, w.DNSServer, host)
	}
	tr := verify.Transport(roots, false, inv.Registry.Host, resolve)
	auth := remote.WithAuth(&authn.Basic{Username: "admin", Password: password})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	viaIngress, err := name.NewTag(inv.Registry.Host+"/e2e/big:ingress", name.StrictValidation)
	if err != nil {
		t.Fatal(err)
	}
	ingress := pushBig(t, k, viaIngress, 1, size, auth, remote.WithTransport(tr), remote.WithContext(ctx))
	viaService, err := name.NewTag(svc.addr+"/e2e/big:service", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	service := pushBig(t, k, viaService, 2, size, auth, svc.tr, remote.WithContext(ctx))
	mibps := func(d time.Duration) float64 { return float64(size>>20) / d.Seconds() }
	t.Logf("a 1 GiB layer pushed through the ingress (Traefik, TLS) in %s (%.0f MiB/s), through the Service (SSH tunnel) in %s (%.0f MiB/s): ingress/Service time ratio %.2f",
		ingress.Round(time.Millisecond), mibps(ingress), service.Round(time.Millisecond), mibps(service), ingress.Seconds()/service.Seconds())
	for _, ref := range []name.Tag{viaIngress} {
		if err := remote.Delete(ref, auth, remote.WithTransport(tr), remote.WithContext(ctx)); err != nil {
			t.Logf("delete %s: %v", ref, err)
		}
	}
}

// switchToDNS01 switches the issuer to DNS-01 through the lab's Route53
// (moto) and has the registry's certificate issued again: the challenge's
// TXT record shows up in the zone during the issuance and is gone after.
// It returns the inventory with the DNS-01 issuer.
func switchToDNS01(t *testing.T, k kube, invPath string, w labWorld, host, serial string) string {
	t.Helper()
	dst := editInventory(t, invPath, filepath.Join(filepath.Dir(invPath), "inventory-dns01.yaml"), func(m map[string]any) {
		acme := section(section(m, "registry"), "acme")
		acme["solver"] = "dns01"
		acme["recursiveNameservers"] = []any{w.DNSServer}
	})
	code, stdout, stderr := runBoot(t, append([]string{"addons", "-i", dst, "--timeout", "5m", "-o", "json"}, w.flags()...)...)
	if code != ExitOK {
		t.Fatalf("boot addons with the DNS-01 issuer: exit %d\n%s%s", code, stdout, stderr)
	}
	if !slices.ContainsFunc(parseEvents(t, stdout), func(e event) bool {
		return e.Phase == "addons" && strings.Contains(e.Host, "cluster-issuer") && e.Status == "changed"
	}) {
		t.Errorf("boot addons did not change the issuer for DNS-01:\n%s", stdout)
	}
	// A renewal, as cert-manager does before expiry: the certificate's
	// Secret deleted, the next one comes through the new solver.
	secret := strings.TrimSpace(k.must("", "-n", "docker-registry", "get", "certificates", "-o", "jsonpath={.items[0].spec.secretName}"))
	start := time.Now()
	k.must("", "-n", "docker-registry", "delete", "secret", secret)
	seen := make(chan []string, 1)
	stop := make(chan struct{})
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
		}
	}()
	go func() {
		defer close(seen)
		for {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			if sets, err := w.listRecordSets(); err == nil && len(challengeRecords(sets)) > 0 {
				seen <- challengeRecords(sets)
				return
			}
		}
	}()
	newSerial := registryCertificate(t, k, w, host, serial, 5*time.Minute)
	close(stop)
	stopped = true
	recs := <-seen
	if len(recs) == 0 {
		t.Errorf("no _acme-challenge TXT record was seen in the zone during the DNS-01 issuance")
	} else {
		t.Logf("during the DNS-01 issuance the zone held %s", strings.Join(recs, "; "))
	}
	t.Logf("the certificate was issued again through DNS-01 in %s", time.Since(start).Round(time.Second))
	eventually(t, "the challenge's TXT records gone from the zone", 2*time.Minute, func() string {
		if recs := challengeRecords(w.recordSets(t)); len(recs) > 0 {
			return strings.Join(recs, "; ")
		}
		return ""
	})
	if newSerial == serial {
		t.Errorf("the certificate was not issued again")
	}
	return dst
}
