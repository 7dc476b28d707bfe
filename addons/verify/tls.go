package verify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/bootctl/boot/internal/boundedfile"
	"github.com/bootctl/boot/internal/run"
)

// maxCAFileSize bounds a CA file: a CA bundle is a few KB, the system's
// whole trust store about 200 KB.
const maxCAFileSize = 1 << 20

// LoadRoots reads a PEM file of CA certificates, refusing anything but a
// regular file of bounded size that holds at least one certificate.
func LoadRoots(path string) (*x509.CertPool, error) {
	data, err := boundedfile.Read(path, "CA bundle", maxCAFileSize)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

// Transport is the HTTP transport verify talks to the registry with: TLS
// 1.2 or later, checked against roots (nil: this machine's trust store)
// unless insecure; when resolve is set, the registry's host name is
// resolved by it (and only it) instead of this machine's resolver.
func Transport(roots *x509.CertPool, insecure bool, host string, resolve func(ctx context.Context, host string) ([]string, error)) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, InsecureSkipVerify: insecure} // #nosec G402: only when asked
	if resolve != nil {
		var d net.Dialer
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			h, port, err := net.SplitHostPort(addr)
			if err != nil || !strings.EqualFold(h, host) {
				return d.DialContext(ctx, network, addr)
			}
			addrs, err := resolve(ctx, h)
			if err != nil {
				return nil, err
			}
			if len(addrs) == 0 {
				return nil, fmt.Errorf("%s: no address", h)
			}
			var errs []error
			for _, a := range addrs {
				c, err := d.DialContext(ctx, network, net.JoinHostPort(a, port))
				if err == nil {
					return c, nil
				}
				errs = append(errs, err)
			}
			return nil, errors.Join(errs...)
		}
	}
	return tr
}

// TLS connects to host at port (443 through the ingress) with tr's dialer
// and TLS settings and returns the "tls" check's result: the certificate
// chain the registry presents and how it verified.
func TLS(ctx context.Context, tr *http.Transport, host, port string) run.Event {
	if tr.TLSClientConfig.InsecureSkipVerify {
		return event("tls", run.Warning, "the certificate was not checked (--insecure-skip-tls-verify)")
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	addr := net.JoinHostPort(host, port)
	raw, err := tr.DialContext(ctx, "tcp", addr)
	if err != nil {
		return event("tls", run.Failed, fmt.Sprintf("connect to %s: %v", addr, err))
	}
	cfg := tr.TLSClientConfig.Clone()
	cfg.ServerName = host
	conn := tls.Client(raw, cfg)
	defer conn.Close()
	if err := conn.HandshakeContext(ctx); err != nil {
		return event("tls", run.Failed, fmt.Sprintf("%s: %v", host, err))
	}
	chains := conn.ConnectionState().VerifiedChains
	if len(chains) == 0 {
		return event("tls", run.Failed, host+": no verified certificate chain")
	}
	return event("tls", run.OK, DescribeChain(chains[0]))
}

// DescribeChain names each certificate of a verified chain, leaf first,
// and when the leaf expires.
func DescribeChain(chain []*x509.Certificate) string {
	names := make([]string, len(chain))
	for i, c := range chain {
		names[i] = c.Subject.String()
		if names[i] == "" {
			names[i] = "DNS:" + strings.Join(c.DNSNames, ",")
		}
	}
	leaf := chain[0]
	return fmt.Sprintf("certificate for %s verified: %s; expires %s", strings.Join(leaf.DNSNames, ","),
		strings.Join(names, " <- "), leaf.NotAfter.UTC().Format(time.RFC3339))
}
