package cmd

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// run executes boot with args and returns the exit code, stdout and stderr.
func runBoot(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Execute(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestEveryCommandHasAnExample(t *testing.T) {
	root, _ := newRootCmd(new(bytes.Buffer), new(bytes.Buffer))
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		if c.Runnable() && !strings.Contains(c.Example, "boot ") {
			t.Errorf("%q: --help shows no example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func TestValidateExample(t *testing.T) {
	code, out, errOut := runBoot(t, "validate", "-i", "../examples/inventory.yaml")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr: %s", code, errOut)
	}
	for _, want := range []string{"valid", "cp1", "control-plane", "w3", "registry.example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// ingress-nginx: one warning, on stderr, with the way out.
	if strings.Count(errOut, "Warning: ") != 1 || !strings.Contains(errOut, "addons.ingress.controller: ingress-nginx was retired upstream in March 2026") ||
		!strings.Contains(errOut, "tested upstream only up to Kubernetes 1.35") || !strings.Contains(errOut, "addons.ingress.controller: traefik)") {
		t.Errorf("stderr:\n%s\nwant one warning about the retired ingress-nginx", errOut)
	}
	t.Setenv("BOOT_ADDONS_INGRESS_CONTROLLER", "traefik")
	if code, _, errOut := runBoot(t, "validate", "-i", "../examples/inventory.yaml"); code != ExitOK || errOut != "" {
		t.Errorf("with traefik: exit %d, stderr %q, want no warning", code, errOut)
	}
}

func TestExitCodesForBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: boot/v1alpha1\nkind: Cluster\nmetadata:\n  name: Bad_Name\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no inventory", nil, []string{"up", "--dry-run"}, ExitInvalid, "no inventory"},
		{"missing file", nil, []string{"up", "-i", filepath.Join(dir, "nope.yaml")}, ExitInvalid, "nope.yaml"},
		{"invalid file names line and field", nil, []string{"up", "-i", bad, "--dry-run"}, ExitInvalid, bad + ":4: metadata.name:"},
		{"bad flag", nil, []string{"up", "--no-such-flag"}, ExitInvalid, "no-such-flag"},
		{"bad output", nil, []string{"version", "-o", "yaml"}, ExitInvalid, "expected text or json"},
		{"bad env flag", map[string]string{"BOOT_PARALLEL": "many"}, []string{"version"}, ExitInvalid, "BOOT_PARALLEL"},
		{"zero parallel", nil, []string{"version", "--parallel", "0"}, ExitInvalid, "at least 1"},
		{"env inventory", map[string]string{"BOOT_INVENTORY": bad}, []string{"validate"}, ExitInvalid, "metadata.name"},
		{"stray argument", nil, []string{"up", "-i", bad, "extra"}, ExitInvalid, `unknown command "extra"`},
		{"missing required flag", nil, []string{"prune", "--registry", "http://127.0.0.1:1"}, ExitInvalid, "--rules are required"},
		{"command flags are not read from the environment", map[string]string{"BOOT_RULES": bad}, []string{"prune", "--registry", "http://127.0.0.1:1"}, ExitInvalid, "--rules are required"},
		{"bundle verify takes one folder", nil, []string{"bundle", "verify"}, ExitInvalid, "accepts 1 arg"},
		{"addons: invalid inventory", nil, []string{"addons", "-i", bad}, ExitInvalid, bad + ":4: metadata.name:"},
		{"teardown: invalid inventory", nil, []string{"teardown", "-i", bad, "--yes"}, ExitInvalid, bad + ":4: metadata.name:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, errOut := runBoot(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, errOut)
			}
		})
	}
}

func TestValidateJSON(t *testing.T) {
	t.Setenv("BOOT_OUTPUT", "json")
	code, out, _ := runBoot(t, "validate", "-i", "../examples/inventory.yaml")
	var v validation
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != ExitOK {
		t.Fatalf("exit %d, output %q: %v", code, out, err)
	}
	if !v.Valid || v.Cluster != "seed" || len(v.Hosts) != 4 {
		t.Errorf("unexpected answer %+v", v)
	}
	if len(v.Warnings) != 1 || v.Warnings[0].Field != "addons.ingress.controller" || v.Warnings[0].Line == 0 {
		t.Errorf("warnings %+v, want the retired ingress-nginx at its line", v.Warnings)
	}

	t.Setenv("BOOT_CLUSTER_PODCIDR", "10.96.0.0/16") // overlaps the service network
	code, out, _ = runBoot(t, "validate", "-i", "../examples/inventory.yaml")
	var bad validation
	if err := json.Unmarshal([]byte(out), &bad); err != nil || code != ExitInvalid {
		t.Fatalf("exit %d, output %q: %v", code, out, err)
	}
	if bad.Valid || len(bad.Problems) != 1 || !strings.Contains(bad.Problems[0].Message, "overlaps cluster.podCIDR 10.96.0.0/16") || bad.Hosts != nil {
		t.Errorf("want one problem: the overlap with the podCIDR from the environment, got %+v", bad)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runBoot(t, "version", "-o", "json")
	var v struct{ Version, Go, Platform string }
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != ExitOK || v.Version == "" || v.Go == "" {
		t.Fatalf("exit %d, %q: %v", code, out, err)
	}
}
