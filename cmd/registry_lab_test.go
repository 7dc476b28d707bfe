//go:build lab

package cmd

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/addons/verify"
	"github.com/bootctl/boot/bootstrap"
	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/lab"
	"github.com/bootctl/boot/nodes"
	"github.com/bootctl/boot/pruner"
)

// registryPV is a volume on w1 for the registry's claim: the lab has no
// storage provisioner. The folder belongs to the registry's user.
const registryPV = `apiVersion: v1
kind: PersistentVolume
metadata:
  name: boot-e2e-registry
spec:
  capacity: {storage: 20Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  hostPath: {path: /var/lib/boot-e2e-registry, type: Directory}
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions:
            - {key: kubernetes.io/hostname, operator: In, values: [w1]}
`

// checkRegistry runs `boot addons` on the lab cluster as an air-gapped
// install runs it: every chart and image from the bundle (cert-manager
// v1.21.1 built from its release sources, Traefik as the ingress
// controller, the registry and Redis), the certificate from the lab's ACME
// CA (Pebble) over HTTP-01 through Traefik, the registry's DNS record in
// the lab's Route53 (moto), served by the lab's CoreDNS. Then: the
// certificate Ready with a chain that verifies against Pebble's root,
// `boot verify` through the ingress, a push and pull through an SSH tunnel
// to the registry's Service with Redis holding the blob descriptors, a
// 1 GiB layer pushed through the ingress and through the Service, and
// garbage collection. It returns the inventory with the add-ons.
func checkRegistry(t *testing.T, k kube, dir string, w labWorld) string {
	start := time.Now()
	// The inventory `boot lab up` wrote is the whole of it: Traefik, Pebble,
	// the lab's zone.
	invPath := filepath.Join(dir, "inventory.yaml")
	inv, err := inventory.Load(invPath)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Registry.Issuer != inventory.IssuerACME || inv.Registry.ACME.Server != w.ACMEDirectory ||
		inv.Addons.Ingress.Controller != inventory.IngressTraefik || inv.DNS.Provider != inventory.DNSRoute53 || inv.DNS.Zone != lab.LabZone {
		t.Fatalf("the lab's inventory does not use the lab's Pebble (%s), Traefik and zone %s: issuer %q, server %q, controller %q, dns %q %q",
			w.ACMEDirectory, lab.LabZone, inv.Registry.Issuer, inv.Registry.ACME.Server, inv.Addons.Ingress.Controller, inv.DNS.Provider, inv.DNS.Zone)
	}
	docker(t, "exec", "boot-lab-w1", "install", "-d", "-o", "1000", "-g", "1000", "/var/lib/boot-e2e-registry")
	k.must(registryPV, "apply", "-f", "-")

	code, stdout, stderr := runBoot(t, append([]string{"addons", "-i", invPath, "--timeout", "5m", "-o", "json"}, w.flags()...)...)
	if code != ExitOK {
		t.Fatalf("boot addons on the lab: exit %d\n%s%s\n%s", code, stdout, stderr, k.must("", "get", "pods,pvc", "-A"))
	}
	// The registry's A record points at the ingress hosts, and verify
	// asked the lab's DNS server for it.
	w.checkRecord(t, inv, true)
	chartsFromBundle(t, "boot addons", stdout)
	if !strings.Contains(stdout, `"host":"dns","status":"ok"`) {
		t.Errorf("boot addons' verify did not find the registry's DNS record:\n%s", stdout)
	}
	fresh := time.Since(start)
	t.Logf("boot addons on the lab (fresh) took %s", fresh.Round(time.Second))
	serial := registryCertificate(t, k, w, inv.Registry.Host, "", 5*time.Minute)
	t.Logf("the registry's certificate was Ready %s after boot addons started", time.Since(start).Round(time.Second))
	verifyThroughIngress(t, invPath, w)
	for _, want := range []string{`"phase":"verify","host":"push","status":"ok"`, `"phase":"verify","host":"pull","status":"ok"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("boot addons did not verify the registry (%s):\n%s", want, stdout)
		}
	}
	code, stdout, stderr = runBoot(t, "verify", "-i", invPath, "--through-service", "-o", "json", "--dns-server", w.DNSServer)
	t.Logf("boot verify --through-service: exit %d\n%s%s", code, stdout, stderr)
	if code != ExitOK || !strings.Contains(stdout, `"host":"cache","status":"ok","message":"Redis blob-descriptor cache in use`) {
		t.Errorf("boot verify on the lab: exit %d, or no cache in use", code)
	}
	enc := k.must("", "-n", "docker-registry", "get", "secret", "registry-credentials", "-o", "jsonpath={.data.password}")
	pw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout+stderr, string(pw)) {
		t.Error("boot addons printed the registry password in JSON output")
	}

	// A re-run with nothing changed: every step unchanged, no new Helm
	// revision, the same password.
	revisions := helmRevisions(k)
	rerun := time.Now()
	records := w.recordSets(t)
	code, stdout, stderr = runBoot(t, append([]string{"addons", "-i", invPath, "--timeout", "5m", "-o", "json"}, w.flags()...)...)
	if after := w.recordSets(t); !slices.Equal(after, records) {
		t.Errorf("the boot addons re-run changed the zone:\nbefore %q\nafter  %q", records, after)
	}
	if code != ExitOK {
		t.Fatalf("boot addons re-run: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("boot addons: fresh %s, re-run %s", fresh.Round(time.Second), time.Since(rerun).Round(time.Second))
	if ch := changedEvents(parseEvents(t, stdout)); len(ch) > 0 {
		t.Errorf("the boot addons re-run changed something: %+v", ch)
	}
	if after := helmRevisions(k); after != revisions {
		t.Errorf("the boot addons re-run made new Helm revisions:\nbefore %s\nafter  %s", revisions, after)
	}
	if again := k.must("", "-n", "docker-registry", "get", "secret", "registry-credentials", "-o", "jsonpath={.data.password}"); again != enc {
		t.Errorf("the boot addons re-run changed the registry password")
	}

	// The registry's Service, reached through SSH to the control plane.
	ip := k.must("", "-n", "docker-registry", "get", "service", "registry", "-o", "jsonpath={.spec.clusterIP}")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cp, err := bootstrap.DialHost(ctx, inv, inv.ControlPlane(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	svc := throughService(t, k, cp, ip)

	// Without credentials: 401.
	resp, err := http.Get("http://" + svc.addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v2/ without credentials: %d, want 401", resp.StatusCode)
	}
	auth := remote.WithAuth(&authn.Basic{Username: "admin", Password: string(pw)})
	img, err := random.Image(512, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(svc.addr+"/e2e/app:1.0.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, auth, svc.tr, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push through the registry: %v", err)
	}
	pulled, err := remote.Image(ref, auth, svc.tr, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	got, err := pulled.Digest()
	if err != nil || got != want {
		t.Fatalf("pulled %s (%v), pushed %s", got, err, want)
	}
	if err := verify.ReadLayers(pulled); err != nil {
		t.Fatalf("pull a layer: %v", err)
	}
	// Redis caches the blob descriptors the registry served.
	redisPod := strings.TrimSpace(strings.TrimPrefix(k.must("", "-n", "docker-registry", "get", "pods", "-l", "app.kubernetes.io/component=redis", "-o", "name"), "pod/"))
	rpwText := k.must("", "-n", "docker-registry", "get", "secret", "registry-credentials", "-o", "jsonpath={.data.redisPassword}")
	rpw, _ := base64.StdEncoding.DecodeString(rpwText)
	redisKeys := func() []string {
		return strings.Fields(k.must("", "-n", "docker-registry", "exec", redisPod, "--", "redis-cli", "--no-auth-warning", "-a", string(rpw), "--scan", "--pattern", "blobs::*"))
	}
	if n := len(redisKeys()); n == 0 {
		t.Errorf("Redis holds no blob descriptor after a push and a pull")
	} else {
		t.Logf("Redis holds %d blob descriptors after the push and pull", n)
	}
	t.Logf("registry checked in %s", time.Since(start).Round(time.Second))

	checkRegistryGC(t, ctx, k, cp, svc, string(pw), string(rpw), ref, redisKeys)
	// After garbage collection (which then sweeps a store of the usual
	// size), 1 GiB layers through the ingress and through the Service.
	bigPushes(t, k, inv, w, svc, string(pw))
	if again := registryCertificate(t, k, w, inv.Registry.Host, "", time.Minute); again != serial {
		t.Errorf("the registry's certificate changed (serial %s, was %s) without a reason", again, serial)
	}
	return invPath
}

// chartsFromBundle checks that a run took the upstream charts it installs
// (cert-manager's and Traefik's) from the lab's bundle.
func chartsFromBundle(t *testing.T, what, stdout string) {
	t.Helper()
	for _, c := range []string{"certManager: cert-manager v1.21.1", "traefik: traefik 41.3.0"} {
		if want := `"host":"chart addons.` + c + ` from bundle"`; !strings.Contains(stdout, want) {
			t.Errorf("%s did not take the chart %s from the bundle (%s):\n%s", what, c, want, stdout)
		}
	}
}

// helmRevisions lists the Helm release Secrets (one per revision) of
// every namespace.
func helmRevisions(k kube) string {
	return k.must("", "get", "secrets", "-A", "-l", "owner=helm", "-o", `jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}`)
}

// checkRegistryGC deletes an image's only tag, then runs `boot registry
// gc` from this machine (the exec goes through the API server to a real
// kubelet; Redis is reached through an SSH tunnel): the deleted image's
// blobs leave the storage and Redis, the kept image still pulls whole, and
// the registry takes pushes again afterwards.
func checkRegistryGC(t *testing.T, ctx context.Context, k kube, cp *nodes.Host, svc serviceAccess, password string, redisPassword string, kept name.Tag, redisKeys func() []string) {
	basic := &authn.Basic{Username: "admin", Password: password}
	auth := remote.WithAuth(basic)
	registry := svc.addr
	start := time.Now()
	doomed, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	doomedRef, _ := name.NewTag(registry+"/e2e/app:2.0.0", name.Insecure)
	if err := remote.Write(doomedRef, doomed, auth, svc.tr, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	// Pull it once, so that Redis caches its blobs' descriptors.
	pulled, err := remote.Image(doomedRef, auth, svc.tr, remote.WithContext(ctx))
	if err == nil {
		err = verify.ReadLayers(pulled)
	}
	if err != nil {
		t.Fatalf("pull the image to delete: %v", err)
	}
	digest, _ := doomed.Digest()
	if err := remote.Delete(doomedRef.Context().Digest(digest.String()), auth, svc.tr, remote.WithContext(ctx)); err != nil {
		t.Fatalf("delete the manifest: %v", err)
	}
	doomedLayers, _ := doomed.Layers()
	var doomedBlobs []string
	for _, l := range doomedLayers {
		d, _ := l.Digest()
		doomedBlobs = append(doomedBlobs, d.String())
	}
	cached := strings.Join(redisKeys(), " ")
	for _, b := range doomedBlobs {
		if !strings.Contains(cached, b) {
			t.Errorf("before gc: Redis has no descriptor of %s", b)
		}
	}

	ip := k.must("", "-n", "docker-registry", "get", "service", "registry-redis", "-o", "jsonpath={.spec.clusterIP}")
	redisFwd, err := nodes.Forward(cp, "127.0.0.1:0", ip+":6379")
	if err != nil {
		t.Fatal(err)
	}
	defer redisFwd.Close()
	t.Setenv("BOOT_REDIS_PASSWORD", redisPassword)
	code, stdout, stderr := runBoot(t, "registry", "gc", "--kubeconfig", k.kubeconfig, "--namespace", "docker-registry",
		"--deployment", "registry", "--redis", redisFwd.Addr(), "--redis-db", "0", "--timeout", "5m")
	t.Logf("boot registry gc: exit %d in %s\n%s%s", code, time.Since(start).Round(time.Second), stdout, lastLines(stderr, 15))
	if code != ExitOK {
		t.Fatalf("boot registry gc failed")
	}
	if strings.Contains(stdout+stderr, redisPassword) {
		t.Error("boot registry gc printed the Redis password")
	}
	// The deleted image's blobs are gone from the storage and from Redis.
	// (The client does the registry's authentication, token or Basic.)
	rt, err := transport.NewWithContext(ctx, doomedRef.Context().Registry, basic, svc.rt, []string{doomedRef.Context().Scope(transport.PullScope)})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: rt}
	for _, b := range doomedBlobs {
		req, _ := http.NewRequestWithContext(ctx, http.MethodHead, "http://"+registry+"/v2/e2e/app/blobs/"+b, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("after gc: blob %s answers %d, want 404", b, resp.StatusCode)
		}
	}
	if cached := strings.Join(redisKeys(), " "); cached != "" {
		for _, b := range doomedBlobs {
			if strings.Contains(cached, b) {
				t.Errorf("after gc: Redis still describes the deleted blob %s", b)
			}
		}
	}
	// The kept image pulls whole; the registry is writable again.
	img, err := remote.Image(kept, auth, svc.tr, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("after gc: pull the kept image: %v", err)
	}
	if err := verify.ReadLayers(img); err != nil {
		t.Fatalf("after gc: a layer of the kept image: %v", err)
	}
	if env := k.must("", "-n", "docker-registry", "get", "deployment", "registry", "-o", `jsonpath={.spec.template.spec.containers[?(@.name=="registry")].env[?(@.name=="REGISTRY_STORAGE_MAINTENANCE_READONLY")].value}`); !strings.Contains(env, `"enabled":false`) {
		t.Errorf("after gc the registry is not read-write: %s", env)
	}
	// The chart's gc CronJob, run now: boot's image from the bundle, the
	// job's own service account, Redis reached inside the cluster.
	jstart := time.Now()
	k.must("", "-n", "docker-registry", "create", "job", "gc-e2e", "--from=cronjob/registry-gc")
	if out, err := k.run("", "-n", "docker-registry", "wait", "--for=condition=complete", "--timeout=300s", "job/gc-e2e"); err != nil {
		logs, _ := k.run("", "-n", "docker-registry", "logs", "job/gc-e2e")
		pods, _ := k.run("", "-n", "docker-registry", "get", "pods", "-o", "wide")
		t.Fatalf("the gc CronJob's job did not complete: %v\n%s\n%s\n%s", err, out, logs, pods)
	}
	logs := k.must("", "-n", "docker-registry", "logs", "job/gc-e2e")
	if !strings.Contains(logs, "garbage collected") {
		t.Errorf("the gc job's log does not say it collected:\n%s", logs)
	}
	t.Logf("the gc CronJob's job ran in %s:\n%s", time.Since(jstart).Round(time.Second), lastLines(logs, 8))

	again, _ := random.Image(256, 1)
	againRef, _ := name.NewTag(registry+"/e2e/app:3.0.0", name.Insecure)
	if err := remote.Write(againRef, again, auth, svc.tr, remote.WithContext(ctx)); err != nil {
		t.Errorf("after gc: push: %v", err)
	}
}

// serviceAccess reaches the registry's Service (clusterIP) through an SSH
// tunnel to the control plane, and with token authentication the token
// Service too: the registry's 401 names the realm on its public host,
// where token requests would go through the ingress; rt sends them through
// a tunnel of their own, as the pruner's --token-url does in the cluster.
type serviceAccess struct {
	addr string            // the registry, 127.0.0.1:port
	rt   http.RoundTripper // token requests to the token Service
	tr   remote.Option     // remote.WithTransport(rt)
}

func throughService(t *testing.T, k kube, cp *nodes.Host, clusterIP string) serviceAccess {
	t.Helper()
	fwd, err := nodes.Forward(cp, "127.0.0.1:0", clusterIP+":5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fwd.Close() })
	s := serviceAccess{addr: fwd.Addr(), rt: http.DefaultTransport}
	if tokenIP, err := k.run("", "-n", "docker-registry", "get", "service", addons.RegistryTokenService, "-o", "jsonpath={.spec.clusterIP}"); err == nil {
		tfwd, err := nodes.Forward(cp, "127.0.0.1:0", strings.TrimSpace(tokenIP)+":5001")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tfwd.Close() })
		s.rt = pruner.TokenRedirect(http.DefaultTransport, s.addr, &url.URL{Scheme: "http", Host: tfwd.Addr(), Path: "/token"})
	}
	s.tr = remote.WithTransport(s.rt)
	return s
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}
