package cmd

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/crypto/ssh"

	"github.com/bootctl/boot/internal/sshtest"
)

// TestHostTextIsEscaped runs boot up --dry-run against a real sshd whose
// sessions see a hostile /etc/os-release (bind-mounted in a mount namespace
// of their own): terminal escapes, a carriage return, Unicode line breaks and
// a line break inside a quoted value. The facts and preflight messages must
// show those characters escaped, in text and in JSON, and put none of them
// on the operator's terminal.
func TestHostTextIsEscaped(t *testing.T) {
	dir := t.TempDir()
	osRelease := filepath.Join(dir, "os-release")
	if err := os.WriteFile(osRelease, []byte("PRETTY_NAME=\"Debian\n\x1b[2J wiped\"\n"+
		"ID=deb\x1b[31mian\n"+
		"VERSION_ID=\"12\r\u2028\u0085\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// sshd runs every session's command through this script.
	wrapper := filepath.Join(dir, "hostile-host")
	if err := os.WriteFile(wrapper, []byte(`#!/bin/sh
exec unshare --mount sh -c 'mount --bind "$1" /etc/os-release && exec sh -c "$SSH_ORIGINAL_COMMAND"' hostile-host `+osRelease+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A control plane and a worker, both this machine seen through the script.
	key := sshtest.NewKey(t, "")
	var known, hosts strings.Builder
	for i, h := range []struct{ name, role string }{{"cp1", "control-plane"}, {"w1", "worker"}} {
		s := sshtest.Start(t, sshtest.Options{
			Address:        fmt.Sprintf("127.0.0.%d", i+2),
			AuthorizedKeys: map[string][]ssh.PublicKey{"root": {key.Public}},
			Extra:          []string{"ForceCommand " + wrapper},
		})
		fmt.Fprintln(&known, s.KnownHostsLine())
		fmt.Fprintf(&hosts, "  - {name: %s, address: %s, role: %s, ssh: {port: %d}}\n", h.name, s.Address, h.role, s.Port)
	}
	knownHosts := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(known.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	inv := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(inv, []byte(fmt.Sprintf(`apiVersion: boot/v1alpha1
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
`, key.Path, knownHosts, hosts.String())), 0o600); err != nil {
		t.Fatal(err)
	}

	const shown = `deb\x1b[31mian 12\r\u2028\u0085` // ID and VERSION_ID, escaped
	wantFragments := []string{shown + " " + runtime.GOARCH + ", kernel", "unsupported OS " + shown + " (supported"}

	code, stdout, stderr := runBoot(t, "up", "-i", inv, "--dry-run")
	if code != ExitPreflight {
		t.Fatalf("exit %d, want %d (the OS is not supported); stderr:\n%s", code, ExitPreflight, stderr)
	}
	for _, want := range wantFragments {
		if !strings.Contains(stdout, want) {
			t.Errorf("text output lacks %q:\n%s", want, stdout)
		}
	}
	for _, out := range []struct{ name, text string }{{"stdout", stdout}, {"stderr", stderr}} {
		if i := strings.IndexFunc(out.text, func(r rune) bool { return r != '\n' && !unicode.IsGraphic(r) }); i >= 0 {
			t.Errorf("%s carries the host's character %U to the terminal: %q", out.name, []rune(out.text[i:])[0], out.text)
		}
	}

	code, stdout, stderr = runBoot(t, "up", "-i", inv, "--dry-run", "-o", "json")
	if code != ExitPreflight {
		t.Fatalf("json: exit %d, want %d; stderr:\n%s", code, ExitPreflight, stderr)
	}
	found := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var e struct{ Message string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not a JSON event: %q: %v", sc.Text(), err)
		}
		if strings.IndexFunc(e.Message, func(r rune) bool { return !unicode.IsGraphic(r) }) >= 0 {
			t.Errorf("a JSON message carries the host's control characters: %q", e.Message)
		}
		for _, want := range wantFragments {
			found[want] = found[want] || strings.Contains(e.Message, want)
		}
	}
	for _, want := range wantFragments {
		if !found[want] {
			t.Errorf("no JSON message holds %q:\n%s", want, stdout)
		}
	}
}
