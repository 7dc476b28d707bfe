package nodes

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// Size limits of the local files this package reads.
const (
	maxKeyFile        = 1 << 20  // a private key: a few KiB
	maxKnownHostsFile = 16 << 20 // known_hosts: one short line per host key
)

// openRegular opens path for reading when it is a regular file of at most
// limit bytes; what names the file in errors ("private key"). It neither
// blocks on a named pipe nor reads a device: the file is opened
// non-blocking and checked before anything is read.
func openRegular(path, what string, limit int64) (*os.File, fs.FileInfo, error) {
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
		return nil, nil, fmt.Errorf("%s %s is %d bytes, more than the limit of %d MiB", what, path, st.Size(), limit>>20)
	}
	return f, st, nil
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
