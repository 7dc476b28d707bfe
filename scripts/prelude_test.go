package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootctl/boot/internal/quote"
	"github.com/bootctl/boot/internal/testenv"
)

// runPrelude runs the shared prelude of a rendered script followed by body,
// in a temporary folder, with the script's arguments args.
func runPrelude(t *testing.T, body string, args ...string) (string, error) {
	t.Helper()
	s, err := KubeBundle(KubeBundleParams{StagingDir: "/unused"})
	if err != nil {
		t.Fatal(err)
	}
	prelude, _, ok := strings.Cut(s, "\n# Parameters.\n")
	if !ok {
		t.Fatal("no parameter block")
	}
	cmd := exec.Command("bash", append([]string{"-c", prelude + "\n" + body, "prelude"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestPreludeChangesOnlyWhatDiffers proves the check-before-change helpers
// every script uses: a file is installed when missing or different (content
// or mode), left alone otherwise, and check mode reports without changing.
func TestPreludeChangesOnlyWhatDiffers(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "etc", "x.conf")
	put := func(content, perm string, args ...string) string {
		t.Helper()
		body := "if printf %s " + quote.Shell(content) + " | put_content " + quote.Shell(f) + " " + perm + "; then echo status=changed; else echo status=same; fi"
		out, err := runPrelude(t, body, args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return out
	}
	stat := func() (string, os.FileMode) {
		t.Helper()
		b, err := os.ReadFile(f)
		if err != nil {
			return "", 0
		}
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		return string(b), fi.Mode().Perm()
	}

	if out := put("a=1\n", "0644", "check"); out != "would: install "+f+"\nstatus=changed\n" {
		t.Errorf("check on a missing file: %q", out)
	}
	if c, _ := stat(); c != "" {
		t.Fatal("check mode wrote the file")
	}
	if out := put("a=1\n", "0644"); out != "changed: install "+f+"\nstatus=changed\n" {
		t.Errorf("first run: %q", out)
	}
	if c, m := stat(); c != "a=1\n" || m != 0o644 {
		t.Errorf("file is %q mode %o", c, m)
	}
	for _, args := range [][]string{nil, {"check"}} {
		if out := put("a=1\n", "0644", args...); out != "status=same\n" {
			t.Errorf("second run %v: %q, want no change", args, out)
		}
	}
	if out := put("a=1\n", "0600"); out != "changed: install "+f+"\nstatus=changed\n" {
		t.Errorf("mode change: %q", out)
	}
	if _, m := stat(); m != 0o600 {
		t.Errorf("mode %o, want 600", m)
	}
	if out := put("a=2\n", "0600", "check"); !strings.HasPrefix(out, "would: ") {
		t.Errorf("check on changed content: %q", out)
	}
	if c, _ := stat(); c != "a=1\n" {
		t.Error("check mode changed the file")
	}
	if out := put("a=2\n", "0600"); out != "changed: install "+f+"\nstatus=changed\n" {
		t.Errorf("content change: %q", out)
	}
	if c, _ := stat(); c != "a=2\n" {
		t.Errorf("content %q", c)
	}

	// change runs its command in apply mode only.
	marker := filepath.Join(dir, "ran")
	out, err := runPrelude(t, "change 'touch marker' touch "+quote.Shell(marker), "check")
	if err != nil || out != "would: touch marker\n" {
		t.Errorf("check: %v %q", err, out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("check mode ran the command")
	}
	out, err = runPrelude(t, "change 'touch marker' touch "+quote.Shell(marker))
	if err != nil || out != "changed: touch marker\n" {
		t.Errorf("apply: %v %q", err, out)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Error("apply mode did not run the command")
	}
	// A failing change fails the script (set -e).
	if out, err := runPrelude(t, "change 'fail' false\necho after"); err == nil || strings.Contains(out, "after") {
		t.Errorf("a failed change did not stop the script: %v %q", err, out)
	}
	// Also where set -e does not apply: a put_file tested by if, whose
	// install fails (its destination's folder is a file).
	blocker := filepath.Join(dir, "blocker")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	body := "if put_file " + quote.Shell(marker) + " " + quote.Shell(filepath.Join(blocker, "f")) + " 0644; then echo status=changed; fi\necho after"
	if out, err := runPrelude(t, body); err == nil || strings.Contains(out, "after") || !strings.Contains(out, "error: install "+blocker+"/f failed") {
		t.Errorf("a failed put_file under if did not stop the script: %v %q", err, out)
	}
}

// TestAptHelpers runs the scripts' apt helpers against this machine's real
// dpkg database and apt package lists.
func TestAptHelpers(t *testing.T) {
	needTool(t, "apt-cache", "a Debian or Ubuntu machine")
	madison, err := exec.Command("apt-cache", "madison", "openssh-server").Output()
	if err != nil || len(madison) == 0 {
		testenv.Need(t, "apt-cache madison openssh-server lists nothing (run apt-get update): %v", err)
	}
	// The newest listed version, e.g. 1:9.2p1-2+deb12u10, and its upstream
	// version without epoch and Debian revision, e.g. 9.2p1.
	first, _, _ := strings.Cut(string(madison), "\n")
	fields := strings.Split(first, "|")
	newest := strings.TrimSpace(fields[1])
	upstream := newest
	if _, after, ok := strings.Cut(upstream, ":"); ok {
		upstream = after
	}
	upstream, _, _ = strings.Cut(upstream, "-")
	bash, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "bash").Output()
	if err != nil {
		t.Fatal(err)
	}

	s, err := HostPrep(HostPrepParams{Hostname: "a", Address: "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	prelude, _, _ := strings.Cut(s, "\n# Parameters.\n")
	b, err := render("apt", nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ call, want string }{
		{"apt_version openssh-server " + quote.Shell(upstream), newest},
		{"apt_version openssh-server " + quote.Shell(newest), newest},
		{"apt_version openssh-server 0.0.1", ""},
		{"apt_version no-such-package-boot 1.0", ""},
		{"installed_version bash", string(bash)},
		{"installed_version no-such-package-boot", ""},
	}
	// One bash for all calls (apt-cache is slow): each result ends in NUL.
	script := prelude + "\n" + string(b)
	for _, c := range cases {
		script += "\nv=$(" + c.call + ")\nprintf '%s\\0' \"$v\""
	}
	out, err := exec.Command("bash", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	results := strings.Split(string(out), "\x00")
	if len(results) != len(cases)+1 {
		t.Fatalf("output %q", out)
	}
	for i, c := range cases {
		if results[i] != c.want {
			t.Errorf("%s = %q, want %q", c.call, results[i], c.want)
		}
	}
}

// TestPreludeRemembersSameFiles proves put_file's record of files found
// equal: an applying run records the pair (a checking run writes nothing),
// a later check trusts the record without reading the files, and a
// destination changed by hand is found although its size and modification
// time were put back (its change time moved).
func TestPreludeRemembersSameFiles(t *testing.T) {
	dir := t.TempDir()
	src, dest, rec := filepath.Join(dir, "src"), filepath.Join(dir, "bin", "tool"), filepath.Join(dir, "same-files")
	if err := os.WriteFile(src, []byte("tool v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	put := func(args ...string) string {
		t.Helper()
		body := "same_files=" + quote.Shell(rec) + "\nif put_file " + quote.Shell(src) + " " + quote.Shell(dest) + " 0755; then echo status=changed; else echo status=same; fi"
		out, err := runPrelude(t, body, args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return out
	}
	if out := put("check"); !strings.HasSuffix(out, "status=changed\n") {
		t.Fatalf("check on a missing file: %q", out)
	}
	if _, err := os.Stat(rec); !os.IsNotExist(err) {
		t.Fatalf("a checking run wrote the record: %v", err)
	}
	if out := put(); out != "changed: install "+dest+"\nstatus=changed\n" {
		t.Fatalf("install: %q", out)
	}
	lines, err := os.ReadFile(rec)
	if err != nil || strings.Count(string(lines), "\n") != 1 || !strings.Contains(string(lines), "|"+dest+" ") {
		t.Fatalf("record after the install: %q, %v", lines, err)
	}
	if out := put("check"); out != "status=same\n" {
		t.Fatalf("check after the install: %q", out)
	}
	// Same size and modification time, other bytes.
	st, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dest, []byte("tool v2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(dest, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if out := put("check"); !strings.HasSuffix(out, "status=changed\n") {
		t.Fatalf("check after a change by hand: %q", out)
	}
	if out := put(); out != "changed: install "+dest+"\nstatus=changed\n" {
		t.Fatalf("re-install: %q", out)
	}
	if lines, _ := os.ReadFile(rec); strings.Count(string(lines), "\n") != 1 {
		t.Fatalf("the record keeps one line per destination: %q", lines)
	}
	// A record naming both files' current identities is trusted without
	// comparing them: that is what spares a re-run reading the binaries.
	if err := os.WriteFile(dest, []byte("tool v3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ids, err := exec.Command("stat", "-c", "%n %s %i %.9Y %.9Z", "--", src, dest).Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rec, []byte(strings.ReplaceAll(string(ids), "\n", "|")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := put("check"); out != "status=same\n" {
		t.Fatalf("check with a record of the current identities: %q (the files were compared)", out)
	}
}
