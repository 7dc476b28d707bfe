//go:build lab

package cmd

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/bootctl/boot/lab"
)

// kubeletThresholds returns, by node, the imagefs.available threshold the
// node's running kubelet has (its configz, through the API server).
func kubeletThresholds(k kube) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range labHosts {
		raw, err := k.run("", "get", "--raw", "/api/v1/nodes/"+n+"/proxy/configz")
		if err != nil {
			return nil, fmt.Errorf("configz of %s: %v: %s", n, err, raw)
		}
		var z struct {
			KubeletConfig struct {
				EvictionHard map[string]string `json:"evictionHard"`
			} `json:"kubeletconfig"`
		}
		if err := json.Unmarshal([]byte(raw), &z); err != nil {
			return nil, fmt.Errorf("configz of %s: %v", n, err)
		}
		out[n] = z.KubeletConfig.EvictionHard["imagefs.available"]
	}
	return out, nil
}

// checkKubeletConfig proves cluster.kubelet.evictionHard: kubeadm init gave
// every kubelet the lab's thresholds, and a changed threshold reaches the
// running cluster through boot up (the kubelet-config ConfigMap, each
// node's file, each kubelet restarted), then nothing is left to do. The
// inventory keeps the new threshold.
func checkKubeletConfig(t *testing.T, k kube, invPath string) {
	t.Helper()
	want := func(v string) {
		t.Helper()
		got, err := kubeletThresholds(k)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range labHosts {
			if got[n] != v {
				t.Fatalf("the kubelets' imagefs.available: %v, want %s on each", got, v)
			}
		}
	}
	want(lab.EvictionFree)
	text, err := os.ReadFile(invPath)
	if err != nil {
		t.Fatal(err)
	}
	const next = "3Gi"
	old := fmt.Sprintf("imagefsAvailable: %q", lab.EvictionFree)
	if !strings.Contains(string(text), old) {
		t.Fatalf("%s has no %s", invPath, old)
	}
	if err := os.WriteFile(invPath, []byte(strings.Replace(string(text), old, fmt.Sprintf("imagefsAvailable: %q", next), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	evs := bootUp(t, invPath, "boot up with another eviction threshold", "--cluster-only")
	var changed []string
	for _, e := range changedEvents(evs) {
		changed = append(changed, e.Phase+" "+e.Host)
	}
	slices.Sort(changed)
	if w := []string{"kubelet config cp1", "kubelet config cp1", "kubelet config w1", "kubelet config w2", "kubelet config w3"}; !slices.Equal(changed, w) {
		t.Errorf("boot up with another eviction threshold changed %v, want %v", changed, w)
	}
	want(next)
	if cm := k.must("", "-n", "kube-system", "get", "configmap", "kubelet-config", "-o", "jsonpath={.data.kubelet}"); !strings.Contains(cm, "imagefs.available: "+next) {
		t.Errorf("the kubelet-config ConfigMap has not %s:\n%s", next, cm)
	}
	if ch := changedEvents(bootUp(t, invPath, "boot up again (thresholds in place)", "--cluster-only")); len(ch) > 0 {
		t.Errorf("the re-run changed something: %+v", ch)
	}
}
