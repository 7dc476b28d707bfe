// Command runc-capwrap runs the real runc after removing, from the OCI
// configuration runc is about to apply, every capability that is missing from
// this process's capability bounding set.
//
// Some kernels (such as Firecracker VMs whose init drops CAP_SYS_RESOURCE) have
// a bounding set smaller than the full capability list. A privileged container
// asks runc for every capability, and runc then fails with "unable to apply
// caps: operation not permitted". No process on such a machine can hold the
// missing capabilities anyway, so removing them changes nothing else.
//
// For `create` and `run` the wrapper edits the bundle's config.json (--bundle,
// default the current folder); for `exec` it edits the --process file. Every
// other command passes through untouched. The real runc is $RUNC_CAPWRAP_RUNC
// when set, otherwise the first `runc` on PATH (or in the usual sbin/bin
// folders) that is not this program.
//
// Register it with Docker (`dockerd --add-runtime NAME=PATH`) or containerd
// (the runc runtime's BinaryName option).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/bootctl/boot/lab/internal/capset"
)

func main() {
	args := os.Args[1:]
	l, err := currentLimits()
	if err == nil {
		err = filterForCommand(args, l)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "runc-capwrap: %v\n", err)
		os.Exit(1)
	}
	real, err := findRunc()
	if err != nil {
		fmt.Fprintf(os.Stderr, "runc-capwrap: %v\n", err)
		os.Exit(1)
	}
	err = syscall.Exec(real, append([]string{real}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "runc-capwrap: exec %s: %v\n", real, err)
	os.Exit(1)
}

// limits are what this process cannot give a container: capabilities
// outside its bounding set and, without CAP_SYS_RESOURCE, an
// oom_score_adj below its own (lowering it needs that capability).
type limits struct {
	bounding uint64
	oomFloor *int // nil: any oom_score_adj may be set
}

// currentLimits reads this process's limits.
func currentLimits() (limits, error) {
	bounding, err := capset.Bounding()
	if err != nil {
		return limits{}, err
	}
	l := limits{bounding: bounding}
	if allowed("CAP_SYS_RESOURCE", bounding) {
		return l, nil
	}
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return limits{}, err
	}
	floor, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return limits{}, fmt.Errorf("/proc/self/oom_score_adj: %v", err)
	}
	l.oomFloor = &floor
	return l, nil
}

// allowed reports whether the capability name may be kept: it is in the
// bounding set, or it is a name this program does not know (runc decides).
func allowed(name string, bounding uint64) bool {
	n := capset.Number(name)
	return n < 0 || bounding&(1<<uint(n)) != 0
}

// runc's global options that take a value (all others are booleans).
var globalValueFlags = map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true, "--rootless": true}

// filterForCommand finds runc's sub-command in args and filters the file it reads.
func filterForCommand(args []string, l limits) error {
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		if globalValueFlags[args[i]] {
			i++
		}
		i++
	}
	if i >= len(args) {
		return nil
	}
	sub, rest := args[i], args[i+1:]
	switch sub {
	case "create", "run":
		bundle := flagValue(rest, "--bundle", "-b")
		if bundle == "" {
			bundle = "."
		}
		return filterFile(filepath.Join(bundle, "config.json"), l, true)
	case "exec":
		if process := flagValue(rest, "--process", "-p"); process != "" {
			return filterFile(process, l, false)
		}
	}
	return nil
}

// flagValue returns the value of a sub-command flag given as "--f v", "--f=v", "-f v" or "-f=v".
func flagValue(args []string, long, short string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		for _, f := range []string{long, short} {
			if a == f && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, f+"="); ok {
				return v
			}
		}
	}
	return ""
}

// filterFile rewrites an OCI config.json (wrapped) or process.json (not wrapped)
// without the capabilities outside the bounding set, and with oomScoreAdj
// raised to the floor when it is below it. Other fields keep their exact
// JSON text. An unchanged file is not rewritten.
func filterFile(path string, l limits, wrapped bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, changed, err := filterJSON(data, l, wrapped)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if !changed {
		return nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".capwrap-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(out); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(info.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// filterJSON does filterFile's work on bytes.
func filterJSON(data []byte, l limits, wrapped bool) ([]byte, bool, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, false, err
	}
	process := top
	if wrapped {
		raw, ok := top["process"]
		if !ok || string(raw) == "null" {
			return data, false, nil
		}
		process = nil // a fresh map: Unmarshal would add to top's
		if err := json.Unmarshal(raw, &process); err != nil {
			return nil, false, fmt.Errorf("process: %v", err)
		}
	}
	capsChanged, err := filterCaps(process, l.bounding)
	if err != nil {
		return nil, false, err
	}
	oomChanged, err := raiseOOMScoreAdj(process, l.oomFloor)
	if err != nil {
		return nil, false, err
	}
	if !capsChanged && !oomChanged {
		return data, false, nil
	}
	if wrapped {
		top["process"] = mustMarshal(process)
	}
	return mustMarshal(top), true, nil
}

// filterCaps removes from process.capabilities what the bounding set lacks.
func filterCaps(process map[string]json.RawMessage, bounding uint64) (bool, error) {
	raw, ok := process["capabilities"]
	if !ok || string(raw) == "null" {
		return false, nil
	}
	var caps map[string]json.RawMessage
	if err := json.Unmarshal(raw, &caps); err != nil {
		return false, fmt.Errorf("process.capabilities: %v", err)
	}
	changed := false
	for set, list := range caps {
		var names []string
		if err := json.Unmarshal(list, &names); err != nil {
			return false, fmt.Errorf("process.capabilities.%s: %v", set, err)
		}
		kept := make([]string, 0, len(names))
		for _, n := range names {
			if allowed(n, bounding) {
				kept = append(kept, n)
			}
		}
		if len(kept) != len(names) {
			changed = true
			caps[set] = mustMarshal(kept)
		}
	}
	if changed {
		process["capabilities"] = mustMarshal(caps)
	}
	return changed, nil
}

// raiseOOMScoreAdj raises process.oomScoreAdj to floor when it is below
// (runc would fail writing it: "failed to update /proc/self/oom_score_adj").
func raiseOOMScoreAdj(process map[string]json.RawMessage, floor *int) (bool, error) {
	raw, ok := process["oomScoreAdj"]
	if floor == nil || !ok || string(raw) == "null" {
		return false, nil
	}
	var adj int
	if err := json.Unmarshal(raw, &adj); err != nil {
		return false, fmt.Errorf("process.oomScoreAdj: %v", err)
	}
	if adj >= *floor {
		return false, nil
	}
	process["oomScoreAdj"] = mustMarshal(*floor)
	return true, nil
}

// mustMarshal marshals values that cannot fail to marshal (maps of raw JSON, string slices).
func mustMarshal(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// findRunc locates the real runc, never this program.
func findRunc() (string, error) {
	if p := os.Getenv("RUNC_CAPWRAP_RUNC"); p != "" {
		return p, nil
	}
	self, _ := os.Executable()
	selfInfo, _ := os.Stat(self)
	dirs := filepath.SplitList(os.Getenv("PATH"))
	dirs = append(dirs, "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, "runc")
		info, err := os.Stat(p)
		if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			continue
		}
		if selfInfo != nil && os.SameFile(info, selfInfo) {
			continue
		}
		return p, nil
	}
	return "", errors.New("no runc found on PATH (set RUNC_CAPWRAP_RUNC)")
}
