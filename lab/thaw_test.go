package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/testenv"
)

// TestThawCgroupsOf freezes a real cgroup below a "host" process's own
// cgroup, holding a "pod" process, as a lab host's pod is left frozen:
// SIGKILL does not end the pod's process; thawCgroupsOf, given the host's
// process as Down gives it a host's init, thaws the cgroups below it, and
// the kill takes effect.
func TestThawCgroupsOf(t *testing.T) {
	testenv.Root(t, "creating cgroups")
	base, stateFile, frozen, thawed := filepath.Join(cgroupRoot, "freezer"), "freezer.state", "FROZEN", "THAWED"
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		base, stateFile, frozen, thawed = cgroupRoot, "cgroup.freeze", "1", "0"
	} else if _, err := os.Stat(base); err != nil {
		testenv.Need(t, "no cgroup freezer on this machine: %v", err)
	}
	host := filepath.Join(base, fmt.Sprintf("boot-thaw-test-%d", os.Getpid()))
	pod := filepath.Join(host, "pod")
	if err := os.MkdirAll(pod, 0o755); err != nil {
		t.Fatal(err)
	}
	start := func(cgroup string) (*exec.Cmd, chan struct{}) {
		t.Helper()
		cmd := exec.Command("sleep", "600")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{}) // closed when the process has ended
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			_ = os.WriteFile(filepath.Join(pod, stateFile), []byte(thawed), 0)
			_ = cmd.Process.Kill()
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				t.Errorf("the test's sleep (pid %d) did not end", cmd.Process.Pid)
			}
			_ = os.Remove(pod)
			_ = os.Remove(host)
		})
		if err := os.WriteFile(filepath.Join(cgroup, "cgroup.procs"), []byte(fmt.Sprint(cmd.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
		return cmd, exited
	}
	hostProc, _ := start(host)
	podProc, podExited := start(pod)
	if err := os.WriteFile(filepath.Join(pod, stateFile), []byte(frozen), 0); err != nil {
		t.Fatal(err)
	}
	waitState := func(dir, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(filepath.Join(dir, stateFile))
			got := strings.TrimSpace(string(b))
			if stateFile == "cgroup.freeze" {
				// v2: cgroup.events says frozen 1 once every task is.
				ev, _ := os.ReadFile(filepath.Join(dir, "cgroup.events"))
				got = map[bool]string{true: "1", false: "0"}[strings.Contains(string(ev), "frozen 1")]
			}
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: state %q, want %q", dir, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitState(pod, frozen)

	if err := podProc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-podExited:
		t.Fatal("a frozen process died of SIGKILL: this kernel does not need thawing")
	case <-time.After(500 * time.Millisecond):
	}

	n, err := thawCgroupsOf(hostProc.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("thawed %d cgroups, want 1 (the pod's)", n)
	}
	select {
	case <-podExited:
	case <-time.After(10 * time.Second):
		t.Fatal("the killed process did not end after the thaw")
	}
	waitState(pod, thawed)
	// Nothing left to thaw: a second pass changes nothing.
	if n, err := thawUnder(host); err != nil || n != 0 {
		t.Errorf("second pass: thawed %d, %v", n, err)
	}
}
