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

// statFormat is what a FileSum's Stat holds: size, inode and the status
// change time in nanoseconds. Writing the file, replacing it or changing
// its mode changes it; unlike the modification time, no user can set the
// change time back.
const statFormat = "%s %i %.9Z"

// FileSum is a regular file's sha256 and its Stat, taken just before it
// was hashed: while the file's Stat stays the same, so does its content.
type FileSum struct {
	SHA256 string
	Stat   string
}

// Sha256 returns the sha256 and Stat of each of the given regular files, by
// path, in one command. A path that is missing or not a regular file is
// absent from the map; a file that cannot be read is an error.
func (h *Host) Sha256(ctx context.Context, paths ...string) (map[string]FileSum, error) {
	// One line per path, in order: its stat and sum, or "-" when there is none.
	lines, err := h.perFile(ctx, "sha256", paths,
		`if [ -f "$p" ]; then t=$(stat -c '`+statFormat+`' -- "$p") && s=$(sha256sum < "$p") || exit 1; echo "$t ${s%% *}"; else echo -; fi`)
	if err != nil {
		return nil, err
	}
	sums := make(map[string]FileSum, len(lines))
	for p, l := range lines {
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			return nil, h.fileError("sha256", p, fmt.Errorf("unexpected answer %q", l))
		}
		sums[p] = FileSum{Stat: l[:i], SHA256: l[i+1:]}
	}
	return sums, nil
}

// Stats returns the Stat (as in FileSum) of each of the given regular
// files, by path, in one command; missing paths are absent from the map.
func (h *Host) Stats(ctx context.Context, paths ...string) (map[string]string, error) {
	return h.perFile(ctx, "stat", paths, `if [ -f "$p" ]; then stat -c '`+statFormat+`' -- "$p" || exit 1; else echo -; fi`)
}

// perFile runs body for each path (as $p), in one command, and returns
// each path's line of output but those that are "-".
func (h *Host) perFile(ctx context.Context, op string, paths []string, body string) (map[string]string, error) {
	if len(paths) == 0 {
		return map[string]string{}, nil
	}
	quoted := make([]string, len(paths))
	for i, p := range paths {
		quoted[i] = quote.Shell(p)
	}
	script := "for p in " + strings.Join(quoted, " ") + "; do\n  " + body + "\ndone"
	what := paths[0]
	if len(paths) > 1 {
		what = fmt.Sprintf("%s and %d more", paths[0], len(paths)-1)
	}
	out, err := h.fileOp(ctx, op, what, script)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSuffix(out.Stdout, "\n"), "\n")
	if len(lines) != len(paths) {
		return nil, h.fileError(op, what, fmt.Errorf("got %d lines for %d files", len(lines), len(paths)))
	}
	m := make(map[string]string, len(paths))
	for i, l := range lines {
		if l != "-" {
			m[paths[i]] = l
		}
	}
	return m, nil
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
