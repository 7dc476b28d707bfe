package nodes

import (
	"context"
	"io"
	"net"
	"sync"
	"time"
)

// DialContext opens a TCP connection from the host to addr (host:port, as
// the host resolves it), carried inside the SSH connection (a direct-tcpip
// channel: the server must allow TCP forwarding). A dead connection is
// redialled first.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := h.live(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := c.client.DialContext(ctx, network, addr)
	if err != nil {
		return nil, &Error{Host: h.cfg.Name, Op: "forward to " + addr, Kind: ErrUnreachable, Err: err}
	}
	return conn, nil
}

// forwardDialTimeout bounds opening the remote end of one forwarded
// connection (a redial of the SSH connection included).
const forwardDialTimeout = 30 * time.Second

// Forwarder accepts TCP connections on a local address and carries each to
// a remote address through a host's SSH connection, like `ssh -L`.
type Forwarder struct {
	ln     net.Listener
	host   *Host
	remote string
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]bool // local ends being carried
	closed bool
}

// Forward listens on local (e.g. 127.0.0.1:6443; port 0 picks one) and
// forwards every connection to remote as the host reaches it, until Close.
func Forward(h *Host, local, remote string) (*Forwarder, error) {
	ln, err := net.Listen("tcp", local)
	if err != nil {
		return nil, err
	}
	f := &Forwarder{ln: ln, host: h, remote: remote, conns: map[net.Conn]bool{}}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

// Addr is the local address connections are accepted on.
func (f *Forwarder) Addr() string { return f.ln.Addr().String() }

// Close stops accepting, ends the connections being carried and waits for
// them.
func (f *Forwarder) Close() error {
	err := f.ln.Close()
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
	return err
}

// track adds or removes a local end; it refuses (false) to add one once
// Close has begun, which would otherwise never close it: a connection
// accepted just before Close closed the listener.
func (f *Forwarder) track(c net.Conn, open bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !open:
		delete(f.conns, c)
	case f.closed:
		return false
	default:
		f.conns[c] = true
	}
	return true
}

func (f *Forwarder) serve() {
	defer f.wg.Done()
	for {
		local, err := f.ln.Accept()
		if err != nil {
			return // closed
		}
		if !f.track(local, true) {
			local.Close()
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer f.track(local, false)
			defer local.Close()
			ctx, cancel := context.WithTimeout(context.Background(), forwardDialTimeout)
			remote, err := f.host.DialContext(ctx, "tcp", f.remote)
			cancel()
			if err != nil {
				f.host.log.Warn("forward: cannot reach the remote end", "remote", f.remote, "error", err)
				return
			}
			defer remote.Close()
			pipe(local, remote)
		}()
	}
}

// pipe copies both ways until either side ends, then closes both.
func pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src) // an error from either end ends the pair
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	a.Close()
	b.Close()
	<-done
}
