package inventory

import (
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with an inventory.
type Problem struct {
	File     string // the inventory file
	Line     int    // 1-based line of the field (or of its nearest enclosing field); 0 = unknown
	Env      string // the environment variable the value came from, when it did (then Line is 0)
	Field    string // field path, e.g. "hosts[1].ssh.port"; empty for file-level problems
	Message  string // what is wrong
	Expected string // what is expected; may be empty
}

// String formats the problem as
//
//	file:line: field.path: what is wrong (what is expected)
//
// or, for a value from the environment,
//
//	env BOOT_SSH_PORT: ssh.port: what is wrong (what is expected)
func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.Env != "":
		b.WriteString("env " + p.Env)
	case p.Line > 0:
		b.WriteString(p.File + ":" + strconv.Itoa(p.Line))
	default:
		b.WriteString(p.File)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	if p.Expected != "" {
		b.WriteString(" (" + p.Expected + ")")
	}
	return b.String()
}

// Error is an invalid inventory: every problem found, in file order.
// Load and Validate return it as a *Error.
type Error struct {
	Problems []Problem
}

// Error prints one problem per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// asError returns nil for no problems, else an *Error with the problems in
// file order: by line, then those without a line (environment, missing
// fields) in the order they were found.
func asError(problems []Problem) error {
	if len(problems) == 0 {
		return nil
	}
	sort.SliceStable(problems, func(i, j int) bool {
		a, b := problems[i].Line, problems[j].Line
		if a == 0 || b == 0 {
			return a != 0 && b == 0
		}
		return a < b
	})
	return &Error{Problems: problems}
}
