package quote

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// nasty returns strings a careless quoter would let the shell or YAML
// interpret. A command substitution that ran would create pwn.
func nasty(pwn string) []string {
	return []string{
		"", "plain", "two words", "  lead and trail  ", "it's", "''", `"double"`, `back\slash\`, `\'`, `'\''`,
		"$(touch " + pwn + ")", "`touch " + pwn + "`", "${HOME}", "$HOME", "a;touch " + pwn, "a|b&c", "*", "?[a]",
		"!event", "~root", "#comment", "key: value # c", "- item", "{a: b}", "[a, b]", "'; touch " + pwn + "; '",
		"line\nbreak", "\n", "trailing newline\n", "tab\there", "cr\r\n", "\x1b[31mred", "del\x7f", "nel\u0085c1\u0080",
		"bom\ufeff", "nonchar\ufffe\uffff", "<a href=\"x\">&amp;</a>", "\u2028\u2029", "ünïcødé ✓ 😀", "%s%d", "null", "~", "true", "0x1F", "1e3",
		"- ", "? ", "&anchor", "*alias", "|", ">", "%YAML 1.2", "---", "...",
	}
}

func TestShellRoundTrip(t *testing.T) {
	dir := t.TempDir()
	pwn := filepath.Join(dir, "pwned")
	for _, v := range nasty(pwn) {
		out, err := exec.Command("sh", "-c", "printf %s "+Shell(v)).Output()
		if err != nil {
			t.Fatalf("sh on %q: %v", v, err)
		}
		if string(out) != v {
			t.Errorf("sh read %q back as %q (quoted %s)", v, out, Shell(v))
		}
	}
	if _, err := os.Stat(pwn); err == nil {
		t.Fatal("a quoted value ran a command")
	}
}

func TestShellIsOneWord(t *testing.T) {
	// Two quoted values stay two arguments, whatever they hold.
	a, b := "a b\nc", "'d' e"
	out, err := exec.Command("sh", "-c", "printf '<%s>' "+Shell(a)+" "+Shell(b)+" "+Shell("")).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "<" + a + "><" + b + "><>"; string(out) != want {
		t.Errorf("sh printed %q, want %q", out, want)
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	for _, v := range nasty("/nonexistent") {
		y, err := YAML(v)
		if err != nil {
			t.Fatalf("YAML(%q): %v", v, err)
		}
		if strings.ContainsAny(y, "\n\r") {
			t.Errorf("YAML(%q) = %s spans lines", v, y)
		}
		var doc struct {
			K string `yaml:"k"`
			L []string
		}
		// As a mapping value and as a flow sequence item.
		if err := yaml.Unmarshal([]byte("k: "+y+"\nl: ["+y+", "+y+"]\n"), &doc); err != nil {
			t.Errorf("YAML(%q) = %s does not parse: %v", v, y, err)
			continue
		}
		if doc.K != v || len(doc.L) != 2 || doc.L[0] != v || doc.L[1] != v {
			t.Errorf("YAML(%q) = %s read back as %q, %q", v, y, doc.K, doc.L)
		}
	}
}

func TestYAMLLeavesHTMLCharacters(t *testing.T) {
	y, err := YAML("a<b>&c")
	if err != nil {
		t.Fatal(err)
	}
	if y != `"a<b>&c"` {
		t.Errorf("YAML = %s, want \"a<b>&c\"", y)
	}
}

func TestYAMLRefusesInvalidUTF8(t *testing.T) {
	y, err := YAML("secret\xff")
	if err == nil {
		t.Fatalf("YAML of invalid UTF-8 = %s, want an error", y)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q quotes the value", err)
	}
}
