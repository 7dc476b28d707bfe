package pruner

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Tag is one tag of a repository as the rules see it.
type Tag struct {
	Name   string `json:"tag"`
	Digest string `json:"digest"`
	// Created is the image's creation time (config "created", or for an
	// index its annotation or newest child). Zero when unknown; times at or
	// before the Unix epoch (reproducible builds) also count as unknown.
	Created time.Time `json:"created,omitzero"`
	// PushOrder ranks tags by push time when the source knows it (higher =
	// pushed later); 0 = unknown. The registry HTTP API does not expose it.
	PushOrder int `json:"pushOrder,omitempty"`
}

// Action is what the plan does with a tag.
type Action string

// The actions of a plan.
const (
	Keep   Action = "keep"
	Delete Action = "delete"
)

// Decision is the verdict on one tag and why.
type Decision struct {
	Tag
	Action Action `json:"action"`
	// Rule is the index of the rule that kept the tag (0: none, e.g. not selected).
	Rule   int    `json:"rule,omitempty"`
	Reason string `json:"reason"`
	// Referrer is set for sha256-<hex>.sig/.att/.sbom tags: their subject digest.
	Referrer string `json:"subject,omitempty"`
	// SharedWith lists other tags on the same digest that are kept (only on
	// deletions): the manifest stays, only this tag goes.
	SharedWith []string `json:"sharedWithKept,omitempty"`
	// LastTagOfDigest is true on a deletion when every tag on its digest is
	// deleted, so deleting the manifest by digest is equivalent.
	LastTagOfDigest bool `json:"lastTagOfDigest,omitempty"`
}

var referrerTag = regexp.MustCompile(`^sha256-([0-9a-f]{64})\.(sig|att|sbom)$`)

// referrerSubject returns the subject digest of a referrer-style tag.
func referrerSubject(tag string) (string, bool) {
	m := referrerTag.FindStringSubmatch(tag)
	if m == nil {
		return "", false
	}
	return "sha256:" + m[1], true
}

// createdKnown reports whether the tag has a usable creation time.
func (t Tag) createdKnown() bool { return t.Created.After(time.Unix(86400, 0)) }

// SelectsRepository reports whether any rule applies to the repository.
func (rs Rules) SelectsRepository(repo string) bool {
	for i := range rs.Rules {
		if rs.Rules[i].selectsRepository(repo) {
			return true
		}
	}
	return false
}

// Evaluate decides, for one repository, which tags to keep and which to
// delete. It is pure: the same input gives the same decisions, sorted by tag.
func (rs Rules) Evaluate(repo string, tags []Tag, now time.Time) []Decision {
	decisions := make([]Decision, len(tags))
	var plain []int
	for i, t := range tags {
		decisions[i] = Decision{Tag: t}
		if subject, ok := referrerSubject(t.Name); ok {
			decisions[i].Referrer = subject
		} else {
			plain = append(plain, i)
		}
	}

	// Which rules select which plain tags.
	type verdict struct {
		selectedBy []int // rule positions
		keptBy     int   // rule position + 1, 0 = not kept
		keepWhy    string
		dropWhy    []string
	}
	verdicts := make([]verdict, len(tags))
	for ri := range rs.Rules {
		r := &rs.Rules[ri]
		if !r.selectsRepository(repo) {
			continue
		}
		var sel []int
		for _, i := range plain {
			if r.selectsTag(tags[i].Name) {
				sel = append(sel, i)
				verdicts[i].selectedBy = append(verdicts[i].selectedBy, ri)
			}
		}
		kept := r.keep(tags, sel, now)
		for _, i := range sel {
			v := &verdicts[i]
			if why, ok := kept[i]; ok {
				if v.keptBy == 0 {
					v.keptBy, v.keepWhy = ri+1, why
				}
			} else {
				v.dropWhy = append(v.dropWhy, r.String()+" "+r.dropReason(tags[i]))
			}
		}
	}
	for _, i := range plain {
		d, v := &decisions[i], verdicts[i]
		switch {
		case len(v.selectedBy) == 0:
			d.Action = Keep
			if tags[i].Name == "latest" {
				d.Reason = "latest is protected (no rule's match names it)"
			} else {
				d.Reason = "no rule selects it"
			}
		case v.keptBy > 0:
			d.Action, d.Rule = Keep, rs.Rules[v.keptBy-1].Index
			d.Reason = rs.Rules[v.keptBy-1].String() + " " + v.keepWhy
		default:
			d.Action = Delete
			d.Reason = strings.Join(v.dropWhy, "; ")
		}
	}

	resolveReferrers(decisions)
	annotateSharedDigests(decisions)
	sort.Slice(decisions, func(a, b int) bool { return decisions[a].Name < decisions[b].Name })
	return decisions
}

// resolveReferrers makes referrer tags follow their subject: kept when any
// tag on the subject digest is kept, deleted when every tag on it is
// deleted, and left alone when no tag of this repository points at it.
func resolveReferrers(decisions []Decision) {
	tagsOf := map[string][]int{}
	for i, d := range decisions {
		tagsOf[d.Digest] = append(tagsOf[d.Digest], i)
	}
	state := map[int]int{} // 0 unvisited, 1 in progress, 2 done
	var resolve func(i int)
	resolve = func(i int) {
		d := &decisions[i]
		if d.Referrer == "" || state[i] == 2 {
			return
		}
		if state[i] == 1 { // a cycle cannot come from digests; be safe anyway
			d.Action, d.Reason = Keep, "referrer cycle; left alone"
			state[i] = 2
			return
		}
		state[i] = 1
		var subjectTags, keptBy []string
		for _, j := range tagsOf[d.Referrer] {
			resolve(j)
			subjectTags = append(subjectTags, decisions[j].Name)
			if decisions[j].Action == Keep {
				keptBy = append(keptBy, decisions[j].Name)
			}
		}
		sort.Strings(keptBy)
		switch {
		case len(subjectTags) == 0:
			d.Action, d.Reason = Keep, "referrer of "+d.Referrer+", which no tag here points at; left alone"
		case len(keptBy) > 0:
			d.Action, d.Reason = Keep, "follows its subject "+d.Referrer+", kept as tag "+strings.Join(keptBy, ", ")
		default:
			d.Action, d.Reason = Delete, "follows its subject "+d.Referrer+": every tag on it is deleted"
		}
		state[i] = 2
	}
	for i := range decisions {
		resolve(i)
	}
}

// annotateSharedDigests records, on deletions, the kept tags that share the
// digest, and whether the deletion removes the digest's last tag.
func annotateSharedDigests(decisions []Decision) {
	kept := map[string][]string{}
	for _, d := range decisions {
		if d.Action == Keep {
			kept[d.Digest] = append(kept[d.Digest], d.Name)
		}
	}
	for i := range decisions {
		d := &decisions[i]
		if d.Action != Delete {
			continue
		}
		if k := kept[d.Digest]; len(k) > 0 {
			d.SharedWith = append([]string(nil), k...)
			sort.Strings(d.SharedWith)
		} else {
			d.LastTagOfDigest = true
		}
	}
}

// keep returns the selected tags this rule keeps, with the reason.
func (r *Rule) keep(tags []Tag, sel []int, now time.Time) map[int]string {
	kept := map[int]string{}
	add := func(i int, why string) {
		if _, ok := kept[i]; !ok {
			kept[i] = why
		}
	}
	if r.KeepLatest != nil {
		var ranked []int
		for _, i := range sel {
			if tags[i].createdKnown() || tags[i].PushOrder > 0 {
				ranked = append(ranked, i)
			} else {
				add(i, "keepLatest: age unknown (no created time, no push order), kept")
			}
		}
		sort.SliceStable(ranked, func(a, b int) bool { return newer(tags[ranked[a]], tags[ranked[b]]) })
		for n, i := range ranked {
			if n < *r.KeepLatest {
				add(i, fmt.Sprintf("keepLatest %d: newest #%d", *r.KeepLatest, n+1))
			}
		}
	}
	if r.KeepSemver != nil {
		type sv struct {
			i int
			v *semver.Version
		}
		var vs []sv
		for _, i := range sel {
			if v, ok := parseSemver(tags[i].Name); ok {
				vs = append(vs, sv{i, v})
			}
		}
		sort.SliceStable(vs, func(a, b int) bool {
			if c := vs[a].v.Compare(vs[b].v); c != 0 {
				return c > 0
			}
			return tags[vs[a].i].Name > tags[vs[b].i].Name
		})
		for n, x := range vs {
			switch {
			case r.KeepSemver.Highest == 0:
				add(x.i, "keepSemver: valid semantic version")
			case n < r.KeepSemver.Highest:
				add(x.i, fmt.Sprintf("keepSemver highest %d: version #%d", r.KeepSemver.Highest, n+1))
			}
		}
	}
	if r.KeepDays != nil {
		limit := now.Add(-time.Duration(*r.KeepDays) * 24 * time.Hour)
		for _, i := range sel {
			t := tags[i]
			switch {
			case !t.createdKnown():
				add(i, "keepDays: age unknown (no created time), kept")
			case !t.Created.Before(limit):
				add(i, fmt.Sprintf("keepDays %d: created %s", *r.KeepDays, t.Created.UTC().Format(time.RFC3339)))
			}
		}
	}
	return kept
}

// dropReason says why this rule does not keep a tag it selects.
func (r *Rule) dropReason(t Tag) string {
	var why []string
	if r.KeepLatest != nil {
		why = append(why, fmt.Sprintf("not among the %d newest", *r.KeepLatest))
	}
	if r.KeepSemver != nil {
		if _, ok := parseSemver(t.Name); !ok {
			why = append(why, "not a semantic version")
		} else {
			why = append(why, fmt.Sprintf("not among the %d highest versions", r.KeepSemver.Highest))
		}
	}
	if r.KeepDays != nil {
		why = append(why, fmt.Sprintf("older than %d days", *r.KeepDays))
	}
	return "selects it and keeps it not: " + strings.Join(why, ", ")
}

// newer orders tags newest first: by created time (known beats unknown),
// then push order, then name.
func newer(a, b Tag) bool {
	ak, bk := a.createdKnown(), b.createdKnown()
	if ak != bk {
		return ak
	}
	if ak && !a.Created.Equal(b.Created) {
		return a.Created.After(b.Created)
	}
	if a.PushOrder != b.PushOrder {
		return a.PushOrder > b.PushOrder
	}
	return a.Name > b.Name
}

// parseSemver accepts MAJOR.MINOR.PATCH[-pre][+build] with an optional
// leading "v"; partial versions such as "1.2" are not semantic versions.
func parseSemver(tag string) (*semver.Version, bool) {
	v, err := semver.StrictNewVersion(strings.TrimPrefix(tag, "v"))
	return v, err == nil
}
