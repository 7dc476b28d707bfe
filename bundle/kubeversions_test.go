package bundle

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSplitKubernetesVersions(t *testing.T) {
	for _, tc := range []struct {
		in     []string
		newest string
		others []string
	}{
		{[]string{"v1.37.2"}, "v1.37.2", nil},
		{[]string{"v1.36.3", "v1.37.2"}, "v1.37.2", []string{"v1.36.3"}},
		{[]string{"v1.37.2", "v1.9.0", "v1.36.3", "v1.10.1"}, "v1.37.2", []string{"v1.9.0", "v1.10.1", "v1.36.3"}},
	} {
		in := slices.Clone(tc.in)
		newest, others, err := SplitKubernetesVersions(in)
		if err != nil || newest != tc.newest || !slices.Equal(others, tc.others) {
			t.Errorf("SplitKubernetesVersions(%q) = %q, %q, %v, want %q, %q", tc.in, newest, others, err, tc.newest, tc.others)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("SplitKubernetesVersions changed its argument to %q", in)
		}
	}
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, "no Kubernetes version given"},
		{[]string{""}, `"" is not a Kubernetes version vMAJOR.MINOR.PATCH`},
		{[]string{"v1.37.2", "1.36.3"}, `"1.36.3" is not a Kubernetes version`},
		{[]string{"v1.37"}, `"v1.37" is not a Kubernetes version`},
		{[]string{"v1.37.2-rc.1"}, `"v1.37.2-rc.1" is not a Kubernetes version`},
		{[]string{"v1.36.3", "v1.37.2", "v1.36.3"}, "v1.36.3 given twice"},
	} {
		if _, _, err := SplitKubernetesVersions(tc.in); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("SplitKubernetesVersions(%q): %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestOptionsCompleteKubernetesVersions(t *testing.T) {
	o := Options{KubernetesVersions: []string{"v1.36.3", "v1.37.2"}, Out: t.TempDir(), CacheDir: t.TempDir()}
	kubes, err := o.complete()
	if err != nil {
		t.Fatal(err)
	}
	if len(kubes) != 2 || kubes[0].c.version != "v1.37.2" || kubes[1].c.version != "v1.36.3" || kubes[1].c.local != "v0.36.3" {
		t.Errorf("complete gave %+v, want v1.37.2 then v1.36.3", kubes)
	}
	o.KubernetesVersions = []string{"v1.37.2", "v1.37.2"}
	if _, err := o.complete(); err == nil || err.Error() != "bundle: v1.37.2 given twice" {
		t.Errorf("a version twice: %v", err)
	}
}

// TestImageSpecsTwoVersions: each version's kubeadm list gives its images,
// the newest's first under the archive names a one-version bundle has; an
// image both ask for is built once; another version's control plane comes
// from its own binaries, kube-proxy's with the Debian layer.
func TestImageSpecsTwoVersions(t *testing.T) {
	b := &builder{cache: t.TempDir()}
	bins := t.TempDir()
	file := func(rel string) string {
		p := filepath.Join(bins, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(rel), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kube := func(v, etcd, coredns string) *kubeBuild {
		c, err := kubernetesComponent(v)
		if err != nil {
			t.Fatal(err)
		}
		k := &kubeBuild{c: c, dir: filepath.Join(bins, v), pause: file("pause-" + v), pauseTag: "3.10.2"}
		for _, repo := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"} {
			file(v + "/" + repo)
			k.images = append(k.images, kubeadmImage{name: "registry.k8s.io/" + repo + ":" + v, repoTag: repo + ":" + v})
		}
		k.images = append(k.images,
			kubeadmImage{name: "registry.k8s.io/coredns/coredns:" + coredns, repoTag: "coredns:" + coredns},
			kubeadmImage{name: "registry.k8s.io/pause:3.10.2", repoTag: "pause:3.10.2"},
			kubeadmImage{name: "registry.k8s.io/etcd:" + etcd, repoTag: "etcd:" + etcd},
		)
		return k
	}
	kubes := []*kubeBuild{kube("v1.37.2", "3.7.0-0", "v1.14.6"), kube("v1.36.3", "3.6.8-0", "v1.14.6")}
	built := map[string]string{}
	owner := map[string]goComponent{}
	for _, c := range otherComponents() {
		if c.name == "etcd" || c.name == "coredns" || strings.HasPrefix(c.name, "flannel") {
			for _, bin := range c.bins {
				built[bin.name], owner[bin.name] = file(bin.name), c
			}
		}
	}
	deb, err := b.makeLayer([]layerFile{{path: "usr/sbin/iptables", data: []byte("iptables"), mode: 0o755}})
	if err != nil {
		t.Fatal(err)
	}
	specs, err := imageSpecs(b, kubes, built, owner, deb)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	layers := map[string][]layer{}
	for _, s := range specs {
		got = append(got, s.name+" "+s.file+" "+s.component+" "+s.version)
		layers[s.name] = s.layers
	}
	want := []string{
		"registry.k8s.io/kube-apiserver:v1.37.2 kube-apiserver.tar kubernetes v1.37.2",
		"registry.k8s.io/kube-controller-manager:v1.37.2 kube-controller-manager.tar kubernetes v1.37.2",
		"registry.k8s.io/kube-scheduler:v1.37.2 kube-scheduler.tar kubernetes v1.37.2",
		"registry.k8s.io/kube-proxy:v1.37.2 kube-proxy.tar kubernetes v1.37.2",
		"registry.k8s.io/coredns/coredns:v1.14.6 coredns.tar coredns " + corednsVersion,
		"registry.k8s.io/pause:3.10.2 pause.tar pause 3.10.2",
		"registry.k8s.io/etcd:3.7.0-0 etcd.tar etcd " + etcdVersion,
		"registry.k8s.io/kube-apiserver:v1.36.3 kube-apiserver-v1.36.3.tar kubernetes v1.36.3",
		"registry.k8s.io/kube-controller-manager:v1.36.3 kube-controller-manager-v1.36.3.tar kubernetes v1.36.3",
		"registry.k8s.io/kube-scheduler:v1.36.3 kube-scheduler-v1.36.3.tar kubernetes v1.36.3",
		"registry.k8s.io/kube-proxy:v1.36.3 kube-proxy-v1.36.3.tar kubernetes v1.36.3",
		"registry.k8s.io/etcd:3.6.8-0 etcd-3.6.8-0.tar etcd " + etcdVersion,
		"ghcr.io/flannel-io/flannel:" + flannelVersion + " flannel.tar flannel " + flannelVersion,
		"ghcr.io/flannel-io/flannel-cni-plugin:" + flannelPluginVersion + " flannel-cni-plugin.tar flannel-cni-plugin " + flannelPluginVersion,
	}
	if !slices.Equal(got, want) {
		t.Errorf("image specs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Each version's control plane is its own binary; etcd's two tags hold
	// the one etcd; pause is the newest's.
	binLayer := func(at, src string) layer {
		l, err := b.makeLayer([]layerFile{{path: at, src: src, mode: 0o755}})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for name, wantLayers := range map[string][]layer{
		"registry.k8s.io/kube-apiserver:v1.36.3": {binLayer("usr/local/bin/kube-apiserver", filepath.Join(bins, "v1.36.3/kube-apiserver"))},
		"registry.k8s.io/kube-proxy:v1.36.3":     {deb, binLayer("usr/local/bin/kube-proxy", filepath.Join(bins, "v1.36.3/kube-proxy"))},
		"registry.k8s.io/kube-proxy:v1.37.2":     {deb, binLayer("usr/local/bin/kube-proxy", filepath.Join(bins, "v1.37.2/kube-proxy"))},
		"registry.k8s.io/etcd:3.6.8-0":           {binLayer("usr/local/bin/etcd", built["etcd"])},
		"registry.k8s.io/etcd:3.7.0-0":           {binLayer("usr/local/bin/etcd", built["etcd"])},
		"registry.k8s.io/pause:3.10.2":           {binLayer("pause", kubes[0].pause)},
	} {
		if !slices.Equal(layers[name], wantLayers) {
			t.Errorf("%s: layers %v, want %v", name, layers[name], wantLayers)
		}
	}
}
