package nodes

import (
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/sshtest"
	"golang.org/x/crypto/ssh"
)

// blackhole forwards TCP connections to target until frozen, then silently
// drops everything, like a peer that vanished without closing.
type blackhole struct {
	ln     net.Listener
	frozen atomic.Bool
}

func startBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go b.pipe(c, up)
			go b.pipe(up, c)
		}
	}()
	return b
}

func (b *blackhole) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 && !b.frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				src.Close()
			}
			return
		}
	}
}

func TestKeepAliveDetectsSilentPeer(t *testing.T) {
	key := sshtest.NewKey(t, "")
	f := sshtest.StartFake(t, sshtest.FakeOptions{AuthorizedKeys: []ssh.PublicKey{key.Public}, Handler: sshtest.Echo})
	bh := startBlackhole(t, f.Addr())
	cfg := fakeConfig(t, f, key, "silent")
	cfg.Port = bh.ln.Addr().(*net.TCPAddr).Port
	// known_hosts is keyed by the address dialled (the proxy's): pin the key instead.
	cfg.PinnedHostKey = string(ssh.MarshalAuthorizedKey(f.HostKey))
	log, buf := testLogger()
	h := mustDial(t, cfg, WithLogger(log), WithKeepAlive(100*time.Millisecond))
	mustRun(t, h, "before")

	bh.frozen.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(buf.String(), "keep-alive unanswered") {
		if time.Now().After(deadline) {
			t.Fatalf("silent peer not detected:\n%s", buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
	bh.frozen.Store(false)
	// The next command reconnects.
	if got := mustRun(t, h, "after"); !strings.Contains(got, "after") {
		t.Fatalf("output %q", got)
	}
	if n := f.Accepted(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}
