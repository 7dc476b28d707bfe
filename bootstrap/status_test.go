package bootstrap

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/sshtest"
	"github.com/bootctl/boot/internal/testenv"
)

// kubeadmPKI makes a control plane's certificates and kubeconfig files
// offline with the bundle's kubeadm, in dir/pki and dir, the certificates
// valid for validity (the CAs for kubeadm's ten years), and returns the
// kubeadm executable and its version.
func kubeadmPKI(t *testing.T, dir, validity string) (kubeadm, version string) {
	t.Helper()
	return testenv.KubeadmPKI(t, dir, func(version string) string {
		// kubernetesVersion given: kubeadm does not ask dl.k8s.io for one.
		return CheckExpirationConfig(version, filepath.Join(dir, "pki")) + "certificateValidityPeriod: " + validity + "\n"
	})
}

// TestStatusParsesRealCheckExpiration: the output of the real `kubeadm
// certs check-expiration -o json` on certificates kubeadm made, valid ten
// days, parses into every certificate and CA present, and the first to
// expire is a certificate (not a CA) about ten days out. Missing files are
// left out; output that is not kubeadm's is an error.
func TestStatusParsesRealCheckExpiration(t *testing.T) {
	dir := t.TempDir()
	made := time.Now()
	kubeadm, version := kubeadmPKI(t, dir, "240h")
	check := exec.Command(kubeadm, "certs", "check-expiration", "--config", "/dev/stdin", "-o", "json")
	check.Stdin = strings.NewReader(CheckExpirationConfig(version, filepath.Join(dir, "pki")))
	out, err := check.Output()
	if err != nil {
		t.Fatalf("kubeadm certs check-expiration: %v", err)
	}
	certs, err := ParseCertExpiration(out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]CertExpiry{}
	for _, c := range certs {
		got[c.Name] = c
	}
	// The kubeconfig files are in dir, not /etc/kubernetes where kubeadm
	// looks: missing, so left out.
	for _, name := range []string{"apiserver", "apiserver-kubelet-client", "etcd-server", "front-proxy-client", "ca", "etcd-ca", "front-proxy-ca"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%s is not among the parsed certificates %v", name, certs)
		}
	}
	if _, ok := got["admin.conf"]; ok {
		t.Errorf("admin.conf is missing there but was parsed: %v", certs)
	}
	if !got["ca"].Authority || got["apiserver"].Authority {
		t.Errorf("authorities: ca %v, apiserver %v; want true, false", got["ca"].Authority, got["apiserver"].Authority)
	}
	first := FirstToExpire(certs)
	if first.Authority || first.Expires.Before(made.Add(239*time.Hour)) || first.Expires.After(made.Add(241*time.Hour)) {
		t.Errorf("first to expire: %+v; want a certificate expiring in 240h from %s", first, made)
	}
	if ca := got["ca"].Expires; ca.Before(made.AddDate(9, 0, 0)) {
		t.Errorf("the CA expires %s; want about ten years out", ca)
	}

	for _, bad := range []string{"", "not json", `{"kind":"Node"}`, `{"kind":"CertificateExpirationInfo","certificates":[{"name":"admin.conf","missing":true}]}`} {
		if _, err := ParseCertExpiration([]byte(bad)); err == nil {
			t.Errorf("ParseCertExpiration(%q) accepted it", bad)
		}
	}
}

// statusSession is the ForceCommand of the status test hosts: each
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

// TestHostsStatus: over real sshds, each reachable host shows its OS and
// the version of the kubeadm it runs, the control plane's certificates are
// read by the real kubeadm from its /etc/kubernetes, and a host whose SSH
// port refuses connections is a line saying why, not a failure.
func TestHostsStatus(t *testing.T) {
	testenv.File(t, "/usr/bin/unshare", "util-linux")
	sshtest.Require(t)
	bundleDir := testenv.BundleDir(t)
	dir := t.TempDir()
	etcKube := filepath.Join(dir, "etc-kubernetes")
	kubeadm, _ := kubeadmPKI(t, etcKube, "8760h")
	version, _ := exec.Command(kubeadm, "version", "-o", "short").Output()
	wrapper := filepath.Join(dir, "status-session")
	if err := os.WriteFile(wrapper, fmt.Appendf(nil, statusSession, dir, etcKube, filepath.Join(bundleDir, "bin")), 0o755); err != nil {
		t.Fatal(err)
	}
	sshAndHosts := startSessionHosts(t, dir, wrapper, []sessionHost{{"cp1", "control-plane", ""}, {"w1", "worker", ""}})
	ln, err := net.Listen("tcp", "127.0.0.9:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // closed: connections are refused
	sshAndHosts += fmt.Sprintf("  - {name: w2, address: 127.0.0.9, role: worker, ssh: {port: %d}}\n", port)
	inv := testenv.Inventory(t, fmt.Sprintf("apiVersion: boot/v1alpha1\nkind: Cluster\nmetadata:\n  name: status\ncluster:\n  kubernetesVersion: %s\n%sregistry:\n  host: registry.example.com\n  acmeEmail: ops@example.com\n",
		strings.TrimSpace(string(version)), sshAndHosts))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hosts, certs, certErr, err := HostsStatus(ctx, inv, ConnectOptions{Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	if certErr != nil {
		t.Fatalf("the control plane's certificates: %v", certErr)
	}
	if len(hosts) != 3 {
		t.Fatalf("%d hosts, want 3: %+v", len(hosts), hosts)
	}
	wantVersion := strings.TrimSpace(string(version))
	for _, h := range hosts[:2] {
		if !h.Reachable || h.Error != "" || h.OS == "" || h.Kubeadm != wantVersion {
			t.Errorf("%s: %+v; want reachable, an OS and kubeadm %s", h.Name, h, wantVersion)
		}
	}
	if hosts[0].Role != "control-plane" || hosts[1].Role != "worker" {
		t.Errorf("roles: %s, %s", hosts[0].Role, hosts[1].Role)
	}
	if w2 := hosts[2]; w2.Name != "w2" || w2.Reachable || !strings.Contains(w2.Error, "refused") || w2.Kubeadm != "" {
		t.Errorf("w2: %+v; want unreachable, connection refused", w2)
	}
	first := FirstToExpire(certs)
	if d := time.Until(first.Expires); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("first to expire: %+v; want a year out", first)
	}
	names := map[string]bool{}
	for _, c := range certs {
		names[c.Name] = true
	}
	if !names["admin.conf"] || !names["apiserver"] || !names["ca"] {
		t.Errorf("certificates read on the control plane: %v; want admin.conf, apiserver and ca among them", certs)
	}
}
