package scripts

import (
	"fmt"
	"regexp"
)

// imageRefRe accepts repository:tag image references (no digests).
var imageRefRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9.:_/-]*[a-z0-9])?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// FlannelParams are the inputs of flannel's manifests.
type FlannelParams struct {
	// PodSubnet is the cluster's pod network (CIDR); flannel gives each
	// node a /24 of it.
	PodSubnet string
	// Image is flanneld's image and PluginImage the image that copies the
	// flannel CNI plugin onto the node, both repository:tag.
	Image       string
	PluginImage string
}

// Flannel renders flannel's manifests (namespace, RBAC, configuration and
// DaemonSet; VXLAN backend, CNI configuration at cniVersion 0.4.0), every
// object labelled app.kubernetes.io/managed-by=boot, for `kubectl apply`.
func Flannel(p FlannelParams) (_ []byte, err error) {
	defer wrapError(&err, "Flannel")
	if err := checkCIDR("PodSubnet", p.PodSubnet); err != nil {
		return nil, err
	}
	for _, f := range []struct{ field, value string }{{"Image", p.Image}, {"PluginImage", p.PluginImage}} {
		if !imageRefRe.MatchString(f.value) {
			return nil, fmt.Errorf("%s is not an image reference like registry.example.com/flannel:v1.0", f.field)
		}
	}
	return render("flannel", p)
}
