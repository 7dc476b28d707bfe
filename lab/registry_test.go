package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bootctl/boot/bundle"
)

// startTestRegistry runs the real distribution registry with the lab's
// configuration (paths moved to the test's folders) on 127.0.0.2, with a
// certificate from writeCerts, and returns a Lab pointing at it.
func startTestRegistry(t *testing.T) *Lab {
	dir := t.TempDir()
	l := &Lab{Dir: dir, Subnet: "127.0.0.0/24", RegistryCA: filepath.Join(dir, "registry", "ca.crt")}
	if err := l.writeCerts(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", l.addr(registryOctet)+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", l.addr(registryOctet), err)
	}
	l.Registry = ln.Addr().String()
	ln.Close()
	config, err := configuration.Parse(bytes.NewReader(fmt.Appendf(nil, registryConfig, registryPort)))
	if err != nil {
		t.Fatalf("the lab's registry configuration does not parse: %v", err)
	}
	if config.HTTP.TLS.Certificate != "/etc/lab-registry/tls.crt" || config.Storage.Type() != "filesystem" || !config.Storage["delete"]["enabled"].(bool) {
		t.Fatalf("unexpected registry configuration: %+v", config)
	}
	config.HTTP.Addr = l.Registry
	config.HTTP.TLS.Certificate = filepath.Join(dir, "registry", "tls.crt")
	config.HTTP.TLS.Key = filepath.Join(dir, "registry", "tls.key")
	config.Storage["filesystem"]["rootdirectory"] = filepath.Join(dir, "data")
	config.Log.Level = "error"
	t.Setenv("OTEL_TRACES_EXPORTER", "none") // as lab-registry does: no collector to send traces to
	reg, err := registry.NewRegistry(context.Background(), config)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = reg.ListenAndServe() }()
	t.Cleanup(func() {
		// Idle keep-alive connections would hold Shutdown until its deadline.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = reg.Shutdown(ctx)
	})
	client, err := registryClient(l.RegistryCA)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for pingRegistry(context.Background(), client, l.Registry) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("registry on %s not answering", l.Registry)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return l
}

// writeTestBundle makes a bundle folder with one image archive, tagged name,
// whose manifest records digest (the real one when digest is "").
func writeTestBundle(t *testing.T, imageName, repoTag, digest string) string {
	dir := t.TempDir()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(imageName)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "images", "test.tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if digest == "" {
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digest = d.String()
	}
	m := bundle.Manifest{
		KubernetesVersion: "v1.37.2", Arch: "amd64",
		Files:  []bundle.File{{Path: "images/test.tar", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)), Component: "test", Version: "1"}},
		Images: []bundle.Image{{Name: imageName, RepoTag: repoTag, Path: "images/test.tar", Digest: digest, Component: strings.Split(repoTag, ":")[0], Version: "1"}},
	}
	text, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, bundle.ManifestName), text, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestPushBundleToTheRegistry(t *testing.T) {
	l := startTestRegistry(t)
	dir := writeTestBundle(t, "registry.k8s.io/coredns/coredns:v1.14.6", "coredns:v1.14.6", "")
	version, err := l.pushBundle(context.Background(), dir, logger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if version != "v1.37.2" || len(l.Images) != 2 || l.Images[0] != "coredns:v1.14.6" || l.Images[1] != "coredns/coredns:v1.14.6" {
		t.Errorf("version %q, images %v", version, l.Images)
	}
	// The image is where kubeadm looks for it with imageRepository = the
	// lab registry, and where an online node asking registry.k8s.io for it
	// through the lab registry as a mirror does.
	client, err := registryClient(l.RegistryCA)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"/coredns:v1.14.6", "/coredns/coredns:v1.14.6"} {
		ref, err := name.NewTag(l.Registry + n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Image(ref, remote.WithTransport(client.Transport)); err != nil {
			t.Errorf("pull %s: %v", ref, err)
		}
	}
	repos, err := catalog(context.Background(), client, l.Registry)
	if err != nil || len(repos) != 2 || repos[0] != "coredns" || repos[1] != "coredns/coredns" {
		t.Errorf("catalog = %v, %v", repos, err)
	}
}

func TestPushBundleChecksTheDigest(t *testing.T) {
	l := startTestRegistry(t)
	wrong := "sha256:" + strings.Repeat("0", 64)
	dir := writeTestBundle(t, "registry.k8s.io/pause:3.10.2", "pause:3.10.2", wrong)
	_, err := l.pushBundle(context.Background(), dir, logger(nil))
	if err == nil || !strings.Contains(err.Error(), "the bundle says "+wrong) {
		t.Fatalf("err = %v; want a digest mismatch", err)
	}
}

func TestRegistryRefusesOtherCAs(t *testing.T) {
	l := startTestRegistry(t)
	other := &Lab{Dir: t.TempDir(), Subnet: l.Subnet}
	other.RegistryCA = filepath.Join(other.Dir, "registry", "ca.crt")
	if err := other.writeCerts(); err != nil {
		t.Fatal(err)
	}
	client, err := registryClient(other.RegistryCA)
	if err != nil {
		t.Fatal(err)
	}
	if err := pingRegistry(context.Background(), client, l.Registry); err == nil {
		t.Fatal("a client trusting another lab's CA accepted this registry")
	}
	if _, err := os.Stat(filepath.Join(l.Dir, "registry", "ca.key")); err == nil {
		t.Error("the CA's private key was written")
	}
	info, err := os.Stat(filepath.Join(l.Dir, "registry", "tls.key"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("tls.key mode %v, %v; want 0600", info.Mode(), err)
	}
}
