// Package bundle builds and opens boot's offline bundle: everything a host
// needs to become a Kubernetes node without internet access, built from the
// Go module proxy, Debian's package mirror and upstream release archives
// at pinned versions.
//
// # Building
//
//	up, err := bundle.LoadUpstream(ctx, "../shared/upstream") // checked against pinned sha256s
//	err = bundle.Build(ctx, bundle.Options{
//		KubernetesVersions: []string{"v1.37.2"},
//		Out:                "dist/bundle",
//		Log:                os.Stderr,
//		Upstream:           up, // optional: cert-manager's images
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
//	                   ctr runc crictl helm dockerd docker-proxy docker
//	                   docker-init (below)
//	cni/bin/           bridge host-local loopback portmap bandwidth flannel
//	kubernetes/<version>/bin/
//	                   kubeadm kubelet kubectl of each older Kubernetes
//	                   version the bundle also carries
//	                   (Manifest.OtherKubernetesVersions; below)
//	images/*.tar       docker-archive image tarballs (loadable by
//	                   `ctr images import`, `docker load` and
//	                   go-containerregistry's tarball package), one image
//	                   each, named as
//	                   `kubeadm config images list --image-repository registry.k8s.io`
//	                   prints, plus flannel's images, the registry
//	                   add-on's (registry.tar, redis.tar; below) and
//	                   cert-manager's (cert-manager-<command>.tar; below);
//	                   an image only an older version asks for is
//	                   <repo>-<tag>.tar, e.g. kube-apiserver-v1.36.3.tar
//	systemd/           containerd.service, kubelet.service, 10-kubeadm.conf,
//	                   docker.service, docker.socket
//	config/            containerd-config.toml, crictl.yaml
//	charts/*.tgz       the add-ons' upstream Helm charts (below), one
//	                   <name>-<version>.tgz each, e.g.
//	                   ingress-nginx-4.15.1.tgz, cert-manager-v1.21.1.tgz,
//	                   traefik-41.3.0.tgz; absent in a bundle built
//	                   without them
//
// Where the files go on a host: bin/* in /usr/local/bin, cni/bin/* in
// /opt/cni/bin, systemd/*.service and docker.socket in /etc/systemd/system,
// systemd/10-kubeadm.conf in /etc/systemd/system/kubelet.service.d,
// config/containerd-config.toml as /etc/containerd/config.toml and
// config/crictl.yaml as /etc/crictl.yaml. The containerd configuration
// names registry.k8s.io's pause image and /usr/local/bin/runc; a cluster
// using another image repository or runc wrapper rewrites those two lines.
//
// # Docker Engine
//
// Every node also runs Docker Engine 29.8.1 on its containerd:
//
//   - dockerd and docker-proxy from the module github.com/moby/moby/v2 at
//     v2.0.0-beta.24 (Docker 29.8.1), the docker CLI from
//     github.com/docker/cli at v29.8.1+incompatible. The CLI's repository
//     has no go.mod: its module is copied into the generated module with
//     vendor.mod and vendor.sum as go.mod and go.sum (a source, as
//     cert-manager's commands are). Both are built static with
//     CGO_ENABLED=0 and the tags netgo, osusergo and static_build, stamped
//     as Docker's build does (dockerversion.Version and cli/version.Version
//     29.8.1; GitCommit the module version, as the module proxy does not
//     tell the release's commit): `docker version` shows 29.8.1. A cold
//     build (empty GOCACHE) took 4 minutes for dockerd and docker-proxy and
//     1 for the CLI on 2 shared cores.
//   - docker-init is Debian's static tini (package tini,
//     /usr/bin/tini-static), the process `docker run --init` starts; the
//     manifest lists its Debian version under builtWith.debian.
//   - systemd/docker.service runs `dockerd -H fd://
//     --containerd=/run/containerd/containerd.sock --ip-forward-no-drop`,
//     ordered after and requiring containerd.service and docker.socket;
//     docker.socket listens on /run/docker.sock for root and the group
//     docker (which the runtime script creates). Docker's containers live
//     in containerd's "moby" namespace, the kubelet's in "k8s.io".
//     --ip-forward-no-drop keeps dockerd from ever setting the FORWARD
//     policy to DROP, which would cut the traffic the node forwards for its
//     pods. Docker's default bridge (docker0, 172.17.0.0/16, or the next
//     free pool when a route holds it) does not meet the cluster's default
//     pod and service networks (10.244.0.0/16, 10.96.0.0/12).
//
// # Several Kubernetes versions
//
// Options.KubernetesVersions may name several versions (boot bundle build
// --kubernetes v1.36.3,v1.37.2): one bundle then builds a cluster at an
// older version and upgrades it in place, offline. The newest is
// Manifest.KubernetesVersion, laid out as in a bundle of it alone (bin/,
// the systemd units, containerd's pause image, images/<repo>.tar); a bundle
// of one version is what it was before the others existed, manifest
// included. Each older one is listed in Manifest.OtherKubernetesVersions,
// its kubeadm, kubelet and kubectl in kubernetes/<version>/bin
// (Manifest.KubernetesBinDir) and every image its kubeadm asks for among
// Manifest.Images: its control plane and kube-proxy (with the same Debian
// layer) from its own binaries, etcd and CoreDNS under the tags it asks for
// holding the bundle's one etcd and CoreDNS (as in a bundle of that version
// alone: v1.36.3's etcd:3.6.8-0 runs etcd v3.7.3), pause from its own
// pause.c unless a newer version asks for the same tag. An image two
// versions ask for (one repoTag) is in the bundle once. Each version is
// compiled in its own generated module (one module cannot hold two
// versions of k8s.io/kubernetes), cached in CACHE/kubernetes-<version>, so
// bundles of v1.36.3, of v1.37.2 and of both share their binaries and image
// layers. Bundle.CheckKubernetes runs every version's programs and checks
// that the bundle holds the images its kubeadm asks for.
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
// # Release archives and cert-manager
//
// Some upstream sources are not on the module proxy: cert-manager's five
// commands (each its own module github.com/cert-manager/cert-manager/<x>-binary,
// never published) and the add-ons' charts. They come from release
// archives, each `git archive` of an upstream release tag gzipped with -n
// (so reproducible), pinned in this package by file name and sha256 with
// the repository, tag and commit they were made from:
//
//	cert-manager-v1.21.1.tar.gz         cert-manager/cert-manager v1.21.1
//	ingress-nginx-chart-4.15.1.tar.gz   kubernetes/ingress-nginx helm-chart-4.15.1
//	traefik-helm-chart-v41.3.0.tar.gz   traefik/traefik-helm-chart v41.3.0
//
// LoadUpstream reads all of them from a local folder (../shared/upstream
// on the build machines) or an http(s) base URL serving files of the same
// names (a mirror), and checks each against its pinned sha256: a missing,
// unreadable or different archive is an error naming the file and the
// sha256 expected, before anything is built. GitHub's own tarballs of the
// same tags are other files (another top folder and compression) and are
// refused. The manifest lists the archives under builtWith.archives.
//
// With Options.Upstream, Build builds cert-manager v1.21.1's controller,
// webhook, cainjector, acmesolver and startupapicheck: the root module
// github.com/cert-manager/cert-manager v1.21.1 from the module proxy, each
// command's module from the archive's cmd/<x> (its go.mod requiring the
// root module at v1.21.1 instead of replacing it with the repository's
// root folder), github.com/Venafi/vcert/v5 at v5.13.9 (the v5.13.7
// cert-manager asks for is not served), stamped as upstream's release
// (pkg/util.AppVersion and AppGitCommit). A cold build takes about 10
// minutes on 2 cores, most of it the controller. The images are named as
// the chart asks, quay.io/jetstack/cert-manager-<x>:v1.21.1 (RepoTag
// jetstack/cert-manager-<x>:v1.21.1, Image.Component
// "cert-manager-<x>", Version "v1.21.1"): the command at
// /app/cmd/<x>/<x> (the entrypoint) as in upstream's images, its licenses
// in /licenses, Debian's CA certificates (the controller talks to ACME
// servers), user 1000:1000 (the chart sets runAsNonRoot, which needs a
// numeric user). The chart renders them unchanged with imageRegistry set to
// the repository that serves the bundle's images.
//
// # The add-ons' charts
//
// Options.Charts are packed as charts/<name>-<version>.tgz, listed among
// the manifest's files (size and sha256, Component the chart's name,
// Version its version) and in Manifest.Charts, one per slot: the inventory
// field under addons the chart serves ("certManager", "ingressNginx",
// "traefik"), with the chart's name, exact version and file. Build checks
// every archive (a Helm chart archive whose Chart.yaml has that name and
// version, one chart per slot; slots with the same chart name and version
// share one file, so their archives must be equal) before it builds
// anything. Upstream.Chart packs a release archive's chart (cert-manager's
// from deploy/charts/cert-manager, its placeholder version v0.0.0 stamped
// v1.21.1 as version and appVersion; ingress-nginx 4.15.1 from
// charts/ingress-nginx; traefik 41.3.0 from traefik/) as `helm package`
// does, with fixed times, so equal archives give byte-equal bundles.
// `boot bundle build` takes a pin of exactly such a chart from the release
// archives, and loads the others with addons.ChartLoader: the archive
// exactly as the repository served it (its digest checked), or a local
// chart folder packaged with Helm (its archive's timestamps are the
// build's, the one part of a bundle that is not byte-reproducible). With
// packages.source bundle, `boot addons` (and `boot up`) takes a chart whose
// addons.<slot>.path is empty from the bundle when the manifest holds its
// slot at the inventory's exact name and version (checking only that
// file), and otherwise downloads it.
//
// The ingress-nginx controller's image is not in the bundle (nginx with
// OpenResty modules cannot be built here): with ingress-nginx, the nodes
// must reach its registry, or the image must be mirrored into a registry
// they reach, such as cluster.imageRepository.
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
//	// The add-ons' images are found by Image.Component: "registry",
//	// "redis", "cert-manager-controller", ...
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
