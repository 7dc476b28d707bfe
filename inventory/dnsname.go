package inventory

import (
	"regexp"
	"strings"
)

var dnsLabelCaseRe = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

// IsDNSName reports whether s is a syntactically valid DNS host name: labels
// of 1 to 63 letters (either case), digits and hyphens, neither starting nor
// ending with a hyphen, separated by dots; at most 253 characters without
// the optional final dot. The last label is not all digits, so that a
// mistyped IP address (10.0.0.256) is not taken for a name. It checks the
// spelling only and looks nothing up.
func IsDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if !dnsLabelCaseRe.MatchString(l) {
			return false
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}
