package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bootctl/boot/internal/quote"
	irun "github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/lab/internal/capset"
)

// Up brings the lab up from nothing: Docker (started if none answers), the
// host image, the network, four hosts answering SSH with keys recorded in the
// lab's known_hosts, the outside world on the gateway (moto, CoreDNS,
// Pebble: see startOutside), the registry with the bundle's images, and
// Dir/inventory.yaml. If Up fails, Down removes what it had made.
func Up(ctx context.Context, opts Options) (*Lab, error) {
	if err := opts.complete(); err != nil {
		return nil, err
	}
	logf := logger(opts.Log)
	if err := checkCanStart(opts.Dir); err != nil {
		return nil, err
	}
	commands := map[string]string{"docker": "docker.io", "dockerd": "docker.io"}
	if opts.Bundle != "" {
		commands[proxyProgram] = "tinyproxy" // the forward proxy to the package mirror
	}
	if err := ensureCommands(ctx, commands, logf); err != nil {
		return nil, err
	}
	d, err := newDockerCLI()
	if err != nil {
		return nil, err
	}
	l := newLab(opts.Dir)
	if err := l.save(); err != nil {
		return nil, err
	}
	tools, err := installTools(opts.ToolsDir, filepath.Join(opts.Dir, "bin"), logf)
	if err != nil {
		return nil, err
	}
	kubeVersion := opts.KubernetesVersion
	var images map[string]string // Debian codename → image
	stages := []struct {
		name string
		run  func() error
	}{
		{"docker", func() error { return l.startDocker(ctx, d, tools.wrapper, logf) }},
		{"image", func() (err error) {
			images, err = l.buildHostImages(ctx, d, opts.Mirror, opts.CacheDir, hostReleases(opts.Debian), logf)
			return err
		}},
		{"hosts", func() error { return l.setUpHosts(ctx, d, tools.wrapper, opts.Debian, images, logf) }},
		{"outside", func() error { return l.startOutside(ctx, tools.pebble, opts.Bundle, labPorts, logf) }},
		{"mirror", func() error { return l.startMirror(ctx, opts.ToolsDir, opts.Bundle, labPorts.Mirror, logf) }},
		{"proxy", func() error { return l.startProxy(ctx, labPorts.Proxy, labPorts.Mirror, logf) }},
		{"registry", func() (err error) {
			kubeVersion, err = l.fillRegistry(ctx, d, tools.registry, opts.Bundle, kubeVersion, logf)
			return err
		}},
	}
	for _, st := range stages {
		start := time.Now()
		if err := st.run(); err != nil {
			return nil, err
		}
		t := Timing{Stage: st.name, Duration: time.Since(start).Round(time.Millisecond)}
		l.Timings = append(l.Timings, t)
		logf("stage %s: %s", st.name, t.Duration)
	}
	if err := l.writeInventory(opts.Bundle, kubeVersion); err != nil {
		return nil, err
	}
	var total time.Duration
	for _, t := range l.Timings {
		total += t.Duration
	}
	logf("lab up in %s: inventory %s", total.Round(time.Millisecond), l.Inventory)
	return l, nil
}

// checkCanStart refuses to start a lab where one is up or without root, and
// makes the lab folder dir.
func checkCanStart(dir string) error {
	if prev, err := loadState(dir); err != nil {
		return err
	} else if prev != nil {
		return fmt.Errorf("a lab is already up in %s; take it down first (boot lab down)", dir)
	}
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root (it runs Docker, debootstrap and privileged containers)")
	}
	return os.MkdirAll(dir, 0o700)
}

// newLab is the state of a lab in dir before anything is made.
func newLab(dir string) *Lab {
	return &Lab{
		Dir:        dir,
		Network:    networkName,
		KnownHosts: filepath.Join(dir, knownHosts),
		KeyPath:    filepath.Join(dir, keyFile),
		Inventory:  filepath.Join(dir, inventoryFile),
		RegistryCA: filepath.Join(dir, "registry", "ca.crt"),
	}
}

// labTools are the paths of the lab's own programs in its bin folder;
// wrapper is empty when this machine does not need runc-capwrap.
type labTools struct {
	wrapper, registry, pebble string
}

// installTools copies the tools the lab needs from toolsDir into binDir,
// so that the daemon and the hosts use a stable path whatever happens to
// the build folder.
func installTools(toolsDir, binDir string, logf func(string, ...any)) (labTools, error) {
	var t labTools
	missing, err := missingCaps()
	if err != nil {
		return t, err
	}
	if len(missing) > 0 {
		names := make([]string, len(missing))
		for i, c := range missing {
			names[i] = capset.Name(c)
		}
		logf("this machine's capability bounding set lacks %s: privileged containers need runc-capwrap", strings.Join(names, ", "))
		if t.wrapper, err = installTool(toolsDir, wrapperTool, binDir); err != nil {
			return t, err
		}
	}
	if t.registry, err = installTool(toolsDir, registryTool, binDir); err != nil {
		return t, err
	}
	t.pebble, err = installTool(toolsDir, pebbleTool, binDir)
	return t, err
}

// startDocker uses the Docker daemon that answers, or starts one (with the
// runc wrapper when there is one) and records its PID.
func (l *Lab) startDocker(ctx context.Context, d *dockerCLI, wrapper string, logf func(string, ...any)) error {
	if v, err := d.serverVersion(ctx); err == nil {
		logf("using the running Docker daemon (%s)", v)
		return nil
	}
	pid, err := startDaemon(ctx, d, l.Dir, wrapper, logf)
	l.DaemonPID = pid
	if serr := l.save(); err == nil {
		err = serr
	}
	return err
}

// hostReleases are the Debian releases the hosts run (debian: host →
// codename), DefaultDebian always among them, in DebianReleases' order.
func hostReleases(debian map[string]string) []string {
	var releases []string
	for _, r := range DebianReleases {
		used := r == DefaultDebian
		for _, c := range debian {
			used = used || c == r
		}
		if used {
			releases = append(releases, r)
		}
	}
	return releases
}

// buildHostImages builds (or reuses, from cacheDir) the root file system
// of each release from mirror (for each, the machine's apt mirror when
// empty), imports it, and returns the images by codename. l.Image, which
// the lab's own containers run, is DefaultDebian's.
func (l *Lab) buildHostImages(ctx context.Context, d *dockerCLI, mirror, cacheDir string, releases []string, logf func(string, ...any)) (map[string]string, error) {
	images := map[string]string{}
	for _, codename := range releases {
		m := mirror
		if m == "" {
			var err error
			if m, err = aptMirror(codename); err != nil {
				return nil, err
			}
		}
		key := imageKey(codename, m)
		tar := filepath.Join(cacheDir, "host-"+key+".tar")
		if err := buildRootfsTar(ctx, codename, m, tar, logf); err != nil {
			return nil, fmt.Errorf("host image %s: %w", codename, err)
		}
		images[codename] = "boot-lab/host:" + key
		if err := importImage(ctx, d, tar, images[codename]); err != nil {
			return nil, err
		}
	}
	l.Image = images[DefaultDebian]
	return images, l.save()
}

// setUpHosts chooses the container runtime, creates the network and the
// certificates, and starts the hosts, each with the image of its Debian
// release (debian: host → codename; images: codename → image).
func (l *Lab) setUpHosts(ctx context.Context, d *dockerCLI, wrapper string, debian, images map[string]string, logf func(string, ...any)) error {
	runtime, err := l.chooseRuntime(ctx, d, wrapper, logf)
	if err != nil {
		return err
	}
	if err := l.createNetwork(ctx, d); err != nil {
		return err
	}
	logf("network %s: %s (bridge %s, gateway %s)", networkName, l.Subnet, bridgeName, l.Gateway)
	if err := l.writeCerts(); err != nil {
		return err
	}
	return l.startHosts(ctx, d, runtime, debian, images, logf)
}

// fillRegistry starts the registry and pushes the bundle's images into it
// when there is a bundle. It returns the bundle's Kubernetes version, or
// kubeVersion without a bundle.
func (l *Lab) fillRegistry(ctx context.Context, d *dockerCLI, registryBin, bundle, kubeVersion string, logf func(string, ...any)) (string, error) {
	if err := l.startRegistry(ctx, d, registryBin); err != nil {
		return "", err
	}
	if bundle != "" {
		var err error
		if kubeVersion, err = l.pushBundle(ctx, bundle, logf); err != nil {
			return "", err
		}
	}
	return kubeVersion, l.save()
}

// installTool copies ToolsDir/name into binDir and returns the copy's path.
func installTool(toolsDir, name, binDir string) (string, error) {
	src := filepath.Join(toolsDir, name)
	in, err := os.Open(src)
	if err != nil {
		build := fmt.Sprintf("CGO_ENABLED=0 go build -o %s/ ./lab/%s", toolsDir, name)
		if name == pebbleTool {
			build = fmt.Sprintf("CGO_ENABLED=0 GOBIN=%s go install %s", toolsDir, PebbleModule)
		}
		return "", fmt.Errorf("the lab needs %s (make build puts it beside boot; or: %s): %w", name, build, err)
	}
	defer in.Close()
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	dst := filepath.Join(binDir, name)
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return dst, os.Rename(tmp, dst)
}

// chooseRuntime finds out whether privileged containers work with the daemon's
// default runtime; when they fail with the capability problem it makes sure the
// runc-capwrap runtime is registered and works, and returns its name.
func (l *Lab) chooseRuntime(ctx context.Context, d *dockerCLI, wrapper string, logf func(string, ...any)) (string, error) {
	ok, err := privilegedWorks(ctx, d, l.Image, "")
	if err != nil {
		return "", fmt.Errorf("probe a privileged container: %w", err)
	}
	if ok {
		logf("privileged containers work as they are: no runc wrapper")
		return "", nil
	}
	if wrapper == "" {
		return "", fmt.Errorf("privileged containers fail with %q, but this machine's bounding set is complete: not a problem the lab can work around", capsProblem)
	}
	logf("privileged containers fail with %q: using runc-capwrap", capsProblem)
	l.CapWrap = true
	if !daemonHasRuntime(ctx, d, capWrapRuntime) {
		backup, err := registerRuntime(ctx, d, wrapper)
		l.DaemonConfig = backup
		if serr := l.save(); err == nil {
			err = serr
		}
		if err != nil {
			return "", err
		}
	}
	ok, err = privilegedWorks(ctx, d, l.Image, capWrapRuntime)
	if err != nil {
		return "", fmt.Errorf("probe a privileged container through runc-capwrap: %w", err)
	}
	if !ok {
		return "", fmt.Errorf("privileged containers still fail with %q through runc-capwrap", capsProblem)
	}
	return capWrapRuntime, l.save()
}

// startHosts creates the hosts, waits until each answers SSH with the lab key
// and records their host keys.
func (l *Lab) startHosts(ctx context.Context, d *dockerCLI, runtime string, debian, images map[string]string, logf func(string, ...any)) error {
	pub, err := ensureKey(l.KeyPath)
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(l.RegistryCA)
	if err != nil {
		return err
	}
	var addHosts []string
	for _, h := range hostLayout {
		addHosts = append(addHosts, "--add-host", h.name+":"+l.addr(h.octet))
	}
	addHosts = append(addHosts, "--add-host", "registry:"+l.addr(registryOctet))
	for _, h := range hostLayout {
		host := Host{Name: h.name, Role: h.role, Address: l.addr(h.octet), Container: containerName(h.name),
			Debian: debian[h.name], Image: images[debian[h.name]]}
		if _, err := d.run(ctx, "volume", "create", "--label", labelKey+"=volume", volumeName(h.name)); err != nil {
			return err
		}
		args := []string{"run", "-d", "--name", host.Container, "--hostname", h.name,
			"--label", labelKey + "=host",
			"--network", networkName, "--ip", host.Address,
			"--privileged",
			// A cgroup namespace of its own: systemd inside then sees its
			// cgroups at the root of every hierarchy, where the kubelet
			// (systemd cgroup driver) looks for the slices it asked systemd
			// for. With the machine's namespace (Docker's default on cgroup
			// v1) systemd nests them under /docker/<id> in name=systemd only.
			"--cgroupns", "private",
			"--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
			"-v", volumeName(h.name) + ":/var",
			"--stop-signal", "SIGRTMIN+3",
			"-e", "container=docker",
			// Docker's embedded DNS answers the lab's names and forwards the
			// rest to this server: the machine's end of the lab bridge, so no
			// lookup leaves the lab network.
			"--dns", l.Gateway,
		}
		args = append(args, addHosts...)
		if runtime != "" {
			args = append(args, "--runtime", runtime,
				"-v", filepath.Join(l.Dir, "bin", wrapperTool)+":"+HostWrapperPath+":ro")
		}
		args = append(args, host.Image)
		if _, err := d.run(ctx, args...); err != nil {
			return err
		}
		l.Hosts = append(l.Hosts, host)
		if err := l.save(); err != nil {
			return err
		}
	}
	lines := make([][]string, len(l.Hosts))
	errs := irun.Parallel(len(l.Hosts), 0, func(i int) error {
		var err error
		lines[i], err = prepareHost(ctx, d, l.Hosts[i], pub, ca)
		return err
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var all []string
	for _, ls := range lines {
		all = append(all, ls...)
	}
	if err := writeFileAtomic(l.KnownHosts, []byte(strings.Join(all, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	// Prove that the files Up writes are enough: a strict SSH login to each host.
	errs = irun.Parallel(len(l.Hosts), 0, func(i int) error {
		return checkSSH(ctx, l.Hosts[i].Address, l.KeyPath, l.KnownHosts)
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, h := range l.Hosts {
		logf("host %s: %s, Debian %s (%s)", h.Name, h.Address, h.Debian, sshHint(h.Address, l.KeyPath, l.KnownHosts))
	}
	return nil
}

// sshHint is the ssh command line that logs in to a lab host, for the
// operator to paste: the paths are quoted, so a lab directory with spaces or
// quotes in its name stays one argument each.
func sshHint(address, keyPath, knownHosts string) string {
	return "ssh root@" + address + " -i " + quote.Shell(keyPath) + " -o " + quote.Shell("UserKnownHostsFile="+knownHosts)
}

// prepareHost waits for a host's sshd, authorizes the lab key for root, makes
// the host trust the lab registry's CA, and returns its known_hosts lines.
func prepareHost(ctx context.Context, d *dockerCLI, h Host, pub, ca []byte) ([]string, error) {
	deadline := time.Now().Add(120 * time.Second)
	for {
		out, err := d.run(ctx, "exec", h.Container, "systemctl", "is-active", "ssh.service")
		if err == nil && out == "active" {
			break
		}
		if time.Now().After(deadline) {
			state, _ := d.run(ctx, "exec", h.Container, "systemctl", "is-system-running")
			return nil, fmt.Errorf("host %s: sshd not active after 120s (ssh: %q, system: %q)", h.Name, out, state)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	if _, err := d.runIn(ctx, strings.NewReader(string(pub)), "exec", "-i", h.Container, "sh", "-c",
		"umask 077 && mkdir -p /root/.ssh && cat > /root/.ssh/authorized_keys"); err != nil {
		return nil, fmt.Errorf("host %s: authorize the lab key: %w", h.Name, err)
	}
	if _, err := d.runIn(ctx, strings.NewReader(string(ca)), "exec", "-i", h.Container, "sh", "-c",
		"cat > /usr/local/share/ca-certificates/boot-lab-registry.crt && update-ca-certificates >/dev/null"); err != nil {
		return nil, fmt.Errorf("host %s: install the registry CA: %w", h.Name, err)
	}
	out, err := d.run(ctx, "exec", h.Container, "sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub")
	if err != nil {
		return nil, fmt.Errorf("host %s: read host keys: %w", h.Name, err)
	}
	lines, err := knownHostsLines(h.Address, out)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return lines, nil
}
