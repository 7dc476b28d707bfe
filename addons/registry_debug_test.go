package addons

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/bootctl/boot/internal/testenv"
)

// podAddress is an address of this machine other people's processes reach it
// on, as other pods reach a pod's IP: its first non-loopback IPv4 address.
func podAddress(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	testenv.Need(t, "a non-loopback IPv4 address")
	return ""
}

// getURL answers a GET of url: status and body, or the error.
func getURL(url string) (int, string, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// TestRegistryDebugListener runs the bundle's registry binary with the
// chart's config.yml and env (ports moved to free ones, hosts as rendered):
// the API port answers the chart's probes on the machine's network address,
// as the kubelet asks a pod's IP; the debug listener, where distribution
// serves /metrics next to /debug/pprof, answers on loopback only, where the
// Kubernetes API's port-forward reaches it, and nothing of it (pprof least of
// all) on the network address another pod would use.
func TestRegistryDebugListener(t *testing.T) {
	bin := bundledRegistry(t)
	podIP := podAddress(t)
	creds, err := NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	values := withValues(map[string]any{"cache": "none"})
	out, err := RenderRegistry(RenderOptions{Values: values})
	if err != nil {
		t.Fatal(err)
	}
	d := get[*appsv1.Deployment](t, decodeManifests(t, out), "Deployment/registry")
	c := d.Spec.Template.Spec.Containers[0]
	config, err := RenderRegistryConfig(values)
	if err != nil {
		t.Fatal(err)
	}
	cfg := parseConfig(t, config)
	debugHost, _, err := net.SplitHostPort(cfg.HTTP.Debug.Addr)
	if err != nil {
		t.Fatalf("http.debug.addr %q: %v", cfg.HTTP.Debug.Addr, err)
	}
	httpHost, _, err := net.SplitHostPort(cfg.HTTP.Addr)
	if err != nil {
		t.Fatalf("http.addr %q: %v", cfg.HTTP.Addr, err)
	}
	httpPort, debugPort := strconv.Itoa(freeLoopbackPort(t)), strconv.Itoa(freeLoopbackPort(t))

	env := containerEnv(t, c, creds)
	env["REGISTRY_HTTP_ADDR"] = net.JoinHostPort(httpHost, httpPort)
	env["REGISTRY_HTTP_DEBUG_ADDR"] = net.JoinHostPort(debugHost, debugPort)
	env["REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"] = t.TempDir()
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	env["REGISTRY_AUTH_HTPASSWD_PATH"] = htpasswd
	if err := os.WriteFile(htpasswd, []byte(creds.Htpasswd()), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startRegistryProcess(t, bin, config, env, net.JoinHostPort("127.0.0.1", httpPort))

	// The kubelet's probes, to the pod's IP and the probe's named port.
	pod := "http://" + net.JoinHostPort(podIP, httpPort)
	for _, probe := range []string{"startup", "readiness"} {
		h := c.StartupProbe.HTTPGet
		if probe == "readiness" {
			h = c.ReadinessProbe.HTTPGet
		}
		if h.Port.String() != "http" {
			t.Fatalf("%s probe on port %s, not the API port this test runs", probe, h.Port.String())
		}
		if code, body, err := getURL(pod + h.Path); err != nil || code != http.StatusOK {
			t.Errorf("%s probe GET %s = %d %q %v, want 200", probe, pod+h.Path, code, body, err)
		}
	}

	// On loopback the debug listener serves the metrics, and pprof: the
	// binding is all that keeps pprof from other pods.
	local := "http://" + net.JoinHostPort("127.0.0.1", debugPort)
	if code, body, err := getURL(local + cfg.HTTP.Debug.Prometheus.Path); err != nil || code != http.StatusOK || !strings.Contains(body, "registry_") {
		t.Errorf("GET %s%s = %d %v, want the registry's metrics\n%s", local, cfg.HTTP.Debug.Prometheus.Path, code, err, p.logs.String())
	}
	if code, _, err := getURL(local + "/debug/pprof/"); err != nil || code != http.StatusOK {
		t.Errorf("GET %s/debug/pprof/ = %d %v: the registry binary no longer serves pprof there, revisit this test", local, code, err)
	}

	// From another pod: the debug port is closed, the API port serves no pprof.
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", cfg.HTTP.Debug.Prometheus.Path} {
		url := "http://" + net.JoinHostPort(podIP, debugPort) + path
		if code, _, err := getURL(url); err == nil {
			t.Errorf("GET %s on the pod's address = %d, want the connection refused", url, code)
		}
		if code, body, err := getURL(pod + path); err != nil || code == http.StatusOK {
			t.Errorf("GET %s%s on the API port = %d %v %.80q, want no answer but an error status", pod, path, code, err, body)
		}
	}
}
