package inventory

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// base is a small valid inventory; table tests edit it. Line numbers matter:
// the cases assert exact lines.
const base = `apiVersion: boot/v1alpha1
kind: Cluster
metadata:
  name: lab
cluster:
  kubernetesVersion: v1.37.2
  podCIDR: 10.244.0.0/16
  serviceCIDR: 10.96.0.0/12
ssh:
  user: root
  port: 22
hosts:
  - name: cp1
    address: 192.0.2.10
    role: control-plane
  - name: w1
    address: 192.0.2.11
    role: worker
registry:
  host: registry.example.com
  acmeEmail: ops@example.org
`

// isolate clears every BOOT_* override (an empty variable is ignored) and
// points HOME at a temporary folder, so tests see only what they set.
func isolate(t testing.TB) string {
	t.Helper()
	for _, e := range EnvVars() {
		t.Setenv(e.Name, "")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	return home
}

// edit applies replacements (old, new, old, new, ...) to text; each old
// must occur exactly once.
func edit(t *testing.T, text string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if n := strings.Count(text, pairs[i]); n != 1 {
			t.Fatalf("edit: %q occurs %d times in the base", pairs[i], n)
		}
		text = strings.Replace(text, pairs[i], pairs[i+1], 1)
	}
	return text
}

// problems loads text as inv.yaml and returns the report's lines (nil when
// the inventory is valid).
func problems(t *testing.T, text string) []string {
	t.Helper()
	inv, err := load("inv.yaml", []byte(text))
	if err == nil {
		if inv == nil {
			t.Fatal("load returned neither an inventory nor an error")
		}
		return nil
	}
	var ie *Error
	if !errors.As(err, &ie) {
		t.Fatalf("load returned %T %v, want *Error", err, err)
	}
	if inv != nil {
		t.Fatal("load returned an inventory with an error")
	}
	return strings.Split(ie.Error(), "\n")
}

func mustLoad(t *testing.T, text string) *Inventory {
	t.Helper()
	inv, err := load("inv.yaml", []byte(text))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return inv
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
