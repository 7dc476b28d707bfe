package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
)

// verified is what a bundle folder's verification left on this machine:
// each file found to match its manifest entry, by manifest path, with its
// sha256 and what identifies its content without reading it (identity). A
// file whose identity is unchanged is not hashed again; one changed in any
// way (written, replaced, touched) has a new change time and is.
type verified struct {
	Files map[string]verifiedFile `json:"files"`
}

type verifiedFile struct {
	SHA256   string       `json:"sha256"`
	Identity fileIdentity `json:"identity"`
}

// verifiedPath is where the record of the bundle folder dir is kept:
// $XDG_CACHE_HOME/boot/verified/<sha256 of dir's absolute path>.json. Empty
// when there is no cache folder.
func verifiedPath(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(base, "boot", "verified", hex.EncodeToString(sum[:16])+".json")
}

// loadVerified reads the record at path; a missing or unreadable one is an
// empty record (everything is hashed).
func loadVerified(path string) verified {
	var v verified
	if path == "" {
		return v
	}
	if data, err := os.ReadFile(path); err == nil && json.Unmarshal(data, &v) == nil {
		return v
	}
	return verified{}
}

// save writes the record at path, atomically; it is only a cache, so a
// failure is ignored (the next Open hashes again).
func (v verified) save(path string) {
	if path == "" {
		return
	}
	data, err := json.Marshal(v)
	if err != nil || os.MkdirAll(filepath.Dir(path), 0o700) != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".verified-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), path) != nil {
		os.Remove(tmp.Name())
	}
}

// check verifies the file f of the bundle folder dir against the manifest:
// without reading it when v holds it with an unchanged identity, else by
// hashing it. It returns what to record of f, or an error.
func (v verified) check(dir string, f File) (verifiedFile, error) {
	p := filepath.Join(dir, filepath.FromSlash(f.Path))
	st, err := os.Stat(p)
	id, known := fileIdentity{}, false
	if err == nil {
		id, known = identify(st)
	}
	if rec, ok := v.Files[f.Path]; ok && known && rec.SHA256 == f.SHA256 && rec.Identity == id && id.Size == f.Size {
		return rec, nil
	}
	if _, err := f.verify(dir); err != nil {
		return verifiedFile{}, err
	}
	if !known {
		return verifiedFile{}, nil
	}
	return verifiedFile{SHA256: f.SHA256, Identity: id}, nil
}
