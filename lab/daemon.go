package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bootctl/boot/lab/internal/capset"
)

// Where a dockerd started by the lab keeps its runtime files. Unix socket paths
// are limited to 108 bytes, so this stays short and outside the lab folder.
const runDir = "/run/boot-lab"

// capWrapRuntime is the name of the Docker runtime that runs runc-capwrap.
const capWrapRuntime = "boot-lab-capwrap"

// daemonFlags are the options of a dockerd the lab starts: no default bridge,
// no iptables rules, no forwarding or masquerading, so that the machine's
// global network settings stay as they were; data under the lab folder.
func daemonFlags(dir, wrapper string) []string {
	flags := []string{
		"--pidfile", filepath.Join(runDir, "dockerd.pid"),
		"--config-file", filepath.Join(runDir, "daemon.json"),
		"--exec-root", filepath.Join(runDir, "docker"),
		"--data-root", filepath.Join(dir, "docker"),
		"--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false",
	}
	if wrapper != "" {
		flags = append(flags, "--add-runtime", capWrapRuntime+"="+wrapper)
	}
	return flags
}

// startDaemon starts dockerd in the background (its own session, log in the lab
// folder) and waits until it answers. It returns dockerd's pid.
func startDaemon(ctx context.Context, d *dockerCLI, dir, wrapper string, logf func(string, ...any)) (int, error) {
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		return 0, fmt.Errorf("no Docker daemon answers and dockerd is not installed (Debian: apt-get install docker.io): %w", err)
	}
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return 0, err
	}
	// Its own configuration file, not the machine's; it keeps dockerd 20.10
	// from creating /etc/docker/key.json.
	config := fmt.Appendf(nil, "{\"deprecated-key-path\": %q}\n", filepath.Join(runDir, "key.json"))
	if err := writeFileAtomic(filepath.Join(runDir, "daemon.json"), config, 0o600); err != nil {
		return 0, err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, daemonFlags(dir, wrapper)...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start dockerd: %w", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	logf("started dockerd (pid %d, log %s)", pid, filepath.Join(dir, "dockerd.log"))
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := d.serverVersion(ctx); err == nil {
			return pid, nil
		}
		select {
		case err := <-exited:
			return 0, fmt.Errorf("dockerd exited at start (%v); see %s", err, filepath.Join(dir, "dockerd.log"))
		case <-ctx.Done():
			return pid, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return pid, fmt.Errorf("dockerd (pid %d) did not answer within 60s; see %s", pid, filepath.Join(dir, "dockerd.log"))
		}
	}
}

// isOurDaemon reports whether pid is a running dockerd started with the lab's pid file.
func isOurDaemon(pid int) bool {
	if pid <= 0 {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(cmdline), "\x00")
	return len(args) > 0 && filepath.Base(args[0]) == "dockerd" &&
		strings.Contains(string(cmdline), filepath.Join(runDir, "dockerd.pid"))
}

// stopDaemon stops the dockerd the lab started (SIGTERM, then SIGKILL after
// 30 s) and waits until it is gone. A pid that is no longer our dockerd is left alone.
func stopDaemon(ctx context.Context, pid int) error {
	if !isOurDaemon(pid) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop dockerd (pid %d): %w", pid, err)
	}
	killAt := time.Now().Add(30 * time.Second)
	for isOurDaemon(pid) {
		if time.Now().After(killAt) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killAt = time.Now().Add(time.Hour)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// missingCaps lists the capabilities the kernel knows (up to cap_last_cap) that
// are not in this process's bounding set. Docker's --privileged asks for all of
// them, so a non-empty list predicts "unable to apply caps".
func missingCaps() ([]int, error) {
	data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return nil, err
	}
	last, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("/proc/sys/kernel/cap_last_cap: %v", err)
	}
	bnd, err := capset.Bounding()
	if err != nil {
		return nil, err
	}
	return capset.Missing(bnd, last), nil
}

// capsProblem is the error text runc gives when a container asks for a
// capability outside the bounding set.
const capsProblem = "unable to apply caps"

// privilegedWorks runs a throw-away privileged container from image with the
// given runtime ("" = the daemon's default). It returns (false, nil) when the
// run fails with the capability problem, and an error for any other failure.
func privilegedWorks(ctx context.Context, d *dockerCLI, image, runtime string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	args := []string{"run", "--rm", "--privileged", "--network", "none", "--label", labelKey + "=probe"}
	if runtime != "" {
		args = append(args, "--runtime", runtime)
	}
	args = append(args, "--entrypoint", "/bin/true", image)
	_, err := d.run(ctx, args...)
	if err == nil {
		return true, nil
	}
	if strings.Contains(err.Error(), capsProblem) {
		return false, nil
	}
	return false, err
}
