package bootstrap

import (
	"strings"
	"testing"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
)

// cluster.kubernetesVersion against the nodes' kubelets and the bundle:
// the same version passes, a new host is not checked, an upgrade by a patch
// or one minor passes (the upgrade phases do it, also when some nodes are
// done already), and a downgrade, a skipped minor or a bundle that does not
// carry the version fail, each naming its rule.
func TestVersionFindings(t *testing.T) {
	b := func(primary string, others ...string) *bundle.Manifest {
		return &bundle.Manifest{KubernetesVersion: primary, OtherKubernetesVersions: others}
	}
	node := func(name, kubelet string, joined bool) *Host {
		return &Host{Spec: inventory.Host{Name: name}, Facts: &nodes.Facts{KubeletVersion: kubelet, KubeletConf: joined}}
	}
	for _, c := range []struct {
		name   string
		hosts  []*Host
		target string
		bundle *bundle.Manifest
		want   []string // "host: rule", in order
	}{
		{"converged", []*Host{node("cp1", "v1.37.2", true), node("w1", "v1.37.2", true)}, "v1.37.2", b("v1.37.2"), nil},
		{"new hosts", []*Host{node("cp1", "", false), node("w1", "v1.36.0", false)}, "v1.37.2", nil, nil},
		{"downgrade", []*Host{node("cp1", "v1.37.2", true), node("w1", "v1.37.2", true)}, "v1.37.1", nil,
			[]string{"cp1: downgrade refused", "w1: downgrade refused"}},
		{"skipped minor", []*Host{node("cp1", "v1.35.4", true)}, "v1.37.0", nil, []string{"cp1: skipped minor refused"}},
		{"patch upgrade", []*Host{node("cp1", "v1.37.1", true), node("w1", "v1.37.2", true)}, "v1.37.2", nil, nil},
		{"minor upgrade, half done", []*Host{node("cp1", "v1.37.2", true), node("w1", "v1.36.3", true)}, "v1.37.2", b("v1.37.2", "v1.36.3"), nil},
		{"minor upgrade", []*Host{node("cp1", "v1.36.3", true)}, "v1.37.2", b("v1.37.2"), nil},
		{"other version of the bundle", []*Host{node("cp1", "", false)}, "v1.36.3", b("v1.37.2", "v1.36.3"), nil},
		{"bundle of another version", []*Host{node("cp1", "", false)}, "v1.37.3", b("v1.37.2", "v1.36.3"),
			[]string{"cp1: cluster.kubernetesVersion is v1.37.3 but the bundle carries Kubernetes v1.37.2 and v1.36.3, not v1.37.3: use a bundle built for v1.37.3"}},
	} {
		found := versionFindings(c.hosts, c.target, c.bundle)
		var got []string
		for _, f := range found {
			if !f.fatal {
				t.Errorf("%s: %s is a warning, want a failure", c.name, f.message)
			}
			got = append(got, f.host+": "+f.message)
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
			continue
		}
		for i, w := range c.want {
			if !strings.HasPrefix(got[i], w) {
				t.Errorf("%s: %q, want it to start %q", c.name, got[i], w)
			}
		}
	}
}
