package bundle

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDebianUpstreamVersion(t *testing.T) {
	for v, want := range map[string]string{
		"5:7.0.15-1~deb12u10": "7.0.15",
		"7.0.15-1":            "7.0.15",
		"1:2.5.1-4":           "2.5.1",
		"20250419~deb12u2":    "20250419~deb12u2",
		"1.0-2-3":             "1.0-2",
	} {
		if got := debianUpstreamVersion(v); got != want {
			t.Errorf("debianUpstreamVersion(%q) = %q, want %q", v, got, want)
		}
	}
	if _, err := redisImageSpec(layer{}, "5:-1"); err == nil {
		t.Error("a redis version without an upstream part was accepted")
	}
	spec, err := redisImageSpec(layer{}, "5:7.0.15-1~deb12u10")
	if err != nil {
		t.Fatal(err)
	}
	if spec.name != "docker.io/library/redis:7.0.15-debian" || spec.repoTag != "library/redis:7.0.15-debian" || spec.version != "5:7.0.15-1~deb12u10" {
		t.Errorf("redis image spec %+v", spec)
	}
}

// pemCert is a new self-signed certificate in PEM.
func pemCert(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestConcatCertificates(t *testing.T) {
	dir := t.TempDir()
	write := func(rel string, data []byte) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, a, c := pemCert(t, "b"), pemCert(t, "a"), pemCert(t, "c")
	write("mozilla/B.crt", b)
	write("mozilla/A.crt", bytes.TrimSuffix(a, []byte("\n"))) // no final newline
	write("local/C.crt", c)
	write("mozilla/README", []byte("not a certificate"))
	got, err := concatCertificates(dir)
	if err != nil {
		t.Fatal(err)
	}
	// local/ sorts before mozilla/, A before B; A gets its newline back.
	if want := string(c) + string(a) + string(b); string(got) != want {
		t.Errorf("bundle:\n%s\nwant:\n%s", got, want)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(got) {
		t.Error("the bundle does not load into a certificate pool")
	}

	write("mozilla/Broken.crt", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	if _, err := concatCertificates(dir); err == nil || !strings.Contains(err.Error(), "mozilla/Broken.crt") {
		t.Errorf("a broken certificate: got %v, want an error naming mozilla/Broken.crt", err)
	}
	if _, err := concatCertificates(t.TempDir()); err == nil {
		t.Error("a folder without certificates gave a bundle")
	}
}
