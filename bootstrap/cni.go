package bootstrap

import (
	"context"
	"errors"
	"strings"

	"github.com/bootctl/boot/nodes"
	"github.com/bootctl/boot/scripts"
)

// flannel's upstream images, used when packages come online and no image
// repository is set. In bundle mode the bundle's own tags are used.
const (
	flannelRegistry = "ghcr.io"
	flannelImage    = "flannel-io/flannel:v0.28.10"
	// FlannelPluginImage is the CNI plugin's image online (the bundle
	// builds an older plugin of its own, flannel-io/flannel-cni-plugin:v0.9.1).
	FlannelPluginImage = "flannel-io/flannel-cni-plugin:v1.8.0-flannel1"
)

// flannelImages returns flanneld's image and the CNI plugin's image.
func (c *Cluster) flannelImages() (image, plugin string, err error) {
	repo := c.Inventory.Cluster.ImageRepository
	if repo == "" {
		repo = flannelRegistry
	}
	image, plugin = flannelImage, FlannelPluginImage
	if c.bundleMode() {
		b, err := c.bundle()
		if err != nil {
			return "", "", err
		}
		for _, img := range b.Manifest.Images {
			switch {
			case strings.HasPrefix(img.RepoTag, "flannel-io/flannel:"):
				image = img.RepoTag
			case strings.HasPrefix(img.RepoTag, "flannel-io/flannel-cni-plugin:"):
				plugin = img.RepoTag
			}
		}
	}
	return repo + "/" + image, repo + "/" + plugin, nil
}

// CNI applies the pod network (flannel) through kubectl on the control
// plane, when what runs differs from boot's manifests (kubectl diff).
type CNI struct{}

// Name implements Phase.
func (CNI) Name() string { return "pod network" }

// Plan implements Phase.
func (CNI) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	image, plugin, err := c.flannelImages()
	if err != nil {
		return nil, err
	}
	manifests, err := scripts.Flannel(scripts.FlannelParams{PodSubnet: c.Inventory.Cluster.PodCIDR, Image: image, PluginImage: plugin})
	if err != nil {
		return nil, err
	}
	cp := c.controlPlane()
	ch := Change{
		Host:        cp.Spec.Name,
		Description: "apply flannel (pod network " + c.Inventory.Cluster.PodCIDR + ", " + image + ")",
		Apply:       func(ctx context.Context) error { return kubectl(ctx, cp, manifests, "apply", "-f", "-") },
	}
	up, err := exists(ctx, cp, adminConf)
	if err != nil || !up {
		return []Change{ch}, err // planned before kubeadm init ran
	}
	// kubectl diff cannot dry-run objects in a namespace that does not
	// exist yet: then flannel was never applied.
	ns, err := kubectlOutput(ctx, cp, nil, "get", "namespace", "kube-flannel", "--ignore-not-found", "-o", "name")
	if err != nil || strings.TrimSpace(ns) == "" {
		return []Change{ch}, err
	}
	// kubectl diff exits 0 when the cluster matches, 1 when it differs.
	_, err = kubectlOutput(ctx, cp, manifests, "diff", "-f", "-")
	var exit *nodes.ExitError
	switch {
	case err == nil:
		return nil, nil
	case errors.As(err, &exit) && exit.Status == 1:
		return []Change{ch}, nil
	default:
		return nil, err
	}
}
