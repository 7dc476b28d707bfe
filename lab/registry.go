package lab

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bootctl/boot/bundle"
)

// registryConfig is the lab registry's distribution configuration (paths
// inside its container).
const registryConfig = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :%d
  tls:
    certificate: /etc/lab-registry/tls.crt
    key: /etc/lab-registry/tls.key
`

// startRegistry runs the registry container (not privileged) on the lab
// network and waits until it answers HTTPS with the lab certificate.
func (l *Lab) startRegistry(ctx context.Context, d *dockerCLI, registryBin string) error {
	dir := filepath.Join(l.Dir, "registry")
	if err := writeFileAtomic(filepath.Join(dir, "config.yml"), fmt.Appendf(nil, registryConfig, registryPort), 0o644); err != nil {
		return err
	}
	if _, err := d.run(ctx, "volume", "create", "--label", labelKey+"=volume", registryVol); err != nil {
		return err
	}
	if _, err := d.run(ctx, "run", "-d", "--name", registryName, "--hostname", "registry",
		"--label", labelKey+"=registry",
		"--network", networkName, "--ip", l.addr(registryOctet), "--dns", l.Gateway,
		"-v", registryVol+":/var/lib/registry",
		"-v", dir+":/etc/lab-registry:ro",
		"-v", registryBin+":/usr/local/bin/lab-registry:ro",
		"--entrypoint", "/usr/local/bin/lab-registry",
		l.Image, "/etc/lab-registry/config.yml"); err != nil {
		return err
	}
	client, err := registryClient(l.RegistryCA)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := pingRegistry(ctx, client, l.Registry)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			logs, _ := d.run(ctx, "logs", "--tail", "20", registryName)
			return fmt.Errorf("lab registry %s not answering after 30s: %w\n%s", l.Registry, err, logs)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// pushBundle pushes every image of the bundle to the lab registry as
// REGISTRY/RepoTag (what kubeadm asks for with imageRepository REGISTRY) and
// checks that the registry holds the digest the bundle recorded. It returns
// the bundle's Kubernetes version.
func (l *Lab) pushBundle(ctx context.Context, dir string, logf func(string, ...any)) (string, error) {
	b, err := bundle.Open(dir)
	if err != nil {
		return "", err
	}
	client, err := registryClient(l.RegistryCA)
	if err != nil {
		return "", err
	}
	aliases, err := onlineAliases(b)
	if err != nil {
		return "", err
	}
	for _, img := range b.Manifest.Images {
		start := time.Now()
		image, err := b.Image(img.Name)
		if err != nil {
			return "", err
		}
		ref, err := name.NewTag(l.Registry+"/"+img.RepoTag, name.StrictValidation)
		if err != nil {
			return "", fmt.Errorf("bundle image %s: %w", img.Name, err)
		}
		if err := remote.Write(ref, image, remote.WithContext(ctx), remote.WithTransport(client.Transport)); err != nil {
			return "", fmt.Errorf("push %s to the lab registry: %w", img.Name, err)
		}
		desc, err := remote.Head(ref, remote.WithContext(ctx), remote.WithTransport(client.Transport))
		if err != nil {
			return "", fmt.Errorf("check %s in the lab registry: %w", ref, err)
		}
		if desc.Digest.String() != img.Digest {
			return "", fmt.Errorf("lab registry has %s as %s, the bundle says %s", ref, desc.Digest, img.Digest)
		}
		l.Images = append(l.Images, img.RepoTag)
		logf("registry: pushed %s as %s (%s)", img.Name, ref, time.Since(start).Round(time.Millisecond))
		for _, alias := range aliases[img.RepoTag] {
			aref, err := name.NewTag(l.Registry+"/"+alias, name.StrictValidation)
			if err != nil {
				return "", fmt.Errorf("bundle image %s as %s: %w", img.Name, alias, err)
			}
			if err := remote.Write(aref, image, remote.WithContext(ctx), remote.WithTransport(client.Transport)); err != nil {
				return "", fmt.Errorf("push %s to the lab registry as %s: %w", img.Name, alias, err)
			}
			l.Images = append(l.Images, alias)
			logf("registry: %s also as %s (its upstream name online)", img.Name, aref)
		}
	}
	return b.Manifest.KubernetesVersion, nil
}
