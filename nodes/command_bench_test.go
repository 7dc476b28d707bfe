package nodes

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/quote"
	"github.com/bootctl/boot/internal/sshtest"
)

// previousGroupScript is the wrapper Run used before groupScript: the
// command in a second sh, started in the background. Kept here as the
// baseline of BenchmarkCommandHostCPU.
const previousGroupScript = `exec 3<&0; sh -c "$1" 0<&3 3<&- & trap 'trap - TERM HUP INT; kill -TERM 0 2>/dev/null' TERM HUP INT; wait $!`

// treeCPU is the CPU time (user and system, its reaped children's
// included) of the process pid and all its descendants, from /proc.
func treeCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	parent := map[int]int{}
	ticks := map[int]int64{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		data, err := os.ReadFile(st)
		if err != nil {
			continue // it ended meanwhile
		}
		p, _ := strconv.Atoi(filepath.Base(filepath.Dir(st)))
		// Fields after the command name (which may hold spaces): state,
		// ppid, ... utime (14th field of the line), stime, cutime, cstime.
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		parent[p], _ = strconv.Atoi(f[1])
		for _, v := range f[11:15] {
			n, _ := strconv.ParseInt(v, 10, 64)
			ticks[p] += n
		}
	}
	var total int64
	for p, t := range ticks {
		for q := p; q > 1; q = parent[q] {
			if q == pid {
				total += t
				break
			}
		}
	}
	return time.Duration(total) * (time.Second / 100) // USER_HZ
}

// BenchmarkCommandHostCPU runs a small command over one connection to the
// loopback sshd, as a plain `sh -c` (which cannot stop the command's
// children on a timeout), with the previous two-shell wrapper, and with
// Run's wrapper, and reports the host's CPU time per command: that of
// sshd's process tree, the shells included (host-ms/cmd). The user is a
// test user whose login shell reads no startup files of note (root's
// .bashrc on a development machine may cost more than the command).
func BenchmarkCommandHostCPU(b *testing.B) {
	key := sshtest.NewKey(b, "")
	s := userServer(b, key, sshtest.SudoUser)
	pidText, err := os.ReadFile(filepath.Join(s.Dir, "sshd.pid"))
	if err != nil {
		b.Fatal(err)
	}
	sshd, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		b.Fatal(err)
	}
	h := mustDial(b, userConfig(b, s, key, sshtest.SudoUser))
	c, err := h.live(testCtx(b))
	if err != nil {
		b.Fatal(err)
	}
	const cmd = "echo hi"
	for _, w := range []struct{ name, line string }{
		{"sh-c", "sh -c " + quote.Shell(cmd)},
		{"previous-wrapper", "sh -c " + quote.Shell(previousGroupScript) + " boot " + quote.Shell(cmd)},
		{"wrapper", (&run{h: h}).commandLine(cmd)},
	} {
		b.Run(w.name, func(b *testing.B) {
			cpu := treeCPU(b, sshd)
			for b.Loop() {
				sess, err := c.client.NewSession()
				if err != nil {
					b.Fatal(err)
				}
				out, err := sess.CombinedOutput(w.line)
				if err != nil || string(out) != "hi\n" {
					b.Fatalf("%v, output %q", err, out)
				}
			}
			cpu = treeCPU(b, sshd) - cpu
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "host-ms/cmd")
		})
	}
}
