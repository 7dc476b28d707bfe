package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Service is a program the lab runs on this machine (not in a container),
// detached from the boot process: its own session, output to a log file in
// the lab folder. PID and StartTime together name the process, so that a
// PID reused by another program is never signalled.
type Service struct {
	Name string `json:"name"`
	// Program is the base name the process's command line carries (the
	// executable, or for a script the script's name).
	Program string `json:"program"`
	PID     int    `json:"pid"`
	// StartTime is the process's start time in clock ticks after boot
	// (field 22 of /proc/PID/stat).
	StartTime uint64 `json:"startTime"`
	// Address is what it serves, for people.
	Address string `json:"address"`
	Log     string `json:"log"`
}

// procStart reads the start time of process pid, and whether it is a zombie
// (exited, not yet reaped).
func procStart(pid int) (start uint64, zombie bool, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false, err
	}
	// The command name (field 2) is in parentheses and may hold anything:
	// the fields after the last ')' start with field 3, the state.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, false, fmt.Errorf("/proc/%d/stat: cannot read %q", pid, data)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return 0, false, fmt.Errorf("/proc/%d/stat: cannot read %q", pid, data)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("/proc/%d/stat: start time %q: %v", pid, f[19], err)
	}
	return start, f[0] == "Z" || f[0] == "X", nil
}

// running reports whether the service's process is still the one the lab
// started: same PID and start time, not a zombie, its command line naming
// the program.
func (s Service) running() bool {
	if s.PID <= 0 {
		return false
	}
	start, zombie, err := procStart(s.PID)
	if err != nil || zombie || start != s.StartTime {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", s.PID))
	if err != nil {
		return false
	}
	for _, arg := range strings.Split(string(cmdline), "\x00") {
		if arg != "" && filepath.Base(arg) == s.Program {
			return true
		}
	}
	return false
}

// startService starts bin with args and exactly the environment env, as
// service s (Name, Program, Address and Log set by the caller), records it in
// the lab state, and waits until ready succeeds, at most timeout. When the
// process exits first, or the time is up, the error carries its log's tail.
func (l *Lab) startService(ctx context.Context, s Service, bin string, args, env []string, timeout time.Duration, ready func(context.Context) error, logf func(string, ...any)) error {
	logFile, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Dir = filepath.Dir(s.Log)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s (%s): %w", s.Name, bin, err)
	}
	// Reaped here, so that an exit is seen at once (and no zombie keeps
	// the process "running" while this program lives).
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.PID = cmd.Process.Pid
	s.StartTime, _, err = procStart(s.PID)
	if err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	l.Services = append(l.Services, s)
	if err := l.save(); err != nil {
		return err
	}
	logf("started %s (pid %d, log %s)", s.Name, s.PID, s.Log)
	deadline := time.Now().Add(timeout)
	for {
		probeCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := ready(probeCtx)
		cancel()
		if err == nil {
			logf("%s answers at %s", s.Name, s.Address)
			return nil
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("%s exited at start (%v); %s ends:\n%s", s.Name, werr, s.Log, logTail(s.Log))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) not answering at %s after %s: %v; %s ends:\n%s", s.Name, s.PID, s.Address, timeout, err, s.Log, logTail(s.Log))
		}
	}
}

func logTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return tail(string(data), 15)
}

// stopService stops the service's process (SIGTERM, then SIGKILL after 10 s)
// and waits until it is gone. A process that is no longer the one the lab
// started is left alone.
func stopService(ctx context.Context, s Service) error {
	if !s.running() {
		return nil
	}
	if err := syscall.Kill(s.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s (pid %d): %w", s.Name, s.PID, err)
	}
	killAt := time.Now().Add(10 * time.Second)
	giveUp := killAt.Add(10 * time.Second)
	for s.running() {
		now := time.Now()
		if now.After(giveUp) {
			return fmt.Errorf("%s (pid %d) still running after SIGKILL", s.Name, s.PID)
		}
		if now.After(killAt) {
			_ = syscall.Kill(s.PID, syscall.SIGKILL)
			killAt = giveUp
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// stopServices stops the lab's services, the last started first.
func (l *Lab) stopServices(ctx context.Context, logf func(string, ...any)) error {
	var errs []error
	for i := len(l.Services) - 1; i >= 0; i-- {
		s := l.Services[i]
		if !s.running() {
			continue
		}
		if err := stopService(ctx, s); err != nil {
			errs = append(errs, err)
			continue
		}
		logf("stopped %s (pid %d)", s.Name, s.PID)
	}
	return errors.Join(errs...)
}
