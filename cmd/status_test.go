package cmd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"helm.sh/helm/v3/pkg/chart"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/internal/kubetest"
	"github.com/bootctl/boot/internal/route53test"
	"github.com/bootctl/boot/internal/sshtest"
	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/inventory"
)

// statusSession is the ForceCommand of the status test's hosts: each
// session's command runs in a mount namespace of its own whose /etc has
// kubernetes/ from the test's folder (an overlay on this machine's /etc,
// which stays as it is) and whose PATH starts with the bundle's bin folder
// (its kubeadm).
const statusSession = `#!/bin/sh
exec unshare --mount --propagation private sh -e -c '
d=$(mktemp -d "$1/session.XXXXXX")
mkdir -p "$d/up" "$d/work"
cp -r "$2" "$d/up/kubernetes"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$d/up,workdir=$d/work" /etc
PATH="$3:$PATH" exec sh -c "$SSH_ORIGINAL_COMMAND"' status-session %s %s %s
`

// closedPort returns a port of addr nobody listens on.
func closedPort(t *testing.T, addr string) int {
	t.Helper()
	ln, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// statusFixture is a cluster for boot status made of real parts: a
// kube-apiserver with its etcd, and real sshds as the hosts, whose sessions
// run the bundle's kubeadm, the control plane's /etc/kubernetes holding
// certificates kubeadm made.
type statusFixture struct {
	dir     string
	version string // the bundle's kubeadm's, also the Nodes' kubelets'
	api     *kubetest.Cluster
	cs      kubernetes.Interface
	hosts   string // the inventory's ssh and hosts sections
}

// newStatusFixture starts the API server and one sshd per host of up (the
// first the control plane, the others workers), with the control plane's
// certificates valid for validity; each host of down is a worker whose SSH
// port refuses connections.
func newStatusFixture(t *testing.T, validity string, up, down []string) *statusFixture {
	t.Helper()
	testenv.File(t, "/usr/bin/unshare", "util-linux")
	sshtest.Require(t)
	bundleDir := testenv.BundleDir(t)
	f := &statusFixture{dir: t.TempDir(), api: kubetest.Start(t)}
	cs, err := kubernetes.NewForConfig(f.api.Config)
	if err != nil {
		t.Fatal(err)
	}
	f.cs = cs

	etcKube := filepath.Join(f.dir, "etc-kubernetes")
	_, f.version = testenv.KubeadmPKI(t, etcKube, func(version string) string {
		return bootstrap.CheckExpirationConfig(version, filepath.Join(etcKube, "pki")) + "certificateValidityPeriod: " + validity + "\n"
	})
	wrapper := filepath.Join(f.dir, "status-session")
	if err := os.WriteFile(wrapper, fmt.Appendf(nil, statusSession, f.dir, etcKube, filepath.Join(bundleDir, "bin")), 0o755); err != nil {
		t.Fatal(err)
	}

	key := sshtest.NewKey(t, "")
	var known, hosts strings.Builder
	for i, name := range up {
		s := sshtest.Start(t, sshtest.Options{
			Address:        fmt.Sprintf("127.0.0.%d", i+2),
			AuthorizedKeys: map[string][]ssh.PublicKey{"root": {key.Public}},
			Extra:          []string{"ForceCommand " + wrapper},
			TCPForwarding:  true, // for boot's tunnel to the API server
		})
		fmt.Fprintln(&known, s.KnownHostsLine())
		role := "worker"
		if i == 0 {
			// The API server as the control plane reaches it is the test's,
			// on this machine's loopback.
			role = "control-plane, privateAddress: 127.0.0.1"
		}
		fmt.Fprintf(&hosts, "  - {name: %s, address: %s, role: %s, ssh: {port: %d}}\n", name, s.Address, role, s.Port)
	}
	for i, name := range down {
		addr := fmt.Sprintf("127.0.0.%d", 9+i)
		fmt.Fprintf(&hosts, "  - {name: %s, address: %s, role: worker, ssh: {port: %d}}\n", name, addr, closedPort(t, addr))
	}
	knownHosts := filepath.Join(f.dir, "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(known.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, e := range inventory.EnvVars() {
		t.Setenv(e.Name, "")
	}
	f.hosts = fmt.Sprintf("ssh:\n  keyPath: %s\n  knownHosts: %s\n  agent: false\nhosts:\n%s", key.Path, knownHosts, hosts.String())
	return f
}

// inventory writes an inventory of the fixture's hosts, cluster status,
// reached through kubeconfig (the API server's own when empty), with more
// (its registry and dns sections) and returns its path.
func (f *statusFixture) inventory(t *testing.T, kubeconfig, more string) string {
	t.Helper()
	if kubeconfig == "" {
		kubeconfig = f.api.Kubeconfig
	}
	_, apiPort, err := net.SplitHostPort(strings.TrimPrefix(f.api.Config.Host, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	inv := filepath.Join(f.dir, "inventory.yaml")
	text := fmt.Sprintf("apiVersion: boot/v1alpha1\nkind: Cluster\nmetadata:\n  name: status\ncluster:\n  kubernetesVersion: %s\n  kubeconfig: %s\n  apiServerPort: %s\n%s%s",
		f.version, kubeconfig, apiPort, f.hosts, more)
	if err := os.WriteFile(inv, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return inv
}

// node makes the Node name, its kubelet the fixture's version, with a Ready
// condition of status (True, False), reason and message.
func (f *statusFixture) node(ctx context.Context, t *testing.T, name, status, reason, message string) {
	t.Helper()
	node, err := f.cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.NodeInfo.KubeletVersion = f.version
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionStatus(status), Reason: reason, Message: message, LastHeartbeatTime: metav1.Now()}}
	if _, err := f.cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestStatusShowsADegradedCluster: cp1's Node is Ready, w1's is not, w2's
// sshd is down and it never joined; one release is boot's; the control
// plane's certificates are valid ten days. The table and the JSON show each
// host, the API and etcd healthy, the release, and every problem on its own
// line; the certificate is a warning; the exit code is 1. The registry's
// password (in its Secret and in the environment) appears nowhere.
func TestStatusShowsADegradedCluster(t *testing.T) {
	f := newStatusFixture(t, "240h", []string{"cp1", "w1"}, []string{"w2"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	version := f.version
	const envPassword, secretPassword = "env-registry-pw-Zq81", "secret-registry-pw-Kx42"
	t.Setenv("STATUS_REGISTRY_PW", envPassword)
	inv := f.inventory(t, "", "registry:\n  host: registry.example.com\n  acmeEmail: ops@example.com\n  auth:\n    passwordEnv: STATUS_REGISTRY_PW\n")

	f.node(ctx, t, "cp1", "True", "KubeletReady", "kubelet is posting ready status")
	f.node(ctx, t, "w1", "False", "KubeletNotReady", "container runtime network not ready")
	const ns = "docker-registry" // the inventory's registry.namespace
	if _, err := f.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	creds, err := addons.NewRegistryCredentials("admin", secretPassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.cs.CoreV1().Secrets(ns).Create(ctx, creds.Secret(addons.RegistryCredentialsSecret, ns), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	small := &chart.Chart{
		Metadata:  &chart.Metadata{APIVersion: chart.APIVersionV2, Name: "small", Version: "1.2.3", AppVersion: "4.5"},
		Templates: []*chart.File{{Name: "templates/cm.yaml", Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: small\ndata: {}\n")}},
	}
	if _, err := (addons.Release{Name: "small", Namespace: ns, Chart: small, Values: map[string]any{}, Timeout: time.Minute}).Apply(ctx, addons.Helm{Kubeconfig: f.api.Kubeconfig}); err != nil {
		t.Fatal(err)
	}

	// The registry's name is resolved by a closed port only: no lookup
	// leaves this machine, and the certificate check fails.
	dnsServer := fmt.Sprintf("127.0.0.1:%d", closedPort(t, "127.0.0.1"))
	code, stdout, stderr := runBoot(t, "status", "-i", inv, "-o", "json", "--dns-server", dnsServer)
	t.Logf("json:\n%s%s", stdout, stderr)
	if code != ExitFailure {
		t.Errorf("exit %d, want %d", code, ExitFailure)
	}
	var r statusReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("stdout is not one JSON document: %v", err)
	}
	if r.Cluster != "status" || r.Healthy || len(r.Hosts) != 3 {
		t.Fatalf("cluster %q healthy %v with %d hosts; want status, false, 3", r.Cluster, r.Healthy, len(r.Hosts))
	}
	cp1, w1, w2 := r.Hosts[0], r.Hosts[1], r.Hosts[2]
	if !cp1.Reachable || cp1.Role != "control-plane" || cp1.OS == "" || cp1.Kubeadm != version || cp1.Node == nil || cp1.Node.Ready != "True" || cp1.Node.Kubelet != version {
		t.Errorf("cp1: %+v %+v", cp1, cp1.Node)
	}
	if !w1.Reachable || w1.Node == nil || w1.Node.Ready != "False" || w1.Node.Reason != "KubeletNotReady" {
		t.Errorf("w1: %+v %+v; want reachable, Node Ready=False", w1, w1.Node)
	}
	if w2.Reachable || w2.Node != nil || w2.OS != "" || !strings.Contains(w2.Error, "refused") {
		t.Errorf("w2: %+v; want unreachable, no Node", w2)
	}
	if r.ControlPlane.Host != "cp1" || r.ControlPlane.API != "ok" || r.ControlPlane.Etcd != "ok" {
		t.Errorf("control plane: %+v; want cp1, API ok, etcd ok", r.ControlPlane)
	}
	first := r.ControlPlane.FirstToExpire
	if first == nil || first.Authority || time.Until(first.Expires) > 240*time.Hour || time.Until(first.Expires) < 239*time.Hour {
		t.Errorf("first certificate to expire: %+v; want one of kubeadm's, in ten days", first)
	}
	if len(r.Releases) != 1 || r.Releases[0].Name != "small" || r.Releases[0].Chart != "small" || r.Releases[0].Version != "1.2.3" || r.Releases[0].Status != "deployed" {
		t.Errorf("releases: %+v; want small 1.2.3 deployed", r.Releases)
	}
	if r.DNSRecord != nil {
		t.Errorf("a DNS record without a DNS provider: %+v", r.DNSRecord)
	}
	checks := map[string]string{}
	for _, c := range r.Registry.Checks {
		checks[c.Check] = string(c.Status)
	}
	if checks["tls"] != "failed" {
		t.Errorf("registry checks %+v; want tls failed (the name does not resolve)", r.Registry.Checks)
	}
	has := func(lines []string, parts ...string) bool {
		for _, l := range lines {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(l, p)
			}
			if ok {
				return true
			}
		}
		return false
	}
	for _, want := range [][]string{
		{"host w2: unreachable over SSH", "refused"},
		{"host w2: no Node w2"},
		{"host w1: Node not Ready: Ready=False (KubeletNotReady: container runtime network not ready)"},
		{"registry tls: "},
	} {
		if !has(r.Problems, want...) {
			t.Errorf("no problem says %q: %q", want, r.Problems)
		}
	}
	for _, p := range r.Problems {
		if strings.Contains(p, "cp1") || strings.Contains(p, "API server") || strings.Contains(p, "etcd") || strings.Contains(p, "release") {
			t.Errorf("a problem where there is none: %q", p)
		}
	}
	if !has(r.Warnings, "control plane cp1: certificate ", "in 9 day(s)") {
		t.Errorf("no warning of the certificate expiring in 9 days: %q", r.Warnings)
	}

	code, text, textErr := runBoot(t, "status", "-i", inv, "--dns-server", dnsServer)
	t.Logf("text:\n%s%s", text, textErr)
	if code != ExitFailure {
		t.Errorf("text: exit %d, want %d", code, ExitFailure)
	}
	for _, want := range []string{
		"Cluster status: degraded\n",
		"\ncp1   control-plane  127.0.0.2  ok           ",
		"Ready     " + version + "  " + version + "\n",
		"\nw2    worker         127.0.0.9  unreachable  -  ",
		"NotReady  " + version,
		"\nControl plane cp1: API ok, etcd ok, first certificate to expire: ",
		"\ndocker-registry/small  small  1.2.3    4.5  deployed  1\n",
		"\nProblems:\n  host w1: Node not Ready",
		"\nWarnings:\n  control plane cp1: certificate ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the table lacks %q", want)
		}
	}
	if n := strings.Count(text, "\n  host "); n != 3 {
		t.Errorf("%d host problem lines, want 3 (w1 not Ready, w2 unreachable, w2 not joined)", n)
	}
	if !strings.Contains(textErr, "cluster status is degraded") {
		t.Errorf("stderr does not say the cluster is degraded: %q", textErr)
	}

	for _, secret := range []string{envPassword, secretPassword} {
		if strings.Contains(stdout+stderr+text+textErr, secret) {
			t.Errorf("a password (%s...) was printed", secret[:6])
		}
	}
}

// registryTLS serves TLS at addr with a certificate for host signed by a CA
// made for the test, and returns that CA as a PEM file.
func registryTLS(t *testing.T, addr, host string) string {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "status test root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}}})
	if err != nil {
		testenv.Need(t, "cannot serve TLS at %s (port 443 needs root): %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _ = c.(*tls.Conn).Handshake() }()
		}
	}()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile
}

// TestStatusHealthyThenDNSDrift: every host reached, every Node Ready, the
// API and etcd healthy, certificates valid a year, the registry's
// certificate verified at https://registry.example.com (served here,
// resolved by the fake Route53's DNS server), its Service present and the
// DNS record as boot writes it: healthy, exit 0, with the checks that
// cannot tell here (no registry pod, no cert-manager) as warnings. Then the
// A record points elsewhere: the record differs, the name resolves to the
// wrong address and the certificate cannot be fetched there, exit 1. Status
// never writes to Route53, and the AWS secret key appears nowhere.
func TestStatusHealthyThenDNSDrift(t *testing.T) {
	f := newStatusFixture(t, "8760h", []string{"cp1", "w1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const recordAddr = "127.0.0.30"
	caFile := registryTLS(t, recordAddr+":443", "registry.example.com")
	r53 := route53test.Start(t)
	route53test.SetCredentialsEnv(t, route53test.AccessKey, route53test.SecretKey)
	zone := r53.AddZone("ZPUB", "example.com", false)
	r53.PutRecordSet(zone, route53test.RecordSet{Name: "registry.example.com", Type: "A", TTL: 300, Values: []string{recordAddr}})
	r53.PutRecordSet(zone, route53test.RecordSet{Name: "registry.example.com", Type: "TXT", TTL: 300, Values: []string{`"heritage=boot,cluster=status"`}})
	inv := f.inventory(t, "", "registry:\n  host: registry.example.com\n  acmeEmail: ops@example.com\ndns:\n  provider: route53\n  zone: example.com\n  addresses: ["+recordAddr+"]\n")

	f.node(ctx, t, "cp1", "True", "KubeletReady", "kubelet is posting ready status")
	f.node(ctx, t, "w1", "True", "KubeletReady", "kubelet is posting ready status")
	const ns = "docker-registry"
	if _, err := f.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: addons.DefaultRegistryRelease, Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "registry"}, Ports: []corev1.ServicePort{{Port: 5000}}}}
	if _, err := f.cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	args := []string{"status", "-i", inv, "--registry-ca", caFile, "--dns-server", r53.DNSAddr(), "--route53-endpoint", r53.URL()}

	code, text, stderr := runBoot(t, args...)
	t.Logf("healthy:\n%s%s", text, stderr)
	if code != ExitOK {
		t.Errorf("exit %d, want %d", code, ExitOK)
	}
	for _, want := range []string{
		"Cluster status: healthy\n",
		"\nControl plane cp1: API ok, etcd ok, first certificate to expire: ",
		"\nReleases: none of boot's\n",
		"\n  tls          ok       certificate for registry.example.com verified: DNS:registry.example.com <- CN=status test root",
		"\n  dns          ok       registry.example.com resolves to " + recordAddr,
		"\nDNS record registry.example.com: as boot writes it\n",
		"\nWarnings:\n  registry cache: ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the healthy table lacks %q", want)
		}
	}
	if strings.Contains(text, "Problems:") {
		t.Errorf("problems on a healthy cluster")
	}

	r53.PutRecordSet(zone, route53test.RecordSet{Name: "registry.example.com", Type: "A", TTL: 300, Values: []string{"127.0.0.31"}})
	code, stdout, stderr2 := runBoot(t, append(args, "-o", "json")...)
	t.Logf("drifted:\n%s%s", stdout, stderr2)
	if code != ExitFailure {
		t.Errorf("after the record changed: exit %d, want %d", code, ExitFailure)
	}
	var r statusReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("stdout is not one JSON document: %v", err)
	}
	if r.Healthy || r.DNSRecord == nil || r.DNSRecord.UpToDate || !strings.Contains(r.DNSRecord.Differs, "UPSERT registry.example.com. A "+recordAddr) {
		t.Errorf("healthy %v, DNS record %+v; want degraded, the record differing", r.Healthy, r.DNSRecord)
	}
	if len(r.Problems) != 3 || !strings.HasPrefix(r.Problems[0], "registry tls: connect to registry.example.com:443: ") ||
		!strings.Contains(r.Problems[1], "registry dns: registry.example.com resolves to 127.0.0.31, want "+recordAddr) ||
		!strings.HasPrefix(r.Problems[2], "DNS record registry.example.com differs from what boot writes: boot addons would UPSERT") {
		t.Errorf("problems %q; want the certificate, the name's address and the record", r.Problems)
	}
	if n := r53.Calls(route53test.ChangeResourceRecordSets); n != 0 {
		t.Errorf("status wrote to Route53 %d time(s)", n)
	}
	if out := text + stderr + stdout + stderr2; strings.Contains(out, route53test.SecretKey) {
		t.Error("the AWS secret key was printed")
	}
}

// TestStatusThroughTunnel: with a kubeconfig for `boot tunnel` (server at a
// port of 127.0.0.1 where nothing listens), status opens the tunnel through
// the control plane's sshd and keeps it for every read: the API's health,
// the Nodes and boot's releases are all read through it, and nothing
// listens there once it is done.
func TestStatusThroughTunnel(t *testing.T) {
	f := newStatusFixture(t, "8760h", []string{"cp1", "w1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	local := fmt.Sprintf("127.0.0.1:%d", closedPort(t, "127.0.0.1"))
	cfg, err := clientcmd.LoadFromFile(f.api.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + local
	}
	kubeconfig := filepath.Join(f.dir, "tunnel.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}
	inv := f.inventory(t, kubeconfig, "registry:\n  host: registry.example.com\n  acmeEmail: ops@example.com\n")
	f.node(ctx, t, "cp1", "True", "KubeletReady", "kubelet is posting ready status")
	f.node(ctx, t, "w1", "True", "KubeletReady", "kubelet is posting ready status")
	small := &chart.Chart{
		Metadata:  &chart.Metadata{APIVersion: chart.APIVersionV2, Name: "small", Version: "1.2.3"},
		Templates: []*chart.File{{Name: "templates/cm.yaml", Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: small\ndata: {}\n")}},
	}
	if _, err := (addons.Release{Name: "small", Namespace: "default", Chart: small, Values: map[string]any{}, Timeout: time.Minute}).Apply(ctx, addons.Helm{Kubeconfig: f.api.Kubeconfig}); err != nil {
		t.Fatal(err)
	}

	dnsServer := fmt.Sprintf("127.0.0.1:%d", closedPort(t, "127.0.0.1"))
	code, stdout, stderr := runBoot(t, "status", "-i", inv, "-o", "json", "--dns-server", dnsServer)
	t.Logf("%s%s", stdout, stderr)
	var r statusReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("exit %d; stdout is not one JSON document: %v", code, err)
	}
	if r.ControlPlane.API != "ok" || r.ControlPlane.Etcd != "ok" || r.Hosts[0].Node == nil || r.Hosts[0].Node.Ready != "True" {
		t.Errorf("control plane %+v, cp1's Node %+v; want both read through the tunnel", r.ControlPlane, r.Hosts[0].Node)
	}
	if len(r.Releases) != 1 || r.Releases[0].Name != "small" {
		t.Errorf("releases %+v; want small, listed through the tunnel", r.Releases)
	}
	for _, p := range r.Problems {
		if !strings.HasPrefix(p, "registry ") {
			t.Errorf("a problem other than the registry's (not installed here): %q", p)
		}
	}
	if c, err := net.DialTimeout("tcp", local, time.Second); err == nil {
		c.Close()
		t.Errorf("the tunnel at %s is still open", local)
	}
}

// TestStatusBadInput: input that cannot be used exits 2 before anything is
// contacted; a control plane whose key is not known stops it with exit 3,
// as for every command, instead of being a line of the table (an
// unreachable worker beside it does not change that).
func TestStatusBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: boot/v1alpha1\nkind: Cluster\nmetadata:\n  name: Bad_Name\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sshtest.Require(t)
	key := sshtest.NewKey(t, "")
	s := sshtest.Start(t, sshtest.Options{Address: "127.0.0.2", AuthorizedKeys: map[string][]ssh.PublicKey{"root": {key.Public}}})
	for _, e := range inventory.EnvVars() {
		t.Setenv(e.Name, "")
	}
	unknownKey := filepath.Join(dir, "inventory.yaml")
	text := fmt.Sprintf("apiVersion: boot/v1alpha1\nkind: Cluster\nmetadata:\n  name: status\ncluster:\n  kubeconfig: %s\nssh:\n  keyPath: %s\n  knownHosts: %s\n  agent: false\nhosts:\n  - {name: cp1, address: 127.0.0.2, role: control-plane, ssh: {port: %d}}\n  - {name: w1, address: 127.0.0.3, role: worker, ssh: {port: %d}}\nregistry:\n  host: registry.example.com\n  acmeEmail: ops@example.com\n",
		filepath.Join(dir, "admin.conf"), key.Path, filepath.Join(dir, "known_hosts"), s.Port, closedPort(t, "127.0.0.3"))
	if err := os.WriteFile(unknownKey, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no inventory", []string{"status"}, ExitInvalid, "no inventory"},
		{"invalid inventory", []string{"status", "-i", bad}, ExitInvalid, bad + ":4: metadata.name:"},
		{"stray argument", []string{"status", "-i", bad, "extra"}, ExitInvalid, `unknown command "extra"`},
		{"a CA file without a certificate", []string{"status", "-i", unknownKey, "--registry-ca", notPEM}, ExitInvalid, "--registry-ca: " + notPEM + ": no PEM certificate"},
		{"a bad --dns-server", []string{"status", "-i", unknownKey, "--dns-server", "127.0.0.1"}, ExitInvalid, "want HOST:PORT"},
		{"an unknown host key", []string{"status", "-i", unknownKey}, ExitUnreachable, "cp1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runBoot(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.want)
			}
			if stdout != "" {
				t.Errorf("a table although nothing could be read: %q", stdout)
			}
		})
	}
}
