//go:build lab

package cmd

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// checkPrune removes w3 from a copy of the inventory (beside it, so that
// the hosts' snapshots are found): boot up without --prune warns of it,
// boot up --prune --dry-run plans its removal, and neither changes
// anything; boot up --prune --verify drains and deletes its Node, resets
// the host with the teardown script and finds it as its snapshot recorded
// it before boot up. boot up with the full inventory then joins w3 again,
// and the four nodes are Ready.
func checkPrune(t *testing.T, k kube, invPath string) {
	t.Helper()
	without := editInventory(t, invPath, filepath.Join(filepath.Dir(invPath), "inventory-without-w3.yaml"), func(m map[string]any) {
		hosts, _ := m["hosts"].([]any)
		m["hosts"] = slices.DeleteFunc(hosts, func(h any) bool {
			host, _ := h.(map[string]any)
			return host["name"] == "w3"
		})
	})

	const warning = "remove w3: left the inventory: not removed; run with --prune to drain, delete and reset it"
	evs := dryRun(t, "boot up --dry-run without w3", "up", "-i", without, "--cluster-only")
	if !slices.ContainsFunc(evs, func(e event) bool {
		return e.Phase == "prune" && e.Host == "w3" && e.Status == "warning" && e.Message == warning
	}) {
		t.Errorf("boot up --dry-run without w3 does not warn %q", warning)
	}
	if p := planned(evs); len(p) > 0 {
		t.Errorf("boot up --dry-run without w3 and without --prune plans changes: %+v", p)
	}
	plan := dryRun(t, "boot up --prune --dry-run without w3", "up", "-i", without, "--cluster-only", "--prune")
	if p := planned(plan); len(p) != 1 || p[0].Phase != "prune" || p[0].Host != "w3" || !strings.HasPrefix(p[0].Message, "remove w3: drain it, delete the Node and reset its host ") {
		t.Errorf("boot up --prune --dry-run without w3 plans %+v; want only the removal of w3", p)
	}
	if problem := nodesReady(k); problem != "" {
		t.Fatalf("after the dry runs: %s", problem)
	}

	start := time.Now()
	evs = bootUp(t, without, "boot up --prune --verify without w3", "--cluster-only", "--prune", "--verify")
	t.Logf("boot up --prune --verify took %s", time.Since(start).Round(time.Millisecond))
	checkPlan(t, "boot up --prune --verify without w3", plan, evs)
	if !slices.ContainsFunc(evs, func(e event) bool { return e.Phase == "prune" && e.Host == "w3" && e.Status == "changed" }) {
		t.Errorf("boot up --prune did not remove w3")
	}
	if !slices.ContainsFunc(evs, func(e event) bool {
		return e.Phase == "verify" && e.Status == "ok" && e.Message == "every host is as it was before boot up"
	}) {
		t.Errorf("boot up --prune --verify did not find w3 as it was before boot up: %+v", evs)
	}
	if out := k.must("", "get", "nodes", "-o", "name"); strings.Contains(out, "node/w3\n") || strings.Count(out, "\n") != 3 {
		t.Errorf("Nodes after the prune: %q, want cp1, w1 and w2", out)
	}
	if out, ok := onHost("w3", "test -e /etc/kubernetes/kubelet.conf || test -e /usr/local/bin/kubelet || test -e /var/lib/kubelet"); ok {
		t.Errorf("w3 still has the kubelet's files after the prune: %s", out)
	}

	evs = bootUp(t, invPath, "boot up with w3 back in the inventory", "--cluster-only")
	if !slices.ContainsFunc(evs, func(e event) bool { return e.Phase == "join workers" && e.Host == "w3" && e.Status == "changed" }) {
		t.Errorf("boot up did not join w3 again")
	}
	eventually(t, "four Ready nodes after w3 joined again", 3*time.Minute, func() string { return nodesReady(k) })
}
