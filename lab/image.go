package lab

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// imageRecipe changes whenever customizeRootfs changes, so that cached
// images made by an older recipe are not reused.
const imageRecipe = "boot-lab-host-3"

// DefaultDebian is the Debian release of a lab host that Options.Debian does not name.
const DefaultDebian = "bookworm"

// DebianReleases are the Debian releases a lab host can run, by codename.
// Both boot with systemd on this machine's cgroup hierarchies as they are,
// v1 too: in a container, trixie's systemd (257) uses the hierarchies the
// container runtime mounted and only marks itself tainted (cgroupsv1); it
// refuses cgroup v1 only where it would mount them itself.
var DebianReleases = []string{"bookworm", "trixie"}

// hostPackages are installed by debootstrap on top of minbase, in every
// release (the names are the same in bookworm and trixie): systemd as init,
// sshd, what kubeadm's preflight checks and kube-proxy look for, and what
// boot's online scripts take as given (curl, ca-certificates, gpg): the
// hosts reach no Debian mirror.
var hostPackages = []string{
	"systemd", "systemd-sysv", "dbus", "openssh-server", "iproute2", "iptables",
	"conntrack", "curl", "ca-certificates", "kmod", "ethtool", "socat", "ebtables",
	"procps", "util-linux", "mount", "iputils-ping", "libseccomp2", "less", "gpg",
}

// imageKey identifies a host image by everything that goes into it.
func imageKey(codename, mirror string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n", imageRecipe, codename, mirror, strings.Join(hostPackages, ","))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ParseDebian reads the Debian release of lab hosts from spec: a comma
// separated list of host=codename (w2=trixie,w3=trixie), or one codename for
// every host (trixie). Empty: every host runs DefaultDebian.
func ParseDebian(spec string) (map[string]string, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, nil
	}
	m := map[string]string{}
	if !strings.Contains(spec, "=") {
		if !slices.Contains(DebianReleases, spec) {
			return nil, fmt.Errorf("unknown Debian release %q (the lab builds %s; or give host=codename)", spec, strings.Join(DebianReleases, ", "))
		}
		for _, h := range hostLayout {
			m[h.name] = spec
		}
		return m, nil
	}
	for _, item := range strings.Split(spec, ",") {
		host, codename, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || host == "" || codename == "" {
			return nil, fmt.Errorf("%q: want host=codename (e.g. w3=trixie)", item)
		}
		if _, dup := m[host]; dup {
			return nil, fmt.Errorf("host %s given twice", host)
		}
		m[host] = codename
	}
	return m, checkDebian(m)
}

// checkDebian makes sure every host named in m is a lab host and every
// codename one the lab can build.
func checkDebian(m map[string]string) error {
	hosts := make([]string, len(hostLayout))
	for i, h := range hostLayout {
		hosts[i] = h.name
	}
	names := make([]string, 0, len(m))
	for h := range m {
		names = append(names, h)
	}
	sort.Strings(names)
	for _, h := range names {
		if !slices.Contains(hosts, h) {
			return fmt.Errorf("host %q: the lab has no such host (its hosts: %s)", h, strings.Join(hosts, ", "))
		}
		if !slices.Contains(DebianReleases, m[h]) {
			return fmt.Errorf("host %s: unknown Debian release %q (the lab builds %s)", h, m[h], strings.Join(DebianReleases, ", "))
		}
	}
	return nil
}

// aptMirror returns the Debian mirror this machine's apt uses for codename,
// or else for another release the lab builds: the same archive serves them
// all (deb822 .sources files first, then sources.list).
func aptMirror(codename string) (string, error) {
	suites := []string{codename}
	for _, r := range DebianReleases {
		if r != codename {
			suites = append(suites, r)
		}
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	lists = append([]string{"/etc/apt/sources.list"}, lists...)
	for _, suite := range suites {
		for _, f := range files {
			if m := mirrorFromDeb822(f, suite); m != "" {
				return m, nil
			}
		}
		for _, f := range lists {
			if m := mirrorFromList(f, suite); m != "" {
				return m, nil
			}
		}
	}
	return "", fmt.Errorf("found no Debian mirror for %s in /etc/apt/sources.list*; set the lab's mirror option", strings.Join(suites, " or "))
}

func mirrorFromDeb822(path, suite string) string {
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

func mirrorFromList(path, suite string) string {
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
func buildRootfsTar(ctx context.Context, codename, mirror, tarPath string, logf func(string, ...any)) error {
	if _, err := os.Stat(tarPath); err == nil {
		logf("host image %s: cached %s", codename, tarPath)
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
	logf("host image: debootstrap %s from %s (a minute or two)", codename, mirror)
	args := []string{"--variant=minbase", "--include=" + strings.Join(hostPackages, ","), codename, root, mirror}
	if out, err := exec.CommandContext(ctx, "debootstrap", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("debootstrap: %v\n%s", err, tail(string(out), 20))
	}
	logf("host image: debootstrap %s done in %s", codename, time.Since(start).Round(time.Second))
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

// maskedUnits make no sense in a container (no consoles, no hardware, no
// kernel modules), or do what boot-lab-hostkeys does: trixie's
// sshd-keygen.service also runs ssh-keygen -A at first boot, and two at
// once could leave one's private key beside the other's public key.
var maskedUnits = []string{
	"sshd-keygen.service",
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
	// No Debian mirror: a host reaches only the lab's own addresses, so
	// what boot installs online comes from the lab's package mirror (an
	// apt-get update must not try the Internet).
	for _, f := range []string{"etc/apt/sources.list", "etc/apt/sources.list.d/debian.sources"} {
		if err := os.Remove(filepath.Join(root, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(etc, "apt", "sources.list"), []byte("# The lab's hosts reach no Debian mirror (boot lab).\n"), 0o644); err != nil {
		return err
	}
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
