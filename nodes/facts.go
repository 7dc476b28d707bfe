package nodes

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Facts describe a host as found when they were gathered. The text fields
// are the host's own words, shown to the operator in messages, logs and JSON
// events; a host could put terminal escapes or line breaks into them, so
// they hold that text with such characters escaped (see EscapeHostText).
type Facts struct {
	Hostname     string
	OSID         string // ID from /etc/os-release: debian, ubuntu, rocky, ...
	OSVersionID  string // VERSION_ID: 12, 24.04, ...
	OSPrettyName string
	Arch         string // uname -m: x86_64, aarch64, ...
	Kernel       string // uname -r
	MachineID    string // /etc/machine-id
	// CgroupVersion is 2 for the unified hierarchy, 1 for v1, 0 if unknown.
	CgroupVersion int
	// Systemd: PID 1 is systemd.
	Systemd bool
	// Swap: some swap device is active (SwapDevices lists them).
	Swap        bool
	SwapDevices []string
	// Kubernetes already on the host: binaries (empty version = not
	// installed) and the kubeconfigs kubeadm writes.
	KubeletVersion string
	KubeadmVersion string
	AdminConf      bool // /etc/kubernetes/admin.conf exists
	KubeletConf    bool // /etc/kubernetes/kubelet.conf exists
	// ListeningPorts are the TCP ports something listens on (IPv4 and IPv6), sorted.
	ListeningPorts []int
	CPUs           int
	MemoryBytes    uint64
	UID            int // of the SSH user
	// Time is the host's clock when the facts were read, and ClockSkew its
	// offset from this machine's clock (positive: host ahead), accurate to
	// about half the round trip.
	Time      time.Time
	ClockSkew time.Duration
	// SudoWorks: commands can run as root (the user is root, or sudo
	// accepted); SudoError says why not.
	SudoWorks bool
	SudoError string
}

// Listening reports whether something listens on TCP port.
func (f *Facts) Listening(port int) bool {
	_, ok := slices.BinarySearch(f.ListeningPorts, port)
	return ok
}

// GoArch maps Arch to Go's (and Kubernetes') architecture names; "" if unknown.
func (f *Facts) GoArch() string {
	switch f.Arch {
	case "x86_64", "amd64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	case "armv7l", "armv7":
		return "arm"
	case "ppc64le":
		return "ppc64le"
	case "s390x":
		return "s390x"
	}
	return ""
}

// factsScript prints one "@@section" header before each fact's raw text.
const factsScript = `s() { echo "@@$1"; }
s os-release; cat /etc/os-release 2>/dev/null
s arch; uname -m
s kernel; uname -r
s hostname; cat /proc/sys/kernel/hostname 2>/dev/null
s machine-id; cat /etc/machine-id 2>/dev/null
s cgroupfs; stat -fc %T /sys/fs/cgroup 2>/dev/null
s pid1; cat /proc/1/comm 2>/dev/null
s swaps; cat /proc/swaps 2>/dev/null
s kubelet; command -v kubelet >/dev/null 2>&1 && { kubelet --version 2>/dev/null || echo unknown; }
s kubeadm; command -v kubeadm >/dev/null 2>&1 && { kubeadm version -o short 2>/dev/null || echo unknown; }
s files; for f in /etc/kubernetes/admin.conf /etc/kubernetes/kubelet.conf; do [ -e "$f" ] && echo "$f"; done
s tcp; cat /proc/net/tcp /proc/net/tcp6 2>/dev/null
s cpus; getconf _NPROCESSORS_ONLN 2>/dev/null
s meminfo; grep '^MemTotal:' /proc/meminfo 2>/dev/null
s uid; id -u
s time; date +%s%N
s end; true
`

// Facts gathers the host's facts on first use and returns the same value
// afterwards. A failed gathering is not cached.
func (h *Host) Facts(ctx context.Context) (*Facts, error) {
	h.factsMu.Lock()
	defer h.factsMu.Unlock()
	if h.facts != nil {
		return h.facts, nil
	}
	before := time.Now()
	out, err := h.Run(ctx, factsScript, Stream(nil), Label("gather facts"))
	after := time.Now()
	if err != nil {
		return nil, err
	}
	f, err := parseFacts(out.Stdout)
	if err != nil {
		return nil, &Error{Host: h.cfg.Name, Op: "gather facts", Err: err}
	}
	f.ClockSkew = f.Time.Sub(before.Add(after.Sub(before) / 2))
	if h.IsRoot() {
		f.SudoWorks = true
	} else if _, err := h.Sudo(ctx, "true", Stream(nil), Label("check sudo")); err != nil {
		f.SudoError = EscapeHostText(err.Error()) // carries the host's stderr
	} else {
		f.SudoWorks = true
	}
	h.facts = f
	h.log.Debug("facts gathered", "os", f.OSID+" "+f.OSVersionID, "arch", f.Arch, "kernel", f.Kernel,
		"cgroup", f.CgroupVersion, "systemd", f.Systemd, "swap", f.Swap, "kubelet", f.KubeletVersion,
		"skew", f.ClockSkew, "sudo", f.SudoWorks)
	return f, nil
}

// parseFacts reads the output of factsScript. Every value it keeps as text
// passes through EscapeHostText here, where host text enters boot, rather than
// at each place that prints it: the messages built from facts (preflight,
// the facts summary, logs, JSON events) cannot forget it, and no consumer
// needs the raw bytes, since facts are only compared with plain values
// ("debian", "12", "x86_64") that EscapeHostText leaves as they are, or with
// each other (hostname, machine-id), which escaping does not confuse.
func parseFacts(out string) (*Facts, error) {
	sections := map[string][]string{}
	cur := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "@@"); ok {
			cur = name
			sections[cur] = []string{}
			continue
		}
		sections[cur] = append(sections[cur], line)
	}
	if _, ok := sections["end"]; !ok {
		return nil, fmt.Errorf("facts output is incomplete")
	}
	first := func(name string) string {
		if l := sections[name]; len(l) > 0 {
			return EscapeHostText(strings.TrimSpace(l[0]))
		}
		return ""
	}
	f := &Facts{
		Arch:      first("arch"),
		Kernel:    first("kernel"),
		Hostname:  first("hostname"),
		MachineID: first("machine-id"),
		Systemd:   first("pid1") == "systemd",
	}
	for _, l := range sections["os-release"] {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		v = EscapeHostText(strings.Trim(v, `"'`))
		switch k {
		case "ID":
			f.OSID = v
		case "VERSION_ID":
			f.OSVersionID = v
		case "PRETTY_NAME":
			f.OSPrettyName = v
		}
	}
	switch first("cgroupfs") {
	case "cgroup2fs":
		f.CgroupVersion = 2
	case "tmpfs", "cgroupfs":
		f.CgroupVersion = 1
	}
	for i, l := range sections["swaps"] {
		if fields := strings.Fields(l); i > 0 && len(fields) > 0 {
			f.SwapDevices = append(f.SwapDevices, EscapeHostText(fields[0]))
		}
	}
	f.Swap = len(f.SwapDevices) > 0
	f.KubeletVersion = strings.TrimPrefix(first("kubelet"), "Kubernetes ")
	f.KubeadmVersion = first("kubeadm")
	for _, l := range sections["files"] {
		switch strings.TrimSpace(l) {
		case "/etc/kubernetes/admin.conf":
			f.AdminConf = true
		case "/etc/kubernetes/kubelet.conf":
			f.KubeletConf = true
		}
	}
	f.ListeningPorts = listeningPorts(sections["tcp"])
	f.CPUs, _ = strconv.Atoi(first("cpus"))
	if fields := strings.Fields(first("meminfo")); len(fields) >= 2 {
		kb, _ := strconv.ParseUint(fields[1], 10, 64)
		f.MemoryBytes = kb * 1024
	}
	uid, err := strconv.Atoi(first("uid"))
	if err != nil {
		return nil, fmt.Errorf("facts: bad uid %q", first("uid"))
	}
	f.UID = uid
	ns, err := strconv.ParseInt(first("time"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("facts: bad time %q", first("time"))
	}
	f.Time = time.Unix(0, ns)
	return f, nil
}

// listeningPorts reads /proc/net/tcp{,6} lines: the local port of sockets
// in state 0A (LISTEN).
func listeningPorts(lines []string) []int {
	var ports []int
	for _, l := range lines {
		fields := strings.Fields(l)
		if len(fields) < 4 || fields[3] != "0A" {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil {
			continue
		}
		ports = append(ports, int(p))
	}
	slices.Sort(ports)
	return slices.Compact(ports)
}

// EscapeHostText returns s with what could act on a terminal or break a line
// escaped as in a Go string literal: control characters (ESC as \x1b, CR as
// \r, NEL as \u0085), other characters that are not graphic (line and
// paragraph separators, bidirectional overrides), bytes that are not UTF-8
// (\xff), and the backslash itself (\\), so that the escaped text reads back
// unambiguously. Letters, digits, punctuation, symbols and spaces of any
// script stay as they are.
func EscapeHostText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case !strconv.IsGraphic(r):
			q := strconv.QuoteRuneToGraphic(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}
