// Package quote turns a string into a literal of another language that
// reads back as exactly that string: one function per language boot writes
// values into (POSIX shell, YAML).
package quote

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Shell returns s as one word that a POSIX shell (sh, bash) reads back as
// exactly s: single quotes around it, each single quote inside closed,
// escaped and reopened. Nothing inside is expanded ($, `, \, newlines stay
// literal); the empty string becomes a pair of single quotes.
func Shell(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// YAML returns s as a YAML double-quoted scalar: a JSON string (which YAML
// reads as one) with <, > and & left as they are, and the characters YAML
// does not keep raw in a document (DEL, the C1 controls, NEL which it reads
// as a line break, U+FEFF, U+FFFE/F) written as \u escapes. YAML text is UTF-8, so s must be valid UTF-8; the
// error says so without quoting s.
func YAML(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("quote: string is not valid UTF-8")
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return "", err
	}
	out := strings.TrimSuffix(b.String(), "\n")
	if strings.IndexFunc(out, yamlEscapes) < 0 {
		return out, nil
	}
	var e strings.Builder
	for _, r := range out {
		if yamlEscapes(r) {
			fmt.Fprintf(&e, `\u%04X`, r)
		} else {
			e.WriteRune(r)
		}
	}
	return e.String(), nil
}

// yamlEscapes reports whether r, left raw by JSON (which escapes the C0
// controls), must be escaped in YAML: outside YAML 1.2's printable set, or
// NEL, a line break that a quoted scalar folds into a space.
func yamlEscapes(r rune) bool {
	return r == 0x7F || (r >= 0x80 && r <= 0x9F) || r == 0xFEFF || r == 0xFFFE || r == 0xFFFF
}
