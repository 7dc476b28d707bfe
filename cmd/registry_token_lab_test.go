//go:build lab

package cmd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/bootctl/boot/addons/verify"
	"github.com/bootctl/boot/internal/dnsquery"
	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
)

// labPullUser is the lab inventory's pull-only registry user.
const labPullUser = "puller"

// withUsersAndPruner adds to the lab inventory m a pull-only user and a
// pruner rule that deletes the tags pr-* of e2e/prune.
func withUsersAndPruner(m map[string]any) {
	reg := section(m, "registry")
	section(reg, "auth")["users"] = []any{map[string]any{"name": labPullUser, "role": "pull"}}
	section(reg, "pruner")["rules"] = []any{map[string]any{"repositories": []any{"e2e/prune"}, "match": []any{"^pr-"}, "keepLatest": 0}}
}

// checkRegistryToken checks token authentication on the lab's registry
// (two replicas on S3, set up by checkRegistryS3 from an inventory with
// withUsersAndPruner): through the ingress the pull-only user pulls and is
// refused a push; a pod on w1 pulls a private image with an
// imagePullSecret of that user (the same pod without it cannot), and
// docker login and pull on w1 as that user; the
// chart's prune job, run now, deletes what its rule selects as the pruner's
// own user (role delete) with tokens from the token Service; the chart's
// gc job collects with both replicas read-only; the token service's log
// holds no password.
func checkRegistryToken(t *testing.T, k kube, invPath string, w labWorld) {
	t.Helper()
	start := time.Now()
	inv, err := inventory.Load(invPath)
	if err != nil {
		t.Fatal(err)
	}
	host := inv.Registry.Host
	if inv.Registry.Auth.Mode != inventory.AuthToken {
		t.Fatalf("the lab's registry runs auth mode %q, want token (the bundle's default)", inv.Registry.Auth.Mode)
	}
	k.must("", "-n", "docker-registry", "rollout", "status", "deployment/registry-token", "--timeout=120s")
	secret := func(name, key string) string {
		enc := k.must("", "-n", "docker-registry", "get", "secret", name, "-o", "jsonpath={.data."+key+"}")
		v, err := base64.StdEncoding.DecodeString(enc)
		if err != nil || len(v) == 0 {
			t.Fatalf("Secret %s key %s: %v", name, key, err)
		}
		return string(v)
	}
	admin := &authn.Basic{Username: "admin", Password: secret("registry-credentials", "password")}
	puller := &authn.Basic{Username: labPullUser, Password: secret("registry-user-"+labPullUser, "password")}
	roots, err := verify.LoadRoots(w.ACMERoot)
	if err != nil {
		t.Fatal(err)
	}
	tr := verify.Transport(roots, false, host, func(ctx context.Context, h string) ([]string, error) {
		return dnsquery.LookupHost(ctx, w.DNSServer, h)
	})
	ingress := remote.WithTransport(tr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// After the teardown and boot up before, the certificate is issued anew.
	registryCertificate(t, k, w, host, "", 5*time.Minute)
	eventually(t, "the ingress serves the registry's certificate", 2*time.Minute, func() string {
		if e := verify.TLS(ctx, tr, host, "443"); e.Status == run.Failed {
			return e.Message
		}
		return ""
	})
	tag := func(s string) name.Tag {
		ref, err := name.NewTag(host+"/"+s, name.StrictValidation)
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}

	// The workload image of the lab's registry, copied into this one.
	private := tag("e2e/private:v1")
	caPEM, err := os.ReadFile(filepath.Join(filepath.Dir(invPath), "registry", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	labCA := x509.NewCertPool()
	labCA.AppendCertsFromPEM(caPEM)
	src, err := name.NewTag(inv.Cluster.ImageRepository + "/boot-e2e/web:v1")
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(src, remote.WithContext(ctx), remote.WithTransport(&http.Transport{TLSClientConfig: &tls.Config{RootCAs: labCA, MinVersion: tls.VersionTLS12}}))
	if err != nil {
		t.Fatalf("read the workload image %s: %v", src, err)
	}
	if err := remote.Write(private, img, remote.WithAuth(admin), ingress, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push %s as admin: %v", private, err)
	}

	// The pull-only user pulls, and is refused a push.
	pulled, err := remote.Image(private, remote.WithAuth(puller), ingress, remote.WithContext(ctx))
	if err == nil {
		err = verify.ReadLayers(pulled)
	}
	if err != nil {
		t.Errorf("pull %s as %s: %v", private, labPullUser, err)
	}
	small, _ := random.Image(256, 1)
	err = remote.Write(tag("e2e/private:pushed-by-puller"), small, remote.WithAuth(puller), ingress, remote.WithContext(ctx))
	var refused *transport.Error
	if !errors.As(err, &refused) || (refused.StatusCode != http.StatusUnauthorized && refused.StatusCode != http.StatusForbidden) {
		t.Errorf("push as the pull-only %s: %v, want 401 or 403", labPullUser, err)
	}

	checkPrivatePull(t, k, inv, w, private.String(), puller.Password)

	// The prune job deletes e2e/prune:pr-1 and keeps e2e/prune:1.0. (It
	// keeps an image without a created time whatever the rule says.)
	for _, s := range []string{"e2e/prune:pr-1", "e2e/prune:1.0"} {
		img, _ := random.Image(256, 1)
		img, err := mutate.CreatedAt(img, v1.Time{Time: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(tag(s), img, remote.WithAuth(admin), ingress, remote.WithContext(ctx)); err != nil {
			t.Fatalf("push %s: %v", s, err)
		}
	}
	runJob(t, k, "registry-prune", "prune-e2e")
	tags, err := remote.List(tag("e2e/prune:x").Context(), remote.WithAuth(admin), ingress, remote.WithContext(ctx))
	if err != nil || strings.Join(tags, " ") != "1.0" {
		t.Errorf("e2e/prune's tags after the prune job: %v (%v), want [1.0]", tags, err)
	}
	if env := k.must("", "-n", "docker-registry", "get", "cronjob", "registry-prune", "-o",
		`jsonpath={.spec.jobTemplate.spec.template.spec.containers[0].env[?(@.name=="BOOT_REGISTRY_USERNAME")].valueFrom.secretKeyRef.name}`); env != "registry-user-boot-pruner" {
		t.Errorf("the prune job logs in from Secret %q, want registry-user-boot-pruner", env)
	}

	// Garbage collection with two replicas: both read-only, then back.
	runJob(t, k, "registry-gc", "gc-e2e-s3")
	if pulled, err := remote.Image(private, remote.WithAuth(puller), ingress, remote.WithContext(ctx)); err != nil || verify.ReadLayers(pulled) != nil {
		t.Errorf("after gc on S3: pull %s: %v", private, err)
	}
	if ready := k.must("", "-n", "docker-registry", "get", "deployment", "registry", "-o", "jsonpath={.status.readyReplicas}"); ready != "2" {
		t.Errorf("after gc: %s registry replicas ready, want 2", ready)
	}

	logs := k.must("", "-n", "docker-registry", "logs", "-l", "app.kubernetes.io/component=token", "--tail=-1")
	if !strings.Contains(logs, "user=boot-pruner role=delete") {
		t.Errorf("the token service issued no token to boot-pruner (role delete)")
	}
	for who, pw := range map[string]string{"admin": admin.Password, labPullUser: puller.Password, "boot-pruner": secret("registry-user-boot-pruner", "password")} {
		if strings.Contains(logs, pw) {
			t.Errorf("the token service logged %s's password", who)
		}
	}
	t.Logf("token authentication checked in %s; the token service's log ends:\n%s", time.Since(start).Round(time.Second), lastLines(logs, 6))
}

// runJob runs the chart's CronJob now as job and waits for it to complete.
func runJob(t *testing.T, k kube, cronJob, job string) {
	t.Helper()
	start := time.Now()
	k.must("", "-n", "docker-registry", "create", "job", job, "--from=cronjob/"+cronJob)
	if out, err := k.run("", "-n", "docker-registry", "wait", "--for=condition=complete", "--timeout=300s", "job/"+job); err != nil {
		logs, _ := k.run("", "-n", "docker-registry", "logs", "job/"+job)
		t.Fatalf("the %s CronJob's job did not complete: %v\n%s\n%s", cronJob, err, out, logs)
	}
	t.Logf("the %s CronJob's job ran in %s:\n%s", cronJob, time.Since(start).Round(time.Second),
		lastLines(k.must("", "-n", "docker-registry", "logs", "job/"+job), 6))
}

// checkPrivatePull runs image on w1 with an imagePullSecret of the
// pull-only user, and without one, which must fail to pull. The kubelet's
// containerd reaches the registry as a node would in production, by name
// and over TLS: the lab's hosts neither resolve the lab's zone nor trust
// Pebble's root, so w1 gets an /etc/hosts line for the registry (an
// ingress host's address, the record boot wrote) and a hosts.toml naming
// Pebble's root as the registry's CA.
func checkPrivatePull(t *testing.T, k kube, inv *inventory.Inventory, w labWorld, image, password string) {
	t.Helper()
	host := inv.Registry.Host
	root, err := os.ReadFile(w.ACMERoot)
	if err != nil {
		t.Fatal(err)
	}
	dir := "/etc/containerd/certs.d/" + host
	hostsTOML := fmt.Sprintf("server = %q\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = %q\n", "https://"+host, "https://"+host, dir+"/lab-acme-root.pem")
	script := fmt.Sprintf("mkdir -p %s && cat > %s/lab-acme-root.pem <<'EOF'\n%sEOF\ncat > %s/hosts.toml <<'EOF'\n%sEOF\ngrep -q ' %s$' /etc/hosts || echo '%s %s' >> /etc/hosts",
		dir, dir, root, dir, hostsTOML, host, strings.Split(inv.RecordAddresses()[0], ":")[0], host)
	if out, ok := onHost("w1", script); !ok {
		t.Fatalf("w1: trust and resolve the registry: %s", out)
	}
	// The docker CLI logs in and pulls with the token flow too (its daemon
	// trusts Pebble's root through /etc/docker/certs.d).
	docker(t, "exec", "boot-lab-w1", "sh", "-c", fmt.Sprintf("mkdir -p /etc/docker/certs.d/%s && cp %s/lab-acme-root.pem /etc/docker/certs.d/%s/ca.crt", host, dir, host))
	login := exec.Command("docker", "exec", "-i", "boot-lab-w1", "docker", "login", host, "-u", labPullUser, "--password-stdin")
	login.Stdin = strings.NewReader(password)
	if out, err := login.CombinedOutput(); err != nil || !strings.Contains(string(out), "Login Succeeded") {
		t.Errorf("docker login %s as %s on w1: %v\n%s", host, labPullUser, err, out)
	} else if out, ok := onHost("w1", "docker pull -q "+image+" && docker rmi -f "+image+" >/dev/null && docker logout "+host); !ok {
		t.Errorf("docker pull %s on w1: %s", image, out)
	}
	k.must("", "create", "namespace", "e2e-private")
	k.must("", "-n", "e2e-private", "create", "secret", "docker-registry", "puller", "--docker-server="+host, "--docker-username="+labPullUser, "--docker-password="+password)
	pod := func(name, secret string) string {
		pullSecrets := ""
		if secret != "" {
			pullSecrets = "\n  imagePullSecrets: [{name: " + secret + "}]"
		}
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: e2e-private}
spec:
  nodeName: w1%s
  containers:
    - name: web
      image: %s
      imagePullPolicy: Always
      args: ["serve", ":8080"]
`, name, pullSecrets, image)
	}
	k.must(pod("with-secret", "puller"), "apply", "-f", "-")
	k.must(pod("without-secret", ""), "apply", "-f", "-")
	eventually(t, "the pod with the pull-only user's imagePullSecret running", 3*time.Minute, func() string {
		phase := k.must("", "-n", "e2e-private", "get", "pod", "with-secret", "-o", "jsonpath={.status.phase} {.status.containerStatuses[0].state.waiting.message}")
		if strings.HasPrefix(phase, "Running") {
			return ""
		}
		return phase
	})
	eventually(t, "the pod without a pull secret refused its image", 2*time.Minute, func() string {
		reason := k.must("", "-n", "e2e-private", "get", "pod", "without-secret", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.reason}")
		if reason == "ErrImagePull" || reason == "ImagePullBackOff" {
			return ""
		}
		return "waiting reason " + reason
	})
	msg := k.must("", "-n", "e2e-private", "get", "pod", "without-secret", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.message}")
	if lower := strings.ToLower(msg); !strings.Contains(lower, "401") && !strings.Contains(lower, "unauthorized") && !strings.Contains(lower, "insufficient_scope") {
		t.Errorf("the pod without a pull secret failed to pull for another reason than authentication: %s", msg)
	}
	k.must("", "delete", "namespace", "e2e-private", "--wait=false")
	// /etc/hosts is Docker's bind mount: rewritten in place, not replaced.
	if out, ok := onHost("w1", fmt.Sprintf("rm -rf %s /etc/docker/certs.d/%s && grep -v ' %s$' /etc/hosts > /tmp/hosts.e2e; cat /tmp/hosts.e2e > /etc/hosts && rm /tmp/hosts.e2e", dir, host, host)); !ok {
		t.Errorf("w1: undo the registry's trust and name: %s", out)
	}
}
