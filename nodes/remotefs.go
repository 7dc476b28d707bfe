package nodes

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/bootctl/boot/internal/quote"
)

// The file operations below run as root (directly when the SSH user is
// root, otherwise through sudo, as AsRoot does), never stream their output
// (it is a probe's answer or a file's content, possibly a secret), and
// return errors naming the host and the path.

// maxReadFile bounds what ReadFile returns: the files boot reads from hosts
// (kubeconfigs, certificates) are a few KiB.
const maxReadFile = 4 << 20

// Exit statuses the scripts below use to tell a missing path or a path of
// the wrong type from a failed command.
const (
	exitMissing    = 66
	exitNotRegular = 67
)

// ReadFile returns the content of the regular file at path (symbolic links
// followed). A missing file is an error wrapping fs.ErrNotExist; a file
// that is not a regular one (a directory, a device, a named pipe) or holds
// more than 4 MiB is refused without reading it all.
func (h *Host) ReadFile(ctx context.Context, path string) ([]byte, error) {
	p := quote.Shell(path)
	script := "if [ ! -e " + p + " ]; then exit " + strconv.Itoa(exitMissing) + "; fi\n" +
		"if [ ! -f " + p + " ]; then exit " + strconv.Itoa(exitNotRegular) + "; fi\n" +
		"exec head -c " + strconv.Itoa(maxReadFile+1) + " -- " + p
	out, err := h.fileOp(ctx, "read", path, script)
	if err != nil {
		return nil, err
	}
	if len(out.Stdout) > maxReadFile {
		return nil, h.fileError("read", path, fmt.Errorf("more than the limit of %d MiB", maxReadFile>>20))
	}
	return []byte(out.Stdout), nil
}

// Exists reports whether path exists (symbolic links followed: a dangling
// link does not).
func (h *Host) Exists(ctx context.Context, path string) (bool, error) {
	out, err := h.fileOp(ctx, "check", path, "if [ -e "+quote.Shell(path)+" ]; then echo yes; fi")
	return strings.TrimSpace(out.Stdout) == "yes", err
}

// MkdirAll creates the directories paths and any missing parents, in one
// command, as `install -d` does: each of paths gets the permission bits of
// mode, also when it exists already; parents it creates get 0755.
func (h *Host) MkdirAll(ctx context.Context, mode fs.FileMode, paths ...string) error {
	if len(paths) == 0 {
		return nil
	}
	perm := strconv.FormatUint(uint64(mode.Perm()), 8)
	quoted := make([]string, len(paths))
	for i, p := range paths {
		quoted[i] = quote.Shell(p)
	}
	_, err := h.fileOp(ctx, "create directory", strings.Join(paths, " "), "install -d -m "+perm+" -- "+strings.Join(quoted, " "))
	return err
}

// Sha256 returns the hex sha256 of each of the given regular files, by
// path, in one command. A path that is missing or not a regular file is
// absent from the map; a file that cannot be read is an error.
func (h *Host) Sha256(ctx context.Context, paths ...string) (map[string]string, error) {
	if len(paths) == 0 {
		return map[string]string{}, nil
	}
	quoted := make([]string, len(paths))
	for i, p := range paths {
		quoted[i] = quote.Shell(p)
	}
	// One line per path, in order: its sum, or "-" when there is none.
	script := "for p in " + strings.Join(quoted, " ") + "; do\n" +
		"  if [ -f \"$p\" ]; then s=$(sha256sum < \"$p\") || exit 1; echo \"${s%% *}\"; else echo -; fi\n" +
		"done"
	what := paths[0]
	if len(paths) > 1 {
		what = fmt.Sprintf("%s and %d more", paths[0], len(paths)-1)
	}
	out, err := h.fileOp(ctx, "sha256", what, script)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSuffix(out.Stdout, "\n"), "\n")
	if len(lines) != len(paths) {
		return nil, h.fileError("sha256", what, fmt.Errorf("got %d lines for %d files", len(lines), len(paths)))
	}
	sums := make(map[string]string, len(paths))
	for i, l := range lines {
		if l != "-" {
			sums[paths[i]] = l
		}
	}
	return sums, nil
}

// fileOp runs script as root, silenced, labelled "<op> <path>". The exit
// statuses exitMissing and exitNotRegular become errors saying so.
func (h *Host) fileOp(ctx context.Context, op, path, script string) (Output, error) {
	out, err := h.Sudo(ctx, script, Stream(nil), Label(op+" "+path))
	var ee *ExitError
	if errors.As(err, &ee) {
		switch ee.Status {
		case exitMissing:
			return out, h.fileError(op, path, fs.ErrNotExist)
		case exitNotRegular:
			return out, h.fileError(op, path, errors.New("not a regular file"))
		}
	}
	return out, err
}

func (h *Host) fileError(op, path string, err error) error {
	return &Error{Host: h.cfg.Name, Op: op + " " + path, Err: err}
}
