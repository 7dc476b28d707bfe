package bundle

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

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

func TestParseDepends(t *testing.T) {
	// apt-cache depends --recurse output: alternatives (|), a virtual
	// package with its providers, and a real package another provides.
	out := `redis-tools
  Depends: libc6
  Depends: libsystemd0
    libelogind0
grep
 |Depends: dpkg
  Depends: install-info
usrmerge
  Depends: <perl:any>
    perl
  Depends: libfile-find-rule-perl
  Recommends: nothing-recommended
<perl:any>
libc6
  Depends: libgcc-s1
`
	got := parseDepends([]byte(out))
	want := map[string][]string{
		"redis-tools": {"libc6", "libsystemd0"},
		"grep":        {"dpkg", "install-info"},
		"usrmerge":    {"perl", "libfile-find-rule-perl"},
		"libc6":       {"libgcc-s1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseDepends (-want +got):\n%s", diff)
	}
}

func TestDebianClosure(t *testing.T) {
	needApt(t)
	ctx := context.Background()
	// Without pruning, the closure is apt-cache's whole recursive listing
	// minus notInImage and the providers of real packages (none among
	// the network tools): what the kube-proxy and flannel layers hold.
	got, err := debianClosure(ctx, netSet.pkgs, netSet.prune)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("apt-cache", append([]string{"depends", "--recurse", "--no-recommends", "--no-suggests",
		"--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"}, netSet.pkgs...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "<") && !notInImage[l] && !slices.Contains(listed, l) {
			listed = append(listed, l)
		}
	}
	slices.Sort(listed)
	if diff := cmp.Diff(listed, got); diff != "" {
		t.Errorf("network tools closure differs from apt-cache's listing (-apt +closure):\n%s", diff)
	}

	redis, err := debianClosure(ctx, redisSet.pkgs, redisSet.prune)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"redis-server", "redis-tools", "libc6", "libjemalloc2", "liblzf1", "libssl3", "libsystemd0", "dash", "grep"} {
		if !slices.Contains(redis, p) {
			t.Errorf("redis closure %q lacks %s", redis, p)
		}
	}
	// Only maintainer scripts and init systems need these; libelogind0
	// would overwrite libsystemd0's library.
	for _, p := range []string{"adduser", "passwd", "perl-base", "init-system-helpers", "dpkg", "libelogind0", "libpam0g"} {
		if slices.Contains(redis, p) {
			t.Errorf("redis closure holds %s", p)
		}
	}
	if _, err := debianClosure(ctx, []string{"no-such-package-boot-test"}, nil); err == nil {
		t.Error("closure of an unknown package succeeded")
	}
}
