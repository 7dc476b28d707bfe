package bootstrap

import (
	"context"
)

// KubePackages installs kubeadm and kubelet on every host and kubectl on
// the control plane from the bundle (with kubelet's units), or kubeadm,
// kubelet and kubectl pinned and held from pkgs.k8s.io.
type KubePackages struct{}

// Name implements Phase.
func (KubePackages) Name() string { return "kubernetes packages" }

// Plan implements Phase. A Node whose kubelet runs another version than
// the target is left to the upgrade phases.
func (KubePackages) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	var hs []*Host
	for _, h := range c.Hosts {
		if !c.upgrading(h) {
			hs = append(hs, h)
		}
	}
	return bundleScriptChanges(ctx, c, hs, "install kubeadm, kubelet, kubectl and kubelet's units from the bundle", func(h *Host) (script, error) {
		return c.kubePackagesScript(h, nil)
	})
}
