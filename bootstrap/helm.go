package bootstrap

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/scripts"
)

// defaultHelmVersion is the Helm CLI installed online when the inventory
// pins none (the bundle carries the same release).
const defaultHelmVersion = "v3.22.0"

// HelmCLI installs the Helm CLI on the control plane, so that `helm list`
// works there: the bundle's binary, or the pinned release from get.helm.sh.
type HelmCLI struct{}

// Name implements Phase.
func (HelmCLI) Name() string { return "helm cli" }

// Plan implements Phase.
func (HelmCLI) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	cp := c.controlPlane()
	if !c.bundleMode() {
		download, err := packageMirror("helm", c.Inventory.Packages.Mirrors.Helm)
		if err != nil {
			return nil, err
		}
		return scriptChanges(ctx, c, []*Host{cp}, func(h *Host) (script, error) {
			text, err := scripts.HelmOnline(scripts.HelmOnlineParams{
				Version: cmp.Or(c.Inventory.Packages.Versions.Helm, defaultHelmVersion), Arch: h.Facts.GoArch(),
				Download: download, Proxy: c.proxyFor(h),
			})
			return script{"helm-online.sh", text}, err
		})
	}
	b, err := c.bundle()
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(b.Manifest.Files, func(f bundle.File) bool { return f.Path == "bin/helm" })
	if i < 0 {
		return nil, fmt.Errorf("bundle %s has no bin/helm", b.Dir)
	}
	helm := []bundle.File{b.Manifest.Files[i]}
	// /usr/local/bin/helm is <dir>/bin/helm with dir /usr/local.
	diff, err := differing(ctx, cp, "/usr/local", helm, "", false)
	if err != nil || len(diff) == 0 {
		return nil, err
	}
	return []Change{{
		Host:        cp.Spec.Name,
		Description: "install helm " + helm[0].Version + " from the bundle into /usr/local/bin",
		Apply:       func(ctx context.Context) error { return upload(ctx, cp, b, "/usr/local", helm) },
	}}, nil
}
