package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Down removes everything Up made: the services it runs on this machine
// (each stopped only while it is still the process Up started), the lab's
// containers, network, volumes and images, the dockerd it started, any change to Docker's daemon.json, and the
// files it wrote in the lab folder (the host image cache is kept). It is safe
// to run after a failed Up and when the lab is already down.
func Down(ctx context.Context, opts Options) error {
	if err := opts.complete(); err != nil {
		return err
	}
	logf := logger(opts.Log)
	l, err := loadState(opts.Dir)
	if err != nil {
		return err
	}
	if l == nil {
		l = &Lab{Dir: opts.Dir}
	}
	d, err := newDockerCLI()
	if err != nil {
		return err
	}
	// The services first: they listen on the lab bridge's address.
	errs := []error{l.stopServices(ctx, logf)}
	if _, verr := d.serverVersion(ctx); verr == nil {
		errs = append(errs, removeLabObjects(ctx, d, logf))
		errs = append(errs, restoreDaemonConfig(ctx, d, l.DaemonConfig))
	} else if l.DaemonPID != 0 || l.DaemonConfig != nil || len(l.Hosts) > 0 {
		if !isOurDaemon(l.DaemonPID) {
			errs = append(errs, fmt.Errorf("no Docker daemon answers, so the lab's containers could not be removed: %w", verr))
		}
	}
	if l.DaemonPID != 0 {
		if err := stopDaemon(ctx, l.DaemonPID); err != nil {
			errs = append(errs, err)
		} else {
			logf("stopped dockerd (pid %d)", l.DaemonPID)
			errs = append(errs, unmountUnder(runDir), os.RemoveAll(runDir), os.RemoveAll(filepath.Join(opts.Dir, "docker")))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, name := range []string{inventoryFile, onlineInventoryFile, knownHosts, keyFile, keyFile + ".pub", "registry", "bin", "dockerd.log",
		motoDir, corednsDir, pebbleDir, proxyDir, acmeRootFile, route53EnvFile, stateFile,
		// boot's own state for the lab's cluster (snapshots beside the inventory).
		".boot",
		// The mirror's packages (mirror/repo) stay: the next lab reuses them.
		filepath.Join(mirrorDir, mirrorKeyFile), filepath.Join(mirrorDir, "tls.crt"), filepath.Join(mirrorDir, "tls.key"),
		filepath.Join(mirrorDir, "mirror.log")} {
		if err := os.RemoveAll(filepath.Join(opts.Dir, name)); err != nil {
			return err
		}
	}
	logf("lab down")
	return nil
}

// removeLabObjects removes every container, network, volume and image that
// carries the lab's label.
func removeLabObjects(ctx context.Context, d *dockerCLI, logf func(string, ...any)) error {
	for _, kind := range []string{"container", "network", "volume", "image"} {
		names, err := d.listByLabel(ctx, kind)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			continue
		}
		var args []string
		switch kind {
		case "container":
			thawHosts(ctx, d, names, logf)
			args = append([]string{"rm", "-f", "-v"}, names...)
		case "network":
			args = append([]string{"network", "rm"}, names...)
		case "volume":
			args = append([]string{"volume", "rm", "-f"}, names...)
		case "image":
			args = append([]string{"image", "rm", "-f"}, names...)
		}
		if _, err := d.run(ctx, args...); err != nil {
			return err
		}
		logf("removed %s %v", kind, names)
	}
	return nil
}

// thawHosts thaws the frozen cgroups inside the running containers among
// names, so that Docker can kill them (see thawCgroupsOf). Failures are
// only logged: the removal says what still stands in the way.
func thawHosts(ctx context.Context, d *dockerCLI, names []string, logf func(string, ...any)) {
	for _, name := range names {
		out, err := d.run(ctx, "inspect", "-f", "{{.State.Pid}}", name)
		pid, _ := strconv.Atoi(strings.TrimSpace(out))
		if err != nil || pid <= 0 {
			continue
		}
		n, err := thawCgroupsOf(pid)
		switch {
		case err != nil:
			logf("%s: thawing its frozen cgroups: %v", name, err)
		case n > 0:
			logf("%s: thawed %d frozen cgroup(s)", name, n)
		}
	}
}

// unmountUnder unmounts, deepest first, whatever the stopped daemon left
// mounted below dir (network namespaces it bind-mounted under its exec
// root stay mounted when it stops), so that dir can be removed.
func unmountUnder(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
