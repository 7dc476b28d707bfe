package lab

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/bootctl/boot/bundle"
)

// The lab's package mirror: what boot's online install path fetches from
// Docker's apt repository, pkgs.k8s.io and get.helm.sh, laid out as those
// are and built from the bundle's own binaries, served over HTTPS (the lab
// CA) on the gateway by lab-mirror. The apt repositories are signed by a key
// made at every start of the lab; the packages themselves are cached in
// Dir/mirror/repo/<manifest digest>.
const (
	mirrorDir  = "mirror"
	mirrorTool = "lab-mirror"
	// MirrorHost is the mirror's name in LabZone (its TLS certificate carries it and the gateway address).
	MirrorHost    = "mirror.lab.test"
	mirrorKeyFile = "signing-key.asc"
	mirrorStamp   = ".complete"
)

// dockerCodenames are the Debian releases the Docker repository has, with
// their version numbers (what Docker's package versions carry).
var dockerCodenames = []struct{ name, number string }{{"bookworm", "12"}, {"trixie", "13"}}

// mirrorContent is what a built mirror holds, paths relative to its root.
type mirrorContent struct {
	// Docker is the Debian repository's folder ("docker/linux/debian"),
	// empty when the bundle lacks Docker's binaries: DockerMissing says which.
	Docker        string `json:"docker,omitempty"`
	DockerMissing string `json:"dockerMissing,omitempty"`
	// Kubernetes is the flat repository's folder (kubernetes/core:/stable:/v1.37/deb).
	Kubernetes string `json:"kubernetes"`
	// Helm is Helm's release archive (helm/helm-v3.22.0-linux-amd64.tar.gz).
	Helm string `json:"helm"`
}

// bundleFiles finds files in a bundle's manifest by path.
type bundleFiles struct {
	b     *bundle.Bundle
	index map[string]bundle.File
}

func newBundleFiles(b *bundle.Bundle) bundleFiles {
	index := map[string]bundle.File{}
	for _, f := range b.Manifest.Files {
		index[f.Path] = f
	}
	return bundleFiles{b, index}
}

// get returns the bundle file rel, or an error naming it.
func (bf bundleFiles) get(rel string) (bundle.File, error) {
	f, ok := bf.index[rel]
	if !ok {
		return f, fmt.Errorf("bundle %s has no %s", bf.b.Dir, rel)
	}
	return f, nil
}

// bin is the package file at dst (mode 0755) from the bundle file rel.
func (bf bundleFiles) bin(rel, dst string) debFile {
	return debFile{Path: dst, Mode: 0o755, Src: bf.b.Path(rel)}
}

// upstreamVersion is a bundle file's version without the leading "v".
func upstreamVersion(f bundle.File) string { return strings.TrimPrefix(f.Version, "v") }

// buildMirror builds the mirror for the bundle at bundleDir under
// dir/repo/<digest of its manifest> (reused when complete), signs its apt
// repositories with a new key dated by now, and writes the key's public
// part to dir/signing-key.asc. It returns the mirror's root and content.
func buildMirror(bundleDir, dir string, now func() time.Time, logf func(string, ...any)) (string, mirrorContent, error) {
	var c mirrorContent
	manifest, err := os.ReadFile(filepath.Join(bundleDir, bundle.ManifestName))
	if err != nil {
		return "", c, err
	}
	sum := sha256.Sum256(manifest)
	root := filepath.Join(dir, "repo", hex.EncodeToString(sum[:8]))
	stamp := filepath.Join(root, mirrorStamp)
	if data, err := os.ReadFile(stamp); err == nil {
		if err := json.Unmarshal(data, &c); err != nil {
			return "", c, fmt.Errorf("%s: %w", stamp, err)
		}
		logf("mirror: packages of this bundle already built in %s", root)
	} else {
		b, err := bundle.Open(bundleDir)
		if err != nil {
			return "", c, err
		}
		// One bundle's mirror at a time: an older one goes.
		if err := os.RemoveAll(filepath.Join(dir, "repo")); err != nil {
			return "", c, err
		}
		tmp := root + ".tmp"
		if c, err = buildPackages(newBundleFiles(b), tmp, logf); err != nil {
			return "", c, err
		}
		data, err := json.Marshal(c)
		if err != nil {
			return "", c, err
		}
		if err := writeFileAtomic(filepath.Join(tmp, mirrorStamp), data, 0o644); err != nil {
			return "", c, err
		}
		if err := os.Rename(tmp, root); err != nil {
			return "", c, err
		}
	}
	signer, err := newRepoSigner(now)
	if err != nil {
		return "", c, err
	}
	key, err := signer.publicKey()
	if err != nil {
		return "", c, err
	}
	if err := writeFileAtomic(filepath.Join(dir, mirrorKeyFile), key, 0o644); err != nil {
		return "", c, err
	}
	if err := signRepositories(root, c, signer, key, now()); err != nil {
		return "", c, err
	}
	return root, c, nil
}

// buildPackages writes the mirror's packages, package indexes and Helm
// archive into root.
func buildPackages(bf bundleFiles, root string, logf func(string, ...any)) (mirrorContent, error) {
	var c mirrorContent
	if err := os.MkdirAll(root, 0o755); err != nil {
		return c, err
	}
	m := bf.b.Manifest
	minor := m.KubernetesVersion
	if parts := strings.SplitN(strings.TrimPrefix(minor, "v"), ".", 3); len(parts) == 3 {
		minor = "v" + parts[0] + "." + parts[1]
	} else {
		return c, fmt.Errorf("bundle %s: kubernetesVersion %q is not vX.Y.Z", bf.b.Dir, m.KubernetesVersion)
	}
	c.Kubernetes = path.Join("kubernetes", "core:", "stable:", minor, "deb")
	pkgs, err := kubernetesPackages(bf)
	if err != nil {
		return c, err
	}
	if err := writeRepo(filepath.Join(root, filepath.FromSlash(c.Kubernetes)), "", "amd64", pkgs, logf); err != nil {
		return c, err
	}
	if c.Helm, err = writeHelmArchive(bf, root); err != nil {
		return c, err
	}
	docker := path.Join("docker", "linux", "debian")
	for _, codename := range dockerCodenames {
		pkgs, err := dockerPackages(bf, codename.name, codename.number)
		var missing missingFilesError
		if errors.As(err, &missing) {
			c.DockerMissing = missing.Error()
			break
		}
		if err != nil {
			return c, err
		}
		dists := path.Join("dists", codename.name)
		if err := writeRepo(filepath.Join(root, filepath.FromSlash(docker)), path.Join(dists, "stable", "binary-amd64"),
			path.Join(dists, "pool", "stable", "amd64"), pkgs, logf); err != nil {
			return c, err
		}
		c.Docker = docker
	}
	return c, nil
}

// writeRepo writes the packages into base/pool and their index into
// base/indexDir (the base itself for a flat repository: indexDir "").
func writeRepo(base, indexDir, pool string, pkgs []debPackage, logf func(string, ...any)) error {
	poolDir := filepath.Join(base, filepath.FromSlash(pool))
	if err := os.MkdirAll(poolDir, 0o755); err != nil {
		return err
	}
	var stanzas []string
	for _, p := range pkgs {
		start := time.Now()
		file := filepath.Join(poolDir, p.fileName())
		control, err := writeDeb(file, p)
		if err != nil {
			return err
		}
		stanza, err := packagesStanza(control, file, path.Join(pool, p.fileName()))
		if err != nil {
			return err
		}
		stanzas = append(stanzas, stanza)
		logf("mirror: built %s %s (%s)", p.Name, p.Version, time.Since(start).Round(time.Millisecond))
	}
	return writePackages(filepath.Join(base, filepath.FromSlash(indexDir)), stanzas)
}

// signRepositories writes the key files and the signed Release files of the
// mirror's apt repositories.
func signRepositories(root string, c mirrorContent, s *repoSigner, key []byte, date time.Time) error {
	kube := filepath.Join(root, filepath.FromSlash(c.Kubernetes))
	if err := writeFileAtomic(filepath.Join(kube, "Release.key"), key, 0o644); err != nil {
		return err
	}
	release, err := releaseFile(kube, []string{
		"Origin: boot lab",
		"Label: boot lab mirror of pkgs.k8s.io " + strings.TrimPrefix(c.Kubernetes, "kubernetes/"),
		"Architectures: amd64",
	}, date, []string{"Packages", "Packages.gz"})
	if err != nil {
		return err
	}
	if err := s.signRelease(kube, release); err != nil {
		return err
	}
	if c.Docker == "" {
		return nil
	}
	docker := filepath.Join(root, filepath.FromSlash(c.Docker))
	if err := writeFileAtomic(filepath.Join(docker, "gpg"), key, 0o644); err != nil {
		return err
	}
	for _, codename := range dockerCodenames {
		dist := filepath.Join(docker, "dists", codename.name)
		release, err := releaseFile(dist, []string{
			"Origin: Docker",
			"Label: Docker CE",
			"Suite: " + codename.name,
			"Codename: " + codename.name,
			"Architectures: amd64",
			"Components: stable",
			"Description: boot lab mirror of Docker's repository for Debian " + codename.name,
		}, date, []string{"stable/binary-amd64/Packages", "stable/binary-amd64/Packages.gz"})
		if err != nil {
			return err
		}
		if err := s.signRelease(dist, release); err != nil {
			return err
		}
	}
	return nil
}

// systemdRunning is the test maintainer scripts use before they call systemctl.
const systemdRunning = `[ -d /run/systemd/system ]`

// kubernetesPackages are pkgs.k8s.io's packages, with their dependencies
// as upstream declares them (kubernetes/release, krel's templates).
func kubernetesPackages(bf bundleFiles) ([]debPackage, error) {
	kubeadm, err := bf.get("bin/kubeadm")
	if err != nil {
		return nil, err
	}
	crictl, err := bf.get("bin/crictl")
	if err != nil {
		return nil, err
	}
	for _, rel := range []string{"bin/kubelet", "bin/kubectl", "systemd/kubelet.service", "systemd/10-kubeadm.conf"} {
		if _, err := bf.get(rel); err != nil {
			return nil, err
		}
	}
	// The bundle installs into /usr/local/bin, the packages into /usr/bin.
	unit := func(rel string) ([]byte, error) {
		data, err := os.ReadFile(bf.b.Path(rel))
		return []byte(strings.ReplaceAll(string(data), "/usr/local/bin/", "/usr/bin/")), err
	}
	kubeletService, err := unit("systemd/kubelet.service")
	if err != nil {
		return nil, err
	}
	dropIn, err := unit("systemd/10-kubeadm.conf")
	if err != nil {
		return nil, err
	}
	var cni []debFile
	cniVersion := ""
	for _, f := range bf.b.Manifest.Files {
		if path.Dir(f.Path) == "cni/bin" && f.Component == "cni-plugins" {
			cni = append(cni, bf.bin(f.Path, "/opt/cni/bin/"+path.Base(f.Path)))
			cniVersion = upstreamVersion(f)
		}
	}
	if len(cni) == 0 {
		return nil, fmt.Errorf("bundle %s has no cni/bin plugins of component cni-plugins", bf.b.Dir)
	}
	kv := upstreamVersion(kubeadm) + "-1.1"
	home := "https://kubernetes.io"
	return []debPackage{
		{Name: "cri-tools", Version: upstreamVersion(crictl) + "-1.1", Section: "admin", Priority: "optional", Homepage: home,
			Summary: "Command-line utility for interacting with a container runtime",
			Files:   []debFile{bf.bin("bin/crictl", "/usr/bin/crictl")}},
		{Name: "kubeadm", Version: kv, Section: "admin", Priority: "optional", Homepage: home,
			Summary: "Command-line utility for administering a Kubernetes cluster",
			Files: []debFile{bf.bin("bin/kubeadm", "/usr/bin/kubeadm"),
				{Path: "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", Mode: 0o644, Data: dropIn}}},
		{Name: "kubectl", Version: kv, Section: "admin", Priority: "optional", Homepage: home,
			Summary: "Command-line utility for interacting with a Kubernetes cluster",
			Files:   []debFile{bf.bin("bin/kubectl", "/usr/bin/kubectl")}},
		{Name: "kubelet", Version: kv, Section: "net", Priority: "optional", Homepage: home,
			Depends: "kubernetes-cni (>= 1.2.0), mount, util-linux", Recommends: "iptables (>= 1.8.4)",
			Summary: "Node agent for Kubernetes clusters",
			Files: []debFile{bf.bin("bin/kubelet", "/usr/bin/kubelet"),
				{Path: "/usr/lib/systemd/system/kubelet.service", Mode: 0o644, Data: kubeletService},
				{Path: "/etc/default/kubelet", Mode: 0o644, Data: []byte("KUBELET_EXTRA_ARGS=\n"), Conffile: true},
				{Path: "/var/lib/kubelet/.kubelet-keep", Mode: 0o644},
				{Path: "/etc/kubernetes/manifests/.kubelet-keep", Mode: 0o644}},
			Postinst: "#!/bin/sh\nset -e\nif " + systemdRunning + "; then\n\tsystemctl daemon-reload || true\nfi\n"},
		{Name: "kubernetes-cni", Version: cniVersion + "-1.1", Section: "net", Priority: "optional", Homepage: home,
			Summary: "Binaries required to provision kubernetes container networking",
			Files:   cni},
	}, nil
}

// missingFilesError names the bundle files a package needs and the bundle lacks.
type missingFilesError struct {
	dir   string
	files []string
}

func (e missingFilesError) Error() string {
	return fmt.Sprintf("bundle %s lacks %s: no Docker repository", e.dir, strings.Join(e.files, ", "))
}

// containerdConfig is containerd.io's /etc/containerd/config.toml: as the
// real package's, the CRI plugin off (Docker needs none; boot's runtime
// step writes its own configuration).
const containerdConfig = `# containerd configuration of the containerd.io package (boot lab mirror):
# Docker uses containerd without its CRI plugin.
disabled_plugins = ["cri"]
`

// dockerService is docker-ce's unit as upstream's behaves: dockerd with
// its defaults (unlike the bundle's unit, without --ip-forward-no-drop, so
// dockerd sets the FORWARD policy to DROP as the real package's does).
const dockerService = `[Unit]
Description=Docker Application Container Engine
Documentation=https://docs.docker.com
After=network-online.target docker.socket containerd.service
Wants=network-online.target containerd.service
Requires=docker.socket

[Service]
Type=notify
ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock
ExecReload=/bin/kill -s HUP $MAINPID
Restart=always
RestartSec=2
LimitNOFILE=infinity
Delegate=yes
KillMode=process
OOMScoreAdjust=-500

[Install]
WantedBy=multi-user.target
`

const dockerSocket = `[Unit]
Description=Docker Socket for the API

[Socket]
ListenStream=/run/docker.sock
SocketMode=0660
SocketUser=root
SocketGroup=docker

[Install]
WantedBy=sockets.target
`

// dockerPackages are Docker's packages for Debian codename (release
// number), versioned as Docker versions them. The error is a
// missingFilesError when the bundle lacks Docker's binaries.
func dockerPackages(bf bundleFiles, codename, number string) ([]debPackage, error) {
	var missing []string
	need := func(rel string) bundle.File {
		f, err := bf.get(rel)
		if err != nil {
			missing = append(missing, rel)
		}
		return f
	}
	containerd := need("bin/containerd")
	for _, rel := range []string{"bin/containerd-shim-runc-v2", "bin/ctr", "bin/runc", "systemd/containerd.service", "bin/docker-proxy", "bin/docker-init"} {
		need(rel)
	}
	need("bin/dockerd")
	cli := need("bin/docker")
	if len(missing) > 0 {
		return nil, missingFilesError{bf.b.Dir, missing}
	}
	unit, err := os.ReadFile(bf.b.Path("systemd/containerd.service"))
	if err != nil {
		return nil, err
	}
	unit = []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/", "/usr/bin/"))
	// The docker CLI's version is the Docker release (dockerd's is Moby's
	// module version; both binaries are stamped with the release).
	release := strings.TrimSuffix(upstreamVersion(cli), "+incompatible")
	suffix := "-1~debian." + number + "~" + codename
	home := "https://www.docker.com"
	return []debPackage{
		{Name: "containerd.io", Version: upstreamVersion(containerd) + suffix, Section: "devel", Priority: "optional",
			Homepage: "https://containerd.io", Conflicts: "containerd, runc", Replaces: "containerd, runc", Provides: "containerd, runc",
			Summary: "An open and reliable container runtime",
			Files: []debFile{bf.bin("bin/containerd", "/usr/bin/containerd"), bf.bin("bin/containerd-shim-runc-v2", "/usr/bin/containerd-shim-runc-v2"),
				bf.bin("bin/ctr", "/usr/bin/ctr"), bf.bin("bin/runc", "/usr/bin/runc"),
				{Path: "/lib/systemd/system/containerd.service", Mode: 0o644, Data: unit},
				{Path: "/etc/containerd/config.toml", Mode: 0o644, Data: []byte(containerdConfig), Conffile: true}},
			Postinst: "#!/bin/sh\nset -e\nif [ \"$1\" = configure ] && " + systemdRunning + "; then\n" +
				"\tsystemctl daemon-reload\n\tsystemctl enable containerd.service\n\tsystemctl start containerd.service\nfi\n"},
		{Name: "docker-ce-cli", Version: "5:" + release + suffix, Section: "admin", Priority: "optional", Homepage: home,
			Summary: "Docker CLI: the open-source application container engine",
			Files:   []debFile{bf.bin("bin/docker", "/usr/bin/docker")}},
		{Name: "docker-ce", Version: "5:" + release + suffix, Section: "admin", Priority: "optional", Homepage: home,
			Depends: "containerd.io (>= 1.7.27), docker-ce-cli, iptables",
			Summary: "Docker: the open-source application container engine",
			Files: []debFile{bf.bin("bin/dockerd", "/usr/bin/dockerd"), bf.bin("bin/docker-proxy", "/usr/bin/docker-proxy"),
				bf.bin("bin/docker-init", "/usr/bin/docker-init"),
				{Path: "/lib/systemd/system/docker.service", Mode: 0o644, Data: []byte(dockerService)},
				{Path: "/lib/systemd/system/docker.socket", Mode: 0o644, Data: []byte(dockerSocket)}},
			Postinst: "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n\tgetent group docker >/dev/null || groupadd --system docker\n" +
				"\tif " + systemdRunning + "; then\n\t\tsystemctl daemon-reload\n\t\tsystemctl enable docker.socket docker.service\n\t\tsystemctl start docker.service\n\tfi\nfi\n"},
	}, nil
}

// writeHelmArchive writes Helm's release archive (linux-amd64/helm inside)
// and its .sha256sum as get.helm.sh publishes them, and returns the
// archive's path relative to root.
func writeHelmArchive(bf bundleFiles, root string) (string, error) {
	f, err := bf.get("bin/helm")
	if err != nil {
		return "", err
	}
	name := "helm-v" + upstreamVersion(f) + "-linux-amd64.tar.gz"
	dir := filepath.Join(root, "helm")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	in, err := os.Open(bf.b.Path(f.Path))
	if err != nil {
		return "", err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, name)
	out, err := os.Create(dst + ".tmp")
	if err != nil {
		return "", err
	}
	defer os.Remove(dst + ".tmp")
	h := sha256.New()
	zw := gzip.NewWriter(io.MultiWriter(out, h))
	tw := tar.NewWriter(zw)
	err = tw.WriteHeader(&tar.Header{Name: "linux-amd64/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: debEpoch, Format: tar.FormatPAX})
	if err == nil {
		err = tw.WriteHeader(&tar.Header{Name: "linux-amd64/helm", Typeflag: tar.TypeReg, Mode: 0o755, Size: st.Size(), ModTime: debEpoch, Format: tar.FormatPAX})
	}
	if err == nil {
		_, err = io.Copy(tw, in)
	}
	for _, c := range []io.Closer{tw, zw, out} {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", dst, err)
	}
	if err := os.Rename(dst+".tmp", dst); err != nil {
		return "", err
	}
	sum := fmt.Sprintf("%s  %s\n", hex.EncodeToString(h.Sum(nil)), name)
	if err := writeFileAtomic(dst+".sha256sum", []byte(sum), 0o644); err != nil {
		return "", err
	}
	return path.Join("helm", name), nil
}

// mirrorFiles lists every file under root (relative, sorted), for tests and size figures.
func mirrorFiles(root string) ([]string, int64, error) {
	var files []string
	var size int64
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files = append(files, filepath.ToSlash(rel))
		size += info.Size()
		return nil
	})
	sort.Strings(files)
	return files, size, err
}

// startMirror builds the mirror from the bundle (see buildMirror) and
// serves it with lab-mirror on the gateway at port, TLS by the lab CA, and
// records its URLs and key in the state. Without a bundle there is no mirror.
func (l *Lab) startMirror(ctx context.Context, toolsDir, bundleDir string, port int, logf func(string, ...any)) error {
	if bundleDir == "" {
		logf("no bundle: no package mirror")
		return nil
	}
	bin, err := installTool(toolsDir, mirrorTool, filepath.Join(l.Dir, "bin"))
	if err != nil {
		return err
	}
	dir := filepath.Join(l.Dir, mirrorDir)
	start := time.Now()
	root, c, err := buildMirror(bundleDir, dir, time.Now, logf)
	if err != nil {
		return err
	}
	_, size, err := mirrorFiles(root)
	if err != nil {
		return err
	}
	logf("mirror: %s ready in %s (%d MiB)", root, time.Since(start).Round(time.Millisecond), size>>20)
	if c.DockerMissing != "" {
		logf("mirror: %s", c.DockerMissing)
	}
	base := "https://" + hostPort(l.Gateway, port)
	client, err := registryClient(l.RegistryCA)
	if err != nil {
		return err
	}
	client.Timeout = 10 * time.Second
	err = l.startService(ctx, Service{Name: "mirror", Program: mirrorTool, Address: base, Log: filepath.Join(dir, "mirror.log")},
		bin, []string{"-listen", hostPort(l.Gateway, port), "-cert", filepath.Join(dir, "tls.crt"), "-key", filepath.Join(dir, "tls.key"), root},
		[]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, 30*time.Second,
		func(ctx context.Context) error {
			_, err := httpGet(ctx, client, base+"/"+c.Kubernetes+"/InRelease")
			return err
		}, logf)
	if err != nil {
		return err
	}
	l.MirrorKey = filepath.Join(dir, mirrorKeyFile)
	l.KubernetesMirror = base + "/kubernetes"
	l.HelmMirror = base + "/helm"
	if c.Docker != "" {
		l.DockerMirror = base + "/docker"
	}
	logf("mirror: docker %q, kubernetes %s, helm %s, signed by %s", l.DockerMirror, l.KubernetesMirror, l.HelmMirror, l.MirrorKey)
	return l.save()
}
