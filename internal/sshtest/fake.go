package sshtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Handler runs one exec request on a Fake server and returns its exit
// status. ctx ends when the client signals or closes the session, or the
// connection is cut.
type Handler func(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) int

// FakeOptions configure an in-process SSH server.
type FakeOptions struct {
	// Address is the loopback address to listen on; default 127.0.0.1.
	Address string
	// AuthorizedKeys may log in as any user.
	AuthorizedKeys []ssh.PublicKey
	// Handler runs commands; default: exit status 0, no output.
	Handler Handler
	// DropFirst closes the first N TCP connections before the SSH
	// handshake, like a host whose sshd is not up yet.
	DropFirst int
}

// Fake is an in-process SSH server built on golang.org/x/crypto/ssh, for
// injecting faults (dropped and cut connections) and for benchmarks with
// many hosts. It serves exec sessions only.
type Fake struct {
	Address string
	Port    int
	HostKey ssh.PublicKey

	opts   FakeOptions
	config *ssh.ServerConfig
	ln     net.Listener

	mu       sync.Mutex
	accepted int
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

// StartFake starts an in-process SSH server on a free port and stops it
// when the test ends.
func StartFake(t testing.TB, opts FakeOptions) *Fake {
	t.Helper()
	if opts.Address == "" {
		opts.Address = "127.0.0.1"
	}
	if opts.Handler == nil {
		opts.Handler = func(context.Context, string, io.Reader, io.Writer, io.Writer) int { return 0 }
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	for _, k := range opts.AuthorizedKeys {
		allowed[string(k.Marshal())] = true
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if allowed[string(key.Marshal())] {
				return &ssh.Permissions{}, nil
			}
			return nil, errUnauthorized
		},
	}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", net.JoinHostPort(opts.Address, "0"))
	if err != nil {
		t.Fatal(err)
	}
	f := &Fake{
		Address: opts.Address,
		Port:    ln.Addr().(*net.TCPAddr).Port,
		HostKey: signer.PublicKey(),
		opts:    opts,
		config:  cfg,
		ln:      ln,
		conns:   map[net.Conn]struct{}{},
	}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(f.Close)
	return f
}

type authError string

func (e authError) Error() string { return string(e) }

const errUnauthorized = authError("sshtest: key not authorized")

// Addr is host:port.
func (f *Fake) Addr() string { return net.JoinHostPort(f.Address, strconv.Itoa(f.Port)) }

// KnownHostsLine trusts this server's host key at its address and port.
func (f *Fake) KnownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(f.Addr())}, f.HostKey)
}

// Accepted is the number of TCP connections accepted so far, dropped ones included.
func (f *Fake) Accepted() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accepted
}

// CutConnections closes every open connection abruptly and returns how many
// there were, like a network failure or a host reboot.
func (f *Fake) CutConnections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.conns)
	for c := range f.conns {
		c.Close()
	}
	return n
}

// Close stops the listener, cuts all connections and waits for handlers.
func (f *Fake) Close() {
	f.ln.Close()
	f.CutConnections()
	f.wg.Wait()
}

func (f *Fake) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.accepted++
		drop := f.accepted <= f.opts.DropFirst
		if !drop {
			f.conns[c] = struct{}{}
		}
		f.mu.Unlock()
		if drop {
			c.Close()
			continue
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.handleConn(c)
			f.mu.Lock()
			delete(f.conns, c)
			f.mu.Unlock()
		}()
	}
}

func (f *Fake) handleConn(c net.Conn) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, f.config)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.handleSession(ch, chReqs)
		}()
	}
	wg.Wait()
}

func (f *Fake) handleSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	started := false
	for {
		select {
		case status := <-done:
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], uint32(status))
			_, _ = ch.SendRequest("exit-status", false, b[:])
			return
		case req, ok := <-reqs:
			if !ok {
				// Channel or connection closed: stop the command.
				cancel()
				if started {
					<-done
				}
				return
			}
			switch {
			case req.Type == "exec" && !started:
				var p struct{ Command string }
				if err := ssh.Unmarshal(req.Payload, &p); err != nil {
					_ = req.Reply(false, nil)
					continue
				}
				started = true
				_ = req.Reply(true, nil)
				go func() {
					status := f.opts.Handler(ctx, p.Command, ch, ch, ch.Stderr())
					done <- status
				}()
			case req.Type == "signal":
				cancel()
				if req.WantReply {
					_ = req.Reply(true, nil)
				}
			case req.Type == "env":
				_ = req.Reply(true, nil)
			default:
				if req.WantReply {
					_ = req.Reply(false, nil)
				}
			}
		}
	}
}

// Echo is a Handler for benchmarks and simple tests: it writes the command
// line back on stdout followed by a newline and exits 0.
func Echo(_ context.Context, cmd string, _ io.Reader, stdout, _ io.Writer) int {
	var b bytes.Buffer
	b.WriteString(cmd)
	b.WriteByte('\n')
	_, _ = stdout.Write(b.Bytes())
	return 0
}
