//go:build unix

package bundle

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stubKubernetes writes shell stand-ins of kubeadm, kubelet and kubectl of
// version v into dir/binDir: they print v as the real ones do, and kubeadm
// lists kube-apiserver at v and etcd at etcdTag under the repository it is
// given.
func stubKubernetes(t *testing.T, dir, binDir, v, etcdTag string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(binDir))
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	kubeadm := fmt.Sprintf(`#!/bin/sh
case "$1" in
version) echo %[1]s ;;
config) echo "$7/kube-apiserver:%[1]s"; echo "$7/etcd:%[2]s" ;;
esac
`, v, etcdTag)
	for name, script := range map[string]string{
		"kubeadm": kubeadm,
		"kubelet": "#!/bin/sh\necho Kubernetes " + v + "\n",
		"kubectl": "#!/bin/sh\necho Client Version: " + v + "\necho Kustomize Version: v5\n",
	} {
		if err := os.WriteFile(filepath.Join(p, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckKubernetes(t *testing.T) {
	dir := t.TempDir()
	stubKubernetes(t, dir, "bin", "v1.37.2", "3.7.0-0")
	stubKubernetes(t, dir, "kubernetes/v1.36.3/bin", "v1.36.3", "3.6.8-0")
	image := func(repoTag string) Image {
		return Image{Name: DefaultImageRepository + "/" + repoTag, RepoTag: repoTag}
	}
	good := Manifest{KubernetesVersion: "v1.37.2", OtherKubernetesVersions: []string{"v1.36.3"}, Images: []Image{
		image("kube-apiserver:v1.37.2"), image("etcd:3.7.0-0"), image("kube-apiserver:v1.36.3"), image("etcd:3.6.8-0"),
	}}
	if err := (&Bundle{Dir: dir, Manifest: good}).CheckKubernetes(t.Context()); err != nil {
		t.Fatalf("a bundle holding what both versions ask for: %v", err)
	}

	// The older version's etcd image missing, the newest's apiserver under
	// another repoTag, and the older kubelet of the wrong version.
	bad := good
	bad.Images = []Image{image("kube-apiserver:v1.37.2"), image("etcd:3.7.0-0"), image("kube-apiserver:v1.36.3")}
	bad.Images[0].RepoTag = "apiserver:v1.37.2"
	if err := os.WriteFile(filepath.Join(dir, "kubernetes/v1.36.3/bin/kubelet"), []byte("#!/bin/sh\necho Kubernetes v1.36.2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := (&Bundle{Dir: dir, Manifest: bad}).CheckKubernetes(t.Context())
	for _, want := range []string{
		"bundle " + dir + ", Kubernetes v1.36.3: kubeadm asks for image registry.k8s.io/etcd:3.6.8-0, which the bundle lacks",
		"Kubernetes v1.37.2: image registry.k8s.io/kube-apiserver:v1.37.2 has repoTag apiserver:v1.37.2, but kubeadm asks for kube-apiserver:v1.37.2",
		`Kubernetes v1.36.3: kubernetes/v1.36.3/bin/kubelet --version printed "Kubernetes v1.36.2\n", want "Kubernetes v1.36.3\n"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckKubernetes: %v\nwant it to say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "v1.37.2: bin/kubelet") || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("CheckKubernetes reports more than the three faults:\n%v", err)
	}
}
