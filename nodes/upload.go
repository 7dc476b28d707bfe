package nodes

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/bootctl/boot/internal/quote"
)

// Upload makes remotePath hold content with the given permission bits, and
// reports whether anything changed. When the file already has the same
// sha256 it is not transferred again (only its mode is fixed if needed).
// Otherwise content goes to a temporary file in the same directory, its
// sha256 is checked there, and it is renamed over remotePath, so a reader
// sees the old file or the new one, never part of one. The directory must
// exist. With AsRoot the file is written as root (and owned by root).
//
// For large files use UploadFile, which streams them from disk.
func (h *Host) Upload(ctx context.Context, content []byte, remotePath string, mode fs.FileMode, opts ...RunOption) (changed bool, err error) {
	sum := sha256.Sum256(content)
	want := hex.EncodeToString(sum[:])
	if done, changed, err := h.present(ctx, want, remotePath, mode, opts); done {
		return changed, err
	}
	if err := h.send(ctx, bytes.NewReader(content), want, remotePath, mode, opts); err != nil {
		return false, err
	}
	return true, nil
}

// LocalFile is a file on this machine whose sha256 is already known, for
// instance from a bundle manifest.
type LocalFile struct {
	Path   string
	SHA256 string // hex
}

// UploadFile is Upload for a local file, streamed from disk: memory use
// does not grow with the file's size, and the file is not opened at all
// when the host already has its sha256. What is read is hashed on the
// way; if it does not match f.SHA256 (the file changed since its sha256
// was taken) the upload fails with an error naming the file, and
// remotePath is left as it was.
func (h *Host) UploadFile(ctx context.Context, f LocalFile, remotePath string, mode fs.FileMode, opts ...RunOption) (changed bool, err error) {
	fail := func(err error) error { return &Error{Host: h.cfg.Name, Op: "upload " + remotePath, Err: err} }
	want := strings.ToLower(f.SHA256)
	if b, err := hex.DecodeString(want); err != nil || len(b) != sha256.Size {
		return false, fail(fmt.Errorf("sha256 %q of %s is not 64 hex digits", f.SHA256, f.Path))
	}
	if done, changed, err := h.present(ctx, want, remotePath, mode, opts); done {
		return changed, err
	}
	file, err := os.Open(f.Path)
	if err != nil {
		return false, fail(err)
	}
	// The session may still read from file after a failed upload returns:
	// a read from the closed file then just fails.
	defer file.Close()
	src := &checkedReader{r: file, path: f.Path, want: want, sum: sha256.New()}
	if err := h.send(ctx, src, want, remotePath, mode, opts); err != nil {
		if ferr := src.failure(); ferr != nil {
			return false, fail(fmt.Errorf("%w; %s was left as it was", ferr, remotePath))
		}
		return false, err
	}
	return true, nil
}

// present reports whether the host's remotePath already has the sha256
// want (lowercase hex), in which case it fixes the file's mode and done is
// true, changed telling whether the mode was fixed. done is also true on
// an error.
func (h *Host) present(ctx context.Context, want, remotePath string, mode fs.FileMode, opts []RunOption) (done, changed bool, err error) {
	perm := strconv.FormatUint(uint64(mode.Perm()), 8)
	p := quote.Shell(remotePath)
	base := append([]RunOption{Stream(nil)}, opts...)
	check := "if [ -f " + p + " ]; then sha256sum < " + p + " | cut -c1-64; stat -c %a -- " + p + "; fi"
	out, err := h.Run(ctx, check, append(base, Label("checksum "+remotePath))...)
	if err != nil {
		return true, false, err
	}
	f := strings.Fields(out.Stdout)
	if len(f) != 2 || f[0] != want {
		return false, false, nil
	}
	if f[1] == perm {
		h.log.Debug("upload skipped, content unchanged", "path", remotePath, "sha256", want)
		return true, false, nil
	}
	if _, err := h.Run(ctx, "chmod "+perm+" -- "+p, append(base, Label("chmod "+remotePath))...); err != nil {
		return true, false, err
	}
	h.log.Debug("upload: mode fixed", "path", remotePath, "mode", perm)
	return true, true, nil
}

// send streams src to a temporary file next to remotePath, checks its
// sha256 there against want (lowercase hex) and renames it over
// remotePath.
func (h *Host) send(ctx context.Context, src io.Reader, want, remotePath string, mode fs.FileMode, opts []RunOption) error {
	perm := strconv.FormatUint(uint64(mode.Perm()), 8)
	// The temporary file is removed on any failure, a stopped upload's
	// included: a timeout's TERM, or the SIGPIPE of writing to the closed
	// session, makes the shell exit, which runs the EXIT trap.
	script := strings.Join([]string{
		"set -e",
		"p=" + quote.Shell(remotePath),
		`t=$(mktemp "$(dirname -- "$p")/.boot-upload.XXXXXX")`,
		`trap 'rm -f -- "$t"' EXIT`,
		`trap 'exit 1' HUP INT PIPE TERM`,
		`cat > "$t"`,
		`chmod ` + perm + ` -- "$t"`,
		`s=$(sha256sum < "$t" | cut -c1-64)`,
		`if [ "$s" != ` + want + ` ]; then echo "sha256 mismatch after transfer: got $s" >&2; exit 1; fi`,
		`mv -f -- "$t" "$p"`,
		`trap - EXIT`,
	}, "\n")
	opts = append([]RunOption{Stream(nil)}, opts...)
	if _, err := h.Run(ctx, script, append(opts, Label("upload "+remotePath), Stdin(src))...); err != nil {
		return err
	}
	h.log.Debug("uploaded", "path", remotePath, "sha256", want, "mode", perm)
	return nil
}

// checkedReader reads a local file for UploadFile, hashing what it reads,
// and remembers a read error or, at the end of the file, content that does
// not have the expected sha256. (The host then refuses the copy: it checks
// what it received against the expected sha256 before renaming it.) It is
// read by the session's input goroutine, which may outlive a failed upload.
type checkedReader struct {
	r    io.Reader
	path string
	want string

	mu  sync.Mutex
	sum hash.Hash
	err error
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sum.Write(p[:n])
	switch {
	case err == io.EOF:
		if got := hex.EncodeToString(c.sum.Sum(nil)); got != c.want {
			c.err = fmt.Errorf("local file %s has sha256 %s, expected %s: it changed after its sha256 was taken", c.path, got, c.want)
		}
	case err != nil:
		c.err = err
	}
	return n, err
}

// failure is the read error or mismatch seen so far, if any.
func (c *checkedReader) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
