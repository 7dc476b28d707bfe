package nodes

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"strconv"
	"strings"

	"github.com/bootctl/boot/internal/quote"
)

// Upload makes remotePath hold content with the given permission bits, and
// reports whether anything changed. When the file already has the same
// sha256 it is not transferred again (only its mode is fixed if needed).
// Otherwise content goes to a temporary file in the same directory, its
// sha256 is checked there, and it is renamed over remotePath, so a reader
// sees the old file or the new one, never part of one. The directory must
// exist. With AsRoot the file is written as root (and owned by root).
func (h *Host) Upload(ctx context.Context, content []byte, remotePath string, mode fs.FileMode, opts ...RunOption) (changed bool, err error) {
	sum := sha256.Sum256(content)
	want := hex.EncodeToString(sum[:])
	perm := strconv.FormatUint(uint64(mode.Perm()), 8)
	p := quote.Shell(remotePath)
	base := append([]RunOption{Stream(nil)}, opts...)

	check := "if [ -f " + p + " ]; then sha256sum < " + p + " | cut -c1-64; stat -c %a -- " + p + "; fi"
	out, err := h.Run(ctx, check, append(base, Label("checksum "+remotePath))...)
	if err != nil {
		return false, err
	}
	if f := strings.Fields(out.Stdout); len(f) == 2 && f[0] == want {
		if f[1] == perm {
			h.log.Debug("upload skipped, content unchanged", "path", remotePath, "sha256", want)
			return false, nil
		}
		if _, err := h.Run(ctx, "chmod "+perm+" -- "+p, append(base, Label("chmod "+remotePath))...); err != nil {
			return false, err
		}
		h.log.Debug("upload: mode fixed", "path", remotePath, "mode", perm)
		return true, nil
	}

	script := strings.Join([]string{
		"set -e",
		"p=" + p,
		`t=$(mktemp "$(dirname -- "$p")/.boot-upload.XXXXXX")`,
		`trap 'rm -f -- "$t"' EXIT`,
		`cat > "$t"`,
		`chmod ` + perm + ` -- "$t"`,
		`s=$(sha256sum < "$t" | cut -c1-64)`,
		`if [ "$s" != ` + want + ` ]; then echo "sha256 mismatch after transfer: got $s" >&2; exit 1; fi`,
		`mv -f -- "$t" "$p"`,
		`trap - EXIT`,
	}, "\n")
	if _, err := h.Run(ctx, script, append(base, Label("upload "+remotePath), Stdin(bytes.NewReader(content)))...); err != nil {
		return false, err
	}
	h.log.Debug("uploaded", "path", remotePath, "bytes", len(content), "sha256", want, "mode", perm)
	return true, nil
}
