// Package bundle builds and opens boot's offline bundle: everything a host
// needs to become a Kubernetes node without internet access, built from the
// Go module proxy and Debian's package mirror at pinned versions.
//
// # Building
//
//	err := bundle.Build(ctx, bundle.Options{
//		KubernetesVersion: "v1.37.2",
//		Out:               "dist/bundle",
//		Log:               os.Stderr,
//	})
//
// Build compiles every component in a generated throwaway Go module kept in a
// cache folder (Options.CacheDir, default $XDG_CACHE_HOME/boot/bundle), so a
// second build whose inputs did not change reuses the binaries and image
// layers and takes seconds. Builds are reproducible: -trimpath,
// -buildvcs=false, CGO_ENABLED=0 (runc, flanneld and pause need cgo/gcc and
// are linked statically; runc needs libseccomp-dev), fixed -ldflags version
// stamps, image layers with fixed timestamps and owners. The kube-proxy and
// flannel images carry a layer of Debian packages (iptables nft and legacy,
// nftables, conntrack, ipset, iproute2, coreutils, dash) resolved with
// apt-cache and unpacked with dpkg-deb, so the build needs apt's package
// lists (apt-get update). Their iptables commands start as a wrapper that
// switches to the backend (nft or legacy) already holding the host's rules.
// One build at a time uses a cache folder (it is locked); the cache may be
// deleted at any time.
//
// flannel's CNI plugin is the last one published in
// github.com/containernetworking/plugins (v0.9.1, plugins/meta/flannel; the
// later github.com/flannel-io/cni-plugin is not served by the module
// proxy): it speaks CNI spec versions up to 0.4.0, so flannel's conflist
// must say cniVersion "0.3.1" or "0.4.0".
//
// Kubernetes v1.37.2's kubelet runs on a cgroup v1 host when its
// configuration sets failCgroupV1: false (it logs that cgroup v1 is
// deprecated and goes on; with the default it refuses to start). Checked
// on the test lab's cgroup-v1-only kernel with the bundle's kubelet and
// containerd 2.4.2.
//
// # Layout of a bundle folder
//
//	manifest.json      the Manifest below
//	bin/               kubeadm kubelet kubectl containerd containerd-shim-runc-v2
//	                   ctr runc crictl helm
//	cni/bin/           bridge host-local loopback portmap bandwidth flannel
//	images/*.tar       docker-archive image tarballs (loadable by
//	                   `ctr images import` and go-containerregistry's tarball
//	                   package), one image each, named as
//	                   `kubeadm config images list --image-repository registry.k8s.io`
//	                   prints, plus flannel's images
//	systemd/           containerd.service, kubelet.service, 10-kubeadm.conf
//	config/            containerd-config.toml, crictl.yaml
//
// Where the files go on a host: bin/* in /usr/local/bin, cni/bin/* in
// /opt/cni/bin, systemd/*.service in /etc/systemd/system,
// systemd/10-kubeadm.conf in /etc/systemd/system/kubelet.service.d,
// config/containerd-config.toml as /etc/containerd/config.toml and
// config/crictl.yaml as /etc/crictl.yaml. The containerd configuration
// names registry.k8s.io's pause image and /usr/local/bin/runc; a cluster
// using another image repository or runc wrapper rewrites those two lines.
//
// # Opening
//
//	b, err := bundle.Open(dir) // verifies every file's size and sha256
//	for _, img := range b.Manifest.Images {
//		// img.Name is e.g. "registry.k8s.io/coredns/coredns:v1.14.6";
//		// img.RepoTag is "coredns:v1.14.6": push it as R/coredns:v1.14.6
//		// for kubeadm's imageRepository R.
//		i, err := b.Image(img.Name) // a go-containerregistry v1.Image
//	}
//	path := b.Path("bin/kubeadm")
//
// Open fails with an error naming the file if any file listed in the
// manifest is missing, has a different size or sha256, or if an image's
// archive is not listed among the files.
package bundle
