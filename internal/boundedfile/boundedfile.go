// Package boundedfile opens the local files boot reads (inventory, keys,
// known_hosts, CA bundles, rules, the bundle manifest) only when they are
// regular files of bounded size, so that a device, a named pipe or a huge
// file is refused at once, naming the file, instead of being read until
// memory runs out or waited on forever.
package boundedfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Open opens path for reading when it is a regular file of at most limit
// bytes; what names the file in errors ("private key"). It neither blocks
// on a named pipe nor reads a device: the file is opened non-blocking and
// checked before anything is read. An error opening the file wraps the
// *fs.PathError (errors.Is(err, fs.ErrNotExist) works).
func Open(path, what string, limit int64) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	switch {
	case !st.Mode().IsRegular():
		f.Close()
		return nil, nil, fmt.Errorf("%s %s is not a regular file (%s)", what, path, fileType(st.Mode()))
	case st.Size() > limit:
		f.Close()
		return nil, nil, tooBig(what, path, st.Size(), limit)
	}
	return f, st, nil
}

// Read returns the contents of path, a regular file of at most limit bytes,
// as Open checks it. A file that grows past limit while it is read is
// refused too.
func Read(path, what string, limit int64) ([]byte, error) {
	f, _, err := Open(path, what, limit)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if int64(len(data)) > limit {
		return nil, tooBig(what, path, int64(len(data)), limit)
	}
	return data, nil
}

func tooBig(what, path string, n, limit int64) error {
	return fmt.Errorf("%s %s is %d bytes, more than the limit of %s", what, path, n, size(limit))
}

// size names a limit for a message: "4 MiB", "64 KiB" or "100 bytes".
func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// fileType names the kind of a file that is not a regular one.
func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "mode " + m.String()
}
