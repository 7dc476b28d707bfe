package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
)

// kubeletConfigFile is each node's kubelet configuration: kubeadm writes it
// from the kubelet-config ConfigMap when the node joins or is upgraded.
const kubeletConfigFile = "/var/lib/kubelet/config.yaml"

// kubeletRestartTimeout is how long a restarted kubelet has to run with its
// new configuration.
const kubeletRestartTimeout = 2 * time.Minute

// KubeletConfig brings what boot sets in the kubelet configuration
// (cluster.kubelet: the hard eviction thresholds) to a running cluster.
// kubeadm init writes it for a new cluster; on one made before, or after
// the inventory changed, this phase writes it into the kubelet-config
// ConfigMap (what joins and upgrades copy to the nodes) and into each
// node's own file, and restarts that node's kubelet, waiting until it runs
// with the new thresholds. A host that is not yet a node is left to its
// join.
type KubeletConfig struct{}

// Name implements Phase.
func (KubeletConfig) Name() string { return "kubelet config" }

// Plan implements Phase.
func (KubeletConfig) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	cp := c.controlPlane()
	if up, err := exists(ctx, cp, adminConf); err != nil || !up {
		return nil, err
	}
	want := c.Inventory.Cluster.Kubelet.EvictionHard.Signals()
	what := "evictionHard " + describeEviction(want)
	cm, err := kubectlOutput(ctx, cp, nil, "-n", "kube-system", "get", "configmap", "kubelet-config", "-o", "jsonpath={.data.kubelet}")
	if err != nil {
		return nil, fmt.Errorf("reading the kubelet-config ConfigMap: %w", err)
	}
	doc, changed, err := withEvictionHard([]byte(cm), want)
	if err != nil {
		return nil, fmt.Errorf("the kubelet-config ConfigMap: %w", err)
	}
	byHost := map[string][]Change{}
	if changed {
		patch, err := json.Marshal(map[string]any{"data": map[string]string{"kubelet": string(doc)}})
		if err != nil {
			return nil, err
		}
		byHost[cp.Spec.Name] = []Change{{Host: cp.Spec.Name, Description: "kubelet-config ConfigMap: " + what, Apply: func(ctx context.Context) error {
			return kubectl(ctx, cp, patch, "-n", "kube-system", "patch", "configmap", "kubelet-config", "--type=merge", "--patch-file=/dev/stdin")
		}}}
	}
	var mu sync.Mutex
	err = forHosts(ctx, c, c.Hosts, func(ctx context.Context, h *Host) error {
		b, err := h.Conn.ReadFile(ctx, kubeletConfigFile)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		doc, changed, err := withEvictionHard(b, want)
		if err != nil {
			return fmt.Errorf("%s: %w", kubeletConfigFile, err)
		}
		if !changed {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		byHost[h.Spec.Name] = append(byHost[h.Spec.Name], Change{Host: h.Spec.Name, Description: kubeletConfigFile + ": " + what + ", kubelet restarted",
			Apply: func(ctx context.Context) error {
				if _, err := h.Conn.Upload(ctx, doc, kubeletConfigFile, 0o644, nodes.AsRoot()); err != nil {
					return err
				}
				if _, err := h.Conn.Sudo(ctx, "systemctl restart kubelet"); err != nil {
					return err
				}
				return waitEviction(ctx, cp, h.Spec.Name, want)
			}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	var changes []Change
	for _, h := range c.Hosts {
		changes = append(changes, byHost[h.Spec.Name]...)
	}
	return changes, nil
}

// describeEviction says what thresholds want holds, for a change's
// description.
func describeEviction(want map[string]string) string {
	if want == nil {
		return "the kubelet's defaults"
	}
	var parts []string
	for s, v := range want {
		parts = append(parts, s+"<"+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// withEvictionHard returns the kubelet configuration doc with its
// evictionHard set to want (taken out for nil), and whether that changed
// it. The rest of the configuration is kept (its layout is not: kubeadm
// writes it in the same sorted form).
func withEvictionHard(doc []byte, want map[string]string) ([]byte, bool, error) {
	var cfg map[string]any
	if err := yaml.Unmarshal(doc, &cfg, func(d *json.Decoder) *json.Decoder { d.UseNumber(); return d }); err != nil {
		return nil, false, fmt.Errorf("not a kubelet configuration: %w", err)
	}
	if cfg["kind"] != "KubeletConfiguration" {
		return nil, false, fmt.Errorf("not a kubelet configuration (kind %v)", cfg["kind"])
	}
	have, _ := cfg["evictionHard"].(map[string]any)
	if sameThresholds(have, want) {
		return doc, false, nil
	}
	if want == nil {
		delete(cfg, "evictionHard")
	} else {
		cfg["evictionHard"] = want
	}
	out, err := yaml.Marshal(cfg)
	return out, true, err
}

// sameThresholds reports whether a configuration's evictionHard (have)
// holds exactly the thresholds want.
func sameThresholds(have map[string]any, want map[string]string) bool {
	if len(have) != len(want) {
		return false
	}
	for s, v := range want {
		if have[s] != v {
			return false
		}
	}
	return true
}

// waitEviction waits until the kubelet of node name runs with the
// thresholds want (the kubelet's defaults for nil), as its configz,
// read through the API server, says.
func waitEviction(ctx context.Context, cp *Host, name string, want map[string]string) error {
	if want == nil {
		want = inventory.KubeletEvictionDefaults
	}
	return poll(ctx, kubeletRestartTimeout, func() (bool, string) {
		out, err := kubectlOutput(ctx, cp, nil, "get", "--raw", "/api/v1/nodes/"+name+"/proxy/configz", "--request-timeout=5s")
		if err != nil {
			return false, err.Error()
		}
		var z struct {
			KubeletConfig struct {
				EvictionHard map[string]string `json:"evictionHard"`
			} `json:"kubeletconfig"`
		}
		if err := json.Unmarshal([]byte(out), &z); err != nil {
			return false, "configz: " + err.Error()
		}
		for s, v := range want {
			if z.KubeletConfig.EvictionHard[s] != v {
				return false, fmt.Sprintf("the kubelet runs with %s<%s", s, nodes.EscapeHostText(z.KubeletConfig.EvictionHard[s]))
			}
		}
		return true, ""
	}, func(last string) error {
		return fmt.Errorf("the kubelet of %s does not run with the new thresholds after %s (journalctl -u kubelet on the host says why): %s", name, kubeletRestartTimeout, last)
	})
}
