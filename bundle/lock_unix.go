//go:build unix

package bundle

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// lockCache takes an exclusive lock on the cache folder, waiting for
// another build that holds it, and returns the function that releases it.
func lockCache(dir string, log io.Writer) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fmt.Fprintf(log, "bundle: waiting for another build using %s\n", dir)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("bundle: locking %s: %w", dir, err)
		}
	}
	return func() { f.Close() }, nil
}
