package cmd

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bootctl/boot/inventory"
)

// TestCertsRenewConfirmation: the renewal goes on only when the cluster's
// name is typed; anything else, or nothing, stops it with exit code 2.
func TestCertsRenewConfirmation(t *testing.T) {
	inv, err := inventory.Load("../examples/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		input string
		want  string // "" = goes on
	}{
		{inv.Metadata.Name + "\n", ""},
		{"yes\n", "is not the cluster's name"},
		{"", "give --yes"},
	} {
		var prompt bytes.Buffer
		err := confirmRenew(&prompt, strings.NewReader(tc.input), inv)
		if !strings.Contains(prompt.String(), inv.Metadata.Name) || !strings.Contains(prompt.String(), inv.ControlPlane().Name) {
			t.Errorf("the prompt does not name the cluster and its control plane: %q", prompt.String())
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("input %q: %v", tc.input, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != ExitInvalid):
			t.Errorf("input %q: error %v (exit %d), want exit %d mentioning %q", tc.input, err, exitCode(err), ExitInvalid, tc.want)
		}
	}
}

// TestCertsRenewBadInput: bad flags and a missing inventory exit 2 before
// anything is contacted.
func TestCertsRenewBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"certs", "renew"}, "no inventory"},
		{[]string{"certs", "renew", "-i", "../examples/inventory.yaml", "--timeout", "0s", "--yes"}, "--timeout 0s"},
		{[]string{"certs", "renew", "extra"}, "unknown command"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Execute(tc.args, &stdout, &stderr); code != ExitInvalid || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("boot %s: exit %d, stderr %q; want exit %d mentioning %q", strings.Join(tc.args, " "), code, stderr.String(), ExitInvalid, tc.want)
		}
	}
}
