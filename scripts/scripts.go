package scripts

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/bootctl/boot/inventory"
)

// HostPrepParams are the inputs of the host preparation script.
type HostPrepParams struct {
	// Hostname is the node's inventory name (a DNS name), set as the
	// host's name now and at boot.
	Hostname string
	// Address is the node's cluster-internal IP, mapped to Hostname in
	// /etc/hosts.
	Address string
	// Packages are Debian/Ubuntu packages installed with apt-get when
	// missing; may be empty.
	Packages []string
	// Nameservers, when set, are written to ResolvConf for the kubelet
	// (KubeadmParams.ResolvConf): pods' upstream DNS servers.
	Nameservers []string
	// Proxy, when set, is written for apt (an apt.conf.d file) and for
	// containerd, docker and the kubelet (systemd drop-ins); without it,
	// boot's files from an earlier proxy are removed.
	Proxy *Proxy
	// RegistryMirrors are written as containerd's hosts.toml files under
	// RegistryHostsDir, docker.io's endpoints without a path also as
	// Docker's registry-mirrors (/etc/docker/daemon.json, unless a
	// daemon.json boot did not write is there: then a warning) with their
	// CA in /etc/docker/certs.d; boot's files no longer needed are removed.
	RegistryMirrors []RegistryMirror
}

// RegistryHostsDir is where containerd reads registry hosts.toml files
// (the configuration's config_path).
const RegistryHostsDir = "/etc/containerd/certs.d"

// ResolvConf is where HostPrep writes the kubelet's resolv.conf when
// nameservers are given.
const ResolvConf = "/etc/kubernetes/resolv.conf"

// HostPrep renders the host preparation script: kernel modules overlay and
// br_netfilter (loaded and listed in /etc/modules-load.d only where they are
// loadable modules; loaded or built-in ones need nothing), the forwarding and
// bridge-netfilter sysctls in /etc/sysctl.d for boot and set now key by key
// (not sysctl --system, which in a privileged container would rewrite the
// machine's global keys; a key that is read-only on the host is a warning), swap off now and in /etc/fstab (backed up once to
// /etc/fstab.boot-backup), missing packages, the hostname and its
// /etc/hosts entry, with Nameservers the kubelet's ResolvConf, the proxy's
// apt and systemd settings (units whose settings changed are restarted when
// running) and the registry mirrors' hosts.toml files.
func HostPrep(p HostPrepParams) (_ string, err error) {
	defer wrapError(&err, "HostPrep")
	if err := checkDNSName("Hostname", p.Hostname); err != nil {
		return "", err
	}
	if err := checkIP("Address", p.Address); err != nil {
		return "", err
	}
	for i, pkg := range p.Packages {
		if !aptPackageRe.MatchString(pkg) {
			return "", fmt.Errorf("%s[%d] is not a Debian package name", "Packages", i)
		}
	}
	for i, ns := range p.Nameservers {
		if err := checkIP(fmt.Sprintf("Nameservers[%d]", i), ns); err != nil {
			return "", err
		}
	}
	if err := p.Proxy.check(); err != nil {
		return "", err
	}
	mirrors, err := resolveRegistryMirrors(p.RegistryMirrors)
	if err != nil {
		return "", err
	}
	dm := dockerMirrors(mirrors)
	var insecure []string
	for _, m := range dm {
		if m.Insecure {
			insecure = append(insecure, m.Host)
		}
	}
	return renderString("hostprep.sh.tmpl", struct {
		HostPrepParams
		ResolvConf, HostsDir  string
		Mirrors               []registryHosts
		DockerMirrors         []dockerMirror
		InsecureDockerMirrors []string
	}{p, ResolvConf, RegistryHostsDir, mirrors, dm, insecure})
}

// RuntimeBundleParams are the inputs of the bundle container runtime script.
type RuntimeBundleParams struct {
	// StagingDir is the absolute path on the host where the bundle's bin/,
	// cni/bin/ and systemd/ folders were uploaded.
	StagingDir string
	// ImageRepository holds the pause image; empty means
	// DefaultImageRepository.
	ImageRepository string
	// PauseTag is the pause image's tag, e.g. 3.10.2.
	PauseTag string
	// RuntimeBinary, when set, is the absolute path of the OCI runtime
	// containerd runs instead of runc (the runc runtime's BinaryName).
	RuntimeBinary string
	// ReadyTimeout bounds the wait for the CRI runtime to report ready;
	// zero means two minutes.
	ReadyTimeout time.Duration
}

// RuntimeBundle renders the script that installs containerd 2.x, its shim,
// ctr, runc and crictl into /usr/local/bin and the CNI plugins into
// /opt/cni/bin from StagingDir (only files that differ), containerd's unit,
// /etc/containerd/config.toml (config version 3: SystemdCgroup, pinned
// sandbox image, BinaryName, the registry hosts folder) and /etc/crictl.yaml;
// enables and (re)starts containerd as needed and waits until crictl info
// reports RuntimeReady; then Docker Engine on that containerd (dockerd,
// docker-proxy, docker, docker-init, docker.socket and docker.service, the
// group docker), restarted only when its daemon's files change.
func RuntimeBundle(p RuntimeBundleParams) (_ string, err error) {
	defer wrapError(&err, "RuntimeBundle")
	if err := checkAbsPath("StagingDir", p.StagingDir); err != nil {
		return "", err
	}
	rc, err := newRuntimeConfig(p.ImageRepository, p.PauseTag, p.RuntimeBinary, p.ReadyTimeout)
	if err != nil {
		return "", err
	}
	return renderString("runtime-bundle.sh.tmpl", struct {
		runtimeConfig
		StagingDir string
	}{rc, p.StagingDir})
}

// The operating systems whose Docker apt repository RuntimeOnline knows, by
// os-release ID and VERSION_CODENAME.
var dockerCodenames = map[string][]string{
	"debian": {"bookworm", "trixie"}, // 12, 13
	"ubuntu": {"jammy", "noble"},     // 22.04, 24.04
}

// RuntimeOnlineParams are the inputs of the online container runtime script.
type RuntimeOnlineParams struct {
	// OSID and Codename are the host's os-release ID and VERSION_CODENAME:
	// debian bookworm|trixie or ubuntu jammy|noble.
	OSID     string
	Codename string
	// DockerVersion pins docker-ce and docker-ce-cli, ContainerdVersion
	// pins containerd.io: an upstream version (28.1.1, 1.7.27) or an
	// exact apt version. Empty: whatever is installed, else the newest.
	DockerVersion     string
	ContainerdVersion string
	// ImageRepository, PauseTag, RuntimeBinary and ReadyTimeout are as in
	// RuntimeBundleParams.
	ImageRepository string
	PauseTag        string
	RuntimeBinary   string
	ReadyTimeout    time.Duration
	// Repository replaces https://download.docker.com (empty URL:
	// upstream's); the repository is <URL>/linux/<OSID>.
	Repository Mirror
	// Proxy, when set, is what curl goes through.
	Proxy *Proxy
}

// RuntimeOnline renders the script that installs Docker Engine (docker-ce,
// docker-ce-cli, containerd.io) from Docker's apt repository, with the
// repository signed by its key in /etc/apt/keyrings, and replaces the
// package's containerd configuration (which disables CRI) with one that
// enables CRI with SystemdCgroup in the layout of the installed containerd
// major version (1.x: config version 2, 2.x: version 3). It then enables and
// starts containerd and docker and waits until the CRI runtime is ready.
func RuntimeOnline(p RuntimeOnlineParams) (_ string, err error) {
	defer wrapError(&err, "RuntimeOnline")
	names, ok := dockerCodenames[p.OSID]
	if !ok {
		return "", fmt.Errorf("%s is not debian or ubuntu", "OSID")
	}
	known := false
	for _, n := range names {
		known = known || n == p.Codename
	}
	if !known {
		return "", fmt.Errorf("%s is not one of %s for %s", "Codename", strings.Join(names, ", "), p.OSID)
	}
	for _, v := range []struct{ field, value string }{{"DockerVersion", p.DockerVersion}, {"ContainerdVersion", p.ContainerdVersion}} {
		if v.value != "" {
			if err := named(v.field, inventory.CheckPackageVersion(v.value)); err != nil {
				return "", err
			}
		}
	}
	rc, err := newRuntimeConfig(p.ImageRepository, p.PauseTag, p.RuntimeBinary, p.ReadyTimeout)
	if err != nil {
		return "", err
	}
	m, err := onlineSource("Repository", "docker", dockerDownloads, p.Repository, true, p.Proxy)
	if err != nil {
		return "", err
	}
	return renderString("runtime-online.sh.tmpl", struct {
		runtimeConfig
		OSID, Codename, DockerVersion, ContainerdVersion string
		Key                                              aptKey
		Proxy                                            *Proxy
	}{rc, p.OSID, p.Codename, p.DockerVersion, p.ContainerdVersion,
		aptKey{Mirror: m, Keyring: "/etc/apt/keyrings/docker.asc", KeyURL: `"$docker_repo/gpg"`}, p.Proxy})
}

// KubeBundleParams are the inputs of the bundle Kubernetes packages script.
type KubeBundleParams struct {
	// StagingDir is where the bundle's bin/ and systemd/ were uploaded.
	StagingDir string
	// BinDir is the folder, relative to StagingDir, holding the Kubernetes
	// version's kubeadm, kubelet and kubectl: "bin" for the bundle's own
	// version, "kubernetes/<version>/bin" for another one it carries
	// (bundle.Manifest.KubernetesBinDir). Empty: "bin".
	BinDir string
	// Kubectl installs kubectl too (a control plane: boot runs it there).
	Kubectl bool
	// Binaries, when set, installs only these of kubeadm, kubelet and
	// kubectl (an upgrade installs kubeadm first and kubelet once the node
	// is drained); kubelet's units go with kubelet. Empty: kubeadm, kubelet
	// and, with Kubectl, kubectl.
	Binaries []string
}

// KubeBundle renders the script that installs kubeadm, kubelet and (with
// Kubectl) kubectl into /usr/local/bin and kubelet.service and its 10-kubeadm.conf drop-in
// into /etc/systemd/system from StagingDir (only files that differ), and
// enables kubelet (kubeadm init/join starts it).
func KubeBundle(p KubeBundleParams) (_ string, err error) {
	defer wrapError(&err, "KubeBundle")
	if err := checkAbsPath("StagingDir", p.StagingDir); err != nil {
		return "", err
	}
	dir := p.BinDir
	if dir == "" {
		dir = "bin"
	}
	if err := checkBinDir(dir); err != nil {
		return "", err
	}
	bins, err := kubeBinaries("Binaries", p.Binaries, p.Kubectl)
	if err != nil {
		return "", err
	}
	return renderString("kube-bundle.sh.tmpl", struct {
		StagingDir, BinDir string
		Binaries           []string
		Kubelet            bool
	}{p.StagingDir, path.Join(p.StagingDir, dir), bins, slices.Contains(bins, "kubelet")})
}

// checkBinDir accepts a bundle folder with Kubernetes' binaries: "bin" or
// "kubernetes/vX.Y.Z/bin".
func checkBinDir(dir string) error {
	if dir == "bin" {
		return nil
	}
	v, ok := strings.CutPrefix(dir, "kubernetes/")
	if v, ok2 := strings.CutSuffix(v, "/bin"); ok && ok2 && inventory.CheckKubernetesVersion(v) == nil {
		return nil
	}
	return fmt.Errorf("BinDir %q is not bin or kubernetes/<version>/bin", dir)
}

// kubeBinaries is the list of Kubernetes packages a script installs: bins
// (each once, each one of kubeadm, kubelet, kubectl; field names them in
// errors), or without them kubeadm, kubelet and, with kubectl, kubectl.
func kubeBinaries(field string, bins []string, kubectl bool) ([]string, error) {
	if len(bins) == 0 {
		bins = []string{"kubeadm", "kubelet"}
		if kubectl {
			bins = append(bins, "kubectl")
		}
		return bins, nil
	}
	for i, b := range bins {
		if !slices.Contains([]string{"kubeadm", "kubelet", "kubectl"}, b) || slices.Contains(bins[:i], b) {
			return nil, fmt.Errorf("%s: %q is not one of kubeadm, kubelet, kubectl (each once)", field, b)
		}
	}
	return bins, nil
}

// KubeOnlineParams are the inputs of the online Kubernetes packages script.
type KubeOnlineParams struct {
	// KubernetesVersion is vMAJOR.MINOR.PATCH, e.g. v1.37.2.
	KubernetesVersion string
	// Repository replaces https://pkgs.k8s.io (empty URL: upstream's); the
	// repository is <URL>/core:/stable:/vMAJOR.MINOR/deb/.
	Repository Mirror
	// Proxy, when set, is what curl goes through.
	Proxy *Proxy
	// Packages, when set, installs and holds only these of kubeadm, kubelet
	// and kubectl (an upgrade: kubeadm first, the others once the node is
	// drained). Empty: all three.
	Packages []string
}

// KubeOnline renders the script that adds the pkgs.k8s.io apt repository of
// the version's minor release (its current key in /etc/apt/keyrings),
// installs kubeadm, kubelet and kubectl at exactly that version, holds them
// (apt-mark hold) and enables kubelet.
func KubeOnline(p KubeOnlineParams) (_ string, err error) {
	defer wrapError(&err, "KubeOnline")
	if err := checkKubeVersion("KubernetesVersion", p.KubernetesVersion); err != nil {
		return "", err
	}
	m, err := onlineSource("Repository", "kubernetes", kubernetesDownloads, p.Repository, true, p.Proxy)
	if err != nil {
		return "", err
	}
	pkgs, err := kubeBinaries("Packages", p.Packages, true)
	if err != nil {
		return "", err
	}
	v := strings.TrimPrefix(p.KubernetesVersion, "v")
	minor := p.KubernetesVersion[:strings.LastIndexByte(p.KubernetesVersion, '.')]
	return renderString("kube-online.sh.tmpl", struct {
		Minor, Version string
		Packages       []string
		Key            aptKey
		Proxy          *Proxy
	}{minor, v, pkgs, aptKey{Mirror: m, Keyring: "/etc/apt/keyrings/kubernetes-apt-keyring.asc", KeyURL: `"${repo}Release.key"`}, p.Proxy})
}

func renderString(name string, data any) (string, error) {
	b, err := render(name, data)
	return string(b), err
}

// HelmOnlineParams are the inputs of the online Helm CLI script.
type HelmOnlineParams struct {
	// Version is the Helm release, MAJOR.MINOR.PATCH with or without a
	// leading v (inventory.HelmVersion).
	Version string
	// Arch is the host's Go architecture name: amd64 or arm64.
	Arch string
	// Download replaces https://get.helm.sh (empty URL: upstream's); Key
	// does not apply.
	Download Mirror
	// Proxy, when set, is what curl goes through.
	Proxy *Proxy
}

// HelmOnline renders the script that installs the Helm CLI from its release
// archive at get.helm.sh, verified against its published sha256, into
// /usr/local/bin/helm, unless that version is there already.
func HelmOnline(p HelmOnlineParams) (_ string, err error) {
	defer wrapError(&err, "HelmOnline")
	v, err := inventory.HelmVersion(p.Version)
	if err != nil {
		return "", named("Version", err)
	}
	p.Version = v
	if p.Arch != "amd64" && p.Arch != "arm64" {
		return "", fmt.Errorf("%s is not amd64 or arm64", "Arch")
	}
	m, err := onlineSource("Download", "helm", helmDownloads, p.Download, false, p.Proxy)
	if err != nil {
		return "", err
	}
	return renderString("helm-online.sh.tmpl", struct {
		Version, Arch string
		Download      mirrorFiles
		Proxy         *Proxy
	}{p.Version, p.Arch, m, p.Proxy})
}

// TeardownParams are the inputs of the teardown script.
type TeardownParams struct {
	// Source is how the host got its packages: "bundle" or "online".
	Source string
	// Installed are the absolute paths of the files the bundle installed
	// (binaries, CNI plugins, units); removed in bundle mode.
	Installed []string
	// Purge, online, also purges the packages and their apt repositories.
	Purge bool
}

// Teardown renders the script that undoes what boot and the cluster did to
// a host: kubeadm reset, remaining pods, kubelet (and, in bundle mode,
// containerd) stopped and disabled, mounts, pod network namespaces,
// flannel's and the bridge's interfaces, Kubernetes' iptables rules in every
// backend (other rules kept), the cluster's state and configuration folders,
// boot's staging, sysctl and module files, /etc/hosts lines and fstab
// backup, the proxy's and mirrors' files host prep and the online scripts
// wrote; in bundle mode the installed files; online with Purge the
// packages and repositories.
func Teardown(p TeardownParams) (_ string, err error) {
	defer wrapError(&err, "Teardown")
	if p.Source != "bundle" && p.Source != "online" {
		return "", fmt.Errorf("%s is not bundle or online", "Source")
	}
	for i, f := range p.Installed {
		if err := checkAbsPath(fmt.Sprintf("Installed[%d]", i), f); err != nil {
			return "", err
		}
		if f == "/" || strings.Count(f, "/") < 2 {
			return "", fmt.Errorf("%s[%d] is a top-level folder", "Installed", i)
		}
	}
	return renderString("teardown.sh.tmpl", p)
}

// snapshotHashed are the paths whose files a snapshot lists with mode and
// sha256; snapshotListed the state folders it lists one level deep.
var (
	snapshotHashed = []string{
		"/etc/kubernetes", "/etc/cni", "/opt/cni", "/etc/containerd", "/etc/crictl.yaml",
		"/usr/local/bin", "/usr/local/sbin", "/etc/systemd/system", "/etc/sysctl.d", "/etc/modules-load.d",
		"/etc/hosts", "/etc/hostname", "/etc/fstab", "/etc/apt/sources.list.d", "/etc/apt/keyrings",
		"/etc/apt/apt.conf.d", "/etc/boot",
	}
	snapshotListed = []string{
		"/var/lib/kubelet", "/var/lib/etcd", "/var/lib/cni", "/var/lib/containerd", "/var/lib/boot",
		"/run/flannel", "/run/containerd", "/opt/containerd", "/var/log/pods", "/var/log/containers",
	}
)

// Snapshot renders the script that prints, section by section and sorted,
// the state of what boot touches on a host: installed packages, unit files
// and their state, the files under boot's paths (mode, sha256), the state
// folders, network interfaces, iptables rules of every backend (without
// counters) and the mounts under the runtime's folders. It changes nothing.
// `boot up` keeps one from before its first change; `boot teardown
// --verify` compares it with one taken after.
func Snapshot() string {
	s, err := renderString("snapshot", struct{ Hashed, Listed []string }{snapshotHashed, snapshotListed})
	if err != nil {
		panic(err) // fixed data: a failure is a bug in the template
	}
	return s
}

// Paths of the control plane's static pods.
const (
	// ManifestDir is the folder of static pod manifests the kubelet runs.
	ManifestDir = "/etc/kubernetes/manifests"
	// HeldManifestDir is where CertsRenew holds a manifest while its pod
	// stops (outside ManifestDir, which the kubelet watches).
	HeldManifestDir = "/etc/kubernetes/boot-held-manifests"
)

// CertsRenewParams are the inputs of the certificate renewal script.
type CertsRenewParams struct {
	// KubeadmConfig is the kubeadm configuration kubeadm certs renew reads
	// (bootstrap.CheckExpirationConfig: a Kubernetes version, so kubeadm
	// asks no server for one).
	KubeadmConfig string
	// Components are the static pods restarted, in order: manifests
	// <name>.yaml in ManifestDir, labelled component=<name>, whose
	// container is named <name> (kubeadm's kube-apiserver,
	// kube-controller-manager, kube-scheduler, etcd).
	Components []string
	// AdminConf is the kubeconfig the script asks the API server's /readyz
	// with.
	AdminConf string
	// Timeout bounds each wait (the pod stopped, running again, the API
	// server ready); zero means two minutes.
	Timeout time.Duration
}

// CertsRenew renders the script that renews every certificate kubeadm
// manages on the control plane and then restarts Components one at a time,
// waiting after each until the API server answers /readyz (see
// templates/certs-renew.sh.tmpl). In check mode it only checks that the
// manifests and tools are there and says what it would do.
func CertsRenew(p CertsRenewParams) (_ string, err error) {
	defer wrapError(&err, "CertsRenew")
	if strings.TrimSpace(p.KubeadmConfig) == "" {
		return "", fmt.Errorf("%s is empty", "KubeadmConfig")
	}
	timeout, err := checkStaticPods(p.Components, p.AdminConf, p.Timeout)
	if err != nil {
		return "", err
	}
	return renderString("certs-renew.sh.tmpl", struct {
		CertsRenewParams
		ManifestDir, HeldDir string
		TimeoutSeconds       int
	}{p, ManifestDir, HeldManifestDir, timeout})
}

// checkStaticPods checks the parameters the static pod helpers use
// (templates/static-pods.sh.tmpl) and returns the timeout in seconds (zero
// meaning two minutes).
func checkStaticPods(components []string, adminConf string, timeout time.Duration) (int, error) {
	if len(components) == 0 {
		return 0, fmt.Errorf("%s is empty", "Components")
	}
	seen := map[string]bool{}
	for i, c := range components {
		if err := checkDNSName(fmt.Sprintf("Components[%d]", i), c); err != nil {
			return 0, err
		}
		if seen[c] {
			return 0, fmt.Errorf("%s[%d] is given twice", "Components", i)
		}
		seen[c] = true
	}
	if err := checkAbsPath("AdminConf", adminConf); err != nil {
		return 0, err
	}
	if timeout == 0 {
		timeout = defaultReadyTimeout
	}
	if timeout < time.Second {
		return 0, fmt.Errorf("%s is shorter than a second", "Timeout")
	}
	return int(timeout / time.Second), nil
}

// EtcdRestoreParams are the inputs of the etcd restore script.
type EtcdRestoreParams struct {
	// DataDir is etcd's data folder (its manifest's --data-dir).
	DataDir string
	// Archive is the uploaded tar archive of the restored data folder
	// (member/snap/db, member/wal).
	Archive string
	// Stamp names the old data folder, kept as <DataDir>.before-restore-<Stamp>
	// (letters, digits and dashes).
	Stamp string
	// Components are the static pods stopped while the data is replaced;
	// they must include etcd and kube-apiserver.
	Components []string
	// AdminConf and Timeout are as for CertsRenewParams.
	AdminConf string
	Timeout   time.Duration
}

// EtcdRestore renders the script that puts restored etcd data in place of
// the control plane's (see templates/etcd-restore.sh.tmpl). In check mode
// it only checks the manifests and tools and says what it would do.
func EtcdRestore(p EtcdRestoreParams) (_ string, err error) {
	defer wrapError(&err, "EtcdRestore")
	for _, f := range []struct{ name, value string }{{"DataDir", p.DataDir}, {"Archive", p.Archive}} {
		if err := checkAbsPath(f.name, f.value); err != nil {
			return "", err
		}
	}
	if p.Stamp == "" || strings.Trim(p.Stamp, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-") != "" {
		return "", fmt.Errorf("%s must be letters, digits and dashes", "Stamp")
	}
	for _, c := range []string{"etcd", "kube-apiserver"} {
		if !slices.Contains(p.Components, c) {
			return "", fmt.Errorf("%s lacks %s", "Components", c)
		}
	}
	timeout, err := checkStaticPods(p.Components, p.AdminConf, p.Timeout)
	if err != nil {
		return "", err
	}
	return renderString("etcd-restore.sh.tmpl", struct {
		EtcdRestoreParams
		ManifestDir, HeldDir string
		TimeoutSeconds       int
	}{p, ManifestDir, HeldManifestDir, timeout})
}
