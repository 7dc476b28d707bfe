package bootstrap

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/internal/sshtest"
	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/inventory"
)

// With ConnectOptions.Output set (what --verbose does), a command that
// changes a host streams its output line by line prefixed "[host] ", the
// sudo password redacted even when the command prints it; the facts, the
// scripts' check mode and the file operations print nothing.
func TestConnectStreamsCommandOutput(t *testing.T) {
	key := sshtest.NewKey(t, "")
	sshtest.RequireUser(t, sshtest.SudoPasswordUser)
	auth := map[string][]ssh.PublicKey{sshtest.SudoPasswordUser: {key.Public}}
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: auth})
	w := sshtest.Start(t, sshtest.Options{Address: "127.0.0.2", AuthorizedKeys: auth})
	for _, e := range inventory.EnvVars() {
		t.Setenv(e.Name, "")
	}
	t.Setenv("BOOT_TEST_SUDO_PW", sshtest.SudoPasswordUserPassword)
	dir := t.TempDir()
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, []byte(s.KnownHostsLine()+"\n"+w.KnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	invPath := filepath.Join(dir, "inventory.yaml")
	inv := `apiVersion: boot/v1alpha1
kind: Cluster
metadata:
  name: stream
cluster:
  kubernetesVersion: v1.37.2
  podCIDR: 10.244.0.0/16
  serviceCIDR: 10.96.0.0/12
ssh:
  user: ` + sshtest.SudoPasswordUser + `
  keyPath: ` + key.Path + `
  agent: false
  knownHosts: ` + known + `
  sudo:
    passwordEnv: BOOT_TEST_SUDO_PW
hosts:
  - name: cp1
    address: ` + s.Address + `
    role: control-plane
    ssh:
      port: ` + strconv.Itoa(s.Port) + `
  - name: w1
    address: ` + w.Address + `
    role: worker
    ssh:
      port: ` + strconv.Itoa(w.Port) + `
registry:
  host: registry.example.com
  acmeEmail: ops@example.org
`
	if err := os.WriteFile(invPath, []byte(inv), 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, err := inventory.Load(invPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out testenv.Buffer
	c, err := Connect(ctx, loaded, ConnectOptions{Parallel: 1, Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := c.controlPlane()
	if got := out.Take(); got != "" {
		t.Errorf("connecting and gathering facts streamed %q", got)
	}

	// A script applied streams every line, stdout and stderr, prefixed.
	pw := sshtest.SudoPasswordUserPassword
	sc := script{name: "stream.sh", text: "echo one\necho two >&2\necho 'would: three'\necho 'pw " + pw + "'\n"}
	if err := forHosts(ctx, c, c.Hosts, sc.apply); err != nil {
		t.Fatal(err)
	}
	got := out.Take()
	for _, host := range []string{"cp1", "w1"} {
		for _, want := range []string{"one", "two", "would: three", "pw ***"} {
			if want = "[" + host + "] " + want + "\n"; !strings.Contains(got, want) {
				t.Errorf("streamed output lacks %q:\n%s", want, got)
			}
		}
	}
	if lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n"); len(lines) != 8 {
		t.Errorf("streamed %d lines, want 8 (no sudo prompt or marker):\n%s", len(lines), got)
	}
	if strings.Contains(got, pw) {
		t.Errorf("the sudo password was streamed:\n%s", got)
	}

	// Probes and file operations stay silent.
	if would, err := sc.check(ctx, h); err != nil || len(would) != 1 {
		t.Fatalf("check: %v %v", would, err)
	}
	secret := filepath.Join(dir, "secret file")
	if err := os.WriteFile(secret, []byte("not for the terminal\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := h.Conn.ReadFile(ctx, secret); err != nil || string(b) != "not for the terminal\n" {
		t.Fatalf("ReadFile: %q %v", b, err)
	}
	if ok, err := exists(ctx, h, secret); err != nil || !ok {
		t.Fatalf("exists: %v %v", ok, err)
	}
	diff, err := differing(ctx, h, dir, []bundle.File{{Path: "secret file", SHA256: "0"}, {Path: "missing", SHA256: "0"}}, "", false)
	if err != nil || len(diff) != 2 {
		t.Fatalf("differing: %v %v", diff, err)
	}
	if got := out.Take(); got != "" {
		t.Errorf("silenced commands streamed %q", got)
	}
}
