package nodes

import (
	"errors"
	"fmt"
)

// Failure classes. Every error this package returns for a host wraps one of
// them when it applies, so callers can map failures to exit codes with
// errors.Is.
var (
	// ErrHostKey: the host's key is unknown (strict policy), changed, or not
	// the pinned one. Never retried.
	ErrHostKey = errors.New("host key verification failed")
	// ErrAuth: the host refused every credential, or a credential could not
	// be unlocked (wrong or missing passphrase, no ssh-agent). Never retried.
	ErrAuth = errors.New("authentication failed")
	// ErrUnreachable: the network failed (refused, reset, timed out while
	// connecting, connection lost). Connecting retries these.
	ErrUnreachable = errors.New("host unreachable")
	// ErrTimeout: a command ran past its context's deadline and was stopped.
	ErrTimeout = errors.New("timed out")
	// ErrSudo: sudo refused (no sudo rights, a password needed but none
	// configured, or the password was wrong).
	ErrSudo = errors.New("sudo failed")
	// ErrConfig: the connection settings are invalid, or a local file they
	// name (private key, known_hosts) is missing, unreadable, not a regular
	// file of bounded size, or malformed; they are read before the host is
	// contacted.
	ErrConfig = errors.New("invalid ssh settings")
)

// Error is a failure on one host. It unwraps to both its class (Kind, one
// of the Err* values, or nil) and its cause.
type Error struct {
	Host string // Config.Name
	Op   string // what was being done: "connect", "run <label>", "upload <path>", ...
	Kind error
	Err  error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s: %v", e.Host, e.Op, e.Err)
}

// Unwrap returns the class and the cause.
func (e *Error) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// ExitError is a command that ran and exited with a non-zero status.
type ExitError struct {
	Status int    // -1 when killed by a signal
	Signal string // the signal's name (without "SIG") when killed by one
	// Stderr is the last part of the command's standard error.
	Stderr string
}

func (e *ExitError) Error() string {
	how := fmt.Sprintf("exit status %d", e.Status)
	if e.Signal != "" {
		how = "killed by signal " + e.Signal
	}
	if e.Stderr == "" {
		return how
	}
	return how + ": " + e.Stderr
}
