package lab

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bootctl/boot/internal/testenv"
)

// TestProxyConfig runs Debian's tinyproxy with the lab's configuration on
// loopback: an HTTPS server on an allowed port is reached through it (a
// CONNECT tunnel), one on a port it was not given is refused.
func TestProxyConfig(t *testing.T) {
	testenv.Root(t, "tinyproxy drops to nobody, which")
	bin, err := exec.LookPath(proxyProgram)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI installs tinyproxy (.ci/deps): %v", err)
		}
		t.Skip("tinyproxy is not installed (apt-get install tinyproxy)")
	}
	allowed := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("mirror")) }))
	defer allowed.Close()
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("other")) }))
	defer other.Close()
	port := func(s *httptest.Server) int {
		u, _ := url.Parse(s.URL)
		n, _ := strconv.Atoi(u.Port())
		return n
	}
	proxyPort := freePort(t, false)
	conf := filepath.Join(t.TempDir(), "tinyproxy.conf")
	if err := os.WriteFile(conf, []byte(proxyConfig("127.0.0.1", proxyPort, "127.0.0.0/8", []int{port(allowed)})), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-d", "-c", conf)
	log := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	proxyURL, _ := url.Parse("http://127.0.0.1:" + strconv.Itoa(proxyPort))
	tr := allowed.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(proxyURL)
	tr.TLSClientConfig.InsecureSkipVerify = true // both test servers' certificates
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var body []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(allowed.URL)
		if err == nil {
			body = make([]byte, 16)
			n, _ := resp.Body.Read(body)
			body = body[:n]
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(log)
			t.Fatalf("through tinyproxy to the allowed port: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if string(body) != "mirror" {
		t.Errorf("through the proxy: %q", body)
	}
	if resp, err := client.Get(other.URL); err == nil {
		resp.Body.Close()
		t.Errorf("tinyproxy tunnelled to port %d, which it was not given", port(other))
	}
}
