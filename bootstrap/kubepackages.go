package bootstrap

import (
	"context"

	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/scripts"
)

// KubePackages installs kubeadm and kubelet on every host and kubectl on
// the control plane from the bundle (with kubelet's units), or kubeadm,
// kubelet and kubectl pinned and held from pkgs.k8s.io.
type KubePackages struct{}

// Name implements Phase.
func (KubePackages) Name() string { return "kubernetes packages" }

// Plan implements Phase.
func (KubePackages) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	repo, err := packageMirror("kubernetes", c.Inventory.Packages.Mirrors.Kubernetes)
	if err != nil {
		return nil, err
	}
	return bundleScriptChanges(ctx, c, c.Hosts, "install kubeadm, kubelet, kubectl and kubelet's units from the bundle", func(h *Host) (script, error) {
		if c.bundleMode() {
			text, err := scripts.KubeBundle(scripts.KubeBundleParams{StagingDir: StagingDir, Kubectl: h.Spec.Role == inventory.RoleControlPlane})
			return script{"kube-bundle.sh", text}, err
		}
		text, err := scripts.KubeOnline(scripts.KubeOnlineParams{KubernetesVersion: c.Inventory.Cluster.KubernetesVersion,
			Repository: repo, Proxy: c.proxyFor(h)})
		return script{"kube-online.sh", text}, err
	})
}
