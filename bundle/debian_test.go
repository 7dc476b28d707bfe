package bundle

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/bootctl/boot/internal/testenv"
)

// needApt skips (or under CI fails) a test that needs Debian's apt with
// package lists (apt-get update).
func needApt(t *testing.T) {
	t.Helper()
	_, err := exec.LookPath("apt-cache")
	if err == nil {
		var out []byte
		out, err = exec.Command("apt-cache", "policy", "dash").Output()
		if err == nil && !strings.Contains(string(out), "Candidate: ") {
			err = exec.ErrNotFound
		}
	}
	if err != nil {
		testenv.Need(t, "apt-cache with package lists is needed (apt-get update): %v", err)
	}
}

func TestCandidateVersions(t *testing.T) {
	needApt(t)
	got, err := candidateVersions(context.Background(), []string{"dash", "iptables"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"dash", "iptables"} {
		out, err := exec.Command("apt-cache", "show", "--no-all-versions", p).Output()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), "\nVersion: "+got[p]+"\n") {
			t.Errorf("candidate of %s: %q is not the version apt-cache show reports", p, got[p])
		}
	}
	_, err = candidateVersions(context.Background(), []string{"dash", "no-such-package-boot-test"})
	if err == nil || !strings.Contains(err.Error(), "no-such-package-boot-test") {
		t.Errorf("unknown package: got %v, want an error naming it", err)
	}
}
