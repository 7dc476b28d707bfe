package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/scripts"
)

// defaultPauseTag is the sandbox image's tag kubeadm v1.37 asks for; a
// bundle names its own.
const defaultPauseTag = "3.10.2"

// codenames maps os-release ID and VERSION_ID to the release codename
// Docker's apt repository is organised by.
var codenames = map[string]string{
	"debian 12": "bookworm", "debian 13": "trixie",
	"ubuntu 22.04": "jammy", "ubuntu 24.04": "noble",
}

// pauseTag is the pause image's tag: the bundle's, else kubeadm's default.
func (c *Cluster) pauseTag() (string, error) {
	if !c.bundleMode() {
		return defaultPauseTag, nil
	}
	b, err := c.bundle()
	if err != nil {
		return "", err
	}
	for _, img := range b.Manifest.Images {
		if tag, ok := strings.CutPrefix(img.RepoTag, "pause:"); ok {
			return tag, nil
		}
	}
	return "", fmt.Errorf("bundle %s has no pause image", b.Dir)
}

// Runtime installs the container runtime on every host: containerd, runc,
// crictl, the CNI plugins and Docker Engine (dockerd on that containerd,
// its socket for the group docker) from the bundle, or Docker Engine's
// packages online; containerd's CRI on, SystemdCgroup, the sandbox image
// from the cluster's image repository.
type Runtime struct{}

// Name implements Phase.
func (Runtime) Name() string { return "container runtime" }

// Plan implements Phase.
func (Runtime) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	inv := c.Inventory
	pause, err := c.pauseTag()
	if err != nil {
		return nil, err
	}
	repo, err := packageMirror("docker", inv.Packages.Mirrors.Docker)
	if err != nil {
		return nil, err
	}
	return bundleScriptChanges(ctx, c, c.Hosts, "install containerd, runc, crictl and the CNI plugins from the bundle", func(h *Host) (script, error) {
		if c.bundleMode() {
			text, err := scripts.RuntimeBundle(scripts.RuntimeBundleParams{
				StagingDir: StagingDir, ImageRepository: inv.Cluster.ImageRepository, PauseTag: pause,
				RuntimeBinary: inv.Packages.RuntimeBinary,
			})
			return script{"runtime-bundle.sh", text}, err
		}
		text, err := scripts.RuntimeOnline(scripts.RuntimeOnlineParams{
			OSID: h.Facts.OSID, Codename: codenames[h.Facts.OSID+" "+h.Facts.OSVersionID],
			DockerVersion: inv.Packages.Versions.Docker, ContainerdVersion: inv.Packages.Versions.Containerd,
			ImageRepository: inv.Cluster.ImageRepository, PauseTag: pause, RuntimeBinary: inv.Packages.RuntimeBinary,
			Repository: repo, Proxy: c.proxyFor(h),
		})
		return script{"runtime-online.sh", text}, err
	})
}

// bundleScriptChanges is scriptChanges for the install scripts, which in
// bundle mode read the staged bundle even to plan: on a host whose staging
// is not complete yet (a dry run before the upload), the change is planned
// whole, with the given description.
func bundleScriptChanges(ctx context.Context, c *Cluster, hs []*Host, whole string, render func(*Host) (script, error)) ([]Change, error) {
	if !c.bundleMode() {
		return scriptChanges(ctx, c, hs, render)
	}
	var ready, unstaged []*Host
	var mu sync.Mutex
	err := forHosts(ctx, c, hs, func(ctx context.Context, h *Host) error {
		ok, err := staged(ctx, c, h)
		mu.Lock()
		defer mu.Unlock()
		if ok {
			ready = append(ready, h)
		} else {
			unstaged = append(unstaged, h)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	changes, err := scriptChanges(ctx, c, ready, render)
	for _, h := range unstaged {
		s, err := render(h)
		if err != nil {
			return nil, err
		}
		// Only a dry run gets here (a real run has staged the bundle in the
		// phase before): what differs is known once the bundle is there.
		changes = append(changes, Change{Host: h.Spec.Name, Description: run.After(Stage{}.Name(), whole), Apply: func(ctx context.Context) error { return s.apply(ctx, h) }})
	}
	return changes, err
}
