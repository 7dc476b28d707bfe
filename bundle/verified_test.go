package bundle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOpenRemembersVerifiedFiles checks the record Open keeps: after one
// Open, a file is trusted while its identity is unchanged (a record naming
// the current identity is enough, so the file is not read), and a file
// changed by hand is found even with its size and modification time put
// back, because its change time moved.
func TestOpenRemembersVerifiedFiles(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir := smallBundle(t)
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	rec := loadVerified(verifiedPath(dir))
	if len(rec.Files) != 3 {
		t.Fatalf("record after Open: %+v, want the 3 files", rec.Files)
	}
	tool := filepath.Join(dir, "bin", "tool")
	st, err := os.Stat(tool)
	if err != nil {
		t.Fatal(err)
	}
	// Same size, same modification time, other content.
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(tool, []byte("#!/bin/sh\necho TOOL\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tool, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "bin/tool: sha256") {
		t.Fatalf("Open after a change by hand: %v, want the sha256 mismatch", err)
	}
	// A record naming the changed file's identity is trusted without
	// reading the file: that is what spares a re-run the hashing.
	now, err := os.Stat(tool)
	if err != nil {
		t.Fatal(err)
	}
	id, ok := identify(now)
	if !ok {
		t.Skip("no file identity on this system")
	}
	rec.Files["bin/tool"] = verifiedFile{SHA256: rec.Files["bin/tool"].SHA256, Identity: id}
	rec.save(verifiedPath(dir))
	if _, err := Open(dir); err != nil {
		t.Fatalf("Open with a record of the current identity: %v (the file was read)", err)
	}
}

// BenchmarkOpen opens a bundle of 256 MiB of files with no record (every
// file hashed, as on the first run) and with the record of an earlier Open
// (as on a re-run); compare the two ns/op.
func BenchmarkOpen(b *testing.B) {
	b.Setenv("XDG_CACHE_HOME", b.TempDir())
	dir := b.TempDir()
	m := Manifest{KubernetesVersion: "v1.37.2", Arch: "amd64"}
	data := make([]byte, 32<<20)
	for i := range 8 {
		data[0] = byte(i)
		rel := "bin/f" + string(rune('0'+i))
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		sum, size, err := HashFile(p)
		if err != nil {
			b.Fatal(err)
		}
		m.Files = append(m.Files, File{Path: rel, SHA256: sum, Size: size, Component: "test", Version: "v1"})
	}
	enc, err := m.encode()
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), enc, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Run("hashed", func(b *testing.B) {
		for b.Loop() {
			os.Remove(verifiedPath(dir))
			if _, err := Open(dir); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("recorded", func(b *testing.B) {
		for b.Loop() {
			if _, err := Open(dir); err != nil {
				b.Fatal(err)
			}
		}
	})
}
