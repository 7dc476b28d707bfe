//go:build lab

package cmd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootctl/boot/inventory"
)

// checkBastion proves the bastion end to end on the lab: with this
// machine's SSH to the workers refused (a REJECT rule in its own OUTPUT
// chain, removed at the end), boot up --dry-run cannot reach them directly
// (exit 3), and reaches every host through cp1 as the bastion, with the
// same host keys checked strictly, and plans (exit 0).
func checkBastion(t *testing.T, invPath string) {
	inv, err := inventory.Load(invPath)
	if err != nil {
		t.Fatal(err)
	}
	bastion := inv.ControlPlane().Address
	for _, h := range inv.Workers() {
		rule := []string{"OUTPUT", "-d", h.Address, "-p", "tcp", "--dport", "22", "-j", "REJECT"}
		if out, err := exec.Command("iptables", append([]string{"-I"}, rule...)...).CombinedOutput(); err != nil {
			t.Fatalf("iptables -I %s: %v\n%s", strings.Join(rule, " "), err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("iptables", append([]string{"-D"}, rule...)...).CombinedOutput(); err != nil {
				t.Errorf("iptables -D %s: %v\n%s", strings.Join(rule, " "), err, out)
			}
		})
	}
	code, stdout, stderr := runBoot(t, "up", "-i", invPath, "--cluster-only", "--dry-run", "-o", "json")
	if code != ExitUnreachable || !strings.Contains(stderr, "w1") {
		t.Fatalf("boot up --dry-run with SSH to the workers refused: exit %d, want %d naming w1\n%s%s", code, ExitUnreachable, stdout, stderr)
	}

	text, err := os.ReadFile(invPath)
	if err != nil {
		t.Fatal(err)
	}
	withBastion := strings.Replace(string(text), "\nssh:\n", "\nssh:\n  bastion:\n    address: "+bastion+"\n", 1)
	if withBastion == string(text) {
		t.Fatalf("no ssh: section in %s", invPath)
	}
	bastionInv := filepath.Join(filepath.Dir(invPath), "inventory-bastion.yaml")
	if err := os.WriteFile(bastionInv, []byte(withBastion), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runBoot(t, "up", "-i", bastionInv, "--cluster-only", "--dry-run", "-o", "json")
	if code != ExitOK {
		t.Fatalf("boot up --dry-run through the bastion %s: exit %d\n%s%s", bastion, code, stdout, stderr)
	}
	evs := parseEvents(t, stdout)
	for _, h := range labHosts {
		if !containsEvent(evs, "connect", h, "ok") || !containsEvent(evs, "preflight", h, "ok") {
			t.Errorf("through the bastion: no ok connect and preflight events for %s", h)
		}
	}
	t.Logf("boot up --dry-run through the bastion %s (the workers' SSH refused from here): %d change(s) planned", bastion, len(planned(evs)))
}
