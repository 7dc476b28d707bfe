package inventory

import (
	"fmt"
	"slices"
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

// MaxProblems bounds the problems an Error reports: a file with thousands of
// mistakes is reported by its first ones and a count of the rest.
const MaxProblems = 50

// Error is an invalid inventory: the first MaxProblems problems found, in
// file order, and how many more there are. Load and Validate return it as a
// *Error.
type Error struct {
	Problems []Problem
	// More counts the problems found after the first MaxProblems.
	More int
}

// Error prints one problem per line, then "... and N more problems".
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems), len(e.Problems)+1)
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	if e.More > 0 {
		lines = append(lines, fmt.Sprintf("... and %d more problems", e.More))
	}
	return strings.Join(lines, "\n")
}

// asError returns nil for no problems, else an *Error with the first
// MaxProblems problems (and the count of the rest) in file order: by line,
// then those without a line (environment, missing fields) in the order they
// were found.
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
	if len(problems) > MaxProblems {
		return &Error{Problems: slices.Clone(problems[:MaxProblems]), More: len(problems) - MaxProblems}
	}
	return &Error{Problems: problems}
}
