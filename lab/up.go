package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bootctl/boot/internal/quote"
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
	if prev, err := loadState(opts.Dir); err != nil {
		return nil, err
	} else if prev != nil {
		return nil, fmt.Errorf("a lab is already up in %s; take it down first (boot lab down)", opts.Dir)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the lab needs root (it runs Docker, debootstrap and privileged containers)")
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := ensureCommands(ctx, map[string]string{"docker": "docker.io", "dockerd": "docker.io"}, logf); err != nil {
		return nil, err
	}
	d, err := newDockerCLI()
	if err != nil {
		return nil, err
	}
	l := &Lab{
		Dir:        opts.Dir,
		Network:    networkName,
		KnownHosts: filepath.Join(opts.Dir, knownHosts),
		KeyPath:    filepath.Join(opts.Dir, keyFile),
		Inventory:  filepath.Join(opts.Dir, inventoryFile),
		RegistryCA: filepath.Join(opts.Dir, "registry", "ca.crt"),
	}
	if err := l.save(); err != nil {
		return nil, err
	}
	stage := func(name string, start time.Time) {
		t := Timing{Stage: name, Duration: time.Since(start).Round(time.Millisecond)}
		l.Timings = append(l.Timings, t)
		logf("stage %s: %s", name, t.Duration)
	}

	// Tools: copied into the lab folder so that the daemon and the hosts use
	// a stable path whatever happens to the build folder.
	missing, err := missingCaps()
	if err != nil {
		return nil, err
	}
	binDir := filepath.Join(opts.Dir, "bin")
	var wrapper string
	if len(missing) > 0 {
		names := make([]string, len(missing))
		for i, c := range missing {
			names[i] = capset.Name(c)
		}
		logf("this machine's capability bounding set lacks %s: privileged containers need runc-capwrap", strings.Join(names, ", "))
		if wrapper, err = installTool(opts.ToolsDir, wrapperTool, binDir); err != nil {
			return nil, err
		}
	}
	registryBin, err := installTool(opts.ToolsDir, registryTool, binDir)
	if err != nil {
		return nil, err
	}
	pebbleBin, err := installTool(opts.ToolsDir, pebbleTool, binDir)
	if err != nil {
		return nil, err
	}

	start := time.Now()
	if v, err := d.serverVersion(ctx); err == nil {
		logf("using the running Docker daemon (%s)", v)
	} else {
		pid, err := startDaemon(ctx, d, opts.Dir, wrapper, logf)
		l.DaemonPID = pid
		if serr := l.save(); err == nil {
			err = serr
		}
		if err != nil {
			return nil, err
		}
	}
	stage("docker", start)

	start = time.Now()
	mirror := opts.Mirror
	if mirror == "" {
		if mirror, err = aptMirror(); err != nil {
			return nil, err
		}
	}
	key := imageKey(mirror)
	if err := buildRootfsTar(ctx, mirror, filepath.Join(opts.CacheDir, "host-"+key+".tar"), logf); err != nil {
		return nil, err
	}
	l.Image = "boot-lab/host:" + key
	if err := importImage(ctx, d, filepath.Join(opts.CacheDir, "host-"+key+".tar"), l.Image); err != nil {
		return nil, err
	}
	if err := l.save(); err != nil {
		return nil, err
	}
	stage("image", start)

	start = time.Now()
	runtime, err := l.chooseRuntime(ctx, d, wrapper, logf)
	if err != nil {
		return nil, err
	}
	if err := l.createNetwork(ctx, d); err != nil {
		return nil, err
	}
	logf("network %s: %s (bridge %s, gateway %s)", networkName, l.Subnet, bridgeName, l.Gateway)
	if err := l.writeCerts(); err != nil {
		return nil, err
	}
	if err := l.startHosts(ctx, d, runtime, logf); err != nil {
		return nil, err
	}
	stage("hosts", start)

	start = time.Now()
	if err := l.startOutside(ctx, pebbleBin, opts.Bundle, labPorts, logf); err != nil {
		return nil, err
	}
	stage("outside", start)

	start = time.Now()
	if err := l.startRegistry(ctx, d, registryBin); err != nil {
		return nil, err
	}
	kubeVersion := opts.KubernetesVersion
	if opts.Bundle != "" {
		if kubeVersion, err = l.pushBundle(ctx, opts.Bundle, logf); err != nil {
			return nil, err
		}
	}
	if err := l.save(); err != nil {
		return nil, err
	}
	stage("registry", start)

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
func (l *Lab) startHosts(ctx context.Context, d *dockerCLI, runtime string, logf func(string, ...any)) error {
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
		host := Host{Name: h.name, Role: h.role, Address: l.addr(h.octet), Container: containerName(h.name)}
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
		args = append(args, l.Image)
		if _, err := d.run(ctx, args...); err != nil {
			return err
		}
		l.Hosts = append(l.Hosts, host)
		if err := l.save(); err != nil {
			return err
		}
	}
	lines := make([][]string, len(l.Hosts))
	errs := make([]error, len(l.Hosts))
	var wg sync.WaitGroup
	for i, h := range l.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lines[i], errs[i] = prepareHost(ctx, d, h, pub, ca)
		}()
	}
	wg.Wait()
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
	for i, h := range l.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = checkSSH(ctx, h.Address, l.KeyPath, l.KnownHosts)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, h := range l.Hosts {
		logf("host %s: %s (%s)", h.Name, h.Address, sshHint(h.Address, l.KeyPath, l.KnownHosts))
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
