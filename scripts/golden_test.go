package scripts

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/inventory"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// testToken is a well-formed bootstrap token used only by tests.
const testToken Token = "x7k2qp.4m9zt1c8vw0rj5hy"

// testCA is a PEM block of the CERTIFICATE type for scripts that write a
// CA file (its content is not parsed there).
const testCA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUboot\n-----END CERTIFICATE-----"

const testCAHash = "sha256:8f14e45fceea167a5a36dedd4bea2543a1b4d2e7c0b7e5b5a8e5f0c3d7e9a1b2"

// scriptCases are the parameter sets every rendered script is checked with.
var scriptCases = []struct {
	name   string
	render func() (string, error)
}{
	{"host-prep-lab.sh", func() (string, error) {
		return HostPrep(HostPrepParams{Hostname: "lab-cp", Address: "172.30.0.10", Nameservers: []string{"172.30.0.1"}})
	}},
	{"host-prep-packages.sh", func() (string, error) {
		return HostPrep(HostPrepParams{Hostname: "node-1.example.com", Address: "10.0.0.11", Packages: []string{"conntrack", "socat", "ebtables"}})
	}},
	{"host-prep-proxy-mirrors.sh", func() (string, error) {
		return HostPrep(HostPrepParams{
			Hostname: "w3", Address: "10.0.0.13",
			Proxy: &Proxy{HTTP: "http://proxy.example.com:3128", HTTPS: "http://proxy.example.com:3128",
				NoProxy: []string{"localhost", "127.0.0.1", "10.244.0.0/16", "10.96.0.0/12", "10.0.0.10", ".svc", "mirror.example.com"}},
			RegistryMirrors: []RegistryMirror{
				{Registry: "registry.k8s.io", Endpoints: []string{"https://mirror.example.com:5000/v2/registry.k8s.io", "https://cache.example.com"}, CA: testCA},
				{Registry: "docker.io", Endpoints: []string{"http://10.0.0.5:5000"}},
			},
		})
	}},
	{"runtime-bundle-lab.sh", func() (string, error) {
		return RuntimeBundle(RuntimeBundleParams{
			StagingDir: "/var/tmp/boot/bundle", ImageRepository: "registry.lab.internal/k8s", PauseTag: "3.10.2",
			RuntimeBinary: "/usr/local/bin/runc-caps", ReadyTimeout: 90 * time.Second,
		})
	}},
	{"runtime-bundle-default.sh", func() (string, error) {
		return RuntimeBundle(RuntimeBundleParams{StagingDir: "/var/tmp/boot/bundle", PauseTag: "3.10.2"})
	}},
	{"runtime-online-ubuntu-noble.sh", func() (string, error) {
		return RuntimeOnline(RuntimeOnlineParams{
			OSID: "ubuntu", Codename: "noble", DockerVersion: "28.1.1", ContainerdVersion: "1.7.27",
			PauseTag: "3.10.2",
		})
	}},
	{"runtime-online-debian-trixie-wrapper.sh", func() (string, error) {
		return RuntimeOnline(RuntimeOnlineParams{
			OSID: "debian", Codename: "trixie", ImageRepository: "registry.example.com/k8s", PauseTag: "3.10.2",
			RuntimeBinary: "/usr/local/sbin/runc-wrapper",
		})
	}},
	{"kube-bundle.sh", func() (string, error) {
		return KubeBundle(KubeBundleParams{StagingDir: "/var/tmp/boot/bundle", Kubectl: true})
	}},
	{"kube-bundle-other-version-kubeadm.sh", func() (string, error) {
		return KubeBundle(KubeBundleParams{StagingDir: "/var/tmp/boot/bundle", BinDir: "kubernetes/v1.36.3/bin", Binaries: []string{"kubeadm"}})
	}},
	{"kube-bundle-kubelet-kubectl.sh", func() (string, error) {
		return KubeBundle(KubeBundleParams{StagingDir: "/var/tmp/boot/bundle", Binaries: []string{"kubelet", "kubectl"}})
	}},
	{"helm-online-v3.22.0.sh", func() (string, error) {
		return HelmOnline(HelmOnlineParams{Version: "v3.22.0", Arch: "amd64"})
	}},
	{"teardown-bundle.sh", func() (string, error) {
		return Teardown(TeardownParams{Source: "bundle", Installed: []string{"/usr/local/bin/kubelet", "/opt/cni/bin/flannel", "/etc/systemd/system/kubelet.service"}})
	}},
	{"teardown-online-purge.sh", func() (string, error) {
		return Teardown(TeardownParams{Source: "online", Purge: true})
	}},
	{"snapshot.sh", func() (string, error) { return Snapshot(), nil }},
	{"kube-online-v1.37.2.sh", func() (string, error) {
		return KubeOnline(KubeOnlineParams{KubernetesVersion: "v1.37.2"})
	}},
	{"kube-online-kubeadm-only.sh", func() (string, error) {
		return KubeOnline(KubeOnlineParams{KubernetesVersion: "v1.37.2", Packages: []string{"kubeadm"}})
	}},
	{"kube-online-mirror-key-proxy.sh", func() (string, error) {
		return KubeOnline(KubeOnlineParams{KubernetesVersion: "v1.37.2",
			Repository: Mirror{URL: "https://mirror.example.com:8443/kubernetes/", CA: testCA, Key: testKey}, Proxy: testProxy})
	}},
	{"runtime-online-debian-bookworm-mirror.sh", func() (string, error) {
		return RuntimeOnline(RuntimeOnlineParams{OSID: "debian", Codename: "bookworm", PauseTag: "3.10.2",
			Repository: Mirror{URL: "http://10.0.0.5/docker"}, Proxy: testProxy})
	}},
	{"helm-online-mirror.sh", func() (string, error) {
		return HelmOnline(HelmOnlineParams{Version: "3.22.0", Arch: "arm64", Download: Mirror{URL: "https://mirror.example.com/helm", CA: testCA}})
	}},
	{"certs-renew.sh", func() (string, error) {
		return CertsRenew(CertsRenewParams{
			KubeadmConfig: "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.37.2\n",
			Components:    []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"},
			AdminConf:     "/etc/kubernetes/admin.conf", Timeout: 3 * time.Minute,
		})
	}},
	{"etcd-restore.sh", func() (string, error) {
		return EtcdRestore(EtcdRestoreParams{
			DataDir: "/var/lib/etcd", Archive: "/var/lib/boot/restore/etcd-data.tar.gz", Stamp: "20261207T150405Z",
			Components: []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"},
			AdminConf:  "/etc/kubernetes/admin.conf", Timeout: 3 * time.Minute,
		})
	}},
}

// testKey is an armored public key block for scripts that write one (its
// packets are checked by the inventory, not here).
const testKey = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEaxagXxYJKwYBBAHaRw8BAQdA\n=boot\n-----END PGP PUBLIC KEY BLOCK-----"

// testProxy is a proxy for http and https with the cluster's own ranges
// reached directly.
var testProxy = &Proxy{HTTP: "http://proxy.example.com:3128", HTTPS: "http://proxy.example.com:3128", NoProxy: []string{"localhost", "10.96.0.0/12", ".svc"}}

// kubeadmCases are the kubeadm configurations checked against golden files
// and, where the binary is available, kubeadm config validate.
var kubeadmCases = []struct {
	name   string
	render func() ([]byte, error)
}{
	{"kubeadm-init-lab-cgroupv1.yaml", func() ([]byte, error) {
		return KubeadmInit(KubeadmParams{
			KubernetesVersion: "v1.37.2", ClusterName: "lab", NodeName: "lab-cp", AdvertiseAddress: "172.30.0.10",
			ControlPlaneEndpoint: "172.30.0.10:6443", PodSubnet: "10.244.0.0/16", ServiceSubnet: "10.96.0.0/12",
			ImageRepository: "registry.lab.internal/k8s", CgroupV1: true, ConntrackReadOnly: true,
			IgnorePreflightErrors: []string{"SystemVerification"}, ResolvConf: ResolvConf,
			EvictionHard: inventory.EvictionHard{ImagefsAvailable: "4Gi", NodefsAvailable: "2Gi"}.Signals(),
		})
	}},
	{"kubeadm-init-online-ubuntu-cgroupv2.yaml", func() ([]byte, error) {
		return KubeadmInit(KubeadmParams{
			KubernetesVersion: "v1.36.4", NodeName: "cp-1", AdvertiseAddress: "10.0.0.10",
			ControlPlaneEndpoint: "10.0.0.10:6443", PodSubnet: "10.244.0.0/16", ServiceSubnet: "10.96.0.0/12",
		})
	}},
	{"kubeadm-init-public-san.yaml", func() ([]byte, error) {
		return KubeadmInit(KubeadmParams{
			KubernetesVersion: "v1.37.2", NodeName: "cp-1", AdvertiseAddress: "10.0.0.10", BindPort: 8443,
			ControlPlaneEndpoint: "k8s.example.com:8443", PodSubnet: "10.32.0.0/16", ServiceSubnet: "10.96.0.0/16",
			CertSANs: []string{"203.0.113.7", "k8s.example.com"},
		})
	}},
	{"kubeadm-join-worker.yaml", func() ([]byte, error) {
		return KubeadmJoin(JoinParams{
			NodeName: "lab-w1", NodeIP: "172.30.0.11", APIServerEndpoint: "172.30.0.10:6443",
			Token: testToken, CACertHashes: []string{testCAHash}, IgnorePreflightErrors: []string{"SystemVerification"},
		})
	}},
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./scripts -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./scripts -update rewrites it after review):\n%s", name, cmp.Diff(string(want), string(got)))
	}
}

func TestScriptsGolden(t *testing.T) {
	for _, c := range scriptCases {
		t.Run(c.name, func(t *testing.T) {
			s, err := c.render()
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, c.name, []byte(s))
		})
	}
}

func TestKubeadmGolden(t *testing.T) {
	for _, c := range kubeadmCases {
		t.Run(c.name, func(t *testing.T) {
			b, err := c.render()
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, c.name, b)
		})
	}
}

// needTool finds an installed prerequisite: with CI set a missing one fails
// the test, otherwise the test is skipped.
func needTool(t *testing.T, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testenv.Need(t, "%s is not installed (%s)", name, hint)
	}
	return p
}

// bundleBinary finds bin/NAME of the offline bundle at $BOOT_BUNDLE_DIR.
func bundleBinary(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(testenv.BundleDir(t), "bin", name)
	if _, err := os.Stat(p); err != nil {
		testenv.Need(t, "%s: %v (build the bundle with make bundle)", p, err)
	}
	return p
}

func TestScriptsShellcheck(t *testing.T) {
	shellcheck := needTool(t, "shellcheck", "apt-get install shellcheck")
	dir := t.TempDir()
	for _, c := range scriptCases {
		t.Run(c.name, func(t *testing.T) {
			s, err := c.render()
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, c.name)
			if err := os.WriteFile(f, []byte(s), 0o755); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(shellcheck, "--shell=bash", "--severity=style", "--external-sources", f).CombinedOutput()
			if err != nil {
				t.Errorf("shellcheck %s: %v\n%s", c.name, err, out)
			}
			if out, err := exec.Command("bash", "-n", f).CombinedOutput(); err != nil {
				t.Errorf("bash -n %s: %v\n%s", c.name, err, out)
			}
		})
	}
}

func TestScriptsHeader(t *testing.T) {
	for _, c := range scriptCases {
		s, err := c.render()
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(s, "\n", 3)
		if lines[0] != "#!/usr/bin/env bash" {
			t.Errorf("%s starts with %q, want #!/usr/bin/env bash", c.name, lines[0])
		}
		if !strings.Contains(s, "\nset -euo pipefail\n") {
			t.Errorf("%s has no set -euo pipefail", c.name)
		}
	}
}

func TestKubeadmValidate(t *testing.T) {
	kubeadm := bundleBinary(t, "kubeadm")
	dir := t.TempDir()
	for _, c := range kubeadmCases {
		t.Run(c.name, func(t *testing.T) {
			b, err := c.render()
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, c.name)
			if err := os.WriteFile(f, b, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(kubeadm, "config", "validate", "--config", f).CombinedOutput()
			if err != nil {
				t.Errorf("kubeadm config validate %s: %v\n%s", c.name, err, out)
			}
		})
	}
	// The join configuration reaches kubeadm on stdin, never as an argument.
	join, err := kubeadmCases[len(kubeadmCases)-1].render()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kubeadm, "config", "validate", "--config", "/dev/stdin")
	cmd.Stdin = bytes.NewReader(join)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("kubeadm config validate --config /dev/stdin: %v\n%s", err, out)
	}
	// The check can fail: kubeadm refuses a misspelt field.
	b, err := kubeadmCases[0].render()
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, bytes.Replace(b, []byte("maxPerCore"), []byte("maxPerCores"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(kubeadm, "config", "validate", "--config", bad).CombinedOutput(); err == nil {
		t.Errorf("kubeadm config validate accepted a misspelt field:\n%s", out)
	}
}
