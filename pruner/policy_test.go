package pruner_test

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/pruner"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func daysAgo(d int) time.Time { return now.Add(-time.Duration(d) * 24 * time.Hour) }

// tag builds an in-memory tag: name, digest, created, push order.
func tag(name, digest string, created time.Time, order int) pruner.Tag {
	return pruner.Tag{Name: name, Digest: digest, Created: created, PushOrder: order}
}

func mustRules(t testing.TB, y string) pruner.Rules {
	t.Helper()
	rs, err := pruner.ParseRules(strings.NewReader(y))
	if err != nil {
		t.Fatalf("ParseRules: %v\n%s", err, y)
	}
	return rs
}

func deleted(ds []pruner.Decision) []string {
	var out []string
	for _, d := range ds {
		if d.Action == pruner.Delete {
			out = append(out, d.Name)
		}
	}
	sort.Strings(out)
	return out
}

func byName(ds []pruner.Decision) map[string]pruner.Decision {
	m := map[string]pruner.Decision{}
	for _, d := range ds {
		m[d.Name] = d
	}
	return m
}

func sha(n int) string { return fmt.Sprintf("sha256:%064x", n) }

func TestEvaluateRules(t *testing.T) {
	mixed := []pruner.Tag{
		tag("1.2.3", sha(1), daysAgo(40), 1),
		tag("1.9.0", sha(2), daysAgo(30), 2),
		tag("1.10.0", sha(3), daysAgo(20), 3),
		tag("v2.0.0-rc.1", sha(4), daysAgo(10), 4),
		tag("1.2", sha(5), daysAgo(9), 5),
		tag("PR-7", sha(6), daysAgo(8), 6),
		tag("PR-123", sha(7), daysAgo(3), 7),
		tag("3f9a2c1", sha(8), daysAgo(2), 8),
		tag("latest", sha(8), daysAgo(2), 8),
	}
	cases := []struct {
		name    string
		repo    string
		rules   string
		tags    []pruner.Tag
		deleted []string
		reasons map[string]string // tag -> substring of its reason
	}{
		{
			name:    "keepLatest by created, latest protected",
			rules:   "rules: [{keepLatest: 3}]",
			tags:    mixed,
			deleted: []string{"1.10.0", "1.2", "1.2.3", "1.9.0", "v2.0.0-rc.1"},
			reasons: map[string]string{"latest": "latest is protected", "PR-7": "keepLatest 3: newest #3", "1.9.0": "not among the 3 newest"},
		},
		{
			name:  "keepLatest falls back to push order without created",
			rules: "rules: [{keepLatest: 2}]",
			tags: []pruner.Tag{
				tag("a", sha(1), time.Time{}, 3), tag("b", sha(2), time.Time{}, 1),
				tag("c", sha(3), time.Unix(0, 0), 2), tag("d", sha(4), time.Time{}, 4),
			},
			deleted: []string{"b", "c"},
		},
		{
			name:  "created beats push order; ties on created use push order",
			rules: "rules: [{keepLatest: 2}]",
			tags: []pruner.Tag{
				tag("old-but-last-pushed", sha(1), daysAgo(9), 9),
				tag("new1", sha(2), daysAgo(1), 1), tag("new2", sha(3), daysAgo(1), 2),
			},
			deleted: []string{"old-but-last-pushed"},
		},
		{
			name:  "keepLatest keeps tags of unknown age",
			rules: "rules: [{keepLatest: 1}]",
			tags: []pruner.Tag{
				tag("x", sha(1), time.Time{}, 0), tag("y", sha(2), daysAgo(1), 0), tag("z", sha(3), daysAgo(2), 0),
			},
			deleted: []string{"z"},
			reasons: map[string]string{"x": "age unknown"},
		},
		{
			name:    "keepSemver {} keeps every valid semantic version only",
			rules:   "rules: [{keepSemver: {}}]",
			tags:    mixed,
			deleted: []string{"1.2", "3f9a2c1", "PR-123", "PR-7"},
			reasons: map[string]string{"PR-7": "not a semantic version", "v2.0.0-rc.1": "keepSemver: valid semantic version"},
		},
		{
			name:    "keepSemver highest 2 uses semver precedence, not text",
			rules:   "rules: [{match: ['^v?[0-9]'], keepSemver: {highest: 2}}]",
			tags:    mixed,
			deleted: []string{"1.2", "1.2.3", "1.9.0", "3f9a2c1"},
			reasons: map[string]string{"v2.0.0-rc.1": "version #1", "1.10.0": "version #2"},
		},
		{
			name:  "prerelease sorts below its release",
			rules: "rules: [{keepSemver: {highest: 1}}]",
			tags: []pruner.Tag{
				tag("2.0.0-rc.1", sha(1), daysAgo(1), 2), tag("2.0.0", sha(2), daysAgo(5), 1),
			},
			deleted: []string{"2.0.0-rc.1"},
		},
		{
			name:    "keepDays",
			rules:   "rules: [{keepDays: 9}]",
			tags:    mixed,
			deleted: []string{"1.10.0", "1.2.3", "1.9.0", "v2.0.0-rc.1"},
			reasons: map[string]string{"1.9.0": "older than 9 days", "1.2": "keepDays 9: created"},
		},
		{
			name:  "keepDays keeps unknown age",
			rules: "rules: [{keepDays: 1}]",
			tags:  []pruner.Tag{tag("a", sha(1), time.Time{}, 1), tag("b", sha(2), daysAgo(3), 2)},
			// b is older than a day; a has no created time.
			deleted: []string{"b"},
		},
		{
			name:    "one rule, several keeps: union",
			rules:   "rules: [{keepLatest: 1, keepSemver: {highest: 1}, keepDays: 9}]",
			tags:    mixed,
			deleted: []string{"1.10.0", "1.2.3", "1.9.0"},
		},
		{
			name:    "keepLatest 0 deletes everything selected; match and ignore (ignore wins)",
			rules:   "rules: [{match: ['^PR-', '^1\\.'], ignore: ['^1\\.10'], keepLatest: 0}]",
			tags:    mixed,
			deleted: []string{"1.2", "1.2.3", "1.9.0", "PR-123", "PR-7"},
			reasons: map[string]string{"1.10.0": "no rule selects it"},
		},
		{
			name:    "latest is selected when a match names it",
			rules:   "rules: [{match: ['^latest$', '^3f'], keepLatest: 0}]",
			tags:    mixed,
			deleted: []string{"3f9a2c1", "latest"},
		},
		{
			name:    "a catch-all match does not name latest",
			rules:   "rules: [{match: ['.*', 'l.test'], keepLatest: 0}]",
			tags:    []pruner.Tag{tag("latest", sha(1), daysAgo(1), 1), tag("dev", sha(2), daysAgo(1), 2)},
			deleted: []string{"dev"},
		},
		{
			name:    "ignore wins even over a match that names latest",
			rules:   "rules: [{match: ['^latest$', '^PR-'], ignore: ['^latest$', '^PR-7$'], keepLatest: 0}]",
			tags:    mixed,
			deleted: []string{"PR-123"},
			reasons: map[string]string{"latest": "latest is protected", "PR-7": "no rule selects it"},
		},
		{
			name: "ignore applies within its own rule: another rule may still select the tag",
			rules: `rules:
  - ignore: ["^PR-"]
    keepSemver: {}
  - match: ["^PR-"]
    keepLatest: 1
`,
			tags:    mixed,
			deleted: []string{"1.2", "3f9a2c1", "PR-7"},
			reasons: map[string]string{
				"PR-123":  "rule 2 (line 4) keepLatest 1: newest #1",
				"PR-7":    "rule 2 (line 4) selects it and keeps it not: not among the 1 newest",
				"3f9a2c1": "rule 1 (line 2) selects it and keeps it not: not a semantic version",
			},
		},
		{
			name:  "keepSemver is strict: build metadata yes; partial, leading zeros, words no",
			rules: "rules: [{keepSemver: {}}]",
			tags: []pruner.Tag{
				tag("1.0.0+build.5", sha(1), daysAgo(1), 1), tag("v1.2.3", sha(2), daysAgo(1), 2),
				tag("1.0", sha(3), daysAgo(1), 3), tag("01.2.3", sha(4), daysAgo(1), 4),
				tag("stable", sha(5), daysAgo(1), 5), tag("1.2.3.4", sha(6), daysAgo(1), 6),
			},
			deleted: []string{"01.2.3", "1.0", "1.2.3.4", "stable"},
		},
		{
			name: "keep settings of different rules never add up: each rule ranks what it selects",
			rules: `rules:
  - match: ["^PR-"]
    keepLatest: 1
  - match: ["^[0-9a-f]{7}$", "^PR-"]
    keepLatest: 1
`,
			tags: []pruner.Tag{
				tag("PR-1", sha(1), daysAgo(3), 1), tag("PR-2", sha(2), daysAgo(2), 2),
				tag("abcdef1", sha(3), daysAgo(1), 3),
			},
			// Rule 1 keeps PR-2 (its newest PR); rule 2's newest is abcdef1,
			// so PR-1 is kept by neither.
			deleted: []string{"PR-1"},
			reasons: map[string]string{"PR-2": "rule 1 (line 2) keepLatest 1: newest #1", "abcdef1": "rule 2 (line 4)"},
		},
		{
			name: "rules combine: any selecting rule keeping wins; unselected untouched",
			rules: `rules:
  - match: ["^PR-"]
    keepDays: 5
  - match: ["^PR-", "^1\\."]
    keepSemver: {}
`,
			tags:    mixed,
			deleted: []string{"1.2", "PR-7"},
			reasons: map[string]string{
				"PR-7":    "rule 1 (line 2) selects it and keeps it not: older than 5 days; rule 2 (line 4) selects it and keeps it not: not a semantic version",
				"PR-123":  "rule 1 (line 2) keepDays 5",
				"1.9.0":   "rule 2 (line 4) keepSemver",
				"3f9a2c1": "no rule selects it",
			},
		},
		{
			name:    "repository globs: rule for app/* skips other repositories",
			repo:    "lib/base",
			rules:   "rules: [{repositories: ['app/*'], keepLatest: 0}]",
			tags:    mixed,
			deleted: nil,
		},
		{
			name:    "repository glob * stays within one segment",
			repo:    "app/web/extra",
			rules:   "rules: [{repositories: ['app/*'], keepLatest: 0}]",
			tags:    mixed,
			deleted: nil,
		},
		{
			name:    "repository glob matches",
			repo:    "app/web",
			rules:   "rules: [{repositories: ['lib/*', 'app/*'], match: ['^PR-'], keepLatest: 1}]",
			tags:    mixed,
			deleted: []string{"PR-7"},
		},
		{
			name:  "referrer tags follow their subject",
			rules: "rules: [{match: ['^PR-'], keepLatest: 1}]",
			tags: []pruner.Tag{
				tag("PR-1", sha(1), daysAgo(5), 1),
				tag("PR-2", sha(2), daysAgo(1), 2),
				tag("sha256-"+sha(1)[7:]+".sig", sha(11), daysAgo(5), 3),
				tag("sha256-"+sha(1)[7:]+".att", sha(12), daysAgo(5), 3),
				tag("sha256-"+sha(12)[7:]+".sig", sha(13), daysAgo(5), 3), // signature of the attestation
				tag("sha256-"+sha(2)[7:]+".sig", sha(21), daysAgo(1), 4),
				tag("sha256-"+sha(99)[7:]+".sbom", sha(31), daysAgo(30), 5), // subject not tagged here
			},
			deleted: []string{"PR-1", "sha256-" + sha(1)[7:] + ".att", "sha256-" + sha(1)[7:] + ".sig", "sha256-" + sha(12)[7:] + ".sig"},
			reasons: map[string]string{
				"sha256-" + sha(2)[7:] + ".sig":   "kept as tag PR-2",
				"sha256-" + sha(99)[7:] + ".sbom": "left alone",
				"sha256-" + sha(1)[7:] + ".sig":   "every tag on it is deleted",
			},
		},
		{
			name:  "referrer kept while any tag on its subject is kept",
			rules: "rules: [{match: ['^PR-'], keepLatest: 0}]",
			tags: []pruner.Tag{
				tag("PR-1", sha(1), daysAgo(5), 1),
				tag("1.0.0", sha(1), daysAgo(5), 1),
				tag("sha256-"+sha(1)[7:]+".sig", sha(11), daysAgo(5), 2),
			},
			deleted: []string{"PR-1"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo := tc.repo
			if repo == "" {
				repo = "app/web"
			}
			rs := mustRules(t, tc.rules)
			ds := rs.Evaluate(repo, tc.tags, now)
			if len(ds) != len(tc.tags) {
				t.Fatalf("got %d decisions for %d tags", len(ds), len(tc.tags))
			}
			if got := deleted(ds); !reflect.DeepEqual(got, tc.deleted) {
				t.Errorf("deleted = %q, want %q", got, tc.deleted)
			}
			m := byName(ds)
			for name, want := range tc.reasons {
				if got := m[name].Reason; !strings.Contains(got, want) {
					t.Errorf("reason for %s = %q, want it to contain %q", name, got, want)
				}
			}
			for _, d := range ds {
				if d.Reason == "" {
					t.Errorf("%s: empty reason", d.Name)
				}
			}
		})
	}
}

func TestEvaluateSharedDigest(t *testing.T) {
	rs := mustRules(t, "rules: [{match: ['^PR-'], keepLatest: 0}]")
	ds := byName(rs.Evaluate("app", []pruner.Tag{
		tag("PR-1", sha(1), daysAgo(1), 1),
		tag("1.0.0", sha(1), daysAgo(1), 1),
		tag("PR-2", sha(2), daysAgo(1), 2),
		tag("PR-3", sha(2), daysAgo(1), 3),
	}, now))
	if d := ds["PR-1"]; d.Action != pruner.Delete || !reflect.DeepEqual(d.SharedWith, []string{"1.0.0"}) || d.LastTagOfDigest {
		t.Errorf("PR-1: %+v, want delete shared with 1.0.0", d)
	}
	for _, n := range []string{"PR-2", "PR-3"} {
		if d := ds[n]; d.Action != pruner.Delete || len(d.SharedWith) != 0 || !d.LastTagOfDigest {
			t.Errorf("%s: %+v, want delete as last tags of the digest", n, d)
		}
	}
}

func TestEvaluateIsDeterministic(t *testing.T) {
	rs := mustRules(t, "rules: [{keepLatest: 2}]")
	tags := []pruner.Tag{
		tag("b", sha(1), daysAgo(1), 0), tag("a", sha(2), daysAgo(1), 0), tag("c", sha(3), daysAgo(1), 0),
	}
	first := rs.Evaluate("r", tags, now)
	for range 20 {
		rev := append([]pruner.Tag(nil), tags...)
		sort.Slice(rev, func(i, j int) bool { return rev[i].Name > rev[j].Name })
		if got := rs.Evaluate("r", rev, now); !reflect.DeepEqual(got, first) {
			t.Fatalf("order of input changed the decisions: %v vs %v", got, first)
		}
	}
	// Equal created and no push order: the tie breaks by name, highest first.
	if got := deleted(first); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("deleted %q, want [a]", got)
	}
}

// TestEvaluateRepositoryScopedAndGlobalRules: a rule for some repositories
// and a rule for all combine per repository.
func TestEvaluateRepositoryScopedAndGlobalRules(t *testing.T) {
	rs := mustRules(t, `rules:
  - repositories: ["app/*"]
    keepLatest: 2
  - keepLatest: 1
`)
	tags := []pruner.Tag{tag("a", sha(1), daysAgo(1), 1), tag("b", sha(2), daysAgo(2), 2), tag("c", sha(3), daysAgo(3), 3)}
	for repo, want := range map[string][]string{"app/web": {"c"}, "lib/base": {"b", "c"}} {
		if !rs.SelectsRepository(repo) {
			t.Errorf("%s: no rule applies", repo)
		}
		if got := deleted(rs.Evaluate(repo, tags, now)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: deleted %q, want %q", repo, got, want)
		}
	}
	scoped := mustRules(t, "rules: [{repositories: ['app/*', 'lib/base'], keepDays: 1}]")
	for repo, want := range map[string]bool{"app/web": true, "lib/base": true, "lib/base/x": false, "tools/app": false, "app": false} {
		if got := scoped.SelectsRepository(repo); got != want {
			t.Errorf("SelectsRepository(%q) = %v, want %v", repo, got, want)
		}
	}
}
