//go:build linux

package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// addonImage is the one image of component in m.
func addonImage(t *testing.T, m Manifest, component string) Image {
	t.Helper()
	var found []Image
	for _, img := range m.Images {
		if img.Component == component {
			found = append(found, img)
		}
	}
	if len(found) != 1 {
		t.Fatalf("the manifest has %d images of component %s, want 1: %+v", len(found), component, found)
	}
	return found[0]
}

// imageFiles reads the flattened file system of a bundle image: regular
// files' contents and symlinks' targets by path, and the folders.
func imageFiles(t *testing.T, b *Bundle, ref string) (files map[string][]byte, links map[string]string, dirs map[string]bool) {
	t.Helper()
	img, err := b.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	files, links, dirs = map[string][]byte{}, map[string]string{}, map[string]bool{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, links, dirs
		}
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		p := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		switch h.Typeflag {
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[p] = data
		case tar.TypeSymlink:
			links[p] = h.Linkname
		case tar.TypeDir:
			dirs[p] = true
		}
	}
}

// testAddonImages checks the registry and redis images: names, versions,
// configuration, reproducible layers, their files, and (without root) the
// registry binary's version and default configuration.
func testAddonImages(t *testing.T, b *Bundle) {
	m := b.Manifest
	tag := strings.TrimPrefix(registryVersion, "v")
	reg := addonImage(t, m, "registry")
	if want := (Image{Name: "docker.io/library/registry:" + tag, RepoTag: "library/registry:" + tag, Path: "images/registry.tar",
		Digest: reg.Digest, Component: "registry", Version: registryVersion}); reg != want {
		t.Errorf("registry image %+v, want %+v", reg, want)
	}
	redisVersion := m.BuiltWith.Debian["redis-server"]
	redisTag := debianUpstreamVersion(redisVersion) + "-debian"
	redis := addonImage(t, m, "redis")
	if want := (Image{Name: "docker.io/library/redis:" + redisTag, RepoTag: "library/redis:" + redisTag, Path: "images/redis.tar",
		Digest: redis.Digest, Component: "redis", Version: redisVersion}); redisVersion == "" || redis != want {
		t.Errorf("redis image %+v, want %+v (builtWith.debian redis-server %q)", redis, want, redisVersion)
	}
	if !slices.ContainsFunc(m.BuiltWith.Modules, func(mod Module) bool {
		return mod.Component == "registry" && mod.Path == registryModule && mod.Version == registryVersion
	}) {
		t.Errorf("builtWith.modules %+v lack %s %s", m.BuiltWith.Modules, registryModule, registryVersion)
	}
	for _, p := range []string{"ca-certificates", "redis-tools", "libjemalloc2", "dash", "grep"} {
		if m.BuiltWith.Debian[p] == "" {
			t.Errorf("builtWith.debian lacks %s", p)
		}
	}

	for _, c := range []struct {
		img                   Image
		entrypoint, cmd       []string
		workingDir            string
		files, links, folders []string
	}{
		{reg, []string{"/bin/registry"}, []string{"serve", "/etc/distribution/config.yml"}, "",
			[]string{registryBinary, registryConfig, caBundlePath}, nil, []string{"var/lib/registry"}},
		{redis, []string{"/usr/bin/redis-server"}, nil, "/data",
			[]string{"usr/bin/redis-cli", "usr/bin/redis-check-rdb", "bin/dash", "bin/grep", "usr/lib/x86_64-linux-gnu/libjemalloc.so.2"},
			[]string{redisServer, "bin/sh"}, []string{"data"}},
	} {
		i, err := b.Image(c.img.Name)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := imageContents(t, i) // fails on an owner other than 0:0 or a time other than epoch
		cfg := cf.Config
		if !slices.Equal(cfg.Entrypoint, c.entrypoint) || !slices.Equal(cfg.Cmd, c.cmd) || cfg.WorkingDir != c.workingDir || cfg.User != "" {
			t.Errorf("%s: entrypoint %q cmd %q workingDir %q user %q, want %q %q %q and no user (the chart sets it)",
				c.img.Name, cfg.Entrypoint, cfg.Cmd, cfg.WorkingDir, cfg.User, c.entrypoint, c.cmd, c.workingDir)
		}
		files, links, dirs := imageFiles(t, b, c.img.Name)
		for _, f := range c.files {
			if _, ok := files[f]; !ok {
				t.Errorf("%s lacks the file /%s", c.img.Name, f)
			}
		}
		for _, l := range c.links {
			if _, ok := links[l]; !ok {
				t.Errorf("%s lacks the link /%s", c.img.Name, l)
			}
		}
		for _, d := range c.folders {
			if !dirs[d] {
				t.Errorf("%s lacks the folder /%s", c.img.Name, d)
			}
		}
		if c.img.Component != "registry" {
			continue
		}

		bin := filepath.Join(t.TempDir(), "registry")
		if err := os.WriteFile(bin, files[registryBinary], 0o755); err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Fields(run(t, bin, "--version")), []string{bin, registryModule, tag}; !slices.Equal(got, want) {
			t.Errorf("registry --version printed %q, want %q", got, want)
		}
		conf, err := configuration.Parse(bytes.NewReader(files[registryConfig]))
		if err != nil {
			t.Fatalf("/%s: %v", registryConfig, err)
		}
		if conf.Storage.Type() != "filesystem" || conf.Storage.Parameters()["rootdirectory"] != "/var/lib/registry" || conf.HTTP.Addr != ":5000" {
			t.Errorf("/%s: storage %s %v, http.addr %q", registryConfig, conf.Storage.Type(), conf.Storage.Parameters(), conf.HTTP.Addr)
		}
		var n int
		var isrg bool
		for rest := files[caBundlePath]; ; {
			var block *pem.Block
			if block, rest = pem.Decode(rest); block == nil {
				break
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatalf("/%s: certificate %d: %v", caBundlePath, n+1, err)
			}
			n++
			isrg = isrg || cert.Subject.CommonName == "ISRG Root X1"
		}
		if n < 100 || !isrg {
			t.Errorf("/%s holds %d certificates (ISRG Root X1 among them: %t), want Mozilla's set", caBundlePath, n, isrg)
		}
	}
}

// freePort is a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// randomHex is n random bytes in hex.
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// start starts cmd, its output kept and logged if the test fails, and
// kills it when the test ends.
func start(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", cmd.Args, log.String())
		}
	})
}

// eventually retries check every 200ms until it succeeds or 30s pass.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after 30s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkRegistry waits until the registry at addr (host:port, on loopback)
// answers /v2/, then pushes a blob and reads it back.
func checkRegistry(t *testing.T, addr string) {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second}
	base := "http://" + addr + "/v2/"
	eventually(t, "GET "+base, func() error {
		resp, err := client.Get(base)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	})
	blob := []byte("boot bundle test " + randomHex(t, 8))
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256(blob))
	resp, err := client.Post(base+"boot-test/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusAccepted || err != nil {
		t.Fatalf("starting a blob upload: %s, location %v; want 202 Accepted and a location", resp.Status, err)
	}
	q := loc.Query()
	q.Set("digest", digest)
	loc.RawQuery = q.Encode()
	req, err := http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if resp, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("blob upload: %s, want 201 Created", resp.Status)
	}
	resp, err = client.Get(base + "boot-test/blobs/" + digest)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, blob) {
		t.Fatalf("blob read back: %s %q (%v), want %q", resp.Status, got, err, blob)
	}
}

// testRegistryServes runs the unpacked registry image's binary chrooted
// into it as uid 1000 (as the chart does), with its default command's
// configuration on a loopback port, and pushes a blob to it.
func testRegistryServes(t *testing.T, root string) {
	if err := os.Chown(filepath.Join(root, "var/lib/registry"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + freePort(t)
	cmd := exec.Command("chroot", "--userspec=1000:1000", root, "/bin/registry", "serve", "/"+registryConfig)
	cmd.Env = []string{defaultPath, "REGISTRY_HTTP_ADDR=" + addr, "OTEL_TRACES_EXPORTER=none"}
	start(t, cmd)
	checkRegistry(t, addr)
}

// redisProbe is the registry chart's readiness probe of Redis.
const redisProbe = "redis-cli -p %s ping | grep -q PONG"

// testRedisServes runs the unpacked redis image's redis-server chrooted
// into it as uid 999 with the chart's arguments on a loopback port, and
// runs the chart's readiness probe with the image's sh, redis-cli and grep.
func testRedisServes(t *testing.T, root string) {
	port, password := freePort(t), randomHex(t, 16)
	cmd := exec.Command("chroot", "--userspec=999:999", root, "/"+redisServer, "--bind", "127.0.0.1", "--port", port,
		"--requirepass", password, "--maxmemory", "16mb", "--maxmemory-policy", "allkeys-lru", "--save", "", "--appendonly", "no")
	cmd.Env = []string{defaultPath}
	start(t, cmd)
	probe := func(auth string) error {
		c := exec.Command("chroot", "--userspec=999:999", root, "sh", "-c", fmt.Sprintf(redisProbe, port))
		c.Env = []string{defaultPath, "REDISCLI_AUTH=" + auth}
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	eventually(t, "the readiness probe", func() error { return probe(password) })
	if err := probe("wrong-" + password); err == nil {
		t.Error("the readiness probe passed with a wrong password")
	}
}

// testAddonContainers runs the registry and redis images with the
// bundle's containerd and runc the way the chart does: its commands,
// non-root, read-only root file system, no capabilities, a writable volume
// where each keeps its data. Both use the host's network, listening on
// loopback only.
func testAddonContainers(t *testing.T, b *Bundle, ctr ctrClient) {
	id := randomHex(t, 4)
	// ctr knows no "ALL": every capability containerd grants by default.
	var noCaps []string
	for _, c := range []string{"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
		"SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"} {
		noCaps = append(noCaps, "--cap-drop", "CAP_"+c)
	}
	container := func(img Image, user, dst string, env []string, args ...string) string {
		uid, _, _ := strings.Cut(user, ":")
		n, err := strconv.Atoi(uid)
		if err != nil {
			t.Fatal(err)
		}
		volume := t.TempDir()
		if err := os.Chown(volume, n, n); err != nil {
			t.Fatal(err)
		}
		name := "boot-test-" + img.Component + "-" + id
		flags := append([]string{"run", "--detach", "--net-host", "--read-only", "--user", user,
			"--mount", "type=bind,src=" + volume + ",dst=" + dst + ",options=rbind:rw"}, noCaps...)
		for _, e := range env {
			flags = append(flags, "--env", e)
		}
		t.Cleanup(func() {
			if out, err := ctr.cmd("tasks", "delete", "--force", name).CombinedOutput(); err != nil {
				t.Errorf("removing the task %s: %v: %s", name, err, out)
			}
			if out, err := ctr.cmd("containers", "delete", name).CombinedOutput(); err != nil {
				t.Errorf("removing the container %s: %v: %s", name, err, out)
			}
		})
		ctr.run(t, append(append(flags, img.Name, name), args...)...)
		return name
	}

	reg := addonImage(t, b.Manifest, "registry")
	tag := strings.TrimPrefix(registryVersion, "v")
	if got := ctr.run(t, append(append([]string{"run", "--rm", "--read-only", "--user", "1000:1000"}, noCaps...), reg.Name, "boot-test-version-"+id, "registry", "--version")...); !strings.Contains(got, registryModule+" "+tag) {
		t.Errorf("registry --version in a container printed %q, want %s %s", got, registryModule, tag)
	}
	addr := "127.0.0.1:" + freePort(t)
	container(reg, "1000:1000", "/var/lib/registry", []string{"REGISTRY_HTTP_ADDR=" + addr, "OTEL_TRACES_EXPORTER=none"},
		"registry", "serve", "/"+registryConfig)
	checkRegistry(t, addr)

	redis := addonImage(t, b.Manifest, "redis")
	port, password := freePort(t), randomHex(t, 16)
	c := container(redis, "999:999", "/data", []string{"REDISCLI_AUTH=" + password},
		"redis-server", "--bind", "127.0.0.1", "--port", port, "--requirepass", password,
		"--maxmemory", "16mb", "--maxmemory-policy", "allkeys-lru", "--save", "", "--appendonly", "no")
	execs := 0
	probe := func(script string) error {
		execs++
		out, err := ctr.cmd("tasks", "exec", "--exec-id", fmt.Sprintf("probe-%d", execs), c, "sh", "-c", script).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	eventually(t, "the readiness probe in the redis container", func() error { return probe(fmt.Sprintf(redisProbe, port)) })
	if err := probe("redis-cli --no-auth-warning -a wrong-" + password + " -p " + port + " ping | grep -q PONG"); err == nil {
		t.Error("the readiness probe passed with a wrong password")
	}
	// The container's processes run as 999, the root file system refuses
	// writes, the volume takes them.
	if err := probe(`while read -r k v rest; do [ "$k" = Uid: ] && [ "$v" = 999 ] && exit 0; done </proc/self/status; exit 1`); err != nil {
		t.Errorf("the redis container's processes do not run as uid 999: %v", err)
	}
	if err := probe("echo x >/written"); err == nil {
		t.Error("the redis container's root file system took a write")
	}
	if err := probe("echo x >/data/written"); err != nil {
		t.Errorf("the redis container's /data volume: %v", err)
	}
}
