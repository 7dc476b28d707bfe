package pruner_test

// Building and pushing test images with go-containerregistry.

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// artifact is an image or an index: something pushed under a tag.
type artifact interface {
	remote.Taggable
	Digest() (v1.Hash, error)
}

func randomLayer(t testing.TB) v1.Layer {
	t.Helper()
	l, err := random.Layer(300, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// newImage is base + layers with the given config "created".
func newImage(t testing.TB, created time.Time, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.CreatedAt(img, v1.Time{Time: created})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func newIndex(t testing.TB, imgs ...v1.Image) v1.ImageIndex {
	t.Helper()
	platforms := []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}, {OS: "linux", Architecture: "s390x"}}
	var adds []mutate.IndexAddendum
	for i, img := range imgs {
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &platforms[i]}})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.DockerManifestList), adds...)
}

func digestOf(t testing.TB, x interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	h, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// blobsOf lists every blob digest a taggable needs in storage: manifests,
// configs and layers (for an index, its children's too).
func blobsOf(t testing.TB, x artifact) []string {
	t.Helper()
	switch v := x.(type) {
	case v1.ImageIndex:
		out := []string{digestOf(t, v)}
		im, err := v.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range im.Manifests {
			child, err := v.Image(m.Digest)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, blobsOf(t, child)...)
		}
		return out
	case v1.Image:
		out := []string{digestOf(t, v)}
		cfg, err := v.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cfg.String())
		layers, err := v.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			out = append(out, digestOf(t, l))
		}
		return out
	}
	t.Fatalf("unexpected taggable %T", x)
	return nil
}

// remoteOpts are client options with the registry's credentials.
func (s *registryStack) remoteOpts(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuth(&authn.Basic{Username: s.User, Password: s.Password})}
}

func (s *registryStack) tagRef(t testing.TB, repoTag string) name.Tag {
	t.Helper()
	ref, err := name.NewTag(s.Host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// push writes an image or index under repo:tag.
func (s *registryStack) push(ctx context.Context, t testing.TB, repoTag string, x artifact) error {
	t.Helper()
	ref := s.tagRef(t, repoTag)
	switch v := x.(type) {
	case v1.ImageIndex:
		return remote.WriteIndex(ref, v, s.remoteOpts(ctx)...)
	case v1.Image:
		return remote.Write(ref, v, s.remoteOpts(ctx)...)
	}
	t.Fatalf("unexpected taggable %T", x)
	return nil
}

func (s *registryStack) mustPush(ctx context.Context, t testing.TB, repoTag string, x artifact) {
	t.Helper()
	if err := s.push(ctx, t, repoTag, x); err != nil {
		t.Fatalf("push %s: %v", repoTag, err)
	}
}

// pull fetches repo:tag completely — manifests, configs and every layer,
// checking each digest — as a client pulling every platform would.
func (s *registryStack) pull(ctx context.Context, t testing.TB, repoTag string) error {
	t.Helper()
	desc, err := remote.Get(s.tagRef(t, repoTag), s.remoteOpts(ctx)...)
	if err != nil {
		return err
	}
	if err := checkDigest(desc.Digest.String(), desc.Manifest); err != nil {
		return err
	}
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return err
		}
		return pullImage(img)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			return err
		}
		raw, err := img.RawManifest()
		if err != nil {
			return err
		}
		if err := checkDigest(m.Digest.String(), raw); err != nil {
			return err
		}
		if err := pullImage(img); err != nil {
			return fmt.Errorf("%s: %w", m.Digest, err)
		}
	}
	return nil
}

func pullImage(img v1.Image) error {
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	if err := checkDigest(cfgName.String(), cfg); err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
		if got := fmt.Sprintf("sha256:%x", h.Sum(nil)); got != d.String() {
			return fmt.Errorf("layer %s: content has digest %s", d, got)
		}
	}
	return nil
}

func checkDigest(want string, data []byte) error {
	if got := fmt.Sprintf("sha256:%x", sha256.Sum256(data)); got != want {
		return fmt.Errorf("content of %s has digest %s", want, got)
	}
	return nil
}
