package lab

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The hosts' operating system.
const (
	suite = "bookworm"
	// imageRecipe changes whenever customizeRootfs changes, so that cached
	// images made by an older recipe are not reused.
	imageRecipe = "boot-lab-host-1"
)

// hostPackages are installed by debootstrap on top of minbase: systemd as init,
// sshd, and what kubeadm's preflight checks and kube-proxy look for.
var hostPackages = []string{
	"systemd", "systemd-sysv", "dbus", "openssh-server", "iproute2", "iptables",
	"conntrack", "curl", "ca-certificates", "kmod", "ethtool", "socat", "ebtables",
	"procps", "util-linux", "mount", "iputils-ping", "libseccomp2", "less",
}

// imageKey identifies a host image by everything that goes into it.
func imageKey(mirror string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n", imageRecipe, suite, mirror, strings.Join(hostPackages, ","))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// aptMirror returns the Debian mirror this machine's apt uses for the suite
// (deb822 .sources files first, then sources.list).
func aptMirror() (string, error) {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		if m := mirrorFromDeb822(f); m != "" {
			return m, nil
		}
	}
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	for _, f := range append([]string{"/etc/apt/sources.list"}, lists...) {
		if m := mirrorFromList(f); m != "" {
			return m, nil
		}
	}
	return "", fmt.Errorf("found no Debian mirror for %s in /etc/apt/sources.list*; set the lab's mirror option", suite)
}

func mirrorFromDeb822(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, stanza := range strings.Split(string(data), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if !containsWord(fields["types"], "deb") || !containsWord(fields["suites"], suite) {
			continue
		}
		if uris := strings.Fields(fields["uris"]); len(uris) > 0 {
			return uris[0]
		}
	}
	return ""
}

func mirrorFromList(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		words := strings.Fields(sc.Text())
		if len(words) < 3 || words[0] != "deb" {
			continue
		}
		words = words[1:]
		if strings.HasPrefix(words[0], "[") {
			for len(words) > 0 && !strings.HasSuffix(words[0], "]") {
				words = words[1:]
			}
			if len(words) > 0 {
				words = words[1:]
			}
		}
		if len(words) >= 2 && words[1] == suite {
			return words[0]
		}
	}
	return ""
}

func containsWord(list, word string) bool {
	for _, w := range strings.Fields(list) {
		if w == word {
			return true
		}
	}
	return false
}

// buildRootfsTar runs debootstrap into a scratch folder, prepares the tree for
// running as a systemd container and packs it into tarPath. It skips all of it
// when tarPath exists.
func buildRootfsTar(ctx context.Context, mirror, tarPath string, logf func(string, ...any)) error {
	if _, err := os.Stat(tarPath); err == nil {
		logf("host image: cached %s", tarPath)
		return nil
	}
	if err := ensureCommands(ctx, map[string]string{"debootstrap": "debootstrap"}, logf); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(tarPath), 0o755); err != nil {
		return err
	}
	root, err := os.MkdirTemp(filepath.Dir(tarPath), "rootfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	start := time.Now()
	logf("host image: debootstrap %s from %s (about a minute)", suite, mirror)
	args := []string{"--variant=minbase", "--include=" + strings.Join(hostPackages, ","), suite, root, mirror}
	if out, err := exec.CommandContext(ctx, "debootstrap", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("debootstrap: %v\n%s", err, tail(string(out), 20))
	}
	logf("host image: debootstrap done in %s", time.Since(start).Round(time.Second))
	if err := customizeRootfs(root); err != nil {
		return fmt.Errorf("prepare host image: %w", err)
	}
	// A temporary name of its own, so that two builds of the same image
	// (two labs made at once) never write one file; the rename is atomic.
	part, err := os.CreateTemp(filepath.Dir(tarPath), filepath.Base(tarPath)+".part-")
	if err != nil {
		return err
	}
	tmp := part.Name()
	part.Close()
	if out, err := exec.CommandContext(ctx, "tar", "--numeric-owner", "--xattrs", "-C", root, "-cf", tmp, ".").CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pack host image: %v\n%s", err, out)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, tarPath)
}

// hostKeysUnit regenerates the SSH host keys at a host's first boot, before sshd starts.
const hostKeysUnit = `[Unit]
Description=Generate this host's SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
`

// maskedUnits make no sense in a container (no consoles, no hardware, no kernel modules).
var maskedUnits = []string{
	"getty@.service", "serial-getty@.service", "console-getty.service", "getty.target",
	"systemd-udevd.service", "systemd-udev-trigger.service", "systemd-modules-load.service",
	"sys-kernel-config.mount", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
	"systemd-remount-fs.service", "apt-daily.timer", "apt-daily-upgrade.timer",
}

// customizeRootfs turns a debootstrapped tree into a host image: each host
// gets its own machine-id and host keys at first boot.
func customizeRootfs(root string) error {
	etc := filepath.Join(root, "etc")
	unitDir := filepath.Join(etc, "systemd", "system")
	for _, u := range maskedUnits {
		p := filepath.Join(unitDir, u)
		_ = os.Remove(p)
		if err := os.Symlink("/dev/null", p); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(unitDir, "boot-lab-hostkeys.service"), []byte(hostKeysUnit), 0o644); err != nil {
		return err
	}
	for _, wants := range []string{"multi-user.target.wants", "ssh.service.wants"} {
		d := filepath.Join(unitDir, wants)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.Symlink("../boot-lab-hostkeys.service", filepath.Join(d, "boot-lab-hostkeys.service")); err != nil {
			return err
		}
	}
	keys, _ := filepath.Glob(filepath.Join(etc, "ssh", "ssh_host_*"))
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return err
		}
	}
	// An empty machine-id makes systemd generate a new one at first boot.
	if err := os.WriteFile(filepath.Join(etc, "machine-id"), nil, 0o444); err != nil {
		return err
	}
	_ = os.Remove(filepath.Join(root, "var", "lib", "dbus", "machine-id"))
	// Package caches and lists only take space.
	for _, pattern := range []string{"var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*"} {
		files, _ := filepath.Glob(filepath.Join(root, pattern))
		for _, f := range files {
			_ = os.Remove(f)
		}
	}
	return nil
}

// importImage imports the rootfs tarball as a Docker image named tag, unless present.
func importImage(ctx context.Context, d *dockerCLI, tarPath, tag string) error {
	if d.exists(ctx, "image", tag) {
		return nil
	}
	_, err := d.run(ctx, "import",
		"--change", `CMD ["/sbin/init"]`,
		"--change", "ENV container=docker",
		"--change", "LABEL "+labelKey+"=image",
		tarPath, tag)
	return err
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
