package bundle

import (
	"context"
	"fmt"
	"strings"
)

// goComponent is one upstream Go module whose main packages the bundle
// builds in a generated throwaway module.
type goComponent struct {
	name    string // manifest component name and cache folder prefix
	module  string
	version string
	// local is the version that replaces upstream's in-repository replace
	// directives (Kubernetes' staging modules, etcd's sibling modules).
	local string
	// pins replaces dependencies whose required version the module proxy
	// does not serve.
	pins    map[string]string
	bins    []goBinary
	tags    []string
	cgo     bool // needs cgo: linked statically with netgo/osusergo
	ldflags []string
	// sources are modules the module proxy does not serve, built from
	// folders inside the generated module: each is required at a zero
	// pseudo-version of its major (v0.0.0-00010101000000-000000000000, or
	// v5.0.0-... for a path ending in /v5) and replaced by ./<dir>; fill
	// writes the module's files (go.mod included) into that folder before
	// go mod tidy. A replace in upstream's go.mod whose old path is a
	// source's path is dropped in favour of the source.
	sources []localModule
	// modFile is the file of the module holding its requirements when
	// that is not go.mod (docker/cli's vendor.mod): the generated module
	// takes its go version and replaces from there.
	modFile string
}

// localModule is a module built from a folder of the generated module
// (goComponent.sources), such as a command of an upstream release archive.
type localModule struct {
	path string // module path, e.g. github.com/cert-manager/cert-manager/controller-binary
	dir  string // folder under the generated module, e.g. "src/controller"
	fill func(ctx context.Context, dst string) error
}

// localModuleVersion is the version a source of major version 0 or 1 is
// required at: a pseudo-version that only its replace resolves (a path with
// a major version suffix gets the same pseudo-version of that major).
const localModuleVersion = "v0.0.0-00010101000000-000000000000"

// goBinary is one main package and the file name it is built to.
type goBinary struct {
	pkg  string
	name string
	dest string // folder in the bundle: "bin", "cni/bin" or "" (image only)
}

// Pinned versions of everything but Kubernetes itself.
const (
	etcdVersion          = "v3.7.3"
	containerdVersion    = "v2.4.2"
	runcVersion          = "v1.5.2"
	crictlVersion        = "v1.37.0"
	cniPluginsVersion    = "v1.10.0"
	flannelVersion       = "v0.28.10"
	flannelPluginVersion = "v0.9.1" // last containernetworking/plugins with plugins/meta/flannel
	corednsVersion       = "v1.14.6"
	helmVersion          = "v3.22.0"
	registryVersion      = "v3.1.2" // the newest v3.1.x the module proxy serves
)

// registryModule is the CNCF distribution registry's module.
const registryModule = "github.com/distribution/distribution/v3"

// kubernetesComponent builds kubeadm, kubelet, kubectl and the control
// plane binaries of Kubernetes version (e.g. "v1.37.2") with the version
// stamps that Kubernetes' own build sets.
func kubernetesComponent(version string) (goComponent, error) {
	major, minor, ok := splitMinor(version)
	if !ok {
		return goComponent{}, fmt.Errorf("kubernetes version %q: want vMAJOR.MINOR.PATCH, e.g. v1.37.2", version)
	}
	var ld []string
	for _, pkg := range []string{"k8s.io/client-go/pkg/version", "k8s.io/component-base/version"} {
		ld = append(ld,
			"-X", pkg+".gitVersion="+version,
			"-X", pkg+".gitMajor="+major,
			"-X", pkg+".gitMinor="+minor,
			"-X", pkg+".gitTreeState=clean",
		)
	}
	c := goComponent{
		name:    "kubernetes",
		module:  "k8s.io/kubernetes",
		version: version,
		// staging modules are published as v0.MINOR.PATCH
		local:   "v0" + strings.TrimPrefix(version, "v"+major),
		ldflags: ld,
	}
	// kubeadm, kubelet and kubectl go to the version's folder
	// (Manifest.KubernetesBinDir), the others into images only.
	for _, name := range kubernetesBins {
		c.bins = append(c.bins, goBinary{pkg: "k8s.io/kubernetes/cmd/" + name, name: name, dest: "bin"})
	}
	for _, name := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"} {
		c.bins = append(c.bins, goBinary{pkg: "k8s.io/kubernetes/cmd/" + name, name: name})
	}
	return c, nil
}

// splitMinor splits "v1.37.2" into "1" and "37".
func splitMinor(v string) (major, minor string, ok bool) {
	parts := strings.Split(strings.TrimPrefix(v, "v"), ".")
	if !strings.HasPrefix(v, "v") || len(parts) != 3 {
		return "", "", false
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return "", "", false
		}
	}
	return parts[0], parts[1], true
}

// otherComponents are the pinned non-Kubernetes Go components.
func otherComponents() []goComponent {
	cni := func(dir string) goBinary {
		return goBinary{pkg: "github.com/containernetworking/plugins/plugins/" + dir, name: dir[strings.LastIndex(dir, "/")+1:], dest: "cni/bin"}
	}
	return []goComponent{
		{
			name: "etcd", module: "go.etcd.io/etcd/server/v3", version: etcdVersion, local: etcdVersion,
			bins: []goBinary{{pkg: "go.etcd.io/etcd/server/v3", name: "etcd"}},
		},
		{
			name: "containerd", module: "github.com/containerd/containerd/v2", version: containerdVersion,
			bins: []goBinary{
				{pkg: "github.com/containerd/containerd/v2/cmd/containerd", name: "containerd", dest: "bin"},
				{pkg: "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2", name: "containerd-shim-runc-v2", dest: "bin"},
				{pkg: "github.com/containerd/containerd/v2/cmd/ctr", name: "ctr", dest: "bin"},
			},
			tags: []string{"no_btrfs", "no_devmapper"},
			ldflags: []string{
				"-X", "github.com/containerd/containerd/v2/version.Version=" + containerdVersion,
				"-X", "github.com/containerd/containerd/v2/version.Package=github.com/containerd/containerd/v2",
			},
		},
		{
			name: "runc", module: "github.com/opencontainers/runc", version: runcVersion,
			bins: []goBinary{{pkg: "github.com/opencontainers/runc", name: "runc", dest: "bin"}},
			tags: []string{"seccomp", "urfave_cli_no_docs"},
			cgo:  true,
		},
		{
			name: "crictl", module: "sigs.k8s.io/cri-tools", version: crictlVersion,
			bins:    []goBinary{{pkg: "sigs.k8s.io/cri-tools/cmd/crictl", name: "crictl", dest: "bin"}},
			ldflags: []string{"-X", "sigs.k8s.io/cri-tools/pkg/version.Version=" + crictlVersion},
		},
		{
			name: "cni-plugins", module: "github.com/containernetworking/plugins", version: cniPluginsVersion,
			bins:    []goBinary{cni("main/bridge"), cni("ipam/host-local"), cni("main/loopback"), cni("meta/portmap"), cni("meta/bandwidth")},
			ldflags: []string{"-X", "github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=" + cniPluginsVersion},
		},
		{
			name: "flannel-cni-plugin", module: "github.com/containernetworking/plugins", version: flannelPluginVersion,
			bins:    []goBinary{cni("meta/flannel")},
			ldflags: []string{"-X", "github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=" + flannelPluginVersion},
		},
		{
			name: "flannel", module: "github.com/flannel-io/flannel", version: flannelVersion,
			bins: []goBinary{{pkg: "github.com/flannel-io/flannel", name: "flanneld"}},
			cgo:  true, // the udp backend's proxy is C on amd64
			// v1.3.188 (flannel's tencentvpc backend) is not served by the
			// module proxy; v1.0.900 is and compiles with it.
			pins:    map[string]string{"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc": "v1.0.900"},
			ldflags: []string{"-X", "github.com/flannel-io/flannel/pkg/version.Version=" + flannelVersion},
		},
		{
			name: "coredns", module: "github.com/coredns/coredns", version: corednsVersion,
			bins: []goBinary{{pkg: "github.com/coredns/coredns", name: "coredns"}},
		},
		{
			name: "helm", module: "helm.sh/helm/v3", version: helmVersion,
			bins:    []goBinary{{pkg: "helm.sh/helm/v3/cmd/helm", name: "helm", dest: "bin"}},
			ldflags: []string{"-X", "helm.sh/helm/v3/internal/version.version=" + helmVersion, "-X", "helm.sh/helm/v3/internal/version.gitTreeState=clean"},
		},
		{
			// Stamped as upstream's release images are: the version
			// without its "v" (`registry --version` prints
			// "registry github.com/distribution/distribution/v3 3.1.2").
			name: "registry", module: registryModule, version: registryVersion,
			bins: []goBinary{{pkg: registryModule + "/cmd/registry", name: "registry"}},
			ldflags: []string{
				"-X", registryModule + "/version.version=" + strings.TrimPrefix(registryVersion, "v"),
				"-X", registryModule + "/version.mainpkg=" + registryModule,
			},
		},
	}
}
