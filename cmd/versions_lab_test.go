//go:build lab

package cmd

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bootctl/boot/inventory"
)

// checkVersionRules runs boot up on the lab cluster (at the bundle's
// version) with another cluster.kubernetesVersion: a patch up the bundle
// does not carry and a minor down both stop in preflight with exit 4,
// before anything changes, the bundle's versions named, and for the
// downgrade every node naming its rule.
func checkVersionRules(t *testing.T, invPath string) {
	t.Helper()
	inv, err := inventory.Load(invPath)
	if err != nil {
		t.Fatal(err)
	}
	running := inv.Cluster.KubernetesVersion
	major, minor := 0, 0
	if _, err := fmt.Sscanf(running, "v%d.%d.", &major, &minor); err != nil {
		t.Fatalf("cluster.kubernetesVersion %q: %v", running, err)
	}
	patch, older := fmt.Sprintf("v%d.%d.99", major, minor), fmt.Sprintf("v%d.%d.0", major, minor-1)
	for _, c := range []struct {
		version, rule string
		hosts         []string
	}{
		{patch, "cluster.kubernetesVersion is " + patch + " but the bundle carries Kubernetes " + running + ", not " + patch, labHosts[:1]},
		{older, "downgrade refused: the node runs Kubernetes " + running, labHosts},
	} {
		dst := editInventory(t, invPath, filepath.Join(filepath.Dir(invPath), "inventory-"+c.version+".yaml"), func(m map[string]any) {
			section(m, "cluster")["kubernetesVersion"] = c.version
		})
		code, stdout, stderr := runBoot(t, "up", "-i", dst, "--cluster-only", "-o", "json")
		if code != ExitPreflight {
			t.Errorf("boot up with kubernetesVersion %s: exit %d, want %d\n%s%s", c.version, code, ExitPreflight, stdout, stderr)
			continue
		}
		evs := parseEvents(t, stdout)
		if slices.ContainsFunc(evs, func(e event) bool { return e.Status == "changed" }) {
			t.Errorf("boot up with kubernetesVersion %s changed something:\n%s", c.version, stdout)
		}
		for _, h := range c.hosts {
			if !slices.ContainsFunc(evs, func(e event) bool {
				return e.Phase == "preflight" && e.Host == h && e.Status == "failed" && strings.HasPrefix(e.Message, c.rule)
			}) {
				t.Errorf("boot up with kubernetesVersion %s: no preflight failure %q on %s:\n%s", c.version, c.rule, h, stdout)
			}
		}
		if !strings.Contains(stdout, "the bundle carries Kubernetes "+running) {
			t.Errorf("boot up with kubernetesVersion %s does not name the bundle's version:\n%s", c.version, stdout)
		}
	}
}
