//go:build linux

package bundle

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/bootctl/boot/internal/testenv"
)

// builtBundle opens the bundle named by BOOT_BUNDLE_DIR (made with
// `boot bundle build`); without it the test skips, or fails under CI.
func builtBundle(t *testing.T) *Bundle {
	t.Helper()
	b, err := Open(testenv.BundleDir(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// run runs a command and returns its standard output; on failure the test
// fails with both outputs.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

func TestBundle(t *testing.T) {
	b := builtBundle(t)
	m := b.Manifest

	t.Run("every Kubernetes version's programs and the images its kubeadm asks for", func(t *testing.T) {
		if err := b.CheckKubernetes(t.Context()); err != nil {
			t.Error(err)
		}
	})

	t.Run("versions", func(t *testing.T) {
		for bin, want := range map[string]string{
			"bin/containerd":  containerdVersion,
			"bin/ctr":         containerdVersion,
			"bin/runc":        strings.TrimPrefix(runcVersion, "v"),
			"bin/crictl":      crictlVersion,
			"cni/bin/bridge":  cniPluginsVersion,
			"cni/bin/flannel": flannelPluginVersion,
			"bin/helm":        helmVersion,
		} {
			arg := "--version"
			switch bin {
			case "bin/helm":
				arg = "version"
			case "cni/bin/bridge", "cni/bin/flannel":
				arg = ""
			}
			cmd := exec.Command(b.Path(bin))
			if arg != "" {
				cmd.Args = append(cmd.Args, arg)
			} else {
				cmd.Env = []string{} // no CNI_COMMAND: the plugin prints its name and version
			}
			out, _ := cmd.CombinedOutput() // CNI plugins exit 1 after printing it
			if !strings.Contains(string(out), want) {
				t.Errorf("%s %s printed %q, want it to contain %s", bin, arg, out, want)
			}
		}
	})

	t.Run("every image archive loads", func(t *testing.T) {
		for _, img := range m.Images {
			i, err := b.Image(img.Name)
			if err != nil {
				t.Error(err)
				continue
			}
			d, err := i.Digest()
			if err != nil {
				t.Errorf("%s: %v", img.Name, err)
				continue
			}
			if d.String() != img.Digest {
				t.Errorf("%s: digest %s, manifest says %s", img.Name, d, img.Digest)
			}
			cf, err := i.ConfigFile()
			if err != nil {
				t.Errorf("%s: %v", img.Name, err)
				continue
			}
			if cf.OS != "linux" || cf.Architecture != "amd64" || len(cf.Config.Entrypoint)+len(cf.Config.Cmd) == 0 {
				t.Errorf("%s: config %s/%s entrypoint %q cmd %q", img.Name, cf.OS, cf.Architecture, cf.Config.Entrypoint, cf.Config.Cmd)
			}
		}
	})

	t.Run("registry add-on images", func(t *testing.T) {
		testAddonImages(t, b)
	})

	t.Run("cert-manager images and the archives' charts", func(t *testing.T) {
		testCertManagerBundle(t, b)
	})

	t.Run("a tampered file fails Open", func(t *testing.T) {
		// A shadow folder linking every file of the bundle, but with one
		// small file copied and changed.
		shadow := t.TempDir()
		const victim = "config/crictl.yaml"
		for _, f := range append(m.Files, File{Path: ManifestName}) {
			dst := filepath.Join(shadow, filepath.FromSlash(f.Path))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			src, err := filepath.Abs(b.Path(f.Path))
			if err != nil {
				t.Fatal(err)
			}
			if f.Path == victim {
				data, err := os.ReadFile(src)
				if err != nil {
					t.Fatal(err)
				}
				err = os.WriteFile(dst, bytes.Replace(data, []byte("timeout: 10"), []byte("timeout: 99"), 1), 0o644)
				if err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := os.Symlink(src, dst); err != nil {
				t.Fatal(err)
			}
		}
		_, err := Open(shadow)
		if err == nil || !strings.Contains(err.Error(), victim+": sha256") {
			t.Fatalf("Open of a bundle with a changed %s: got %v", victim, err)
		}
	})

	t.Run("containerd imports every image", func(t *testing.T) {
		testenv.Root(t, t.Name())
		ctr := testContainerdImport(t, b)
		t.Run("registry and redis run as the chart runs them", func(t *testing.T) {
			testAddonContainers(t, b, ctr)
		})
	})

	t.Run("image programs run", func(t *testing.T) {
		testenv.Root(t, t.Name())
		testImageTools(t, b)
	})
}

// ctrClient runs the bundle's ctr against the test's containerd.
type ctrClient struct{ bin, sock string }

// cmd is a ctr command in the test's namespace.
func (c ctrClient) cmd(args ...string) *exec.Cmd {
	return exec.Command(c.bin, append([]string{"--address", c.sock, "--namespace", "boot-test"}, args...)...)
}

// run runs ctr and returns its standard output; on failure the test fails.
func (c ctrClient) run(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, c.bin, append([]string{"--address", c.sock, "--namespace", "boot-test"}, args...)...)
}

// testContainerdImport starts the bundle's containerd on a private socket
// and folders (running containers with the bundle's shim and runc), checks
// it accepts the bundle's config, and imports (and unpacks) every image
// archive with the bundle's ctr. It returns a ctr for further tests, valid
// until t ends.
func testContainerdImport(t *testing.T, b *Bundle) ctrClient {
	dir, err := os.MkdirTemp("/var/tmp", "boot-containerd-") // overlayfs needs a real file system, not tmpfs
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	run(t, b.Path("bin/containerd"), "--config", b.Path("config/containerd-config.toml"), "config", "dump")

	sock := filepath.Join(dir, "c.sock")
	cfg := filepath.Join(dir, "config.toml")
	conf := fmt.Sprintf("version = 3\nroot = %q\nstate = %q\ndisabled_plugins = ['io.containerd.grpc.v1.cri', 'io.containerd.cri.v1.runtime', 'io.containerd.cri.v1.images']\n[grpc]\n  address = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	bin, err := filepath.Abs(b.Path("bin"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(b.Path("bin/containerd"), "--config", cfg)
	cmd.Env = append(os.Environ(), "PATH="+bin+string(filepath.ListSeparator)+os.Getenv("PATH"))
	start(t, cmd)
	ctr := ctrClient{bin: b.Path("bin/ctr"), sock: sock}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			if out, err := exec.Command(b.Path("bin/ctr"), "--address", sock, "version").CombinedOutput(); err == nil && strings.Contains(string(out), containerdVersion) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not answer on %s within 30s", sock)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, img := range b.Manifest.Images {
		ctr.run(t, "images", "import", "--platform", "linux/amd64", b.Path(img.Path))
	}
	var want []string
	for _, img := range b.Manifest.Images {
		want = append(want, img.Name)
	}
	sort.Strings(want)
	got := strings.Fields(ctr.run(t, "images", "list", "--quiet"))
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("containerd holds %q after the import, want %q", got, want)
	}
	return ctr
}

// unpack writes the flattened file system of a bundle image to a new folder.
func unpack(t *testing.T, b *Bundle, ref string) string {
	t.Helper()
	img, err := b.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	tarCmd := exec.Command("tar", "-x", "-C", root)
	tarCmd.Stdin = rc
	if out, err := tarCmd.CombinedOutput(); err != nil {
		t.Fatalf("unpacking %s: %v\n%s", ref, err, out)
	}
	// A container runtime gives every container a /dev/null.
	if err := os.MkdirAll(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mknod(filepath.Join(root, "dev/null"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
		t.Fatal(err)
	}
	return root
}

// testImageTools unpacks every image and runs, chrooted into it, its
// program with a version flag (so the binary runs from its place in the
// image) and, in the kube-proxy and flannel images, the commands they
// need: the iptables wrapper must pick a backend and hand over to the real
// iptables.
func testImageTools(t *testing.T, b *Bundle) {
	for _, img := range b.Manifest.Images {
		t.Run(img.RepoTag, func(t *testing.T) {
			root := unpack(t, b, img.Name)
			chroot := func(env []string, args ...string) string {
				t.Helper()
				cmd := exec.Command("chroot", append([]string{root}, args...)...)
				cmd.Env = env
				out, err := cmd.CombinedOutput()
				if err != nil && env == nil {
					t.Fatalf("chroot %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				return string(out)
			}
			want := strings.TrimPrefix(img.Version, "v")
			if img.Component == "redis" {
				want = "v=" + debianUpstreamVersion(img.Version)
			}
			var got string
			switch img.Component {
			case "kubernetes":
				repo, _, _ := strings.Cut(img.RepoTag, ":")
				got = chroot(nil, "/usr/local/bin/"+repo, "--version")
			case "etcd":
				got = chroot(nil, "/usr/local/bin/etcd", "--version")
			case "coredns":
				got = chroot(nil, "/coredns", "-version")
			case "pause":
				got = chroot(nil, "/pause", "-v")
			case "flannel":
				got = chroot(nil, "/opt/bin/flanneld", "--version")
			case "flannel-cni-plugin":
				got = chroot([]string{}, "/flannel") // prints its about text, exits 1
				chroot(nil, "cp", "--version")
			case "registry":
				got = chroot(nil, "/bin/registry", "--version")
				testRegistryServes(t, root)
			case "redis":
				got = chroot(nil, "/usr/bin/redis-server", "--version")
				testRedisServes(t, root)
			case "cert-manager-controller", "cert-manager-webhook", "cert-manager-cainjector", "cert-manager-acmesolver", "cert-manager-startupapicheck":
				got = certManagerRuns(t, root, strings.TrimPrefix(img.Component, "cert-manager-"))
			case "traefik":
				got = traefikRuns(t, root)
			case "boot":
				// The prune and gc jobs run `boot` from PATH as uid 65532.
				got = chroot(nil, "/usr/local/bin/boot", "version")
				if help := chroot(nil, "/usr/local/bin/boot", "registry", "gc", "--help"); !strings.Contains(help, "--redis") {
					t.Errorf("the boot image's boot has no registry gc:\n%s", help)
				}
			default:
				t.Fatalf("no check for component %s", img.Component)
			}
			if !strings.Contains(got, want) {
				t.Errorf("%s printed %q, want %s", img.Name, got, want)
			}
			if img.Component != "flannel" && !strings.Contains(img.RepoTag, "kube-proxy:") {
				return
			}
			if got := chroot(nil, "iptables", "--version"); !strings.Contains(got, "iptables v") {
				t.Errorf("iptables --version: %q", got)
			}
			link, err := os.Readlink(filepath.Join(root, "usr/sbin/iptables"))
			if err != nil || (link != "xtables-nft-multi" && link != "xtables-legacy-multi") {
				t.Errorf("after the first call usr/sbin/iptables points to %q (%v), want an xtables backend", link, err)
			}
			for _, tool := range [][]string{{"conntrack", "--version"}, {"ipset", "version"}, {"ip", "-V"}, {"nft", "--version"}, {"ip6tables-save", "--version"}} {
				chroot(nil, tool...)
			}

			// A host whose rules live in iptables-legacy: the wrapper must
			// choose legacy. A stand-in legacy backend reports many rules.
			legacy := filepath.Join(root, "usr/sbin/xtables-legacy-multi")
			fake := "#!/bin/sh\ncase \"$1\" in *-save) i=0; while [ $i -lt 5000 ]; do echo \"-A KUBE-TEST-$i -j ACCEPT\"; i=$((i + 1)); done; exit 0 ;; esac\necho \"stand-in legacy backend called as $0 $*\"\n"
			if err := os.WriteFile(legacy, []byte(fake), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, c := range iptablesCommands {
				p := filepath.Join(root, "usr/sbin", c)
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink("iptables-wrapper", p); err != nil {
					t.Fatal(err)
				}
			}
			if got := chroot(nil, "iptables", "-L"); !strings.Contains(got, "stand-in legacy backend called as /usr/sbin/iptables -L") {
				t.Errorf("with 5000 legacy rules, iptables -L ran %q, want the legacy backend", got)
			}
			if link, _ := os.Readlink(filepath.Join(root, "usr/sbin/ip6tables-restore")); link != "xtables-legacy-multi" {
				t.Errorf("ip6tables-restore points to %q, want xtables-legacy-multi", link)
			}
		})
	}
}
