package cmd

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/bootctl/boot/internal/sshtest"
)

// Test-only secrets: none of them may appear in any output or log.
const (
	testSudoPassword  = sshtest.SudoPasswordUserPassword
	testLoginPassword = sshtest.PasswordUserPassword
)

// sshLab is four real sshd servers on 127.0.0.2-5, all on this machine.
type sshLab struct {
	dir, inventory, knownHosts string
}

// startLab starts the four sshd servers and writes an inventory for them:
// cp1 as root, w1 with passwordless sudo, w2 with a sudo password, w3 with a
// login password and no sudo rights at all.
func startLab(t *testing.T) sshLab {
	t.Helper()
	for _, u := range []string{sshtest.SudoUser, sshtest.SudoPasswordUser, sshtest.PasswordUser} {
		sshtest.RequireUser(t, u)
	}
	key := sshtest.NewKey(t, "")
	keys := []ssh.PublicKey{key.Public}
	authorized := map[string][]ssh.PublicKey{"root": keys, sshtest.SudoUser: keys, sshtest.SudoPasswordUser: keys}
	dir := t.TempDir()
	var known, hosts strings.Builder
	for i, h := range []struct{ name, role, ssh string }{
		{"cp1", "control-plane", "{}"},
		{"w1", "worker", fmt.Sprintf("{user: %s}", sshtest.SudoUser)},
		{"w2", "worker", fmt.Sprintf("{user: %s, sudoPasswordEnv: BOOT_TEST_SUDO_PASSWORD}", sshtest.SudoPasswordUser)},
		{"w3", "worker", fmt.Sprintf("{user: %s, passwordEnv: BOOT_TEST_LOGIN_PASSWORD}", sshtest.PasswordUser)},
	} {
		s := sshtest.Start(t, sshtest.Options{Address: fmt.Sprintf("127.0.0.%d", i+2), AuthorizedKeys: authorized, Password: h.name == "w3"})
		fmt.Fprintln(&known, s.KnownHostsLine())
		fmt.Fprintf(&hosts, "  - name: %s\n    address: %s\n    role: %s\n    ssh: %s\n", h.name, s.Address, h.role, strings.TrimSuffix(h.ssh, "}")+fmt.Sprintf("%sport: %d}", sep(h.ssh), s.Port))
	}
	l := sshLab{dir: dir, inventory: filepath.Join(dir, "inventory.yaml"), knownHosts: filepath.Join(dir, "known_hosts")}
	if err := os.WriteFile(l.knownHosts, []byte(known.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	inv := fmt.Sprintf(`apiVersion: boot/v1alpha1
kind: Cluster
metadata:
  name: local
ssh:
  keyPath: %s
  knownHosts: %s
  agent: false
hosts:
%sregistry:
  host: registry.example.com
  acmeEmail: ops@example.com
`, key.Path, l.knownHosts, hosts.String())
	if err := os.WriteFile(l.inventory, []byte(inv), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BOOT_TEST_SUDO_PASSWORD", testSudoPassword)
	t.Setenv("BOOT_TEST_LOGIN_PASSWORD", testLoginPassword)
	return l
}

func sep(s string) string {
	if s == "{}" {
		return ""
	}
	return ", "
}

// touchedPaths are where boot's later phases write on a host. A dry run must
// leave every one of them exactly as it was.
var touchedPaths = []string{
	"/etc/kubernetes", "/etc/containerd", "/etc/cni", "/opt/cni", "/var/lib/kubelet",
	"/etc/sysctl.d", "/etc/modules-load.d", "/etc/systemd/system", "/usr/local/bin",
	"/etc/fstab", "/etc/hostname", "/etc/hosts", "/etc/apt/sources.list.d",
}

// snapshot fingerprints the files under paths: names, modes, sizes, contents.
func snapshot(t *testing.T, paths ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, root := range paths {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					out[p] = "absent"
					return nil
				}
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			sum := ""
			if info.Mode().IsRegular() {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				sum = fmt.Sprintf("%x", sha256.Sum256(b))
			}
			out[p] = fmt.Sprintf("%s %d %s", info.Mode(), info.Size(), sum)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestUpDryRunAgainstFourSSHDs(t *testing.T) {
	l := startLab(t)
	before := snapshot(t, append(touchedPaths, l.knownHosts)...)
	logFile := filepath.Join(l.dir, "boot.log")

	code, stdout, stderr := runBoot(t, "up", "-i", l.inventory, "--dry-run", "-o", "json", "--log-level", "debug", "--log-file", logFile)

	if code != ExitPreflight {
		t.Errorf("exit %d, want %d (these four hosts are one machine: preflight must refuse them); stderr:\n%s", code, ExitPreflight, stderr)
	}
	type event struct{ Phase, Host, Status, Message string }
	var events []event
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("stdout line is not a JSON event: %q: %v", sc.Text(), err)
		}
		events = append(events, e)
	}
	has := func(phase, host, status, fragment string) bool {
		return slices.ContainsFunc(events, func(e event) bool {
			return e.Phase == phase && e.Host == host && e.Status == status && strings.Contains(e.Message, fragment)
		})
	}
	for _, h := range []string{"cp1", "w1", "w2", "w3"} {
		if !has("connect", h, "ok", "@127.0.0.") || !has("facts", h, "ok", "kernel") {
			t.Errorf("%s: no successful connect and facts events", h)
		}
	}
	for _, h := range []string{"w1", "w2", "w3"} {
		if !has("preflight", h, "failed", `same hostname`) || !has("preflight", h, "failed", "same machine-id") {
			t.Errorf("%s: preflight did not refuse the cloned hostname and machine-id", h)
		}
	}
	if !has("preflight", "w3", "failed", "cannot run commands as root") {
		t.Errorf("w3 has no sudo rights, but preflight did not say so")
	}
	if has("preflight", "w1", "failed", "root") || has("preflight", "w2", "failed", "root") {
		t.Errorf("sudo (without and with a password) should have worked on w1 and w2")
	}
	if comm, _ := os.ReadFile("/proc/1/comm"); strings.TrimSpace(string(comm)) != "systemd" && !has("preflight", "cp1", "failed", "systemd is not PID 1") {
		t.Errorf("PID 1 here is %q, but preflight did not say systemd is missing", comm)
	}
	for _, e := range events {
		if e.Status == "changed" {
			t.Errorf("a dry run changed something: %+v", e)
		}
	}

	logged, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{testSudoPassword, testLoginPassword} {
		for name, text := range map[string]string{"stdout": stdout, "stderr": stderr, "log file": string(logged)} {
			if strings.Contains(text, secret) {
				t.Errorf("a secret appears in the %s", name)
			}
		}
	}
	if info, err := os.Stat(logFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("log file mode: %v %v", info.Mode(), err)
	}

	after := snapshot(t, append(touchedPaths, l.knownHosts)...)
	for p, was := range before {
		if after[p] != was {
			t.Errorf("dry run changed %s: %q -> %q", p, was, after[p])
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("dry run created %s", p)
		}
	}
}

func TestUpRefusesUnknownHostKey(t *testing.T) {
	l := startLab(t)
	if err := os.WriteFile(l.knownHosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runBoot(t, "up", "-i", l.inventory, "--dry-run")
	if code != ExitUnreachable {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, ExitUnreachable, stderr)
	}
	for _, want := range []string{"cp1", "w3", "SHA256:", "strict"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if b, _ := os.ReadFile(l.knownHosts); len(b) != 0 {
		t.Errorf("strict policy wrote known_hosts:\n%s", b)
	}
}
