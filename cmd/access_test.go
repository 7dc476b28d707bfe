package cmd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/inventory"
)

// TestAccessLinesPasteSafely pastes the command lines of the registry access
// summary into a real POSIX shell, where kubectl, base64 and docker are
// shell functions that record their arguments: a user name and a kubeconfig
// path that hold command substitutions, quotes and spaces must each arrive
// as exactly one argument, and nothing in them may run.
func TestAccessLinesPasteSafely(t *testing.T) {
	dir := t.TempDir()
	// The shell runs in dir: a substitution that ran would create "pwned".
	user := "$(>pwned)'`>pwned`\"${HOME}"
	kubeconfig := filepath.Join(dir, "it's my $(>pwned) seed.kubeconfig")
	creds, err := addons.NewRegistryCredentials(user, "a-password-of-some-length")
	if err != nil {
		t.Fatal(err)
	}
	inv := &inventory.Inventory{
		Cluster:  inventory.Cluster{Kubeconfig: kubeconfig},
		Registry: inventory.Registry{Host: "registry.example.com"},
	}
	var out bytes.Buffer
	printAccess(&out, "text", inv, &addons.Result{Credentials: creds, CredentialsSecret: "docker-registry/registry-credentials",
		Users: []addons.RegistryUser{{Name: "ci", Role: "push", Secret: "docker-registry/registry-user-ci", Generated: true}}})

	var readLine, loginLine, userLine string
	lines := strings.Split(out.String(), "\n")
	for i, l := range lines {
		if strings.HasSuffix(l, "read it with:") && i+1 < len(lines) {
			readLine = strings.TrimSpace(lines[i+1])
		}
		if rest, ok := strings.CutPrefix(l, "Log in:"); ok {
			loginLine = strings.TrimSpace(rest)
		}
		if strings.HasPrefix(l, "Users:      ci (push), password in Secret docker-registry/registry-user-ci:") && i+1 < len(lines) {
			userLine = strings.TrimSpace(lines[i+1])
		}
	}
	if readLine == "" || loginLine == "" || userLine == "" {
		t.Fatalf("the summary lacks the read or log-in line:\n%s", out.String())
	}

	wantKubectl := []string{"--kubeconfig", kubeconfig, "-n", "docker-registry", "get", "secret", "registry-credentials", "-o", "jsonpath={.data.password}"}
	wantDocker := []string{"login", "registry.example.com", "-u", user, "--password-stdin"}
	for _, tc := range []struct {
		line string
		want map[string][]string
	}{
		{readLine, map[string][]string{"kubectl": wantKubectl, "base64": {"-d"}}},
		{loginLine, map[string][]string{"kubectl": wantKubectl, "base64": {"-d"}, "docker": wantDocker}},
		{userLine, map[string][]string{"kubectl": {"--kubeconfig", kubeconfig, "-n", "docker-registry", "get", "secret", "registry-user-ci", "-o", "jsonpath={.data.password}"}, "base64": {"-d"}}},
	} {
		args := pasteIntoShell(t, dir, tc.line)
		if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
			t.Fatalf("pasting %q ran a command substitution", tc.line)
		}
		for name, want := range tc.want {
			if !slices.Equal(args[name], want) {
				t.Errorf("pasting %q: %s got arguments %q, want %q", tc.line, name, args[name], want)
			}
		}
	}
}

// pasteIntoShell runs line in sh (in dir) with kubectl, base64 and docker
// replaced by functions, and returns the arguments each one received.
func pasteIntoShell(t *testing.T, dir, line string) map[string][]string {
	t.Helper()
	argsDir := t.TempDir()
	const stubs = `for f in kubectl base64 docker; do eval "$f() { printf '%s\n' \"\$@\" > \"\$ARGS/$f\"; cat; }"; done
eval "$LINE" </dev/null >/dev/null`
	c := exec.Command("sh", "-c", stubs)
	c.Dir = dir
	c.Env = append(os.Environ(), "LINE="+line, "ARGS="+argsDir)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("sh on %q: %v\n%s", line, err, out)
	}
	args := map[string][]string{}
	for _, name := range []string{"kubectl", "base64", "docker"} {
		if b, err := os.ReadFile(filepath.Join(argsDir, name)); err == nil {
			args[name] = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		}
	}
	return args
}
