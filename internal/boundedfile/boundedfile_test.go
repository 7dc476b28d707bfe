package boundedfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Devices, named pipes, directories and oversized files are refused from
// what Stat says, at once, naming the file; a regular file within the limit
// is read whole.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 4<<20+1); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path  string
		limit int64
		want  string
	}{
		{"/dev/zero", 4 << 20, "thing /dev/zero is not a regular file (a character device)"},
		{fifo, 4 << 20, "thing " + fifo + " is not a regular file (a named pipe)"},
		{dir, 4 << 20, "thing " + dir + " is not a regular file (a directory)"},
		{big, 4 << 20, "thing " + big + " is 4194305 bytes, more than the limit of 4 MiB"},
		{small, 9, "thing " + small + " is 10 bytes, more than the limit of 9 bytes"},
		{small, 1 << 10, ""},
		{small, 10, ""},
	} {
		start := time.Now()
		data, err := Read(tc.path, "thing", tc.limit)
		if took := time.Since(start); took > 100*time.Millisecond {
			t.Errorf("%s: took %s", tc.path, took)
		}
		switch {
		case tc.want == "" && (err != nil || string(data) != "0123456789"):
			t.Errorf("%s: got %q, %v", tc.path, data, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%s: got %v, want %s", tc.path, err, tc.want)
		}
	}
	_, err := Read(filepath.Join(dir, "none"), "thing", 10)
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "thing: open "+dir) {
		t.Errorf("missing file: %v", err)
	}
}
