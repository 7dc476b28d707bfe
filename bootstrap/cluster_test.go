package bootstrap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/inventory"
)

func TestSnapshotDiff(t *testing.T) {
	before := "## packages\na 1\nb 2\n## interfaces\neth0\nlo\n"
	after := "## packages\na 1\nb 3\n## interfaces\neth0\nlo\nflannel.1\n## mounts\n/var/lib/kubelet ext4\n"
	got := snapshotDiff(before, after)
	want := []string{
		"interfaces: + flannel.1",
		"mounts: + /var/lib/kubelet ext4",
		"packages: - b 2",
		"packages: + b 3",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("snapshotDiff (-want +got):\n%s", diff)
	}
	if d := snapshotDiff(before, before); len(d) != 0 {
		t.Errorf("a snapshot differs from itself: %v", d)
	}
}

// TestCACertHash checks kubeadm's discovery hash against openssl's view of
// the same certificate's public key.
func TestCACertHash(t *testing.T) {
	const openssl = "/usr/bin/openssl"
	testenv.File(t, openssl, "openssl")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	got, err := caCertHash(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	// openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256sum
	pub := exec.Command(openssl, "x509", "-pubkey", "-noout")
	pub.Stdin = strings.NewReader(string(certPEM))
	pubPEM, err := pub.Output()
	if err != nil {
		t.Fatal(err)
	}
	derCmd := exec.Command(openssl, "pkey", "-pubin", "-outform", "der")
	derCmd.Stdin = strings.NewReader(string(pubPEM))
	spki, err := derCmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	sum := exec.Command(openssl, "dgst", "-sha256", "-r")
	sum.Stdin = strings.NewReader(string(spki))
	out, err := sum.Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "sha256:" + strings.Fields(string(out))[0]; got != want {
		t.Errorf("caCertHash = %s, openssl says %s", got, want)
	}
	if _, err := caCertHash([]byte("not a certificate")); err == nil {
		t.Error("caCertHash accepted garbage")
	}
}

// TestMergeKubeconfig: merging keeps the other entries of the target file,
// replaces those of the same names and makes the cluster's context current.
func TestMergeKubeconfig(t *testing.T) {
	dir := t.TempDir()
	into := filepath.Join(dir, "config")
	old := clientcmdapi.NewConfig()
	old.Clusters["other"] = &clientcmdapi.Cluster{Server: "https://other:6443"}
	old.AuthInfos["other-admin"] = &clientcmdapi.AuthInfo{Token: "x"}
	old.Contexts["other"] = &clientcmdapi.Context{Cluster: "other", AuthInfo: "other-admin"}
	old.Clusters["lab"] = &clientcmdapi.Cluster{Server: "https://stale:6443"}
	old.CurrentContext = "other"
	if err := clientcmd.WriteToFile(*old, into); err != nil {
		t.Fatal(err)
	}
	add := clientcmdapi.NewConfig()
	add.Clusters["lab"] = &clientcmdapi.Cluster{Server: "https://172.29.40.10:6443"}
	add.AuthInfos["lab-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: []byte("cert")}
	add.Contexts["lab"] = &clientcmdapi.Context{Cluster: "lab", AuthInfo: "lab-admin"}
	add.CurrentContext = "lab"
	addBytes, err := clientcmd.Write(*add)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := merge(into, addBytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeKubeconfig(into, merged); err != nil {
		t.Fatal(err)
	}
	got, err := clientcmd.LoadFromFile(into)
	if err != nil {
		t.Fatal(err)
	}
	if got.CurrentContext != "lab" || got.Clusters["lab"].Server != "https://172.29.40.10:6443" ||
		got.Clusters["other"] == nil || got.Contexts["other"] == nil || got.AuthInfos["other-admin"] == nil {
		t.Errorf("merged kubeconfig: current %q, clusters %v", got.CurrentContext, got.Clusters)
	}
	if st, err := os.Stat(into); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("merged kubeconfig mode: %v %v", st.Mode(), err)
	}
	if differs(into, merged) {
		t.Error("differs reports a difference right after the write")
	}
}

// TestAPIServerForOperator: the kubeconfig names the control plane's
// address when its API port answers from here, else the loopback end of a
// tunnel with the certificate's name to check, and says so.
func TestAPIServerForOperator(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	open := ln.Addr().(*net.TCPAddr).Port
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	for _, tc := range []struct {
		port              int
		server, tlsServer string
		warned            bool
	}{
		{open, fmt.Sprintf("https://127.0.0.1:%d", open), "", false},
		{closedPort, fmt.Sprintf("https://127.0.0.1:%d", closedPort), TunnelServerName, true},
	} {
		inv := &inventory.Inventory{
			Cluster: inventory.Cluster{APIServerPort: tc.port},
			Hosts:   []inventory.Host{{Name: "cp1", Address: "127.0.0.1", PrivateAddress: "10.0.0.10", Role: inventory.RoleControlPlane}},
		}
		r := &recorder{}
		c := &Cluster{Inventory: inv, Report: r.report, Hosts: []*Host{{Spec: inv.Hosts[0]}}}
		server, tlsServer := c.apiServerForOperator()
		if server != tc.server || tlsServer != tc.tlsServer {
			t.Errorf("port %d: server %q (TLS name %q), want %q (%q)", tc.port, server, tlsServer, tc.server, tc.tlsServer)
		}
		warned := false
		for _, e := range r.events {
			warned = warned || (e.Status == run.Warning && strings.Contains(e.Message, "boot tunnel"))
		}
		if warned != tc.warned {
			t.Errorf("port %d: warned %v, want %v (%+v)", tc.port, warned, tc.warned, r.events)
		}
	}
}
