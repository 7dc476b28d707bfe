package bootstrap

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// kubeadmKubeletConfig is a kubelet configuration as kubeadm writes it
// (abridged), with a large integer the rewrite must keep as written.
const kubeadmKubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
cgroupDriver: systemd
containerLogMaxSize: 10Mi
kind: KubeletConfiguration
maxOpenFiles: 1000000
podPidsLimit: -1
resolvConf: /etc/kubernetes/resolv.conf
`

func TestWithEvictionHard(t *testing.T) {
	if _, changed, err := withEvictionHard([]byte(kubeadmKubeletConfig), nil); err != nil || changed {
		t.Fatalf("no thresholds wanted, none set: changed %v, %v", changed, err)
	}
	want := map[string]string{"imagefs.available": "2Gi", "imagefs.inodesFree": "5%", "memory.available": "100Mi", "nodefs.available": "2Gi", "nodefs.inodesFree": "5%"}
	doc, changed, err := withEvictionHard([]byte(kubeadmKubeletConfig), want)
	if err != nil || !changed {
		t.Fatalf("thresholds wanted: changed %v, %v", changed, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(kubeadmKubeletConfig), "\n") {
		if !strings.Contains(string(doc), line+"\n") {
			t.Errorf("the rewrite lost or changed %q:\n%s", line, doc)
		}
	}
	var cfg struct {
		EvictionHard map[string]string `json:"evictionHard"`
	}
	if err := yaml.Unmarshal(doc, &cfg); err != nil || len(cfg.EvictionHard) != 5 || cfg.EvictionHard["imagefs.available"] != "2Gi" {
		t.Fatalf("evictionHard written: %v, %v\n%s", cfg.EvictionHard, err, doc)
	}
	if _, changed, err := withEvictionHard(doc, want); err != nil || changed {
		t.Errorf("the same thresholds again: changed %v, %v", changed, err)
	}
	want2 := map[string]string{"imagefs.available": "3Gi", "imagefs.inodesFree": "5%", "memory.available": "100Mi", "nodefs.available": "2Gi", "nodefs.inodesFree": "5%"}
	if _, changed, _ := withEvictionHard(doc, want2); !changed {
		t.Error("one threshold changed: no change planned")
	}
	back, changed, err := withEvictionHard(doc, nil)
	if err != nil || !changed || strings.Contains(string(back), "evictionHard") {
		t.Errorf("thresholds taken out of the inventory: changed %v, %v\n%s", changed, err, back)
	}
	for _, bad := range []string{"", "kind: ConfigMap\n", "[1, 2]"} {
		if _, _, err := withEvictionHard([]byte(bad), want); err == nil {
			t.Errorf("%q: taken for a kubelet configuration", bad)
		}
	}
}

func TestDescribeEviction(t *testing.T) {
	if got := describeEviction(nil); got != "the kubelet's defaults" {
		t.Errorf("nil: %q", got)
	}
	if got := describeEviction(map[string]string{"nodefs.available": "2Gi", "imagefs.available": "3Gi"}); got != "imagefs.available<3Gi, nodefs.available<2Gi" {
		t.Errorf("two thresholds: %q", got)
	}
}
