package bundle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// CheckKubernetes runs the kubeadm, kubelet and kubectl of every Kubernetes
// version the bundle carries (so it needs a linux/amd64 machine) and checks
// that each reports its version and that the bundle holds every image that
// version's kubeadm asks for, under the name and repoTag it asks for. The
// error lists every mismatch.
func (b *Bundle) CheckKubernetes(ctx context.Context) error {
	m := &b.Manifest
	byName := make(map[string]Image, len(m.Images))
	for _, img := range m.Images {
		byName[img.Name] = img
	}
	var errs []error
	for _, v := range append([]string{m.KubernetesVersion}, m.OtherKubernetesVersions...) {
		dir, err := m.KubernetesBinDir(v)
		if err != nil {
			return err
		}
		bin := func(name string) string { return b.Path(dir + "/" + name) }
		for _, c := range []struct {
			name string
			args []string
			want string
		}{
			{"kubeadm", []string{"version", "-o", "short"}, v + "\n"},
			{"kubelet", []string{"--version"}, "Kubernetes " + v + "\n"},
			{"kubectl", []string{"version", "--client"}, "Client Version: " + v + "\n"},
		} {
			out, err := output(ctx, "", os.Environ(), bin(c.name), c.args...)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("bundle %s, Kubernetes %s: %w", b.Dir, v, err))
			case !strings.Contains(string(out), c.want):
				errs = append(errs, fmt.Errorf("bundle %s, Kubernetes %s: %s/%s %s printed %q, want %q", b.Dir, v, dir, c.name, strings.Join(c.args, " "), out, c.want))
			}
		}
		list, err := kubeadmImages(ctx, bin("kubeadm"), v)
		if err != nil {
			errs = append(errs, fmt.Errorf("bundle %s, Kubernetes %s: %w", b.Dir, v, err))
			continue
		}
		for _, want := range list {
			img, ok := byName[want.name]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("bundle %s, Kubernetes %s: kubeadm asks for image %s, which the bundle lacks", b.Dir, v, want.name))
			case img.RepoTag != want.repoTag:
				errs = append(errs, fmt.Errorf("bundle %s, Kubernetes %s: image %s has repoTag %s, but kubeadm asks for %s under another repository", b.Dir, v, want.name, img.RepoTag, want.repoTag))
			}
		}
	}
	return errors.Join(errs...)
}
