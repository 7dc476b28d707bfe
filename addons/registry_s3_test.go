package addons

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	appsv1 "k8s.io/api/apps/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/bootctl/boot/internal/testenv"
)

// With replicaCount 2 (S3 storage) the registry's pods roll (no Recreate),
// spread over the nodes, and a PodDisruptionBudget lets a drain take one at
// a time; with one replica on a volume there is neither.
func TestRegistryReplicasSpreadWithBudget(t *testing.T) {
	values := s3Values()
	values["replicaCount"] = 2
	out, err := RenderRegistry(RenderOptions{Values: values})
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeManifests(t, out)
	d := get[*appsv1.Deployment](t, objs, "Deployment/registry")
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 || d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		t.Errorf("deployment: replicas %v, strategy %q", d.Spec.Replicas, d.Spec.Strategy.Type)
	}
	spread := d.Spec.Template.Spec.TopologySpreadConstraints
	if len(spread) != 1 || spread[0].TopologyKey != "kubernetes.io/hostname" || spread[0].MaxSkew != 1 ||
		!matches(spread[0].LabelSelector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("topology spread %+v, pod labels %v", spread, d.Spec.Template.Labels)
	}
	pdb := get[*policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget/registry")
	if pdb.Spec.MaxUnavailable == nil || *pdb.Spec.MaxUnavailable != intstr.FromInt32(1) || pdb.Spec.Selector == nil ||
		!matches(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) || matches(pdb.Spec.Selector.MatchLabels, map[string]string{}) {
		t.Errorf("PodDisruptionBudget %+v, pod labels %v", pdb.Spec, d.Spec.Template.Labels)
	}

	out, err = RenderRegistry(RenderOptions{Values: requiredValues()})
	if err != nil {
		t.Fatal(err)
	}
	objs = decodeManifests(t, out)
	if _, ok := objs.objects["PodDisruptionBudget/registry"]; ok {
		t.Error("one replica on a volume has a PodDisruptionBudget: a drain could never evict it")
	}
	d = get[*appsv1.Deployment](t, objs, "Deployment/registry")
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || len(d.Spec.Template.Spec.TopologySpreadConstraints) != 0 {
		t.Errorf("one replica on a volume: strategy %q, spread %+v", d.Spec.Strategy.Type, d.Spec.Template.Spec.TopologySpreadConstraints)
	}
}

// matches reports whether every label of sel is in labels.
func matches(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

// Two registries run as the chart's two replicas do (the bundle's binary,
// the chart's rendered config with S3 storage, one shared real Redis and
// the same http secret) on one bucket of a real S3 implementation (moto):
// an image pushed through one is pulled through the other, by tag and by
// digest; a second repository pushed through the other mounts the shared
// layers; the tags list and the catalog agree; a manifest deleted through
// one is gone through both, while the other repository still pulls.
func TestRegistryReplicasShareS3(t *testing.T) {
	testenv.File(t, redisServerBin, "redis-server")
	bin := bundledRegistry(t)
	creds, err := NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := waitContext(t, 3*time.Minute)
	s3 := testenv.MotoS3(t, "images")
	redisDir := t.TempDir()
	redisAddr, _ := startRedis(t, ctx, []string{redisConfig(t, redisDir, creds.RedisPassword())}, redisDir, creds.RedisPassword())

	values := s3Values()
	values["replicaCount"] = 2
	storage := values["storage"].(map[string]any)
	storage["s3"].(map[string]any)["regionEndpoint"] = s3
	storage["s3"].(map[string]any)["region"] = "us-east-1"
	values["redis"] = map[string]any{"externalAddress": redisAddr}
	values["log"] = map[string]any{"level": "error", "accessLog": false}
	config, chartEnv := chartRegistry(t, values, creds)
	// The chart mounts the credentials Secret's htpasswd in every replica.
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(creds.Htpasswd()), 0o600); err != nil {
		t.Fatal(err)
	}
	var replicas [2]*registryProcess
	for i := range replicas {
		env := maps.Clone(chartEnv)
		env["REGISTRY_AUTH_HTPASSWD_PATH"] = htpasswd
		env["REGISTRY_HTTP_ADDR"] = loopbackAddr(t)
		env["REGISTRY_HTTP_DEBUG_ADDR"] = loopbackAddr(t)
		replicas[i] = startRegistryProcess(t, bin, config, env, env["REGISTRY_HTTP_ADDR"])
	}
	auth := remote.WithAuth(&authn.Basic{Username: creds.Username(), Password: creds.Password()})
	ref := func(p *registryProcess, repo string) string {
		return strings.TrimPrefix(p.URL, "http://") + "/" + repo
	}
	tag := func(p *registryProcess, repo, tag string) name.Tag {
		tg, err := name.NewTag(ref(p, repo)+":"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}

	// Layers of 6 MiB: above S3's 5 MiB minimum part, so the uploads use
	// multipart writes.
	img, err := random.Image(6<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag(replicas[0], "team/app", "v1"), img, auth, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push through replica 0: %v\n%s", err, replicas[0].logs.String())
	}
	pulled, err := remote.Image(tag(replicas[1], "team/app", "v1"), auth, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pull through replica 1: %v\n%s", err, replicas[1].logs.String())
	}
	if got, _ := pulled.Digest(); got != want {
		t.Fatalf("replica 1 serves %s for team/app:v1, pushed %s", got, want)
	}
	layers, err := pulled.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		if err := readLayer(l); err != nil {
			t.Errorf("replica 1: layer: %v", err)
		}
	}
	byDigest, err := name.NewDigest(ref(replicas[1], "team/app")+"@"+want.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(byDigest, auth, remote.WithContext(ctx)); err != nil {
		t.Errorf("replica 1: HEAD by digest: %v", err)
	}

	if err := remote.Write(tag(replicas[1], "team/copy", "v1"), img, auth, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push of the same layers to another repository through replica 1: %v", err)
	}
	for _, p := range replicas {
		tags, err := remote.List(tag(p, "team/app", "v1").Context(), auth, remote.WithContext(ctx))
		if err != nil || strings.Join(tags, ",") != "v1" {
			t.Errorf("%s: tags of team/app %v, %v", p.URL, tags, err)
		}
		reg, _ := name.NewRegistry(strings.TrimPrefix(p.URL, "http://"), name.Insecure)
		repos, err := remote.Catalog(ctx, reg, auth)
		if err != nil || strings.Join(repos, ",") != "team/app,team/copy" {
			t.Errorf("%s: catalog %v, %v", p.URL, repos, err)
		}
	}

	delRef, err := name.NewDigest(ref(replicas[0], "team/app")+"@"+want.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(delRef, auth, remote.WithContext(ctx)); err != nil {
		t.Fatalf("delete through replica 0: %v", err)
	}
	for _, p := range replicas {
		_, err := remote.Image(tag(p, "team/app", "v1"), auth, remote.WithContext(ctx))
		var terr *transport.Error
		if !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
			t.Errorf("%s: team/app:v1 after the delete: %v, want 404", p.URL, err)
		}
		if _, err := remote.Image(tag(p, "team/copy", "v1"), auth, remote.WithContext(ctx)); err != nil {
			t.Errorf("%s: team/copy:v1 after team/app's delete: %v", p.URL, err)
		}
	}
}

// readLayer reads a layer's compressed content whole (its digest is
// checked by go-containerregistry as it is read).
func readLayer(l v1.Layer) error {
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("reading: %w", err)
	}
	return nil
}
