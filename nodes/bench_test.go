package nodes

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/sshtest"
	"golang.org/x/crypto/ssh"
)

// benchWork is the remote time each small command takes on the fake
// hosts: it stands for the host's own work, which costs this machine
// nothing, unlike the SSH traffic that is being measured.
const benchWork = 2 * time.Millisecond

// twentyCommands is the work done on every host: 20 small commands, one
// after the other.
func twentyCommands(ctx context.Context, h *Host) error {
	for i := range 20 {
		out, err := h.Run(ctx, fmt.Sprintf("step %d", i), Stream(nil))
		if err != nil {
			return err
		}
		if !strings.Contains(out.Stdout, fmt.Sprintf("step %d", i)) {
			return fmt.Errorf("unexpected output %q", out.Stdout)
		}
	}
	return nil
}

// BenchmarkFanOut runs 20 small commands on N in-process SSH hosts at once
// (parallel = N) and reports the time against the ideal: the slowest
// host's own time for the same 20 commands when it is the only one
// working. x-ideal = 1 would be perfect fan-out; client and servers share
// this machine's cores, so encryption work adds up as N grows.
func BenchmarkFanOut(b *testing.B) {
	key := sshtest.NewKey(b, "")
	handler := func(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) int {
		select {
		case <-time.After(benchWork):
		case <-ctx.Done():
			return 1
		}
		return sshtest.Echo(ctx, cmd, stdin, stdout, stderr)
	}
	for _, n := range []int{4, 16, 64} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			ctx := context.Background()
			var lines []string
			var fakes []*sshtest.Fake
			for range n {
				f := sshtest.StartFake(b, sshtest.FakeOptions{AuthorizedKeys: []ssh.PublicKey{key.Public}, Handler: handler})
				fakes = append(fakes, f)
				lines = append(lines, f.KnownHostsLine())
			}
			kh := filepath.Join(b.TempDir(), "known_hosts")
			if err := os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
				b.Fatal(err)
			}
			cfgs := make([]Config, n)
			for i, f := range fakes {
				cfgs[i] = Config{Name: fmt.Sprintf("h%d", i), Address: f.Address, Port: f.Port, KeyPath: key.Path, KnownHostsPath: kh}
			}
			hosts, errs := Connect(ctx, cfgs, n, WithMaxSessions(8))
			for i, err := range errs {
				if err != nil {
					b.Fatal(err)
				}
				defer hosts[i].Close()
			}
			// Ideal: each host alone (best of 3), the slowest of them.
			var ideal time.Duration
			for _, h := range hosts {
				best := time.Duration(1<<63 - 1)
				for range 3 {
					start := time.Now()
					if err := twentyCommands(ctx, h); err != nil {
						b.Fatal(err)
					}
					best = min(best, time.Since(start))
				}
				ideal = max(ideal, best)
			}
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				if err := Errors(ForEach(ctx, hosts, n, twentyCommands)); err != nil {
					b.Fatal(err)
				}
			}
			perRun := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(float64(perRun)/float64(ideal), "x-ideal")
			b.ReportMetric(float64(ideal.Microseconds())/1000, "ideal-ms")
			b.ReportMetric(float64(perRun.Microseconds())/1000, "fanout-ms")
		})
	}
}
