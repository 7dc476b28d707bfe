package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Docker's global daemon configuration, and the pid file of a daemon started
// the usual way (systemd or the init script).
const (
	daemonJSONPath = "/etc/docker/daemon.json"
	daemonPIDPath  = "/var/run/docker.pid"
)

// fileBackup records a global file as it was before the lab changed it.
type fileBackup struct {
	Path    string `json:"path"`
	Existed bool   `json:"existed"`
	Content []byte `json:"content,omitempty"`
	Mode    uint32 `json:"mode,omitempty"`
}

// daemonHasRuntime reports whether the running daemon knows the runtime.
func daemonHasRuntime(ctx context.Context, d *dockerCLI, runtime string) bool {
	out, err := d.run(ctx, "info", "--format", "{{json .Runtimes}}")
	if err != nil {
		return false
	}
	var runtimes map[string]json.RawMessage
	if json.Unmarshal([]byte(out), &runtimes) != nil {
		return false
	}
	_, ok := runtimes[runtime]
	return ok
}

// setRuntimeConfig returns daemon.json's text with the runtime added under
// "runtimes" (path != "") or removed from it (path == ""). "runtimes" is
// always present in the result: dockerd's reload only replaces the runtimes
// when the file names them.
func setRuntimeConfig(original []byte, runtime, path string) ([]byte, error) {
	cfg := map[string]json.RawMessage{}
	if len(strings.TrimSpace(string(original))) > 0 {
		if err := json.Unmarshal(original, &cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", daemonJSONPath, err)
		}
	}
	runtimes := map[string]json.RawMessage{}
	if raw, ok := cfg["runtimes"]; ok {
		if err := json.Unmarshal(raw, &runtimes); err != nil {
			return nil, fmt.Errorf("%s: runtimes: %w", daemonJSONPath, err)
		}
	}
	delete(runtimes, runtime)
	if path != "" {
		entry, err := json.Marshal(map[string]string{"path": path})
		if err != nil {
			return nil, err
		}
		runtimes[runtime] = entry
	}
	var err error
	if cfg["runtimes"], err = json.Marshal(runtimes); err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	return append(out, '\n'), err
}

// registerRuntime adds runc-capwrap to the running daemon's daemon.json and
// makes it reload its configuration (SIGHUP); the runtime then appears in
// `docker info`. It returns the backup Down restores.
func registerRuntime(ctx context.Context, d *dockerCLI, wrapper string) (*fileBackup, error) {
	pid, err := runningDaemonPID()
	if err != nil {
		return nil, fmt.Errorf("the running Docker daemon needs the %s runtime (%s), and the lab cannot signal it: %w", capWrapRuntime, wrapper, err)
	}
	backup := &fileBackup{Path: daemonJSONPath}
	original, err := os.ReadFile(daemonJSONPath)
	switch {
	case err == nil:
		info, serr := os.Stat(daemonJSONPath)
		if serr != nil {
			return nil, serr
		}
		backup.Existed, backup.Content, backup.Mode = true, original, uint32(info.Mode().Perm())
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	updated, err := setRuntimeConfig(original, capWrapRuntime, wrapper)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(daemonJSONPath), 0o755); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(daemonJSONPath, updated, 0o644); err != nil {
		return nil, err
	}
	if err := reloadDaemon(ctx, pid, func() bool { return daemonHasRuntime(ctx, d, capWrapRuntime) }); err != nil {
		return backup, err
	}
	return backup, nil
}

// restoreDaemonConfig makes the daemon drop the runtime (reloading from the
// original configuration with its runtimes spelled out), then puts daemon.json
// back exactly as it was, or removes it if there was none.
func restoreDaemonConfig(ctx context.Context, d *dockerCLI, b *fileBackup) error {
	if b == nil {
		return nil
	}
	if pid, err := runningDaemonPID(); err == nil {
		interim, err := setRuntimeConfig(b.Content, capWrapRuntime, "")
		if err != nil {
			return err
		}
		if err := writeFileAtomic(b.Path, interim, 0o644); err != nil {
			return fmt.Errorf("restore %s: %w", b.Path, err)
		}
		if err := reloadDaemon(ctx, pid, func() bool { return !daemonHasRuntime(ctx, d, capWrapRuntime) }); err != nil {
			return err
		}
	}
	if !b.Existed {
		if err := os.Remove(b.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("restore %s: %w", b.Path, err)
		}
		return nil
	}
	if err := writeFileAtomic(b.Path, b.Content, os.FileMode(b.Mode)); err != nil {
		return fmt.Errorf("restore %s: %w", b.Path, err)
	}
	return nil
}

// runningDaemonPID reads the pid of the machine's own dockerd.
func runningDaemonPID() (int, error) {
	data, err := os.ReadFile(daemonPIDPath)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", daemonPIDPath, err)
	}
	return pid, nil
}

// reloadDaemon sends SIGHUP to dockerd and waits until done() holds.
func reloadDaemon(ctx context.Context, pid int, done func() bool) error {
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload dockerd (pid %d): %w", pid, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			return fmt.Errorf("dockerd (pid %d) did not apply %s within 20s", pid, daemonJSONPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return nil
}
