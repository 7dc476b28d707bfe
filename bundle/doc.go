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
// lists (apt-get update). The redis image is such a layer too (redis-server,
// redis-tools, dash, grep); packages that only serve maintainer scripts or
// init systems (adduser, init-system-helpers, lsb-base, dpkg, ...) are left
// out with whatever only they pull in (perl, passwd, PAM). Their iptables commands start as a wrapper that
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
//	                   `ctr images import`, `docker load` and
//	                   go-containerregistry's tarball package), one image
//	                   each, named as
//	                   `kubeadm config images list --image-repository registry.k8s.io`
//	                   prints, plus flannel's images and the registry
//	                   add-on's (registry.tar, redis.tar; below)
//	systemd/           containerd.service, kubelet.service, 10-kubeadm.conf
//	config/            containerd-config.toml, crictl.yaml
//	charts/*.tgz       the add-ons' upstream Helm charts (below), one
//	                   <name>-<version>.tgz each, e.g.
//	                   ingress-nginx-4.15.1.tgz, cert-manager-v1.19.1.tgz;
//	                   absent in a bundle built without them
//
// Where the files go on a host: bin/* in /usr/local/bin, cni/bin/* in
// /opt/cni/bin, systemd/*.service in /etc/systemd/system,
// systemd/10-kubeadm.conf in /etc/systemd/system/kubelet.service.d,
// config/containerd-config.toml as /etc/containerd/config.toml and
// config/crictl.yaml as /etc/crictl.yaml. The containerd configuration
// names registry.k8s.io's pause image and /usr/local/bin/runc; a cluster
// using another image repository or runc wrapper rewrites those two lines.
//
// # The registry add-on's images
//
// So that the registry chart runs without internet, the bundle holds:
//
//   - docker.io/library/registry:3.1.2 (RepoTag library/registry:3.1.2,
//     Image.Component "registry", Version "v3.1.2"): the CNCF distribution
//     registry built from the module proxy (github.com/distribution/distribution/v3,
//     cmd/registry; `registry --version` prints
//     "registry github.com/distribution/distribution/v3 3.1.2" as upstream's
//     release does) at /bin/registry, Debian's CA certificates as
//     /etc/ssl/certs/ca-certificates.crt (the bundle update-ca-certificates
//     would write), /etc/distribution/config.yml (a default configuration:
//     file system storage in /var/lib/registry, port 5000) and an empty
//     /var/lib/registry. Entrypoint /bin/registry, command
//     `serve /etc/distribution/config.yml`, as upstream's image runs. The
//     registry reads no configuration unless given one (an argument or
//     REGISTRY_CONFIGURATION_PATH), so a command that replaces the default
//     names the file again.
//   - docker.io/library/redis:<upstream version>-debian (e.g.
//     7.0.15-debian; RepoTag library/redis:7.0.15-debian, Image.Component
//     "redis", Version the Debian version, e.g. "5:7.0.15-1~deb12u10"):
//     Debian's redis-server and redis-cli with the shared libraries they
//     link, and sh and grep for the chart's readiness probe. Entrypoint
//     /usr/bin/redis-server (no configuration file: Redis' defaults plus the
//     arguments), working folder /data.
//
// Neither image sets a user: both run as any uid (the chart runs them as
// non-root with a read-only root file system; Redis writes nothing with
// `--save "" --appendonly no`, the registry writes only below its storage
// root, a volume).
//
// # The add-ons' charts
//
// Options.Charts are packed as charts/<name>-<version>.tgz, listed among
// the manifest's files (size and sha256, Component the chart's name,
// Version its version) and in Manifest.Charts, one per slot: the inventory
// field under addons the chart serves ("ingressNginx", "certManager"),
// with the chart's name, exact version and file. Build checks every archive
// (a Helm chart archive whose Chart.yaml has that name and version, one
// chart per slot; slots with the same chart name and version share one
// file, so their archives must be equal) before it builds anything. `boot bundle build` loads
// them from the inventory's addons pins (or boot's defaults) with
// addons.ChartLoader: the archive exactly as the repository served it
// (its digest checked), or a local chart folder packaged with Helm (its
// archive's timestamps are the build's, the one part of a bundle that is
// not byte-reproducible). With packages.source bundle, `boot addons` (and
// `boot up`) takes a chart whose addons.<slot>.path is empty from the bundle
// when the manifest holds its slot at the inventory's exact name and version
// (checking only that file), and otherwise downloads it.
//
// Only the charts are packed, not the images they run (ingress-nginx's
// controller, cert-manager's controller, webhook, cainjector and
// startupapicheck): the nodes must reach those images' registries, or the
// images must be mirrored into a registry they reach, such as
// cluster.imageRepository, by a chart whose default image values point there
// (boot sets no image values for these two charts; a chart packed from
// addons.<slot>.path can carry such values).
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
//	// The registry add-on's images are found by Image.Component:
//	// "registry" and "redis".
//	path := b.Path("bin/kubeadm")
//
// Open fails with an error naming the file if any file listed in the
// manifest is missing, has a different size or sha256, or if an image's
// or chart's archive is not listed among the files.
//
// A caller that needs one chart reads the manifest and checks only that
// file, instead of hashing the whole bundle:
//
//	m, err := bundle.ReadManifest(dir) // parsed and validated, no file read
//	if c, ok := m.Chart("ingressNginx"); ok {
//		p, err := m.VerifiedFile(dir, c.Path) // size and sha256 of that file
//	}
package bundle
