package bundle

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"time"

	"golang.org/x/mod/semver"
)

// Options are the inputs of Build.
type Options struct {
	// KubernetesVersions are the Kubernetes versions to build, at least
	// one (e.g. "v1.37.2"), in any order. The newest becomes the bundle's
	// KubernetesVersion (bin/kubeadm, the systemd units, containerd's pause
	// image), the others its OtherKubernetesVersions, each built in its
	// own generated module; an image two versions ask for is built once.
	KubernetesVersions []string
	// Out is the bundle folder to write. It must not exist, be empty, or
	// hold an earlier bundle (it is then replaced).
	Out string
	// Arch is the target architecture; only "amd64" (the default) is built.
	Arch string
	// CacheDir keeps generated modules, binaries, Debian packages, layers
	// and image archives between builds. Default: $XDG_CACHE_HOME/boot/bundle
	// (~/.cache/boot/bundle).
	CacheDir string
	// Log receives progress lines and the build tools' output.
	Log io.Writer
	// BootBinary, when set, is a static linux/amd64 boot executable packed
	// as the image the registry chart's prune and gc jobs run
	// (docker.io/bootctl/boot:BootVersion), and BootVersion its version.
	BootBinary  string
	BootVersion string
	// Charts are the add-ons' upstream Helm charts to pack, written as
	// charts/<name>-<version>.tgz and listed in Manifest.Charts. They are
	// checked (each a chart archive of its name and version, one per slot)
	// before anything is built.
	Charts []ChartArchive
	// Upstream, when set, holds the release archives (LoadUpstream) the
	// bundle builds cert-manager's images from.
	Upstream *Upstream
}

//go:embed files
var files embed.FS

// DefaultImageRepository is the registry the bundle's image names use.
const DefaultImageRepository = "registry.k8s.io"

// Build builds the offline bundle described in the package documentation.
func Build(ctx context.Context, o Options) error {
	start := time.Now()
	kubes, err := o.complete()
	if err != nil {
		return err
	}
	b, unlock, err := newBuilder(ctx, o.CacheDir, o.Log)
	if err != nil {
		return err
	}
	defer unlock()
	r := &bundleBuild{b: b, o: o, kubes: kubes, m: Manifest{
		KubernetesVersion: kubes[0].c.version,
		Arch:              o.Arch,
		BuiltWith:         BuiltWith{Go: b.goVersion},
	}}
	for _, k := range kubes[1:] {
		r.m.OtherKubernetesVersions = append(r.m.OtherKubernetesVersions, k.c.version)
	}
	also := ""
	if len(kubes) > 1 {
		also = " (and " + strings.Join(r.m.OtherKubernetesVersions, ", ") + ")"
	}
	fmt.Fprintf(o.Log, "bundle: Kubernetes %s%s for linux/%s, cache %s\n", r.m.KubernetesVersion, also, o.Arch, b.cache)

	if err := r.goBinaries(ctx); err != nil {
		return err
	}
	if err := r.pauseBinaries(ctx); err != nil {
		return err
	}
	if err := r.debianLayers(ctx); err != nil {
		return err
	}
	if err := replaceWithStaged(o.Out, r.assemble); err != nil {
		return err
	}
	fmt.Fprintf(o.Log, "bundle: wrote %s (%d files, %d images, %d charts) in %s\n", o.Out, len(r.m.Files), len(r.m.Images), len(r.m.Charts), time.Since(start).Round(time.Second))
	return nil
}

// SplitKubernetesVersions checks the Kubernetes versions of a bundle (at
// least one, each vMAJOR.MINOR.PATCH, none twice) and returns the newest,
// the bundle's KubernetesVersion, and the others oldest first, its
// OtherKubernetesVersions.
func SplitKubernetesVersions(versions []string) (newest string, others []string, err error) {
	if len(versions) == 0 {
		return "", nil, errors.New("no Kubernetes version given")
	}
	for _, v := range versions {
		if !isKubernetesVersion(v) {
			return "", nil, fmt.Errorf("%q is not a Kubernetes version vMAJOR.MINOR.PATCH, e.g. v1.37.2", v)
		}
	}
	sorted := slices.Clone(versions)
	slices.SortFunc(sorted, semver.Compare)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return "", nil, fmt.Errorf("%s given twice", sorted[i])
		}
	}
	n := len(sorted) - 1
	return sorted[n], sorted[:n:n], nil
}

// complete checks o and fills in its defaults, before anything is built or
// written. It returns the Kubernetes versions o names, the newest first,
// then the others oldest first.
func (o *Options) complete() ([]*kubeBuild, error) {
	newest, others, err := SplitKubernetesVersions(o.KubernetesVersions)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if o.Out == "" {
		return nil, errors.New("bundle: no output folder given")
	}
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	if o.Arch != "amd64" {
		return nil, fmt.Errorf("bundle: architecture %q: only amd64 is supported", o.Arch)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if err := checkCharts(o.Charts); err != nil {
		return nil, err
	}
	if o.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("bundle: no cache folder: %w", err)
		}
		o.CacheDir = filepath.Join(dir, "boot", "bundle")
	}
	var kubes []*kubeBuild
	for _, v := range append([]string{newest}, others...) {
		c, err := kubernetesComponent(v)
		if err != nil {
			return nil, fmt.Errorf("bundle: %w", err)
		}
		kubes = append(kubes, &kubeBuild{c: c})
	}
	return kubes, checkOut(o.Out)
}

// newBuilder returns a builder with the cache folder cache, made and locked
// against other builds until unlock is called.
func newBuilder(ctx context.Context, cache string, log io.Writer) (b *builder, unlock func(), err error) {
	goVersion, err := output(ctx, "", goEnv(false), "go", "env", "GOVERSION")
	if err != nil {
		return nil, nil, fmt.Errorf("bundle: %w", err)
	}
	b = &builder{cache: cache, log: log, goVersion: strings.TrimSpace(string(goVersion))}
	if err := os.MkdirAll(b.cache, 0o755); err != nil {
		return nil, nil, err
	}
	if unlock, err = lockCache(b.cache, log); err != nil {
		return nil, nil, err
	}
	return b, unlock, nil
}

// bundleBuild is one run of Build: its options, the manifest it fills in,
// and what the steps have built into the cache so far.
type bundleBuild struct {
	b *builder
	o Options
	m Manifest

	// kubes are the Kubernetes versions: the bundle's KubernetesVersion
	// first, then its OtherKubernetesVersions.
	kubes      []*kubeBuild
	components []goComponent          // the other Go components
	built      map[string]string      // their binaries: name -> path in the cache
	owner      map[string]goComponent // binary name -> the component that builds it

	deb, redis   layer  // the Debian layers: network tools, Redis
	redisVersion string // redis-server's Debian version
	ca           []byte // the CA certificates every image trusts

	tini, tiniVersion string // docker-init (Debian's static tini) and its Debian version
}

// kubeBuild is one Kubernetes version of a bundle build.
type kubeBuild struct {
	c               goComponent
	dir             string         // its binaries, in the cache
	images          []kubeadmImage // the images its kubeadm asks for
	pause, pauseTag string         // the pause binary of its pause image, and that image's tag
}

// goBinaries builds the Go components (each Kubernetes version, the others,
// Traefik, Docker's, and cert-manager's when there are upstream archives)
// and lists their modules in the manifest.
func (r *bundleBuild) goBinaries(ctx context.Context) error {
	for _, k := range r.kubes {
		dir, err := r.buildGo(ctx, k.c)
		if err != nil {
			return err
		}
		k.dir = dir
	}
	r.components = append(append(otherComponents(), traefikComponent()), dockerComponents()...)
	if r.o.Upstream != nil {
		cm, err := certManagerComponent(r.o.Upstream)
		if err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		r.components = append(r.components, cm)
		r.m.BuiltWith.Archives = r.o.Upstream.archives()
	}
	r.built = map[string]string{}
	r.owner = map[string]goComponent{}
	for _, c := range r.components {
		dir, err := r.buildGo(ctx, c)
		if err != nil {
			return err
		}
		for _, bin := range c.bins {
			r.built[bin.name] = filepath.Join(dir, bin.name)
			r.owner[bin.name] = c
		}
	}
	return nil
}

// buildGo builds c and lists its module in the manifest.
func (r *bundleBuild) buildGo(ctx context.Context, c goComponent) (string, error) {
	dir, err := r.b.buildGo(ctx, c)
	if err != nil {
		return "", fmt.Errorf("bundle: %w", err)
	}
	mod := Module{Component: c.name, Path: c.module, Version: c.version, Pinned: c.pins}
	if c.local != c.version {
		mod.InRepository = c.local
	}
	r.m.BuiltWith.Modules = append(r.m.BuiltWith.Modules, mod)
	return dir, nil
}

// pauseBinaries asks each Kubernetes version's kubeadm for its images and
// builds the pause binary for the pause tag it names, from that version's
// pause.c (a tag an earlier version of r.kubes names is built once, from
// the earlier one's); the manifest lists each pause.c built and the
// libseccomp runc links when dpkg knows its version.
func (r *bundleBuild) pauseBinaries(ctx context.Context) error {
	pauses := map[string]string{} // tag -> binary
	for _, k := range r.kubes {
		version := k.c.version
		lists, err := kubeadmImages(ctx, filepath.Join(k.dir, "kubeadm"), version)
		if err != nil {
			return fmt.Errorf("bundle: Kubernetes %s: %w", version, err)
		}
		k.images = lists
		for _, img := range lists {
			if strings.HasPrefix(img.repoTag, "pause:") {
				k.pauseTag = strings.TrimPrefix(img.repoTag, "pause:")
			}
		}
		if k.pauseTag == "" {
			return fmt.Errorf("bundle: kubeadm %s lists no pause image", version)
		}
		if k.pause = pauses[k.pauseTag]; k.pause != "" {
			continue
		}
		pause, pauseSrc, err := r.b.buildPause(ctx, version, k.pauseTag)
		if err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		k.pause, pauses[k.pauseTag] = pause, pause
		r.m.BuiltWith.Modules = append(r.m.BuiltWith.Modules, Module{Component: "pause", Path: pauseSrc, Version: version})
	}
	if seccomp, err := output(ctx, "", os.Environ(), "dpkg-query", "-W", "-f", "${Version}", "libseccomp-dev"); err == nil {
		r.m.BuiltWith.Linked = map[string]string{"runc": "libseccomp-dev " + string(seccomp) + " (static)"}
	}
	return nil
}

// debianLayers builds the Debian layers, the CA bundle and docker-init and
// lists their packages' versions in the manifest.
func (r *bundleBuild) debianLayers(ctx context.Context) error {
	deb, debVersions, err := r.b.debianLayer(ctx, netSet)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	redis, redisVersions, err := r.b.debianLayer(ctx, redisSet)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	ca, caVersion, err := r.b.caBundle(ctx)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if r.tini, r.tiniVersion, err = r.b.tiniBinary(ctx); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	r.deb, r.redis, r.redisVersion, r.ca = deb, redis, redisVersions["redis-server"], ca
	// All versions come from the same apt package lists, so a package in
	// two layers has one version.
	r.m.BuiltWith.Debian = map[string]string{caPackage: caVersion, tiniPackage: r.tiniVersion}
	for _, vs := range []map[string]string{debVersions, redisVersions} {
		for p, v := range vs {
			r.m.BuiltWith.Debian[p] = v
		}
	}
	return nil
}

// replaceWithStaged has fill write a fresh folder beside out, then swaps it
// in for out; the staged folder is removed if fill fails.
func replaceWithStaged(out string, fill func(dir string) error) error {
	parent := filepath.Dir(filepath.Clean(out))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	stage, err := os.MkdirTemp(parent, "."+filepath.Base(out)+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	if err := os.Chmod(stage, 0o755); err != nil {
		return err
	}
	if err := fill(stage); err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	return os.Rename(stage, out)
}

// assemble writes the bundle into dir: the binaries, the images, the static
// files, the charts and last the manifest.
func (r *bundleBuild) assemble(dir string) error {
	add := (&bundleStage{dir: dir, m: &r.m}).add
	for _, k := range r.kubes {
		binDir, err := r.m.KubernetesBinDir(k.c.version)
		if err != nil {
			return err
		}
		for _, bin := range k.c.bins {
			if bin.dest == "" {
				continue
			}
			if err := add(binDir+"/"+bin.name, filepath.Join(k.dir, bin.name), nil, 0o755, k.c.name, k.c.version); err != nil {
				return err
			}
		}
	}
	for _, c := range r.components {
		for _, bin := range c.bins {
			if bin.dest == "" {
				continue
			}
			if err := add(bin.dest+"/"+bin.name, r.built[bin.name], nil, 0o755, c.name, c.version); err != nil {
				return err
			}
		}
	}
	if err := add("bin/docker-init", r.tini, nil, 0o755, tiniPackage, r.tiniVersion); err != nil {
		return err
	}
	specs, err := r.allImageSpecs()
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if err := r.addImages(add, specs); err != nil {
		return err
	}
	if err := addStaticFiles(add, r.m.KubernetesVersion, DefaultImageRepository+"/pause:"+r.kubes[0].pauseTag); err != nil {
		return err
	}
	if r.m.Charts, err = addCharts(add, r.o.Charts); err != nil {
		return err
	}
	data, err := r.m.encode()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ManifestName), data, 0o644)
}

// allImageSpecs describes every image the bundle holds: Kubernetes' and
// flannel's, the registry's, Redis, Traefik, cert-manager's with upstream
// archives, and boot's own with a boot binary.
func (r *bundleBuild) allImageSpecs() ([]imageSpec, error) {
	b := r.b
	specs, err := imageSpecs(b, r.kubes, r.built, r.owner, r.deb)
	if err != nil {
		return nil, err
	}
	registry, err := registryImageSpec(b, r.built["registry"], r.ca)
	if err != nil {
		return nil, err
	}
	redisSpec, err := redisImageSpec(r.redis, r.redisVersion)
	if err != nil {
		return nil, err
	}
	traefik, err := traefikImageSpec(b, r.built["traefik"], r.ca)
	if err != nil {
		return nil, err
	}
	specs = append(specs, registry, redisSpec, traefik)
	if r.o.Upstream != nil {
		cm, err := certManagerImageSpecs(b, r.o.Upstream, r.built, r.ca)
		if err != nil {
			return nil, err
		}
		specs = append(specs, cm...)
	}
	if r.o.BootBinary != "" {
		boot, err := bootImageSpec(b, r.o.BootBinary, r.o.BootVersion, r.ca)
		if err != nil {
			return nil, err
		}
		specs = append(specs, boot)
	}
	return specs, nil
}

// addImages builds each image's archive (cached), adds it under images/ and
// lists it in the manifest.
func (r *bundleBuild) addImages(add addFunc, specs []imageSpec) error {
	for _, spec := range specs {
		t := time.Now()
		archive, digest, err := r.b.buildImage(spec)
		if err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		rel := "images/" + spec.file
		if err := add(rel, archive, nil, 0o644, spec.component, spec.version); err != nil {
			return err
		}
		r.m.Images = append(r.m.Images, Image{Name: spec.name, RepoTag: spec.repoTag, Path: rel, Digest: digest, Component: spec.component, Version: spec.version})
		fmt.Fprintf(r.o.Log, "bundle: image %s (%s)\n", spec.name, time.Since(t).Round(time.Millisecond))
	}
	return nil
}

// checkOut refuses to replace a folder that is neither empty nor a bundle.
func checkOut(out string) error {
	entries, err := os.ReadDir(out)
	if errors.Is(err, os.ErrNotExist) || err == nil && len(entries) == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bundle: output %s: %w", out, err)
	}
	if _, err := os.Stat(filepath.Join(out, ManifestName)); err != nil {
		return fmt.Errorf("bundle: output %s is not empty and holds no %s: refusing to replace it", out, ManifestName)
	}
	return nil
}

// addFunc adds one file to a bundle folder being written (see bundleStage.add).
type addFunc func(rel, src string, data []byte, mode os.FileMode, component, version string) error

// bundleStage is a bundle folder being written: each file added to it is listed,
// with its size and sha256, among the manifest's files.
type bundleStage struct {
	dir string
	m   *Manifest
}

// add writes the file rel (slash-separated, relative to the folder) as a copy
// of src, or with data when src is empty, and lists it in the manifest as
// belonging to component at version.
func (s *bundleStage) add(rel, src string, data []byte, mode os.FileMode, component, version string) error {
	dst := filepath.Join(s.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if src != "" {
		if err := copyFile(dst, src, mode); err != nil {
			return err
		}
	} else if err := os.WriteFile(dst, data, mode); err != nil {
		return err
	}
	sum, size, err := HashFile(dst)
	if err != nil {
		return err
	}
	s.m.Files = append(s.m.Files, File{Path: rel, SHA256: sum, Size: size, Component: component, Version: version})
	return nil
}

// addStaticFiles adds the systemd units and configuration files.
func addStaticFiles(add addFunc, kubeVersion, pauseImage string) error {
	for _, f := range []struct{ src, dst, component, version string }{
		{"containerd.service", "systemd/containerd.service", "containerd", containerdVersion},
		{"kubelet.service", "systemd/kubelet.service", "kubernetes", kubeVersion},
		{"10-kubeadm.conf", "systemd/10-kubeadm.conf", "kubernetes", kubeVersion},
		{"docker.service", "systemd/docker.service", "moby", mobyVersion},
		{"docker.socket", "systemd/docker.socket", "moby", mobyVersion},
		{"crictl.yaml", "config/crictl.yaml", "crictl", crictlVersion},
	} {
		data, err := files.ReadFile("files/" + f.src)
		if err != nil {
			return err
		}
		if err := add(f.dst, "", data, 0o644, f.component, f.version); err != nil {
			return err
		}
	}
	tmpl, err := template.ParseFS(files, "files/containerd-config.toml.tmpl")
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, struct{ PauseImage string }{pauseImage}); err != nil {
		return err
	}
	return add("config/containerd-config.toml", "", buf.Bytes(), 0o644, "containerd", containerdVersion)
}

// kubeadmImage is one line of kubeadm's image list.
type kubeadmImage struct {
	name    string // under registry.k8s.io
	repoTag string // under any other repository
}

// kubeadmImages runs the built kubeadm to learn the images (and their
// names) it will ask for: once with the default registry, once with another
// repository (kubeadm names coredns differently there).
func kubeadmImages(ctx context.Context, kubeadm, version string) ([]kubeadmImage, error) {
	list := func(repo string) ([]string, error) {
		out, err := output(ctx, "", os.Environ(), kubeadm, "config", "images", "list",
			"--kubernetes-version", version, "--image-repository", repo)
		if err != nil {
			return nil, err
		}
		var names []string
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" {
				names = append(names, l)
			}
		}
		return names, nil
	}
	def, err := list(DefaultImageRepository)
	if err != nil {
		return nil, err
	}
	const other = "registry.invalid/r"
	alt, err := list(other)
	if err != nil {
		return nil, err
	}
	if len(def) != len(alt) || len(def) == 0 {
		return nil, fmt.Errorf("kubeadm image lists differ: %q and %q", def, alt)
	}
	imgs := make([]kubeadmImage, len(def))
	for i := range def {
		rt, ok := strings.CutPrefix(alt[i], other+"/")
		if !ok {
			return nil, fmt.Errorf("kubeadm listed %q under repository %s", alt[i], other)
		}
		imgs[i] = kubeadmImage{name: def[i], repoTag: rt}
	}
	return imgs, nil
}

// imageSpecs describes each image: the images each Kubernetes version's
// kubeadm asks for plus flannel's two. An image asked for by two versions
// (the same repoTag) is described once, as the first of kubes asks for it;
// the archive of one that only other versions ask for is named with its
// tag (kube-apiserver-v1.36.3.tar, etcd-3.6.8-0.tar).
func imageSpecs(b *builder, kubes []*kubeBuild, built map[string]string, owner map[string]goComponent, deb layer) ([]imageSpec, error) {
	one := func(p, src string) (layer, error) {
		return b.makeLayer([]layerFile{{path: p, src: src, mode: 0o755}})
	}
	var specs []imageSpec
	seen := map[string]bool{}
	for i, k := range kubes {
		for _, li := range k.images {
			if seen[li.repoTag] {
				continue
			}
			seen[li.repoTag] = true
			spec, err := kubeadmImageSpec(one, li, i == 0, k, built, owner, deb)
			if err != nil {
				return nil, err
			}
			specs = append(specs, spec)
		}
	}
	flanneld, err := one("opt/bin/flanneld", built["flanneld"])
	if err != nil {
		return nil, err
	}
	plugin, err := one("flannel", built["flannel"])
	if err != nil {
		return nil, err
	}
	specs = append(specs,
		imageSpec{
			name: "ghcr.io/flannel-io/flannel:" + flannelVersion, repoTag: "flannel-io/flannel:" + flannelVersion, file: "flannel.tar",
			component: "flannel", version: flannelVersion, layers: []layer{deb, flanneld},
			entrypoint: []string{"/opt/bin/flanneld"},
		},
		imageSpec{
			name: "ghcr.io/flannel-io/flannel-cni-plugin:" + flannelPluginVersion, repoTag: "flannel-io/flannel-cni-plugin:" + flannelPluginVersion,
			file: "flannel-cni-plugin.tar", component: "flannel-cni-plugin", version: flannelPluginVersion, layers: []layer{deb, plugin},
			cmd: []string{"cp", "-f", "/flannel", "/opt/cni/bin/flannel"},
		},
	)
	return specs, nil
}

// kubeadmImageSpec describes the image li of Kubernetes version k's list:
// its control-plane binaries or pause, or the bundle's etcd or CoreDNS
// (built, owner); kube-proxy's has the Debian layer deb under its binary.
// The archive is <repo>.tar for the bundle's own version (primary), and
// <repo>-<tag>.tar for another.
func kubeadmImageSpec(one func(p, src string) (layer, error), li kubeadmImage, primary bool, k *kubeBuild, built map[string]string, owner map[string]goComponent, deb layer) (imageSpec, error) {
	repo, tag, _ := strings.Cut(li.repoTag, ":")
	spec := imageSpec{name: li.name, repoTag: li.repoTag, file: repo + ".tar"}
	if !primary {
		spec.file = repo + "-" + tag + ".tar"
	}
	var src, at string
	var from goComponent // what the image runs
	switch repo {
	case "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy":
		src, from, at = filepath.Join(k.dir, repo), k.c, "usr/local/bin/"+repo
		spec.entrypoint = []string{"/" + at}
	case "etcd":
		src, from, at = built["etcd"], owner["etcd"], "usr/local/bin/etcd"
		spec.cmd = []string{"/" + at}
	case "coredns":
		src, from, at = built["coredns"], owner["coredns"], "coredns"
		spec.entrypoint = []string{"/coredns"}
	case "pause":
		src, from, at = k.pause, goComponent{name: "pause", version: k.pauseTag}, "pause"
		spec.entrypoint = []string{"/pause"}
		spec.user = "65535:65535"
	default:
		return imageSpec{}, fmt.Errorf("kubeadm %s asks for image %s, which the bundle does not know how to build", k.c.version, li.name)
	}
	spec.component, spec.version = from.name, from.version
	l, err := one(at, src)
	if err != nil {
		return imageSpec{}, err
	}
	if repo == "kube-proxy" {
		spec.layers = []layer{deb}
	}
	spec.layers = append(spec.layers, l)
	return spec, nil
}

// copyFile copies src to dst with mode.
func copyFile(dst, src string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
