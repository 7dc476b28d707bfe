// Package capset reads Linux capability sets and names capabilities, for the
// lab and its runc wrapper.
package capset

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Names are the Linux capabilities by number (linux/capability.h).
var Names = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// Number returns the number of a capability name ("CAP_SYS_ADMIN" or
// "SYS_ADMIN", any case), or -1 for a name this package does not know.
func Number(name string) int {
	for i, n := range Names {
		if strings.EqualFold(n, name) || strings.EqualFold(n, "CAP_"+name) {
			return i
		}
	}
	return -1
}

// ParseBounding returns the CapBnd mask from the text of a /proc/PID/status file.
func ParseBounding(status string) (uint64, error) {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("CapBnd %q: %v", strings.TrimSpace(v), err)
			}
			return mask, nil
		}
	}
	return 0, errors.New("no CapBnd line")
}

// Bounding returns this process's capability bounding set.
func Bounding() (uint64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	mask, err := ParseBounding(string(data))
	if err != nil {
		return 0, fmt.Errorf("/proc/self/status: %v", err)
	}
	return mask, nil
}

// Missing lists the capabilities numbered 0..last that are not in mask.
func Missing(mask uint64, last int) []int {
	var missing []int
	for c := 0; c <= last && c < 64; c++ {
		if mask&(1<<uint(c)) == 0 {
			missing = append(missing, c)
		}
	}
	return missing
}

// Name returns the name of capability number c, or "CAP_<c>" when unknown.
func Name(c int) string {
	if c >= 0 && c < len(Names) {
		return Names[c]
	}
	return "CAP_" + strconv.Itoa(c)
}
