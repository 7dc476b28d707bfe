package pruner

import (
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/bootctl/boot/internal/boundedfile"
)

// Rules is a parsed, validated rules file.
type Rules struct {
	Rules []Rule `json:"rules"`
}

// Rule selects tags in some repositories and says which of them to keep.
// See the package documentation for the semantics.
type Rule struct {
	// Index is the rule's position in the file, starting at 1.
	Index int `json:"index"`
	// Line is the line of the file where the rule starts (0 when built in code).
	Line int `json:"line,omitempty"`

	Repositories []string    `json:"repositories,omitempty"`
	Match        []string    `json:"match,omitempty"`
	Ignore       []string    `json:"ignore,omitempty"`
	KeepLatest   *int        `json:"keepLatest,omitempty"`
	KeepSemver   *KeepSemver `json:"keepSemver,omitempty"`
	KeepDays     *int        `json:"keepDays,omitempty"`

	match  []*regexp.Regexp
	ignore []*regexp.Regexp
	// namesLatest is true when one of the match patterns names the tag
	// "latest" explicitly, which lifts its protection for this rule.
	namesLatest bool
}

// KeepSemver keeps tags that are valid semantic versions. Highest > 0 keeps
// only the Highest greatest versions; 0 keeps every valid version.
type KeepSemver struct {
	Highest int `json:"highest,omitempty"`
}

// ParseError is a problem in a rules file, located by line and field.
type ParseError struct {
	File  string // empty when parsed from a reader without a name
	Line  int
	Field string // e.g. "rules[2].keepLatest"
	Msg   string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d: ", e.Line)
	} else if e.File != "" {
		b.WriteString(" ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// LoadRules reads and parses a rules file; errors carry the file name. A
// file that is not a regular file of at most 1 MiB is refused before it is
// read.
func LoadRules(file string) (Rules, error) {
	f, _, err := boundedfile.Open(file, "rules file", maxRulesSize)
	if err != nil {
		return Rules{}, err
	}
	defer f.Close()
	rs, err := ParseRules(f)
	var pe *ParseError
	if errors.As(err, &pe) {
		pe.File = file
	}
	return rs, err
}

// maxRulesSize bounds what ParseRules reads; a rules file is a few KiB.
const maxRulesSize = 1 << 20

// ParseRules parses and validates a rules document (YAML). Errors are
// *ParseError values that name the line and the field.
func ParseRules(r io.Reader) (Rules, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxRulesSize+1))
	if err != nil {
		return Rules{}, err
	}
	if len(data) > maxRulesSize {
		return Rules{}, &ParseError{Msg: fmt.Sprintf("rules file larger than %d bytes", maxRulesSize)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Rules{}, yamlError(err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return Rules{}, &ParseError{Line: 1, Field: "rules", Msg: "is missing (the file is empty)"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return Rules{}, &ParseError{Line: root.Line, Msg: "expected a mapping with the key \"rules\""}
	}
	var rulesNode *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "rules" {
			return Rules{}, &ParseError{Line: k.Line, Field: k.Value, Msg: "unknown field (expected \"rules\")"}
		}
		rulesNode = v
	}
	if rulesNode == nil {
		return Rules{}, &ParseError{Line: root.Line, Field: "rules", Msg: "is missing"}
	}
	if rulesNode.Kind != yaml.SequenceNode {
		return Rules{}, &ParseError{Line: rulesNode.Line, Field: "rules", Msg: "must be a list of rules"}
	}
	var out Rules
	for i, n := range rulesNode.Content {
		rule, err := parseRule(i+1, n)
		if err != nil {
			return Rules{}, err
		}
		out.Rules = append(out.Rules, rule)
	}
	if len(out.Rules) == 0 {
		return Rules{}, &ParseError{Line: rulesNode.Line, Field: "rules", Msg: "is empty: give at least one rule"}
	}
	return out, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlError(err error) error {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return &ParseError{Msg: err.Error()}
	}
	var line int
	fmt.Sscanf(m[1], "%d", &line)
	return &ParseError{Line: line, Msg: m[2]}
}

func parseRule(index int, n *yaml.Node) (Rule, error) {
	field := fmt.Sprintf("rules[%d]", index)
	if n.Kind != yaml.MappingNode {
		return Rule{}, &ParseError{Line: n.Line, Field: field, Msg: "must be a mapping"}
	}
	r := Rule{Index: index, Line: n.Line}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f := field + "." + k.Value
		if seen[k.Value] {
			return Rule{}, &ParseError{Line: k.Line, Field: f, Msg: "given twice"}
		}
		seen[k.Value] = true
		var err error
		switch k.Value {
		case "repositories":
			r.Repositories, err = parseStrings(f, v)
			if err == nil {
				err = checkGlobs(f, v, r.Repositories)
			}
		case "match":
			r.Match, err = parseStrings(f, v)
			if err == nil {
				r.match, err = compileAll(f, v, r.Match)
			}
		case "ignore":
			r.Ignore, err = parseStrings(f, v)
			if err == nil {
				r.ignore, err = compileAll(f, v, r.Ignore)
			}
		case "keepLatest":
			r.KeepLatest, err = parseCount(f, v)
		case "keepDays":
			r.KeepDays, err = parseCount(f, v)
		case "keepSemver":
			r.KeepSemver, err = parseKeepSemver(f, v)
		default:
			err = &ParseError{Line: k.Line, Field: f, Msg: "unknown field (expected repositories, match, ignore, keepLatest, keepSemver or keepDays)"}
		}
		if err != nil {
			return Rule{}, err
		}
	}
	if r.KeepLatest == nil && r.KeepSemver == nil && r.KeepDays == nil {
		return Rule{}, &ParseError{Line: n.Line, Field: field, Msg: "needs at least one of keepLatest, keepSemver, keepDays (keepLatest: 0 deletes every tag the rule selects)"}
	}
	r.namesLatest = namesLatest(r.Match)
	return r, nil
}

func parseStrings(field string, v *yaml.Node) ([]string, error) {
	if v.Kind != yaml.SequenceNode {
		return nil, &ParseError{Line: v.Line, Field: field, Msg: "must be a list of strings"}
	}
	out := make([]string, 0, len(v.Content))
	for i, item := range v.Content {
		if item.Kind != yaml.ScalarNode || item.Tag != "!!str" && item.Tag != "!!int" && item.Tag != "!!float" {
			return nil, &ParseError{Line: item.Line, Field: fmt.Sprintf("%s[%d]", field, i), Msg: "must be a string"}
		}
		if item.Value == "" {
			return nil, &ParseError{Line: item.Line, Field: fmt.Sprintf("%s[%d]", field, i), Msg: "must not be empty"}
		}
		out = append(out, item.Value)
	}
	return out, nil
}

func checkGlobs(field string, v *yaml.Node, globs []string) error {
	for i, g := range globs {
		if _, err := path.Match(g, ""); err != nil {
			return &ParseError{Line: v.Content[i].Line, Field: fmt.Sprintf("%s[%d]", field, i), Msg: fmt.Sprintf("bad glob %q: %v", g, err)}
		}
	}
	return nil
}

func compileAll(field string, v *yaml.Node, exprs []string) ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, 0, len(exprs))
	for i, e := range exprs {
		re, err := regexp.Compile(e)
		if err != nil {
			return nil, &ParseError{Line: v.Content[i].Line, Field: fmt.Sprintf("%s[%d]", field, i), Msg: fmt.Sprintf("bad regular expression: %v", err)}
		}
		out = append(out, re)
	}
	return out, nil
}

// maxCount bounds keepLatest, keepDays and keepSemver.highest.
const maxCount = 1_000_000

func parseCount(field string, v *yaml.Node) (*int, error) {
	var n int
	if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || v.Decode(&n) != nil {
		return nil, &ParseError{Line: v.Line, Field: field, Msg: fmt.Sprintf("must be a whole number, got %q", v.Value)}
	}
	if n < 0 || n > maxCount {
		return nil, &ParseError{Line: v.Line, Field: field, Msg: fmt.Sprintf("must be between 0 and %d, got %d", maxCount, n)}
	}
	return &n, nil
}

func parseKeepSemver(field string, v *yaml.Node) (*KeepSemver, error) {
	if v.Kind != yaml.MappingNode {
		return nil, &ParseError{Line: v.Line, Field: field, Msg: "must be a mapping, e.g. {} or {highest: 5}"}
	}
	ks := &KeepSemver{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		f := field + "." + k.Value
		if k.Value != "highest" {
			return nil, &ParseError{Line: k.Line, Field: f, Msg: "unknown field (expected highest)"}
		}
		n, err := parseCount(f, val)
		if err != nil {
			return nil, err
		}
		if *n == 0 {
			return nil, &ParseError{Line: val.Line, Field: f, Msg: "must be at least 1 (omit it to keep every semantic version)"}
		}
		ks.Highest = *n
	}
	return ks, nil
}

// namesLatest reports whether a match pattern names "latest" explicitly:
// the pattern contains the word latest and matches the tag "latest".
func namesLatest(match []string) bool {
	for _, m := range match {
		if strings.Contains(m, "latest") {
			if re, err := regexp.Compile(m); err == nil && re.MatchString("latest") {
				return true
			}
		}
	}
	return false
}

// selectsRepository reports whether the rule applies to the repository.
func (r *Rule) selectsRepository(repo string) bool {
	if len(r.Repositories) == 0 {
		return true
	}
	for _, g := range r.Repositories {
		if ok, _ := path.Match(g, repo); ok {
			return true
		}
	}
	return false
}

// selectsTag reports whether the rule selects the tag (repository aside).
func (r *Rule) selectsTag(tag string) bool {
	for _, re := range r.ignore {
		if re.MatchString(tag) {
			return false
		}
	}
	if tag == "latest" && !r.namesLatest {
		return false
	}
	if len(r.match) == 0 {
		return true
	}
	for _, re := range r.match {
		if re.MatchString(tag) {
			return true
		}
	}
	return false
}

// String names the rule for plans: "rule 2 (line 7)".
func (r *Rule) String() string {
	if r.Line > 0 {
		return fmt.Sprintf("rule %d (line %d)", r.Index, r.Line)
	}
	return fmt.Sprintf("rule %d", r.Index)
}
