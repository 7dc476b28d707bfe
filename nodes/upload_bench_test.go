package nodes

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/bootctl/boot/internal/sshtest"
)

// peakRSS resets this process's peak resident set size (VmHWM) to its
// current size and returns a function that reports how far above that
// the peak went since, in MiB.
func peakRSS(b *testing.B) func() float64 {
	b.Helper()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Skipf("cannot reset the peak RSS: %v", err)
	}
	start := procStatusKB(b, "VmHWM")
	return func() float64 { return float64(procStatusKB(b, "VmHWM")-start) / 1024 }
}

// procStatusKB reads a "Name: N kB" line of /proc/self/status.
func procStatusKB(b *testing.B, name string) int64 {
	b.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("no %s in /proc/self/status", name)
	return 0
}

// BenchmarkUpload sends a 64 MiB file to the loopback sshd, the way
// bundle files used to go (the whole file read, then Upload) and streamed
// from disk (UploadFile, with the manifest's sha256), and reports the peak
// RSS growth of this process (peak-RSS-MiB) besides bytes and allocations
// per upload. Every upload transfers: the host's copy is removed between
// them.
func BenchmarkUpload(b *testing.B) {
	const size = 64 << 20
	key := sshtest.NewKey(b, "")
	_, cfg := rootServer(b, key)
	h := mustDial(b, cfg)
	content := make([]byte, size)
	if _, err := rand.Read(content); err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(content)
	local := LocalFile{Path: filepath.Join(b.TempDir(), "big.bin"), SHA256: hex.EncodeToString(sum[:])}
	if err := os.WriteFile(local.Path, content, 0o644); err != nil {
		b.Fatal(err)
	}
	content = nil
	remote := filepath.Join(b.TempDir(), "big.bin")
	ways := []struct {
		name   string
		upload func() error
	}{
		// Streaming first, so that the other way's garbage is not counted.
		{"stream=UploadFile", func() error {
			_, err := h.UploadFile(testCtx(b), local, remote, 0o755)
			return err
		}},
		{"whole=ReadFile+Upload", func() error {
			data, err := os.ReadFile(local.Path)
			if err != nil {
				return err
			}
			_, err = h.Upload(testCtx(b), data, remote, 0o755)
			return err
		}},
	}
	for _, w := range ways {
		b.Run(w.name, func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			peak := peakRSS(b)
			for b.Loop() {
				if err := w.upload(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := os.Remove(remote); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(peak(), "peak-RSS-MiB")
		})
	}
}
