package nodes

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/bootctl/boot/internal/sshtest"
)

// TestForward carries HTTP requests through a real sshd to a server only
// "the host" is asked to reach, and refuses when sshd forbids forwarding.
func TestForward(t *testing.T) {
	key := sshtest.NewKey(t, "")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	defer backend.Close()
	target := strings.TrimPrefix(backend.URL, "http://")

	for _, allow := range []bool{true, false} {
		s := sshtest.Start(t, sshtest.Options{Address: "127.0.0.3", TCPForwarding: allow,
			AuthorizedKeys: map[string][]ssh.PublicKey{"root": {key.Public}}})
		h := mustDial(t, Config{Name: "node1", Address: s.Address, Port: s.Port, User: "root", KeyPath: key.Path,
			KnownHostsPath: knownHosts(t, s.KnownHostsLine())})
		f, err := Forward(h, "127.0.0.1:0", target)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 { // several connections, one after the other
			resp, err := http.Get(fmt.Sprintf("http://%s/x%d", f.Addr(), i))
			if !allow {
				if err == nil {
					resp.Body.Close()
					t.Fatal("forwarded although sshd forbids TCP forwarding")
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("hello /x%d", i); string(body) != want {
				t.Errorf("got %q through the tunnel, want %q", body, want)
			}
		}
		// A connection still open when the forwarder closes is ended.
		open, err := net.Dial("tcp", f.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Error(err)
		}
		open.Close()
		if _, err := net.Dial("tcp", f.Addr()); err == nil {
			t.Error("the forwarder still accepts after Close")
		}
	}
}
