package inventory

import (
	"strings"
	"testing"
)

func TestIsDNSName(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	// name253 is three labels of 63 and one of 61: 253 characters.
	name253 := strings.Repeat(label63+".", 3) + strings.Repeat("b", 61)
	if len(name253) != 253 {
		t.Fatalf("name253 has %d characters", len(name253))
	}
	cases := []struct {
		name string
		want bool
	}{
		{"registry.example.com", true},
		{"registry.example.com.", true},
		{"localhost", true},
		{"Registry.Example.COM", true},
		{"a", true},
		{"x-1.lab.test", true},
		{"1a.example.com", true},
		{"node.0x1", true},
		{label63 + ".test", true},
		{name253, true},
		{name253 + ".", true},
		{"", false},
		{".", false},
		{"..", false},
		{".example.com", false},
		{"example..com", false},
		{"example.com..", false},
		{label63 + "a.test", false},
		{name253 + "b", false},
		{"-lead.example.com", false},
		{"trail-.example.com", false},
		{"under_score.example.com", false},
		{"space here.example.com", false},
		{"ünï.example.com", false},
		{"*.example.com", false},
		{"example.com:443", false},
		{"10.0.0.1", false},
		{"10.0.0.256", false},
		{"123", false},
		{"host.123.", false},
		{"::1", false},
		{"a\nb", false},
	}
	for _, c := range cases {
		if got := IsDNSName(c.name); got != c.want {
			t.Errorf("IsDNSName(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}
