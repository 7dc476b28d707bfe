// Package kubetest starts a real etcd and kube-apiserver on 127.0.0.1 for
// tests, from the binaries inside the offline bundle's image archives
// (images/etcd.tar and images/kube-apiserver.tar of the bundle folder named by
// $BOOT_BUNDLE_DIR, built by `boot bundle build`).
//
// Start gives each caller its own etcd and API server on free loopback ports,
// serving TLS with a certificate from a CA generated for that server, and a
// random admin bearer token in group system:masters; RBAC is on. Both
// processes are stopped by PID in t.Cleanup. There is no controller-manager,
// scheduler or kubelet: objects are stored and served, pods never run and
// namespaces are never finalized.
//
// The binaries are extracted from the image archives once per image digest
// into the user cache folder (boot/kubetest/<digest>), so later test processes
// start without reading the archives again.
//
// When BOOT_BUNDLE_DIR is unset, Start fails the test if $CI is set and skips
// it otherwise.
package kubetest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/internal/testenv"
)

// StartTimeout bounds how long Start waits for etcd and the API server to
// become ready.
const StartTimeout = 90 * time.Second

// Cluster is a running etcd + kube-apiserver pair.
type Cluster struct {
	// Config reaches the API server as the admin user (bearer token, CA
	// verified).
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file holding the same
	// credentials.
	Kubeconfig string
	// EtcdURL is etcd's client URL.
	EtcdURL string
}

// Binaries are the extracted etcd and kube-apiserver executables.
type Binaries struct {
	Etcd, APIServer string
}

var (
	binOnce sync.Once
	bins    Binaries
	binErr  error
)

// ExtractBinaries returns the etcd and kube-apiserver executables of the
// bundle at dir, extracting them on first use.
func ExtractBinaries(dir string) (Binaries, error) {
	binOnce.Do(func() { bins, binErr = extractBinaries(dir) })
	return bins, binErr
}

func extractBinaries(dir string) (Binaries, error) {
	b, err := bundle.Open(dir)
	if err != nil {
		return Binaries{}, err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return Binaries{}, fmt.Errorf("kubetest: %w", err)
	}
	cache = filepath.Join(cache, "boot", "kubetest")
	etcd, err := extractImageBinary(b, "etcd", cache)
	if err != nil {
		return Binaries{}, err
	}
	api, err := extractImageBinary(b, "kube-apiserver", cache)
	if err != nil {
		return Binaries{}, err
	}
	return Binaries{Etcd: etcd, APIServer: api}, nil
}

// extractImageBinary finds the bundle image whose RepoTag names repository
// repo and copies the executable its entrypoint (or, without one, its
// command) names into cache/<digest>/.
func extractImageBinary(b *bundle.Bundle, repo, cache string) (string, error) {
	ref := ""
	for _, img := range b.Manifest.Images {
		if strings.HasPrefix(img.RepoTag, repo+":") {
			ref = img.Name
		}
	}
	if ref == "" {
		return "", fmt.Errorf("kubetest: bundle %s has no %s image", b.Dir, repo)
	}
	img, err := b.Image(ref)
	if err != nil {
		return "", err
	}
	digest, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("kubetest: image %s: %w", ref, err)
	}
	exe, err := entrypointPath(img, repo)
	if err != nil {
		return "", fmt.Errorf("kubetest: image %s: %w", ref, err)
	}
	out := filepath.Join(cache, digest.Hex[:16], path.Base(exe))
	if fi, err := os.Stat(out); err == nil && fi.Mode().IsRegular() {
		return out, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("kubetest: %w", err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	want := strings.TrimPrefix(path.Clean(exe), "/")
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("kubetest: image %s has no file %s", ref, exe)
		}
		if err != nil {
			return "", fmt.Errorf("kubetest: image %s: %w", ref, err)
		}
		if strings.TrimPrefix(path.Clean(h.Name), "/") != want || h.Typeflag != tar.TypeReg {
			continue
		}
		return out, writeExecutable(out, tr)
	}
}

// entrypointPath returns the first word of the image's entrypoint, or of its
// command when it has no entrypoint, and checks it names the binary want.
func entrypointPath(img v1.Image, want string) (string, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	argv := cf.Config.Entrypoint
	if len(argv) == 0 {
		argv = cf.Config.Cmd
	}
	if len(argv) == 0 || path.Base(argv[0]) != want {
		return "", fmt.Errorf("entrypoint %q and command %q do not start %s", cf.Config.Entrypoint, cf.Config.Cmd, want)
	}
	return argv[0], nil
}

// writeExecutable writes r to a temporary file beside out and renames it, so
// concurrent test processes never see a partial binary.
func writeExecutable(out string, r io.Reader) error {
	f, err := os.CreateTemp(filepath.Dir(out), ".extract-*")
	if err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("kubetest: extracting %s: %w", out, err)
	}
	if err := f.Chmod(0o755); err != nil {
		f.Close()
		return fmt.Errorf("kubetest: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	return nil
}

// Start runs a fresh etcd and kube-apiserver for t and returns once the API
// server's /readyz answers ok.
func Start(t testing.TB) *Cluster {
	t.Helper()
	b, err := ExtractBinaries(testenv.BundleDir(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	c, err := start(ctx, t, b, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func start(ctx context.Context, t testing.TB, b Binaries, dir string) (*Cluster, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	etcd, err := startProcess(t, dir, "etcd", b.Etcd,
		"--data-dir", filepath.Join(dir, "etcd-data"),
		"--name", "kubetest",
		"--listen-client-urls", etcdURL,
		"--advertise-client-urls", etcdURL,
		"--listen-peer-urls", "http://127.0.0.1:"+strconv.Itoa(ports[1]),
		"--initial-advertise-peer-urls", "http://127.0.0.1:"+strconv.Itoa(ports[1]),
		"--initial-cluster", "kubetest=http://127.0.0.1:"+strconv.Itoa(ports[1]),
		"--listen-metrics-urls", "",
		"--log-level", "warn",
	)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, etcd, http.DefaultClient, etcdURL+"/health", ""); err != nil {
		return nil, err
	}

	pki, err := writePKI(dir)
	if err != nil {
		return nil, err
	}
	host := "https://127.0.0.1:" + strconv.Itoa(ports[2])
	api, err := startProcess(t, dir, "kube-apiserver", b.APIServer,
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(ports[2]),
		"--cert-dir", filepath.Join(dir, "apiserver-certs"),
		"--tls-cert-file", pki.servingCert,
		"--tls-private-key-file", pki.servingKey,
		"--service-account-key-file", pki.saKey,
		"--service-account-signing-key-file", pki.saKey,
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--token-auth-file", pki.tokenFile,
		"--authorization-mode", "RBAC",
		"--service-cluster-ip-range", "10.96.0.0/12",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		// The kubernetes Service endpoint may not be a loopback address.
		"--endpoint-reconciler-type=none",
	)
	if err != nil {
		return nil, err
	}
	cfg := &rest.Config{
		Host:            host,
		BearerToken:     pki.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: pki.caPEM},
		QPS:             200,
		Burst:           400,
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	if err := waitHTTP(ctx, api, hc, host+"/readyz", pki.token); err != nil {
		return nil, err
	}
	kc := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kc, cfg); err != nil {
		return nil, err
	}
	return &Cluster{Config: cfg, Kubeconfig: kc, EtcdURL: etcdURL}, nil
}

// process is a started server: its log file and a channel closed when it
// exits.
type process struct {
	name   string
	log    string
	exited chan struct{}
	err    error
}

// startProcess starts bin with args, logging to dir/name.log, and registers
// a cleanup that stops it by PID (SIGTERM, then SIGKILL after 10 s).
func startProcess(t testing.TB, dir, name, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("kubetest: starting %s: %w", name, err)
	}
	p := &process{name: name, log: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	return p, nil
}

// logTail returns the last lines of the process's log for error messages.
func (p *process) logTail() string {
	data, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// waitHTTP polls url until it answers 200, the process exits or ctx ends.
func waitHTTP(ctx context.Context, p *process, hc *http.Client, url, token string) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	last := "no answer yet"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("kubetest: %w", err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := hc.Do(req.WithContext(rctx))
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, lastLine(string(body)))
		} else {
			last = err.Error()
		}
		cancel()
		select {
		case <-p.exited:
			return fmt.Errorf("kubetest: %s exited (%v) before %s was ready; log %s:\n%s", p.name, p.err, url, p.log, p.logTail())
		case <-ctx.Done():
			return fmt.Errorf("kubetest: %s not ready at %s within %s (last: %s); log %s:\n%s", p.name, url, StartTimeout, last, p.log, p.logTail())
		case <-tick.C:
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// freePorts reserves n distinct free loopback ports by listening on them
// together, then releases them for the servers to bind.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("kubetest: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

type pkiFiles struct {
	caPEM                   []byte
	servingCert, servingKey string
	saKey                   string
	tokenFile, token        string
}

// writePKI generates the serving CA and certificate for 127.0.0.1, the
// service-account signing key and the admin token file under dir/pki.
func writePKI(dir string) (*pkiFiles, error) {
	d := filepath.Join(dir, "pki")
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kubetest-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	srvKeyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	p := &pkiFiles{
		caPEM:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		servingCert: filepath.Join(d, "serving.crt"),
		servingKey:  filepath.Join(d, "serving.key"),
		saKey:       filepath.Join(d, "sa.key"),
		tokenFile:   filepath.Join(d, "tokens.csv"),
		token:       hex.EncodeToString(tok),
	}
	var chain bytes.Buffer
	chain.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}))
	chain.Write(p.caPEM)
	files := map[string][]byte{
		p.servingCert: chain.Bytes(),
		p.servingKey:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: srvKeyDER}),
		p.saKey:       pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}),
		// token,user,uid,"group"
		p.tokenFile: []byte(p.token + ",kubetest-admin,kubetest-admin,\"system:masters\"\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return nil, fmt.Errorf("kubetest: %w", err)
		}
	}
	return p, nil
}

// writeKubeconfig writes cfg's server, CA and token as a kubeconfig file.
func writeKubeconfig(file string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["kubetest-admin"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "kubetest-admin"}
	kc.CurrentContext = "kubetest"
	if err := clientcmd.WriteToFile(*kc, file); err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	return nil
}
