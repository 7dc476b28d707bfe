package inventory

import (
	"errors"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader. No input may panic, and
// every outcome must be well formed: either a valid inventory (which
// validates again and has its one control plane) or an *Error whose every
// problem has a message and a line inside the input.
//
// Seeds: testdata/fuzz/FuzzLoad. Run: go test ./inventory -run '^$' -fuzz FuzzLoad -fuzztime 20s
func FuzzLoad(f *testing.F) {
	isolate(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := load("fuzz.yaml", data)
		if err == nil {
			if inv == nil {
				t.Fatal("no inventory and no error")
			}
			if err := inv.Validate(); err != nil {
				t.Fatalf("a loaded inventory does not validate again: %v", err)
			}
			if inv.ControlPlane().Name == "" || len(inv.Workers()) == 0 {
				t.Fatal("a valid inventory without its control plane or workers")
			}
			for _, h := range inv.Hosts {
				if r := inv.SSHFor(h); r.Port < 1 || r.User == "" || r.Addr() == "" {
					t.Fatalf("resolved SSH for %s: %+v", h.Name, r)
				}
			}
			return
		}
		var ie *Error
		if !errors.As(err, &ie) || len(ie.Problems) == 0 {
			t.Fatalf("err = %T %v, want *Error with problems", err, err)
		}
		// YAML also breaks lines at \r (and libyaml at NEL, LS and PS).
		lines := 1
		for _, brk := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
			lines += strings.Count(string(data), brk)
		}
		for _, p := range ie.Problems {
			if p.Message == "" || p.Line < 0 || p.Line > lines {
				t.Fatalf("malformed problem %+v (input has %d lines)", p, lines)
			}
		}
	})
}
