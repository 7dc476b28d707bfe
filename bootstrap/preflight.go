package bootstrap

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
)

// ErrPreflight marks a run stopped by failed preflight checks; nothing was
// changed on any host.
var ErrPreflight = errors.New("preflight checks failed")

// MaxClockSkew is the largest difference between a host's clock and the
// operator's that preflight accepts: certificates and tokens are time-bound.
const MaxClockSkew = 30 * time.Second

// supportedOS lists the distributions and versions boot installs onto.
var supportedOS = map[string][]string{
	"debian": {"12", "13"},
	"ubuntu": {"22.04", "24.04"},
}

// Preflight checks, from the facts gathered at connect time, that every host
// can become a node. It changes nothing; failures stop the run with
// ErrPreflight, warnings are reported and the run goes on.
type Preflight struct{}

// Name implements Phase.
func (Preflight) Name() string { return "preflight" }

// finding is one preflight result on one host.
type finding struct {
	host    string
	fatal   bool
	message string
}

// Plan implements Phase: it runs the checks and never plans a change. It
// refuses a cluster.kubernetesVersion the nodes or the bundle do not run
// (versionFindings). On a control plane that already runs a cluster it also
// reads the certificates' expiry: one expiring within CertWarning is a
// warning.
func (Preflight) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	var found []finding
	for _, h := range c.Hosts {
		found = append(found, checkHost(c.Inventory, h)...)
	}
	found = append(found, checkUnique(c.Hosts)...)
	var manifest *bundle.Manifest
	if c.bundleMode() {
		if b, err := c.bundle(); err != nil {
			found = append(found, finding{operator, true, fmt.Sprintf("packages.bundle %s: %v", c.Inventory.Packages.Bundle, err)})
		} else {
			manifest = &b.Manifest
		}
	}
	found = append(found, versionFindings(c.Hosts, c.Inventory.Cluster.KubernetesVersion, manifest)...)
	found = append(found, expiryWarnings(ctx, c.controlPlane(), time.Now())...)

	failed, hosts := 0, []string{}
	for _, f := range found {
		status := run.Warning
		if f.fatal {
			status = run.Failed
			failed++
			if !slices.Contains(hosts, f.host) {
				hosts = append(hosts, f.host)
			}
		}
		c.report(run.Event{Phase: "preflight", Host: f.host, Status: status, Message: f.message})
	}
	for _, h := range c.Hosts {
		if !slices.ContainsFunc(found, func(f finding) bool { return f.host == h.Spec.Name && f.fatal }) {
			c.report(run.Event{Phase: "preflight", Host: h.Spec.Name, Status: run.OK, Message: summary(h)})
		}
	}
	if failed > 0 {
		return nil, fmt.Errorf("%w: %d problem(s) on %s, each reported above", ErrPreflight, failed, strings.Join(hosts, ", "))
	}
	return nil, nil
}

// summary describes a host in one line.
func summary(h *Host) string {
	f := h.Facts
	return fmt.Sprintf("%s %s %s, kernel %s, cgroup v%d, %s", f.OSID, f.OSVersionID, f.GoArch(), f.Kernel, f.CgroupVersion, h.Spec.Role)
}

func checkHost(inv *inventory.Inventory, h *Host) []finding {
	f := h.Facts
	name := h.Spec.Name
	var out []finding
	fail := func(format string, a ...any) { out = append(out, finding{name, true, fmt.Sprintf(format, a...)}) }
	warn := func(format string, a ...any) { out = append(out, finding{name, false, fmt.Sprintf(format, a...)}) }

	if versions, ok := supportedOS[f.OSID]; !ok || !slices.Contains(versions, f.OSVersionID) {
		fail("unsupported OS %s %s (supported: Debian 12, 13; Ubuntu 22.04, 24.04)", f.OSID, f.OSVersionID)
	}
	switch arch := f.GoArch(); {
	case arch == "amd64":
	case arch == "arm64" && inv.Packages.Source != inventory.SourceBundle:
	default:
		fail("unsupported architecture %s (supported: amd64; arm64 with packages.source online)", cmp.Or(arch, f.Arch))
	}
	if !f.Systemd {
		fail("systemd is not PID 1: kubelet and containerd run as systemd units")
	}
	if !f.SudoWorks {
		fail("cannot run commands as root: %s (give the SSH user sudo rights, or set ssh.sudo.passwordEnv)", f.SudoError)
	}
	if skew := f.ClockSkew; skew > MaxClockSkew || -skew > MaxClockSkew {
		fail("clock is %s off the operator's (at most %s allowed: certificates and tokens are time-bound; run NTP)", skew.Round(time.Second), MaxClockSkew)
	}
	if f.Swap {
		warn("swap is on: kubelet requires it off; it can be turned off (swapoff -a and /etc/fstab)")
	}
	if f.CgroupVersion == 1 {
		warn("cgroup v1: kubelet >= 1.35 runs only with failCgroupV1: false, and v1 support is deprecated")
	}
	if f.KubeletConf {
		// Already a node: the ports are taken by its own cluster.
		warn("already a Kubernetes node (/etc/kubernetes/kubelet.conf exists): port checks skipped")
		return out
	}
	for _, port := range requiredPorts(inv, h.Spec) {
		if f.Listening(port) {
			fail("TCP port %d is in use; a %s needs it free", port, h.Spec.Role)
		}
	}
	return out
}

// requiredPorts lists the TCP ports a host's roles will listen on.
func requiredPorts(inv *inventory.Inventory, h inventory.Host) []int {
	ports := []int{10250} // kubelet
	if h.Role == inventory.RoleControlPlane {
		ports = append(ports, inv.Cluster.APIServerPort, 2379, 2380, 10257, 10259)
	}
	if h.Ingress != nil && *h.Ingress && inv.Addons.IngressMode == "hostNetwork" {
		ports = append(ports, 80, 443)
	}
	return ports
}

// checkUnique finds hosts sharing a hostname or a machine-id (cloned
// machines): Kubernetes needs both to be unique.
func checkUnique(hs []*Host) []finding {
	var out []finding
	for _, key := range []struct {
		what string
		get  func(*Host) string
	}{
		{"hostname", func(h *Host) string { return h.Facts.Hostname }},
		{"machine-id", func(h *Host) string { return h.Facts.MachineID }},
	} {
		seen := map[string]string{}
		for _, h := range hs {
			v := key.get(h)
			if v == "" {
				out = append(out, finding{h.Spec.Name, true, fmt.Sprintf("no %s", key.what)})
				continue
			}
			if first, dup := seen[v]; dup {
				out = append(out, finding{h.Spec.Name, true, fmt.Sprintf("same %s %q as %s (cloned machine?): each node needs its own", key.what, v, first)})
				continue
			}
			seen[v] = h.Spec.Name
		}
	}
	return out
}
