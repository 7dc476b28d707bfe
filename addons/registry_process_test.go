package addons

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/bootctl/boot/internal/testenv"
)

// bundledRegistry extracts the registry binary from the bundle's registry
// image (images/registry.tar, the image the chart runs) into a temporary
// folder and returns its path.
func bundledRegistry(t *testing.T) string {
	t.Helper()
	image := filepath.Join(testenv.BundleDir(t), "images", "registry.tar")
	img, err := tarball.ImageFromPath(image, nil)
	if err != nil {
		t.Fatalf("%s: %v", image, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatalf("%s: %v", image, err)
	}
	bin := filepath.Join(t.TempDir(), "registry")
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatalf("%s: %v", image, err)
		}
		found, err := extractFile(rc, "bin/registry", bin)
		_ = rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", image, err)
		}
		if found {
			return bin
		}
	}
	t.Fatalf("%s has no bin/registry", image)
	return ""
}

// extractFile writes the tar stream's file name to dst, executable, and says
// whether the stream held it.
func extractFile(r io.Reader, name, dst string) (bool, error) {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		if strings.TrimPrefix(h.Name, "/") != name {
			continue
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			return false, err
		}
		if _, err := io.Copy(f, tr); err != nil {
			_ = f.Close()
			return false, err
		}
		return true, f.Close()
	}
}

// withoutAuth returns the rendered config.yml without its auth section:
// the latency tests measure the cache, not bcrypt (which the htpasswd
// check runs on every request).
func withoutAuth(t *testing.T, config []byte) []byte {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(config, &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc, "auth")
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// registryProcess is the bundle's registry binary serving a config.
type registryProcess struct {
	cmd  *exec.Cmd
	logs *testenv.Buffer
	// URL is the registry API (http.addr, moved to a free loopback port).
	URL string
}

// startRegistryProcess runs `registry serve` (the container's command) with
// config.yml and env (besides a PATH, nothing of this process's environment)
// and waits until GET / on http.addr, the chart's probe, answers 200. The
// caller's env must move http.addr (REGISTRY_HTTP_ADDR) to httpAddr.
func startRegistryProcess(t *testing.T, bin string, config []byte, env map[string]string, httpAddr string) *registryProcess {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, config, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &registryProcess{logs: &testenv.Buffer{}, URL: "http://" + httpAddr}
	p.cmd = exec.Command(bin, "serve", path)
	p.cmd.Dir = dir
	p.cmd.Env = []string{"PATH=/usr/bin:/bin"}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-exited:
			t.Fatalf("registry exited: %v\n%s", p.cmd.ProcessState, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry did not answer GET / within 30s: %v\n%s", err, p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// chartRegistry renders the chart and the registry's config.yml for values
// and returns the config and the registry container's environment resolved
// against creds, as the kubelet would.
func chartRegistry(t *testing.T, values map[string]any, creds *RegistryCredentials) ([]byte, map[string]string) {
	t.Helper()
	out, err := RenderRegistry(RenderOptions{Values: values})
	if err != nil {
		t.Fatal(err)
	}
	d := get[*appsv1.Deployment](t, decodeManifests(t, out), "Deployment/registry")
	config, err := RenderRegistryConfig(values)
	if err != nil {
		t.Fatal(err)
	}
	return config, containerEnv(t, d.Spec.Template.Spec.Containers[0], creds)
}

// loopbackAddr is a free port on 127.0.0.1 as host:port.
func loopbackAddr(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freeLoopbackPort(t)))
}

// redisConfig writes a redis.conf with the password into dir and returns
// its path (the password stays off redis-server's command line).
func redisConfig(t *testing.T, dir, password string) string {
	t.Helper()
	path := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(path, []byte("requirepass \""+password+"\"\nsave \"\"\nappendonly no\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitContext bounds a test's waits.
func waitContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
