package bundle

import (
	"os"
	"syscall"
)

// fileIdentity identifies a file's content without reading it: any write,
// replacement or change of its times gives it a new change time, which no
// user can set.
type fileIdentity struct {
	Size, ModNanos, ChangeNanos int64
	Inode, Device               uint64
}

// identify returns st's identity, and whether there is one.
func identify(st os.FileInfo) (fileIdentity, bool) {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok || !st.Mode().IsRegular() {
		return fileIdentity{}, false
	}
	return fileIdentity{Size: st.Size(), ModNanos: st.ModTime().UnixNano(), ChangeNanos: s.Ctim.Nano(), Inode: s.Ino, Device: s.Dev}, true
}
