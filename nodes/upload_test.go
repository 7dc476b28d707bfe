package nodes

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/sshtest"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

func TestUploadAtomic(t *testing.T) {
	key := sshtest.NewKey(t, "")
	_, cfg := rootServer(t, key)
	h := mustDial(t, cfg)
	dir := t.TempDir()
	path := filepath.Join(dir, "big file.bin")

	// Two large contents; a reader must only ever see one of them whole.
	a := bytes.Repeat([]byte("AAAAAAAAAAAAAAA\n"), 64*1024) // 1 MiB
	b := bytes.Repeat([]byte("BBBBBBBBBBBBBBB\n"), 48*1024) // 768 KiB
	sums := map[[32]byte]bool{sha256.Sum256(a): true, sha256.Sum256(b): true}
	if _, err := h.Upload(testCtx(t), a, path, 0o644); err != nil {
		t.Fatal(err)
	}

	var stop atomic.Bool
	var reads, partial atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			got, err := os.ReadFile(path)
			if err != nil {
				partial.Add(1)
				continue
			}
			reads.Add(1)
			if !sums[sha256.Sum256(got)] {
				partial.Add(1)
			}
			time.Sleep(time.Millisecond) // leave CPU to the uploads
		}
	}()
	for i := range 6 {
		content := a
		if i%2 == 0 {
			content = b
		}
		changed, err := h.Upload(testCtx(t), content, path, 0o644)
		if err != nil || !changed {
			t.Fatalf("upload %d: changed=%v err=%v", i, changed, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if reads.Load() == 0 {
		t.Fatal("the reader never read the file")
	}
	if n := partial.Load(); n > 0 {
		t.Fatalf("a reader saw a partial or missing file %d times (of %d reads)", n, reads.Load())
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, a) {
		t.Fatal("final content is not the last upload")
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want 1", len(entries))
	}
	t.Logf("%d reads during 6 uploads, none partial", reads.Load())
}

func TestUploadSkipsUnchanged(t *testing.T) {
	key := sshtest.NewKey(t, "")
	_, cfg := rootServer(t, key)
	h := mustDial(t, cfg)
	path := filepath.Join(t.TempDir(), "conf")
	content := []byte("setting = 1\n")

	changed, err := h.Upload(testCtx(t), content, path, 0o600)
	if err != nil || !changed {
		t.Fatalf("first upload: changed=%v err=%v", changed, err)
	}
	ino := inode(t, path)

	changed, err = h.Upload(testCtx(t), content, path, 0o600)
	if err != nil || changed {
		t.Fatalf("same content: changed=%v err=%v", changed, err)
	}
	if inode(t, path) != ino {
		t.Fatal("unchanged file was rewritten")
	}

	// Same content, other mode: only the mode changes.
	changed, err = h.Upload(testCtx(t), content, path, 0o640)
	if err != nil || !changed {
		t.Fatalf("mode change: changed=%v err=%v", changed, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 || inode(t, path) != ino {
		t.Fatalf("mode change: mode %v, rewritten=%v", st.Mode().Perm(), inode(t, path) != ino)
	}

	changed, err = h.Upload(testCtx(t), []byte("setting = 2\n"), path, 0o640)
	if err != nil || !changed {
		t.Fatalf("new content: changed=%v err=%v", changed, err)
	}
	if got, _ := os.ReadFile(path); string(got) != "setting = 2\n" || inode(t, path) == ino {
		t.Fatalf("new content not written by rename: %q", got)
	}

	// An empty file is content too.
	if changed, err = h.Upload(testCtx(t), nil, path, 0o640); err != nil || !changed {
		t.Fatalf("empty content: changed=%v err=%v", changed, err)
	}
	if st, _ := os.Stat(path); st.Size() != 0 {
		t.Fatalf("empty upload left %d bytes", st.Size())
	}

	// A missing directory is an error.
	if _, err := h.Upload(testCtx(t), content, filepath.Join(t.TempDir(), "no", "such", "dir", "f"), 0o644); err == nil {
		t.Fatal("upload into a missing directory succeeded")
	}
}

func TestUploadWithSudoPassword(t *testing.T) {
	key := sshtest.NewKey(t, "")
	s := userServer(t, key, sshtest.SudoPasswordUser)
	t.Setenv("BOOT_TEST_SUDO_PW", sshtest.SudoPasswordUserPassword)
	cfg := userConfig(t, s, key, sshtest.SudoPasswordUser)
	cfg.SudoPassword = EnvSecret("BOOT_TEST_SUDO_PW")
	h := mustDial(t, cfg)
	// A root-only directory.
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "root-owned")
	content := []byte("written through sudo\n")
	if _, err := h.Upload(testCtx(t), content, path, 0o600); err == nil {
		t.Fatal("upload into a root-only directory without AsRoot succeeded")
	}
	changed, err := h.Upload(testCtx(t), content, path, 0o600, AsRoot())
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, content) {
		t.Fatalf("content %q", got)
	}
	if st, _ := os.Stat(path); st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Fatal("file not owned by root")
	}
	if changed, err = h.Upload(testCtx(t), content, path, 0o600, AsRoot()); err != nil || changed {
		t.Fatalf("second upload: changed=%v err=%v", changed, err)
	}
}
