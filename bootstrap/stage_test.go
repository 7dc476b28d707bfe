package bootstrap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/internal/sshtest"
	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/nodes"
)

// dialLoopbackHost starts a real sshd on 127.0.0.2 (with TCP forwarding if
// asked) and returns a connection to it as the inventory's control plane,
// closed when the test ends.
func dialLoopbackHost(t testing.TB, forwarding bool) *nodes.Host {
	t.Helper()
	key := sshtest.NewKey(t, "")
	s := sshtest.Start(t, sshtest.Options{Address: "127.0.0.2", TCPForwarding: forwarding,
		AuthorizedKeys: map[string][]ssh.PublicKey{"root": {key.Public}}})
	known := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(known, []byte(s.KnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inv := testenv.Inventory(t, fmt.Sprintf(`apiVersion: boot/v1alpha1
kind: Cluster
metadata:
  name: lab
ssh:
  keyPath: %s
  knownHosts: %s
  agent: false
hosts:
  - {name: cp1, address: 127.0.0.2, role: control-plane, ssh: {port: %d}}
  - {name: w1, address: 127.0.0.3, role: worker}
registry:
  host: registry.example.com
  issuer: selfsigned
`, key.Path, known, s.Port))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := DialHost(ctx, inv, inv.ControlPlane(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// The staging stamp: a first look hashes the staged files and records
// them; after it, a file whose Stat is unchanged is taken at the stamp's
// word (a planted wrong sum is believed), while a file written by hand,
// even to the same size with its modification time put back, is hashed
// again and found different. A dry run records nothing.
func TestStagingStampSkipsOnlyUntouchedFiles(t *testing.T) {
	h := &Host{Conn: dialLoopbackHost(t, false)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	stamp := filepath.Join(dir, stagedStamp)
	var files []bundle.File
	for _, name := range []string{"kubelet", "kubeadm"} {
		content := []byte("the " + name + " binary")
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o755); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		files = append(files, bundle.File{Path: name, SHA256: hex.EncodeToString(sum[:])})
	}
	names := func(fs []bundle.File) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Path)
		}
		return out
	}

	if diff, err := differing(ctx, h, dir, files, stamp, false); err != nil || len(diff) != 0 {
		t.Fatalf("dry look: %v, %v", names(diff), err)
	}
	if _, err := os.Stat(stamp); !os.IsNotExist(err) {
		t.Fatalf("a look without record wrote the stamp: %v", err)
	}
	if diff, err := differing(ctx, h, dir, files, stamp, true); err != nil || len(diff) != 0 {
		t.Fatalf("first look: %v, %v", names(diff), err)
	}
	var recorded map[string]nodes.FileSum
	raw, err := os.ReadFile(stamp)
	if err == nil {
		err = json.Unmarshal(raw, &recorded)
	}
	if err != nil || len(recorded) != 2 || recorded[filepath.Join(dir, "kubelet")].SHA256 != files[0].SHA256 {
		t.Fatalf("stamp %s: %v", raw, err)
	}

	// A wrong sum planted for kubeadm, its Stat kept: believed.
	planted := recorded[filepath.Join(dir, "kubeadm")]
	planted.SHA256 = "0"
	recorded[filepath.Join(dir, "kubeadm")] = planted
	raw, _ = json.Marshal(recorded)
	if err := os.WriteFile(stamp, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	// kubelet written by hand: same size, modification time put back.
	kubelet := filepath.Join(dir, "kubelet")
	before, err := os.Stat(kubelet)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kubelet, []byte("THE kubelet binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(kubelet, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	diff, err := differing(ctx, h, dir, files, stamp, true)
	if err != nil || !slices.Equal(names(diff), []string{"kubelet", "kubeadm"}) {
		t.Errorf("after the hand edit and the planted sum: differing %v, %v; want both", names(diff), err)
	}
}

// BenchmarkStagedCheck compares, on a real sshd, the check of four staged
// files of 32 MiB each that have not changed: hashing them all (what every
// re-run did before the stamp) and the stamp's Stat check.
func BenchmarkStagedCheck(b *testing.B) {
	h := &Host{Conn: dialLoopbackHost(b, false)}
	ctx := context.Background()
	dir := b.TempDir()
	stamp := filepath.Join(dir, stagedStamp)
	var files []bundle.File
	for i := range 4 {
		content := make([]byte, 32<<20)
		content[0] = byte(i)
		name := fmt.Sprintf("bin%d", i)
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o755); err != nil {
			b.Fatal(err)
		}
		sum := sha256.Sum256(content)
		files = append(files, bundle.File{Path: name, SHA256: hex.EncodeToString(sum[:])})
	}
	for _, c := range []struct {
		name  string
		stamp string
	}{{"hash every file", ""}, {"stamp", stamp}} {
		if _, err := differing(ctx, h, dir, files, c.stamp, true); err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if diff, err := differing(ctx, h, dir, files, c.stamp, true); err != nil || len(diff) != 0 {
					b.Fatal(diff, err)
				}
			}
		})
	}
}

// A worker is staged the runtime and kubeadm/kubelet but not kubectl; the
// control plane everything but helm (installed straight to its place).
func TestStagedFilesByRole(t *testing.T) {
	b, err := bundle.Open(testenv.BundleDir(t))
	if err != nil {
		t.Fatal(err)
	}
	has := func(files []bundle.File, p string) bool {
		return slices.ContainsFunc(files, func(f bundle.File) bool { return f.Path == p })
	}
	cp, worker := stagedFiles(b, "control-plane", "bin"), stagedFiles(b, "worker", "bin")
	for _, p := range []string{"bin/kubelet", "bin/kubeadm", "bin/containerd", "bin/dockerd"} {
		if !has(cp, p) || !has(worker, p) {
			t.Errorf("%s: staged on the control plane %v, on a worker %v", p, has(cp, p), has(worker, p))
		}
	}
	if !has(cp, "bin/kubectl") || has(worker, "bin/kubectl") || has(cp, "bin/helm") || has(worker, "bin/helm") {
		t.Errorf("kubectl on the control plane %v, on a worker %v; helm staged %v %v", has(cp, "bin/kubectl"), has(worker, "bin/kubectl"), has(cp, "bin/helm"), has(worker, "bin/helm"))
	}
	t.Logf("staged: control plane %d files, %.0f MB; worker %d files, %.0f MB", len(cp), float64(totalSize(cp))/1e6, len(worker), float64(totalSize(worker))/1e6)
}
