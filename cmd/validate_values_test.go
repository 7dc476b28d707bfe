package cmd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootctl/boot/internal/sshtest"
)

// Values the renderers refuse are refused by boot validate, at their line,
// exit 2; and boot up stops on them the same way before it contacts a host.
func TestValidateRefusesWhatRenderersRefuse(t *testing.T) {
	key := sshtest.NewKey(t, "")
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	for _, tc := range []struct {
		name    string
		add     string    // appended to the inventory: registry is its last section
		line    int       // of the refused field in add, from 1; with replace, its line; -1: none
		want    string    // field: message
		replace [2]string // old, new in the inventory
	}{
		{name: "image repository with $(...)", add: "cluster:\n  imageRepository: \"registry.example.com/$(id)\"\n", line: 2,
			want: `cluster.imageRepository: "registry.example.com/$(id)" is not an image repository`},
		{name: "image repository with a quote", add: "cluster:\n  imageRepository: 'registry.example.com/k8s\"'\n", line: 2,
			want: `cluster.imageRepository: "registry.example.com/k8s\"" is not an image repository`},
		{name: "runtime binary with a carriage return", add: "packages:\n  runtimeBinary: \"/usr/local/bin/runc\\r\"\n", line: 2,
			want: `packages.runtimeBinary: "/usr/local/bin/runc\r" holds a control character`},
		{name: "docker version with $(...)", add: "packages:\n  versions:\n    docker: \"28.1.1$(id)\"\n", line: 3,
			want: `packages.versions.docker: "28.1.1$(id)" is not a package version`},
		{name: "containerd version with a quote", add: "packages:\n  versions:\n    containerd: \"1.7.27'\"\n", line: 3,
			want: `packages.versions.containerd: "1.7.27'" is not a package version`},
		{name: "helm version with a carriage return", add: "packages:\n  versions:\n    helm: \"3.22.0\\r\"\n", line: 3,
			want: `packages.versions.helm: "3.22.0\r" is not a Helm release MAJOR.MINOR.PATCH`},
		{name: "cniPlugins, read by nothing", add: "packages:\n  versions:\n    cniPlugins: 1.8.0\n", line: 3,
			want: `packages.versions.cniPlugins: is no longer read by boot`},
		{name: "registry user with a carriage return", add: "  auth:\n    user: \"admin\\r\"\n", line: 2,
			want: `registry.auth.user: "admin\r" is not a user name`},
		{name: "registry user with a space", add: "  auth:\n    user: \"ad min\"\n", line: 2,
			want: `registry.auth.user: "ad min" is not a user name`},
		{name: "registry host in capitals", replace: [2]string{"host: registry.example.com", "host: Registry.example.com"},
			want: `registry.host: "Registry.example.com" is not a lower-case DNS name without a final dot`},
		{name: "registry host with a final dot", replace: [2]string{"host: registry.example.com", "host: registry.example.com."},
			want: `registry.host: "registry.example.com." is not a lower-case DNS name without a final dot`},
		{name: "bundle without an image repository", add: "packages:\n  source: bundle\n  bundle: /nonexistent/bundle\n", line: -1,
			want: `cluster.imageRepository: is missing`},
		{name: "route53 record address IPv6", add: "dns:\n  provider: route53\n  zone: example.com\n  addresses: [\"2001:db8::1\"]\n", line: 4,
			want: `dns.addresses[0]: "2001:db8::1" is not an IPv4 address`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, contacted := closedHosts(t, key.Path, knownHosts)
			before, err := os.ReadFile(inv)
			if err != nil {
				t.Fatal(err)
			}
			text := string(before) + tc.add
			line := strings.Count(string(before), "\n") + tc.line
			if old, repl := tc.replace[0], tc.replace[1]; old != "" {
				line = strings.Count(text[:strings.Index(text, old)], "\n") + 1
				text = strings.Replace(text, old, repl, 1)
			}
			if err := os.WriteFile(inv, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("%s:%d: %s", inv, line, tc.want)
			if tc.line < 0 {
				want = inv + ": " + tc.want // a missing field in a missing section has no line
			}
			for _, args := range [][]string{{"validate", "-i", inv}, {"up", "-i", inv, "--dry-run"}} {
				code, stdout, stderr := runBoot(t, args...)
				if code != ExitInvalid || !strings.Contains(stderr, want) {
					t.Errorf("boot %s: exit %d, want %d and %q\n%s%s", args[0], code, ExitInvalid, want, stdout, stderr)
				}
			}
			if contacted() {
				t.Error("a host was contacted")
			}
		})
	}
}

// The Helm version takes the form examples/inventory.yaml shows, 3.22.0,
// and v3.22.0 alike.
func TestValidateAcceptsHelmVersionWithAndWithoutV(t *testing.T) {
	key := sshtest.NewKey(t, "")
	for _, v := range []string{"3.22.0", "v3.22.0"} {
		inv, _ := closedHosts(t, key.Path, filepath.Join(t.TempDir(), "known_hosts"))
		before, err := os.ReadFile(inv)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(inv, append(before, "packages:\n  versions:\n    helm: "+v+"\n"...), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, stdout, stderr := runBoot(t, "validate", "-i", inv); code != ExitOK {
			t.Errorf("helm: %s: exit %d, want %d\n%s%s", v, code, ExitOK, stdout, stderr)
		}
	}
}
