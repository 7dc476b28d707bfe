package cmd

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/nodes"
)

// Exit codes, by class of failure. README.md documents them; keep both in step.
const (
	ExitOK          = 0
	ExitFailure     = 1 // anything not classified below
	ExitInvalid     = 2 // invalid inventory or command line
	ExitUnreachable = 3 // a host cannot be reached, authenticated or verified
	ExitPreflight   = 4 // a preflight check failed; nothing was changed
)

// exitError carries an exit code through cobra's error return.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withExit marks err with an exit code; nil stays nil.
func withExit(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// usage marks the errors of an argument validator as command-line errors.
func usage(validate cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		return withExit(ExitInvalid, validate(c, args))
	}
}

// exitCode maps an error to the process exit code.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, nodes.ErrConfig): // bad ssh settings or local key/known_hosts files: nothing contacted
		return ExitInvalid
	case errors.Is(err, nodes.ErrHostKey), errors.Is(err, nodes.ErrAuth), errors.Is(err, nodes.ErrUnreachable):
		return ExitUnreachable
	case errors.Is(err, bootstrap.ErrPreflight):
		return ExitPreflight
	}
	return ExitFailure
}
