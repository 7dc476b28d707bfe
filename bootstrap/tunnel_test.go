package bootstrap

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bootctl/boot/internal/kubetest"
	"github.com/bootctl/boot/internal/sshtest"
	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/inventory"
)

// With a kubeconfig that points at a loopback port nothing answers on (what
// boot up writes when the API port is out of reach), EnsureAPI opens a
// tunnel through a real sshd on the control plane to a real kube-apiserver,
// and kubectl works through it until it is closed; while it runs, EnsureAPI
// opens no second one. A missing kubeconfig is an error naming the file.
func TestEnsureAPIOpensTunnelToAPIServer(t *testing.T) {
	api := kubetest.Start(t)
	kubectl := filepath.Join(testenv.BundleDir(t), "bin", "kubectl")
	key := sshtest.NewKey(t, "")
	s := sshtest.Start(t, sshtest.Options{Address: "127.0.0.2", TCPForwarding: true,
		AuthorizedKeys: map[string][]ssh.PublicKey{"root": {key.Public}}})
	dir := t.TempDir()
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, []byte(s.KnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, apiPort, err := net.SplitHostPort(api.Config.Host[len("https://"):])
	if err != nil {
		t.Fatal(err)
	}
	// A local port nobody listens on, as boot up would use for the tunnel.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	local := ln.Addr().String()
	ln.Close()

	cfg, err := clientcmd.LoadFromFile(api.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server, c.TLSServerName = "https://"+local, "kubernetes"
	}
	kubeconfig := filepath.Join(dir, "lab.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}
	invPath := filepath.Join(dir, "inventory.yaml")
	text := fmt.Sprintf(`apiVersion: boot/v1alpha1
kind: Cluster
metadata:
  name: lab
cluster:
  apiServerPort: %s
  kubeconfig: %s
ssh:
  keyPath: %s
  knownHosts: %s
  agent: false
hosts:
  - {name: cp1, address: 127.0.0.2, privateAddress: 127.0.0.1, role: control-plane, ssh: {port: %d}}
  - {name: w1, address: 127.0.0.3, role: worker}
registry:
  host: registry.example.com
  issuer: selfsigned
`, apiPort, kubeconfig, key.Path, known, s.Port)
	if err := os.WriteFile(invPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(invPath)
	if err != nil {
		t.Fatal(err)
	}
	get := func() error {
		return exec.Command(kubectl, "--kubeconfig", kubeconfig, "--request-timeout", "10s", "get", "namespaces").Run()
	}
	if get() == nil {
		t.Fatal("kubectl reached the API server before the tunnel was open")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	closeTunnel, err := EnsureAPI(ctx, inv, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := get(); err != nil {
		t.Errorf("kubectl through the tunnel: %v", err)
	}
	// Something answers now: EnsureAPI leaves it alone.
	closeNothing, err := EnsureAPI(ctx, inv, log)
	if err != nil {
		t.Fatal(err)
	}
	closeNothing()
	if err := get(); err != nil {
		t.Errorf("kubectl after the second EnsureAPI's close: %v", err)
	}
	closeTunnel()
	if get() == nil {
		t.Error("kubectl still reaches the API server after the tunnel closed")
	}

	inv.Cluster.Kubeconfig = filepath.Join(dir, "missing.kubeconfig")
	if _, err := EnsureAPI(ctx, inv, log); err == nil || !strings.Contains(err.Error(), inv.Cluster.Kubeconfig) {
		t.Errorf("missing kubeconfig: want an error naming it, got %v", err)
	}
}
