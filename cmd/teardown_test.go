package cmd

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/bootctl/boot/inventory"
)

// TestTeardownConfirmation: teardown goes on only when the cluster's name is
// typed; anything else, or nothing, stops it with exit code 2 before any
// host is contacted.
func TestTeardownConfirmation(t *testing.T) {
	inv, err := inventory.Load("../examples/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		input string
		ok    bool
		want  string
	}{
		{inv.Metadata.Name + "\n", true, ""},
		{"  " + inv.Metadata.Name + "  \n", true, ""},
		{"yes\n", false, "is not the cluster's name"},
		{"", false, "give --yes"},
	} {
		var prompt bytes.Buffer
		err := confirm(&prompt, strings.NewReader(tc.input), inv)
		if !strings.Contains(prompt.String(), inv.Metadata.Name) || !strings.Contains(prompt.String(), inv.Hosts[0].Name) {
			t.Errorf("the prompt does not name the cluster and its hosts: %q", prompt.String())
		}
		if tc.ok {
			if err != nil {
				t.Errorf("input %q: %v", tc.input, err)
			}
			continue
		}
		var ee *exitError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &ee) || exitCode(err) != ExitInvalid {
			t.Errorf("input %q: error %v (exit %d), want exit %d mentioning %q", tc.input, err, exitCode(err), ExitInvalid, tc.want)
		}
	}
}
