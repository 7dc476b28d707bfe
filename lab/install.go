package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// ensureCommands installs the Debian packages that provide missing commands
// (command -> package) with apt-get. Installed packages stay installed after
// Down: they are the lab's prerequisites, not its state.
func ensureCommands(ctx context.Context, commands map[string]string, logf func(string, ...any)) error {
	var pkgs []string
	seen := map[string]bool{}
	for cmd, pkg := range commands {
		if _, err := exec.LookPath(cmd); err == nil || seen[pkg] {
			continue
		}
		seen[pkg] = true
		pkgs = append(pkgs, pkg)
	}
	if len(pkgs) == 0 {
		return nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("the lab needs the packages %s, and this machine has no apt-get to install them", strings.Join(pkgs, " "))
	}
	logf("installing %s with apt-get", strings.Join(pkgs, " "))
	install := func() ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "-q", "--no-install-recommends"}, pkgs...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	if _, err := install(); err == nil {
		return nil
	}
	// The package lists may be missing or stale.
	if out, err := exec.CommandContext(ctx, "apt-get", "update", "-q").CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update: %v\n%s", err, tail(string(out), 10))
	}
	if out, err := install(); err != nil {
		return fmt.Errorf("apt-get install %s: %v\n%s", strings.Join(pkgs, " "), err, tail(string(out), 10))
	}
	return nil
}
