package pruner_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bootctl/boot/pruner"
)

const contractRules = `rules:
  - repositories: ["app/*"]      # globs; empty = all
    match: ["^PR-"]              # tag regexes; empty = all
    ignore: ["^keep-"]           # ignore always wins
    keepLatest: 10               # and/or
    keepSemver: {highest: 20}    # and/or  (keepSemver: {} = keep all valid semvers)
    keepDays: 14
  - keepSemver: {}
`

func TestParseRulesContractExample(t *testing.T) {
	rs := mustRules(t, contractRules)
	if len(rs.Rules) != 2 {
		t.Fatalf("got %d rules", len(rs.Rules))
	}
	r := rs.Rules[0]
	if r.Index != 1 || r.Line != 2 || r.Repositories[0] != "app/*" || r.Match[0] != "^PR-" || r.Ignore[0] != "^keep-" ||
		*r.KeepLatest != 10 || r.KeepSemver.Highest != 20 || *r.KeepDays != 14 {
		t.Errorf("rule 1 = %+v", r)
	}
	r = rs.Rules[1]
	if r.Index != 2 || r.Line != 8 || r.KeepSemver == nil || r.KeepSemver.Highest != 0 || r.KeepLatest != nil || r.KeepDays != nil {
		t.Errorf("rule 2 = %+v", r)
	}
}

func TestParseRulesErrors(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"empty", "", "1: rules: is missing"},
		{"not a mapping", "- a\n", "1: expected a mapping"},
		{"unknown top key", "rule: []\n", "1: rule: unknown field"},
		{"rules not a list", "rules: {}\n", "1: rules: must be a list"},
		{"no rules", "rules: []\n", "1: rules: is empty"},
		{"rule not a mapping", "rules:\n  - 3\n", "2: rules[1]: must be a mapping"},
		{"no keep", "rules:\n  - match: [a]\n", "2: rules[1]: needs at least one of keepLatest"},
		{"unknown rule key", "rules:\n  - keepLatest: 1\n    keeplatest: 2\n", "3: rules[1].keeplatest: unknown field"},
		{"duplicate key", "rules:\n  - keepLatest: 1\n    keepLatest: 2\n", "rules[1].keepLatest"},
		{"negative", "rules:\n  - keepDays: 1\n  - keepLatest: -1\n", "3: rules[2].keepLatest: must be between 0 and"},
		{"not a number", "rules:\n  - keepDays: ten\n", "2: rules[1].keepDays: must be a whole number, got \"ten\""},
		{"float", "rules:\n  - keepDays: 1.5\n", "2: rules[1].keepDays: must be a whole number"},
		{"bad regex", "rules:\n  - keepDays: 1\n    match:\n      - ok\n      - '(['\n", "5: rules[1].match[1]: bad regular expression"},
		{"bad ignore", "rules:\n  - keepDays: 1\n    ignore: ['*x']\n", "3: rules[1].ignore[0]: bad regular expression"},
		{"bad glob", "rules:\n  - keepDays: 1\n    repositories: ['app/[']\n", "3: rules[1].repositories[0]: bad glob"},
		{"match not list", "rules:\n  - keepDays: 1\n    match: '^PR-'\n", "3: rules[1].match: must be a list of strings"},
		{"match item not string", "rules:\n  - keepDays: 1\n    match: [{a: b}]\n", "3: rules[1].match[0]: must be a string"},
		{"semver scalar", "rules:\n  - keepSemver: true\n", "2: rules[1].keepSemver: must be a mapping"},
		{"semver unknown", "rules:\n  - keepSemver: {top: 2}\n", "2: rules[1].keepSemver.top: unknown field"},
		{"semver zero", "rules:\n  - keepSemver: {highest: 0}\n", "2: rules[1].keepSemver.highest: must be at least 1"},
		{"yaml syntax", "rules:\n  - keepLatest: [1\n", ": did not find expected ',' or ']'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pruner.ParseRules(strings.NewReader(tc.in))
			if err == nil {
				t.Fatalf("no error for %q", tc.in)
			}
			var pe *pruner.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not a *ParseError", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if pe.Line == 0 {
				t.Errorf("error %q has no line", err)
			}
		})
	}
}

func TestLoadRulesNamesTheFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(file, []byte("rules:\n  - keepLatest: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := pruner.LoadRules(file)
	want := file + ":2: rules[1].keepLatest: must be a whole number"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want prefix %q", err, want)
	}
	if err := os.WriteFile(file, []byte(contractRules), 0o600); err != nil {
		t.Fatal(err)
	}
	if rs, err := pruner.LoadRules(file); err != nil || len(rs.Rules) != 2 {
		t.Fatalf("LoadRules: %v %v", rs, err)
	}
}

// A rules file that is not a regular file of at most 1 MiB is refused at
// once, naming it: a named pipe is not waited on, a device not read.
func TestLoadRulesRefusesUnusableFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(contractRules), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 1<<20+1); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{fifo, "rules file " + fifo + " is not a regular file (a named pipe)"},
		{"/dev/zero", "rules file /dev/zero is not a regular file (a character device)"},
		{dir, "rules file " + dir + " is not a regular file (a directory)"},
		{big, "rules file " + big + " is 1048577 bytes, more than the limit of 1 MiB"},
	} {
		start := time.Now()
		_, err := pruner.LoadRules(tc.path)
		if took := time.Since(start); took > 500*time.Millisecond {
			t.Errorf("%s: took %s", tc.path, took)
		}
		if err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %s", err, tc.want)
		}
	}
}

// FuzzParseRules checks that the parser never panics, and that whatever it
// accepts is a usable rule set: every rule has a keep setting and
// evaluating it on a few tags gives one decision per tag.
func FuzzParseRules(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/rules/*.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add(contractRules)
	tags := []pruner.Tag{
		tag("1.2.3", sha(1), daysAgo(3), 1), tag("latest", sha(1), daysAgo(3), 1),
		tag("PR-1", sha(2), daysAgo(30), 2), tag("sha256-"+sha(2)[7:]+".sig", sha(3), daysAgo(30), 3),
	}
	f.Fuzz(func(t *testing.T, in string) {
		rs, err := pruner.ParseRules(strings.NewReader(in))
		if err != nil {
			var pe *pruner.ParseError
			if !errors.As(err, &pe) || err.Error() == "" {
				t.Fatalf("bad error %T %q", err, err)
			}
			return
		}
		if len(rs.Rules) == 0 {
			t.Fatal("accepted a rule set without rules")
		}
		for _, r := range rs.Rules {
			if r.KeepLatest == nil && r.KeepDays == nil && r.KeepSemver == nil {
				t.Fatalf("accepted rule %d without a keep setting", r.Index)
			}
		}
		if ds := rs.Evaluate("app/web", tags, now); len(ds) != len(tags) {
			t.Fatalf("%d decisions for %d tags", len(ds), len(tags))
		}
	})
}
