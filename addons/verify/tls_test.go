package verify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/dnsquery"
	"github.com/bootctl/boot/internal/route53test"
	"github.com/bootctl/boot/internal/run"
)

// testCA is a CA key pair that signs test certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, cn string) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// serve starts an HTTPS server on loopback whose certificate for host the
// CA signed (no subject, only the name, as ACME CAs issue them), and
// returns its port.
func (ca testCA) serve(t *testing.T, host string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return port
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTLS: the registry's certificate is checked against the
// given roots only, its host name resolved by the given DNS server.
func TestTLS(t *testing.T) {
	dns := route53test.Start(t)
	zone := dns.AddZone("ZPUB", "example.com", false)
	dns.PutRecordSet(zone, route53test.RecordSet{Name: "registry.example.com", Type: "A", TTL: 60, Values: []string{"127.0.0.1"}})
	resolve := func(ctx context.Context, host string) ([]string, error) {
		return dnsquery.LookupHost(ctx, dns.DNSAddr(), host)
	}

	ca := newTestCA(t, "boot test root")
	port := ca.serve(t, "registry.example.com")
	other := newTestCA(t, "another root")

	for _, tc := range []struct {
		name, host string
		ca         []byte
		status     run.Status
		message    string
	}{
		{"signed by the given root", "registry.example.com", ca.pem, run.OK,
			"certificate for registry.example.com verified: DNS:registry.example.com <- CN=boot test root; expires "},
		{"signed by another root", "registry.example.com", other.pem, run.Failed,
			"certificate signed by unknown authority"},
		{"a name the DNS server does not know", "nothing.example.com", ca.pem, run.Failed,
			"NXDOMAIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			roots, err := LoadRoots(writeFile(t, "ca.pem", tc.ca))
			if err != nil {
				t.Fatal(err)
			}
			e := TLS(context.Background(), Transport(roots, false, tc.host, resolve), tc.host, port)
			if e.Phase != Phase || e.Host != "tls" || e.Status != tc.status || !strings.Contains(e.Message, tc.message) {
				t.Fatalf("event %+v, want a tls event %s containing %q", e, tc.status, tc.message)
			}
		})
	}

	t.Run("not checked when asked not to", func(t *testing.T) {
		e := TLS(context.Background(), Transport(nil, true, "registry.example.com", resolve), "registry.example.com", port)
		if e.Host != "tls" || e.Status != run.Warning {
			t.Fatalf("event %+v, want a tls warning", e)
		}
	})
}

// TestTransportResolvesOnlyTheRegistry: other hosts are dialled as
// given, the registry's name through the resolver.
func TestTransportResolvesOnlyTheRegistry(t *testing.T) {
	asked := 0
	resolve := func(ctx context.Context, host string) ([]string, error) { asked++; return []string{"127.0.0.1"}, nil }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	tr := Transport(nil, false, "Registry.Example.com", resolve)
	c, err := tr.DialContext(context.Background(), "tcp", net.JoinHostPort("registry.example.com", port))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c, err = tr.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if asked != 1 {
		t.Errorf("the resolver was asked %d times, want once (for the registry only)", asked)
	}
}

func TestLoadRootsRefusesWhatIsNoCABundle(t *testing.T) {
	dir := t.TempDir()
	big := writeFile(t, "big.pem", bytes.Repeat([]byte("x"), maxCAFileSize+1))
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.pem"), "no such file"},
		{dir, "not a regular file"},
		{"/dev/zero", "not a regular file"},
		{fifo(t), "not a regular file (a named pipe)"},
		{writeFile(t, "key.pem", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")), "no PEM certificate"},
		{big, "more than the limit of 1 MiB"},
	} {
		if _, err := LoadRoots(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadRoots(%s) = %v, want an error containing %q", tc.path, err, tc.want)
		}
	}
}

// fifo makes a named pipe nobody writes to: opening it for reading the
// usual way would block.
func fifo(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
