package lab

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// cgroupRoot is where the cgroup file systems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// thawCgroupsOf thaws every frozen cgroup at and below the cgroups of the
// process pid (a lab host's init): cgroup v1's freezer hierarchy, or v2's
// cgroup.freeze. A lab host's pods left frozen (a runc killed while it held
// a container frozen) keep their processes unkillable, and Docker cannot
// remove the host. It returns how many cgroups it thawed.
func thawCgroupsOf(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// hierarchy-ID:controllers:path
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 {
			continue
		}
		switch {
		case slices.Contains(strings.Split(f[1], ","), "freezer"):
			return thawUnder(filepath.Join(cgroupRoot, "freezer", f[2]))
		case f[0] == "0" && f[1] == "":
			if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
				return thawUnder(filepath.Join(cgroupRoot, f[2]))
			}
		}
	}
	return 0, sc.Err()
}

// thawUnder thaws every frozen cgroup at and below dir: a v1 freezer
// cgroup whose freezer.state says FROZEN or FREEZING gets THAWED, a v2
// cgroup whose cgroup.freeze says 1 gets 0.
func thawUnder(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != dir && os.IsNotExist(err) {
				return nil // removed meanwhile
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		var thawed string
		switch d.Name() {
		case "freezer.state":
			thawed = "THAWED"
		case "cgroup.freeze":
			thawed = "0"
		default:
			return nil
		}
		state, err := os.ReadFile(p)
		if err != nil {
			return nil // the cgroup went away
		}
		if s := strings.TrimSpace(string(state)); s == thawed || (thawed == "THAWED" && s != "FROZEN" && s != "FREEZING") {
			return nil
		}
		if err := os.WriteFile(p, []byte(thawed), 0); err != nil {
			return fmt.Errorf("thaw %s: %w", filepath.Dir(p), err)
		}
		n++
		return nil
	})
	return n, err
}
