package nodes

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// localFile writes content to a new local file and returns it with its sha256.
func localFile(t *testing.T, content []byte) LocalFile {
	t.Helper()
	path := filepath.Join(t.TempDir(), "local.bin")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	return LocalFile{Path: path, SHA256: hex.EncodeToString(sum[:])}
}

// onlyEntry fails unless dir holds exactly the file name (no temporary
// files left behind).
func onlyEntry(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != name {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("%s holds %v, want only %s", dir, names, name)
	}
}

func TestUploadFile(t *testing.T) {
	key := sshtest.NewKey(t, "")
	_, cfg := rootServer(t, key)
	h := mustDial(t, cfg)
	dir := t.TempDir()
	remote := filepath.Join(dir, "kubelet")

	content := make([]byte, 3<<20+12345) // several SSH windows, not a multiple of any buffer
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	f := localFile(t, content)
	// Upper-case hex is the same sha256.
	changed, err := h.UploadFile(testCtx(t), LocalFile{Path: f.Path, SHA256: strings.ToUpper(f.SHA256)}, remote, 0o755)
	if err != nil || !changed {
		t.Fatalf("first upload: changed=%v err=%v", changed, err)
	}
	if got, _ := os.ReadFile(remote); !bytes.Equal(got, content) {
		t.Fatalf("streamed content differs (%d bytes, want %d)", len(got), len(content))
	}
	if st, _ := os.Stat(remote); st.Mode().Perm() != 0o755 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	ino := inode(t, remote)

	// The host has it: nothing is sent, the local file is not even opened
	// (opening a named pipe without a writer would block).
	unopened := LocalFile{Path: filepath.Join(t.TempDir(), "fifo"), SHA256: f.SHA256}
	if err := syscall.Mkfifo(unopened.Path, 0o600); err != nil {
		t.Fatal(err)
	}
	if changed, err := h.UploadFile(testCtx(t), unopened, remote, 0o755); err != nil || changed {
		t.Fatalf("same content: changed=%v err=%v", changed, err)
	}
	if inode(t, remote) != ino {
		t.Fatal("unchanged file was rewritten")
	}

	// Same content, other mode: only the mode changes.
	if changed, err := h.UploadFile(testCtx(t), f, remote, 0o700); err != nil || !changed {
		t.Fatalf("mode change: changed=%v err=%v", changed, err)
	}
	if st, _ := os.Stat(remote); st.Mode().Perm() != 0o700 || inode(t, remote) != ino {
		t.Fatalf("mode change: mode %v, rewritten=%v", st.Mode().Perm(), inode(t, remote) != ino)
	}

	// A local file that no longer matches its sha256 (changed after the
	// manifest was written): the upload fails naming it, and the host's
	// file is untouched.
	changedOnDisk := localFile(t, []byte("new content\n"))
	changedOnDisk.SHA256 = localFile(t, []byte("what the manifest says\n")).SHA256
	changed, err = h.UploadFile(testCtx(t), changedOnDisk, remote, 0o755)
	if err == nil || changed {
		t.Fatalf("mismatching local file uploaded: changed=%v", changed)
	}
	if !strings.Contains(err.Error(), changedOnDisk.Path) || !strings.Contains(err.Error(), "changed after its sha256 was taken") {
		t.Fatalf("error does not name the changed local file: %v", err)
	}
	if got, _ := os.ReadFile(remote); !bytes.Equal(got, content) || inode(t, remote) != ino {
		t.Fatal("the host's file was replaced by mismatching content")
	}
	onlyEntry(t, dir, "kubelet")

	// Bad arguments fail before the host is asked anything.
	if _, err := h.UploadFile(testCtx(t), LocalFile{Path: f.Path, SHA256: "abc"}, remote, 0o755); err == nil || !strings.Contains(err.Error(), f.Path) {
		t.Fatalf("short sha256: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := h.UploadFile(testCtx(t), LocalFile{Path: missing, SHA256: f.SHA256}, filepath.Join(dir, "other"), 0o755); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing local file: %v", err)
	}
	onlyEntry(t, dir, "kubelet")
}

// An upload stopped half-way (here by its deadline, while the local file
// is still being read) leaves neither a temporary file nor the new file:
// as root, whose sessions sshd does not signal (the session is closed),
// and through sudo (the command is sent TERM).
func TestUploadFileStoppedLeavesNothing(t *testing.T) {
	key := sshtest.NewKey(t, "")
	_, rootCfg := rootServer(t, key)
	s := userServer(t, key, sshtest.SudoUser)
	for _, c := range []struct {
		name string
		cfg  Config
		opts []RunOption
	}{
		{"root", rootCfg, nil},
		{"sudo", userConfig(t, s, key, sshtest.SudoUser), []RunOption{AsRoot()}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := mustDial(t, c.cfg)
			dir := t.TempDir()
			// A named pipe whose writer sends part of the content, then stalls.
			fifo := filepath.Join(t.TempDir(), "slow")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			wrote := make(chan error, 1)
			go func() {
				w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
				if err != nil {
					wrote <- err
					return
				}
				defer w.Close()
				_, err = w.Write(make([]byte, 1<<20))
				wrote <- err
				time.Sleep(5 * time.Second)
			}()
			sum := sha256.Sum256(nil)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err := h.UploadFile(ctx, LocalFile{Path: fifo, SHA256: hex.EncodeToString(sum[:])}, filepath.Join(dir, "f"), 0o644, c.opts...)
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("want a timeout, got %v", err)
			}
			if err := <-wrote; err != nil {
				t.Fatalf("the upload did not read the file: %v", err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				entries, _ := os.ReadDir(dir)
				if len(entries) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("left behind after the timeout: %v", entries)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
