package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"
	"gopkg.in/yaml.v3"

	"github.com/bootctl/boot/internal/boundedfile"
)

// EnvPrefix starts the name of every environment variable that overrides an
// inventory field.
const EnvPrefix = "BOOT"

// MaxFileSize bounds an inventory file (they are a few KiB): a larger one is
// refused before it is read.
const MaxFileSize = 4 << 20

// origin is where a field's value came from.
type origin struct {
	line int    // line in the file, when it came from the file
	env  string // environment variable, when it came from there
}

// Load reads, decodes, overrides from the environment, defaults and
// validates the inventory at path. An invalid inventory is reported as an
// *Error listing every problem; a file that cannot be read, or is not a
// regular file of at most MaxFileSize bytes, gives an error naming it
// (errors.Is(err, fs.ErrNotExist) works).
func Load(path string) (*Inventory, error) {
	data, err := boundedfile.Read(path, "inventory", MaxFileSize)
	if err != nil {
		return nil, err
	}
	return load(path, data)
}

// load is Load on data already read from path.
func load(path string, data []byte) (*Inventory, error) {
	inv := &Inventory{Path: path, origins: map[string]origin{}}
	d := &decoder{file: path, origins: inv.origins}
	d.document(data, inv)
	d.problems = append(d.problems, overrideFromEnv(inv)...)
	inv.applyDefaults()
	d.problems = append(d.problems, inv.resolvePaths()...)
	// A field that could not be decoded is already reported; its zero value
	// must not produce a second, misleading problem.
	for _, p := range inv.validate() {
		if !d.covers(p.Field) {
			d.problems = append(d.problems, p)
		}
	}
	if err := asError(d.problems); err != nil {
		return nil, err
	}
	return inv, nil
}

// decoder decodes a YAML document into the inventory's types strictly:
// unknown keys, duplicate keys, wrong kinds, anchors and clear secrets are
// problems naming the line and the field path. It records each field's line.
type decoder struct {
	file     string
	origins  map[string]origin
	problems []Problem
	bad      []string // field paths with a decoding problem
}

func (d *decoder) fail(line int, field, msg, expected string) {
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Field: field, Message: msg, Expected: expected})
	d.bad = append(d.bad, field)
}

// covers reports whether field is, or is inside, a field that failed to decode.
func (d *decoder) covers(field string) bool {
	for _, b := range d.bad {
		if b == "" || field == b || strings.HasPrefix(field, b+".") || strings.HasPrefix(field, b+"[") {
			return true
		}
	}
	return false
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data as exactly one YAML document and decodes it into inv.
func (d *decoder) document(data []byte, inv *Inventory) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if err != nil && !errors.Is(err, io.EOF) {
		d.syntax(err)
		return
	}
	if err != nil || len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null" {
		d.fail(0, "", "the file is empty", "an inventory, see examples/inventory.yaml")
		return
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		// Not a failure of the first document's fields: they are still checked.
		d.problems = append(d.problems, Problem{File: d.file, Line: next.Line,
			Message: "a second YAML document starts here", Expected: "one document per inventory file"})
	case !errors.Is(err, io.EOF):
		d.syntax(err)
	}
	d.value(doc.Content[0], reflect.ValueOf(inv).Elem(), "")
}

// syntax reports a YAML syntax error.
func (d *decoder) syntax(err error) {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.fail(line, "", "invalid YAML: "+m[2], "")
		return
	}
	d.fail(0, "", "invalid YAML: "+strings.TrimPrefix(err.Error(), "yaml: "), "")
}

var durationType = reflect.TypeFor[time.Duration]()

// value decodes node n into v, the field at path.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	// Anchors and aliases are refused, but a value still decodes (an alias
	// only when it names a single value) so that one mistake does not make
	// others up: a missing role, say.
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		d.problems = append(d.problems, Problem{File: d.file, Line: n.Line, Field: path,
			Message: "YAML anchors and aliases are not supported", Expected: "write the value out"})
		if n.Kind == yaml.AliasNode {
			if n.Alias == nil || n.Alias.Kind != yaml.ScalarNode {
				return
			}
			n = n.Alias
		}
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an explicit empty value leaves the field unset
	}
	if v.Kind() == reflect.Pointer {
		// Set even when part of it fails: its other fields still get checked.
		elem := reflect.New(v.Type().Elem())
		d.value(n, elem.Elem(), path)
		v.Set(elem)
		return
	}
	switch {
	case v.Kind() == reflect.Struct:
		d.mapping(n, v, path)
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n.Line, path, "is "+describe(n), "a list")
			return
		}
		list := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.origins[p] = origin{line: item.Line}
			d.value(item, list.Index(i), p)
		}
		v.Set(list)
	default:
		d.scalar(n, v, path)
	}
}

// mapping decodes a mapping node into the struct v.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n.Line, path, "is "+describe(n), "a mapping of fields")
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		p := join(path, key)
		if k.Kind != yaml.ScalarNode || k.Anchor != "" {
			d.fail(k.Line, path, "has a key that is not a plain name", "field names such as "+fields.names[0])
			continue
		}
		if key == "<<" {
			d.fail(k.Line, p, "YAML merge keys are not supported", "write the fields out")
			continue
		}
		if first, dup := seen[key]; dup {
			d.fail(k.Line, p, fmt.Sprintf("is set twice (first on line %d)", first), "each field once")
			continue
		}
		seen[key] = k.Line
		f, ok := fields.byName[key]
		if !ok {
			d.unknown(k.Line, p, key, fields)
			continue
		}
		d.origins[p] = origin{line: k.Line}
		d.value(val, v.Field(f), p)
	}
}

// secretWords mark a key that would hold a secret in clear.
var secretWords = []string{"password", "passwd", "passphrase", "secret", "token", "privatekey", "accesskey", "credential"}

// retiredFields are fields boot once had and reads no more, with what to do.
var retiredFields = map[string]string{
	"packages.versions.cniPlugins": "remove it: the CNI plugins come from the bundle at the version it pins, or online " +
		"with the kubernetes-cni package the kubelet's package depends on",
}

// unknown reports an unknown key: a retired field, a clear secret, a likely
// typo, or neither. The value is never echoed (it may be a secret).
func (d *decoder) unknown(line int, path, key string, fields structFields) {
	if hint, ok := retiredFields[path]; ok {
		d.fail(line, path, "is no longer read by boot", hint)
		return
	}
	lower := strings.ToLower(key)
	// A name, a path or a file is not the secret itself (e.g. a misspelt passwordEnv).
	reference := strings.Contains(lower, "env") || strings.Contains(lower, "path") || strings.Contains(lower, "file")
	for _, w := range secretWords {
		if reference || !strings.Contains(lower, w) {
			continue
		}
		hint := "reference an environment variable with a field ending in Env"
		if env := fields.closest(key + "Env"); env != "" {
			hint = "use " + env + ": NAME, the name of an environment variable holding it"
		} else if w == "privatekey" {
			if kp := fields.closest("keyPath"); kp != "" {
				hint = "use keyPath: the path of the private key file"
			}
		}
		d.fail(line, path, "secrets are never stored in the inventory", hint)
		return
	}
	expected := "known fields: " + strings.Join(fields.names, ", ")
	if c := fields.closest(key); c != "" {
		expected = "did you mean " + c + "?"
	}
	d.fail(line, path, "unknown field", expected)
}

// scalar decodes a scalar node into v (string, int, bool or time.Duration).
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	want := describeType(v.Type())
	if n.Kind != yaml.ScalarNode {
		d.fail(n.Line, path, "is "+describe(n), want)
		return
	}
	tag := n.ShortTag()
	switch {
	case v.Type() == durationType:
		dur, err := time.ParseDuration(n.Value)
		if tag != "!!str" || err != nil {
			d.fail(n.Line, path, fmt.Sprintf("%s is not a duration", quote(n.Value)), want)
			return
		}
		v.SetInt(int64(dur))
		return
	case v.Kind() == reflect.String && !plainTags[tag]:
		d.fail(n.Line, path, "has the YAML tag "+tag, "a plain value")
		return
	case v.Kind() == reflect.Int && tag != "!!int",
		v.Kind() == reflect.Bool && tag != "!!bool":
		d.fail(n.Line, path, fmt.Sprintf("%s is not %s", quote(n.Value), want), "")
		return
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		d.fail(n.Line, path, fmt.Sprintf("%s is not %s", quote(n.Value), want), "")
	}
}

// plainTags are the tags of a plain scalar that a text field takes as written.
var plainTags = map[string]bool{"!!str": true, "!!int": true, "!!float": true, "!!bool": true, "!!timestamp": true}

// describe names the kind of a node for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return "the value " + quote(n.Value)
}

// describeType says what a Go field type expects.
func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 10s or 1m30s"
	case t.Kind() == reflect.Int:
		return "a whole number"
	case t.Kind() == reflect.Bool:
		return "true or false"
	}
	return "a single value"
}

// quote quotes a value for a message, shortened so that a message stays one
// readable line. Only used for fields that never hold secrets.
func quote(s string) string {
	const max = 40
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "..."
	}
	return strconv.Quote(s)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// structFields is the YAML view of a struct type.
type structFields struct {
	names  []string       // in declaration order
	byName map[string]int // yaml key -> field index
}

func fieldsOf(t reflect.Type) structFields {
	fs := structFields{byName: map[string]int{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		fs.names = append(fs.names, name)
		fs.byName[name] = i
	}
	return fs
}

// closest returns the known field nearest to key (same letters ignoring
// case, or at most two edits away), or "".
func (fs structFields) closest(key string) string {
	best, bestDist := "", 3
	for _, name := range fs.names {
		if strings.EqualFold(name, key) {
			return name
		}
		if dist := editDistance(strings.ToLower(name), strings.ToLower(key)); dist < bestDist {
			best, bestDist = name, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// EnvVar is an environment variable that overrides one inventory field.
type EnvVar struct {
	Name  string // e.g. BOOT_SSH_PORT
	Field string // e.g. ssh.port
}

// leaf is an overridable field: its path and how to reach it from Inventory.
type leaf struct {
	path  string
	index []int // field indexes, through pointers to structs
	typ   reflect.Type
}

// envLeaves lists every scalar field reachable from Inventory through
// structs and pointers to structs, not through lists, except apiVersion and
// kind (which say what the file is and are not overridable).
func envLeaves() []leaf {
	var out []leaf
	var walk func(t reflect.Type, path string, index []int)
	walk = func(t reflect.Type, path string, index []int) {
		fs := fieldsOf(t)
		for _, name := range fs.names {
			i := fs.byName[name]
			ft := t.Field(i).Type
			p := join(path, name)
			idx := append(append([]int(nil), index...), i)
			if ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct {
				ft = ft.Elem()
			}
			switch {
			case ft.Kind() == reflect.Slice:
				continue
			case ft.Kind() == reflect.Struct && ft != durationType:
				walk(ft, p, idx)
			case p != "apiVersion" && p != "kind":
				out = append(out, leaf{path: p, index: idx, typ: ft})
			}
		}
	}
	walk(reflect.TypeFor[Inventory](), "", nil)
	return out
}

// envName is the variable that overrides the field at path: EnvPrefix, "_",
// and the path upper-cased with "." replaced by "_".
func envName(path string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// EnvVars lists every environment variable that overrides a field, in
// schema order.
func EnvVars() []EnvVar {
	leaves := envLeaves()
	out := make([]EnvVar, len(leaves))
	for i, l := range leaves {
		out[i] = EnvVar{Name: envName(l.path), Field: l.path}
	}
	return out
}

// overrideFromEnv sets every field whose BOOT_* variable is set and not
// empty, through viper, and records the variable as the field's origin.
func overrideFromEnv(inv *Inventory) []Problem {
	v := viper.New()
	leaves := envLeaves()
	for _, l := range leaves {
		v.MustBindEnv(l.path, envName(l.path))
	}
	var problems []Problem
	for _, l := range leaves {
		if !v.IsSet(l.path) {
			continue
		}
		raw := v.GetString(l.path)
		name := envName(l.path)
		val, ok := parseEnv(raw, l.typ)
		if !ok {
			problems = append(problems, Problem{File: inv.Path, Env: name, Field: l.path,
				Message: fmt.Sprintf("%s is not %s", quote(raw), describeType(val.Type()))})
			continue
		}
		field := reflect.ValueOf(inv).Elem()
		segments := strings.Split(l.path, ".")
		for depth, i := range l.index {
			if field.Kind() == reflect.Pointer {
				if field.IsNil() {
					// A section the file does not have: it comes from this variable.
					field.Set(reflect.New(field.Type().Elem()))
					inv.origins[strings.Join(segments[:depth], ".")] = origin{env: name}
				}
				field = field.Elem()
			}
			field = field.Field(i)
		}
		if field.Kind() == reflect.Pointer {
			p := reflect.New(l.typ.Elem())
			p.Elem().Set(val)
			val = p
		}
		field.Set(val)
		inv.origins[l.path] = origin{env: name}
	}
	return problems
}

// parseEnv parses an environment value for a field of type t (a string,
// int, bool, time.Duration, or a pointer to one of them).
func parseEnv(raw string, t reflect.Type) (reflect.Value, bool) {
	base := t
	if t.Kind() == reflect.Pointer {
		base = t.Elem()
	}
	out := reflect.New(base).Elem()
	switch {
	case base == durationType:
		dur, err := time.ParseDuration(raw)
		if err != nil {
			return out, false
		}
		out.SetInt(int64(dur))
	case base.Kind() == reflect.Int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return out, false
		}
		out.SetInt(int64(n))
	case base.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return out, false
		}
		out.SetBool(b)
	default:
		out.SetString(raw)
	}
	return out, true
}
