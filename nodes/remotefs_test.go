package nodes

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootctl/boot/internal/sshtest"
	"github.com/bootctl/boot/internal/testenv"
)

// oddDir makes a local directory (the sshd under test runs on this
// machine) whose name has spaces, quotes and shell metacharacters.
func oddDir(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), `it's a "dir" $(touch x) *`)
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func writeFile(t *testing.T, path string, content []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, content, mode); err != nil {
		t.Fatal(err)
	}
}

// wantFileError checks that err names the host and the path and says what.
func wantFileError(t *testing.T, err error, host, path, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error for %s", path)
	}
	if msg := err.Error(); !strings.Contains(msg, host+":") || !strings.Contains(msg, path) || !strings.Contains(msg, what) {
		t.Fatalf("error does not name host %s and path %s and say %q: %v", host, path, what, err)
	}
}

func TestReadFile(t *testing.T) {
	key := sshtest.NewKey(t, "")
	_, cfg := rootServer(t, key)
	var stream testenv.Buffer
	h := mustDial(t, cfg, WithOutput(&stream))
	ctx := testCtx(t)
	dir := oddDir(t)

	// Exact bytes: no trailing newline, a NUL, CRLF, a line that looks like
	// sudo's markers.
	content := []byte("line one\r\nbinary \x00 byte\n@@boot-start-x@@\nno newline")
	f := filepath.Join(dir, `file 'with' "quotes".txt`)
	writeFile(t, f, content, 0o600)
	got, err := h.ReadFile(ctx, f)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("ReadFile = %q, %v; want %q", got, err, content)
	}
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, nil, 0o600)
	if got, err := h.ReadFile(ctx, empty); err != nil || len(got) != 0 {
		t.Fatalf("empty file: %q, %v", got, err)
	}
	link := filepath.Join(dir, "link to file")
	if err := os.Symlink(f, link); err != nil {
		t.Fatal(err)
	}
	if got, err := h.ReadFile(ctx, link); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("through a link: %q, %v", got, err)
	}

	missing := filepath.Join(dir, "no such file")
	_, err = h.ReadFile(ctx, missing)
	wantFileError(t, err, "node1", missing, "file does not exist")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: not fs.ErrNotExist: %v", err)
	}
	_, err = h.ReadFile(ctx, dir)
	wantFileError(t, err, "node1", dir, "not a regular file")
	_, err = h.ReadFile(ctx, "/dev/zero")
	wantFileError(t, err, "node1", "/dev/zero", "not a regular file")

	// The size bound: a file of exactly the bound is read, one byte more is
	// refused.
	limit := filepath.Join(dir, "at the limit")
	writeFile(t, limit, bytes.Repeat([]byte("x"), maxReadFile), 0o600)
	if got, err := h.ReadFile(ctx, limit); err != nil || len(got) != maxReadFile {
		t.Fatalf("file at the limit: %d bytes, %v", len(got), err)
	}
	big := filepath.Join(dir, "too big")
	writeFile(t, big, nil, 0o600)
	if err := os.Truncate(big, maxReadFile+1); err != nil {
		t.Fatal(err)
	}
	_, err = h.ReadFile(ctx, big)
	wantFileError(t, err, "node1", big, "more than the limit of 4 MiB")

	if s := stream.String(); s != "" {
		t.Errorf("ReadFile streamed output: %q", s)
	}
}

// The operations run as root through sudo for a user that needs it, with
// or without a sudo password, and the password shows nowhere.
func TestFileOpsThroughSudo(t *testing.T) {
	key := sshtest.NewKey(t, "")
	s := userServer(t, key, sshtest.SudoUser, sshtest.SudoPasswordUser, sshtest.PasswordUser)
	dir := oddDir(t)
	secret := filepath.Join(dir, "root only")
	writeFile(t, secret, []byte("root's\n"), 0o600) // as root: the sudo users cannot read it themselves

	for _, user := range []string{sshtest.SudoUser, sshtest.SudoPasswordUser} {
		t.Run(user, func(t *testing.T) {
			cfg := userConfig(t, s, key, user)
			if user == sshtest.SudoPasswordUser {
				t.Setenv("BOOT_TEST_SUDO_PW", sshtest.SudoPasswordUserPassword)
				cfg.SudoPassword = EnvSecret("BOOT_TEST_SUDO_PW")
			}
			log, logs := testLogger()
			var stream testenv.Buffer
			h := mustDial(t, cfg, WithLogger(log), WithOutput(&stream))
			ctx := testCtx(t)
			if got, err := h.ReadFile(ctx, secret); err != nil || string(got) != "root's\n" {
				t.Fatalf("ReadFile: %q, %v", got, err)
			}
			if ok, err := h.Exists(ctx, secret); err != nil || !ok {
				t.Fatalf("Exists: %v, %v", ok, err)
			}
			sums, err := h.Sha256(ctx, secret)
			if want := sum([]byte("root's\n")); err != nil || sums[secret].SHA256 != want {
				t.Fatalf("Sha256: %v, %v", sums, err)
			}
			sub := filepath.Join(dir, user, "made")
			if err := h.MkdirAll(ctx, 0o700, sub); err != nil {
				t.Fatal(err)
			}
			if st, err := os.Stat(sub); err != nil || st.Mode().Perm() != 0o700 {
				t.Fatalf("MkdirAll: %v %v", st, err)
			}
			if stream.String() != "" {
				t.Errorf("file operations streamed output: %q", stream.String())
			}
			if strings.Contains(logs.String(), sshtest.SudoPasswordUserPassword) {
				t.Error("the sudo password is in the log")
			}
		})
	}

	t.Run("no sudo rights", func(t *testing.T) {
		h := mustDial(t, userConfig(t, s, key, sshtest.PasswordUser))
		_, err := h.ReadFile(testCtx(t), secret)
		if !errors.Is(err, ErrSudo) || !strings.Contains(err.Error(), secret) {
			t.Fatalf("want ErrSudo naming %s, got %v", secret, err)
		}
	})
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestExistsMkdirAll(t *testing.T) {
	key := sshtest.NewKey(t, "")
	_, cfg := rootServer(t, key)
	var stream testenv.Buffer
	h := mustDial(t, cfg, WithOutput(&stream))
	ctx := testCtx(t)
	dir := oddDir(t)

	file := filepath.Join(dir, "a 'file'")
	writeFile(t, file, []byte("x"), 0o644)
	dangling := filepath.Join(dir, "dangling link")
	if err := os.Symlink(filepath.Join(dir, "nothing"), dangling); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{file: true, dir: true, dangling: false, filepath.Join(dir, "none"): false} {
		if got, err := h.Exists(ctx, path); err != nil || got != want {
			t.Errorf("Exists(%q) = %v, %v; want %v", path, got, err, want)
		}
	}

	// MkdirAll makes the parents 0755 and the directory itself mode; an
	// existing directory gets mode too.
	top := filepath.Join(dir, `new "top"`)
	leaf := filepath.Join(top, "mid dle", "leaf")
	if err := h.MkdirAll(ctx, 0o700, leaf, filepath.Join(dir, "second")); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{top: 0o755, filepath.Dir(leaf): 0o755, leaf: 0o700, filepath.Join(dir, "second"): 0o700} {
		if st, err := os.Stat(path); err != nil || !st.IsDir() || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want a directory with mode %o", path, st, err, want)
		}
	}
	if err := h.MkdirAll(ctx, 0o750, leaf); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(leaf); err != nil || st.Mode().Perm() != 0o750 {
		t.Errorf("existing directory: %v %v, want mode 750", st, err)
	}
	err := h.MkdirAll(ctx, 0o755, filepath.Join(file, "sub"))
	wantFileError(t, err, "node1", filepath.Join(file, "sub"), "exit status 1")

	if s := stream.String(); s != "" {
		t.Errorf("file operations streamed output: %q", s)
	}
}

func TestSha256(t *testing.T) {
	key := sshtest.NewKey(t, "")
	_, cfg := rootServer(t, key)
	h := mustDial(t, cfg)
	ctx := testCtx(t)
	dir := oddDir(t)

	a := filepath.Join(dir, "a file")
	b := filepath.Join(dir, `b 'quoted' "twice"`)
	dash := filepath.Join(dir, "-")
	newline := filepath.Join(dir, "new\nline\\back")
	writeFile(t, a, []byte("alpha"), 0o644)
	writeFile(t, b, nil, 0o600)
	writeFile(t, dash, []byte("-\n"), 0o644)
	writeFile(t, newline, []byte("n"), 0o644)
	missing := filepath.Join(dir, "missing")
	got, err := h.Sha256(ctx, a, missing, b, dir, dash, newline)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{a: sum([]byte("alpha")), b: sum(nil), dash: sum([]byte("-\n")), newline: sum([]byte("n"))}
	if len(got) != len(want) {
		t.Errorf("Sha256 = %v, want %v", got, want)
	}
	for p, s := range want {
		if got[p].SHA256 != s {
			t.Errorf("sha256 of %q = %q, want %q", p, got[p].SHA256, s)
		}
	}
	if got, err := h.Sha256(ctx); err != nil || len(got) != 0 {
		t.Errorf("no paths: %v, %v", got, err)
	}

	// A file's Stat stays while it is left alone, and changes when it is
	// written (same size, its modification time put back) or replaced.
	stats, err := h.Stats(ctx, a, missing, b)
	if err != nil || len(stats) != 2 || stats[a] != got[a].Stat || stats[b] != got[b].Stat || stats[a] == "" {
		t.Fatalf("Stats = %q, %v; Sha256's %q %q", stats, err, got[a].Stat, got[b].Stat)
	}
	before, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, a, []byte("ALPHA"), 0o644)
	if err := os.Chtimes(a, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	replaced := filepath.Join(dir, "replacement")
	writeFile(t, replaced, nil, 0o600)
	if err := os.Rename(replaced, b); err != nil {
		t.Fatal(err)
	}
	after, err := h.Stats(ctx, a, b)
	if err != nil || after[a] == stats[a] || after[b] == stats[b] {
		t.Errorf("Stats after writing a and replacing b = %q, before %q (%v)", after, stats, err)
	}
}
