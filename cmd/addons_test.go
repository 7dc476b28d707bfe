package cmd

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bootctl/boot/internal/kubetest"
	"github.com/bootctl/boot/internal/testenv"
)

// TestAddonsAgainstAPIServer drives `boot addons` against a real etcd and
// kube-apiserver: the releases go in (the upstream charts' slots filled by a
// small local chart, which is how an offline bundle supplies charts), a
// re-run changes nothing, the generated password is shown once in text and
// never in JSON output, --dry-run prints exactly the changes the real run
// then makes, and on the converged cluster a dry run has nothing to do.
func TestAddonsAgainstAPIServer(t *testing.T) {
	c := kubetest.Start(t)
	kubectl := filepath.Join(testenv.BundleDir(t), "bin", "kubectl")
	kc := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(kubectl, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// cert-manager's CRDs (stand-ins: the real ones come with its chart)
	// and the nodes kubeadm would have registered.
	kc("", "apply", "-f", "../addons/testdata/charts/cert-manager-standin/crds/certmanager-crds.yaml")
	kc("", "wait", "--for=condition=established", "--timeout=60s", "crd", "--all")
	for _, n := range []string{"cp1", "w1", "w2"} {
		kc("apiVersion: v1\nkind: Node\nmetadata:\n  name: "+n+"\n", "create", "-f", "-")
	}
	chart, err := filepath.Abs("../addons/testdata/charts/hello")
	if err != nil {
		t.Fatal(err)
	}
	inv := testenv.InventoryFile(t, fmt.Sprintf(`apiVersion: boot/v1alpha1
kind: Cluster
metadata:
  name: lab
cluster:
  kubeconfig: %s
hosts:
  - {name: cp1, address: 192.0.2.10, role: control-plane}
  - {name: w1, address: 192.0.2.11, role: worker}
  - {name: w2, address: 192.0.2.12, role: worker}
registry:
  host: registry.example.com
  issuer: selfsigned
addons:
  ingressNginx: {path: %s}
  certManager: {path: %s}
`, c.Kubeconfig, chart, chart))

	code, stdout, stderr := runBoot(t, "addons", "-i", inv, "--wait=false", "--dry-run", "-o", "json")
	if code != ExitOK || !strings.Contains(stdout, `"host":"docker-registry/registry","status":"planned","message":"install registry `) {
		t.Fatalf("boot addons --dry-run: exit %d\n%s%s", code, stdout, stderr)
	}
	plan := changes(t, stdout, "planned")
	// ingress-nginx: one warning; the plan removes Traefik's release if boot
	// installed it.
	if strings.Count(stdout, "ingress-nginx was retired upstream in March 2026") != 1 || !strings.Contains(stdout, `"phase":"inventory","status":"warning"`) {
		t.Errorf("boot addons --dry-run: want one warning about ingress-nginx:\n%s", stdout)
	}
	if !strings.Contains(stdout, `"host":"remove traefik/traefik","status":"ok","message":"nothing to do"`) {
		t.Errorf("boot addons --dry-run: the plan does not say that there is no Traefik release to remove:\n%s", stdout)
	}

	// First run, JSON: every release made, the password nowhere.
	code, stdout, stderr = runBoot(t, "addons", "-i", inv, "--wait=false", "-o", "json")
	if code != ExitOK {
		t.Fatalf("boot addons: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, r := range []string{"cert-manager/cert-manager", "cert-manager/cluster-issuer", "ingress-nginx/ingress-nginx", "docker-registry/registry"} {
		if !strings.Contains(stdout, `"host":"`+r+`","status":"changed","message":"install `) {
			t.Errorf("first run: %s not installed:\n%s", r, stdout)
		}
	}
	if done := changes(t, stdout, "changed"); !slices.Equal(done, plan) {
		t.Errorf("the dry run planned\n%q\nbut the run changed\n%q", plan, done)
	}
	enc := kc("", "-n", "docker-registry", "get", "secret", "registry-credentials", "-o", "jsonpath={.data.password}")
	pw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(pw) < 16 {
		t.Fatalf("generated password: %q %v", pw, err)
	}
	if strings.Contains(stdout+stderr, string(pw)) {
		t.Errorf("the password shows in JSON output or logs")
	}

	// Second run, text: nothing changes, the password is not shown again,
	// the operator is told where it is.
	code, stdout, stderr = runBoot(t, "addons", "-i", inv, "--wait=false")
	if code != ExitOK {
		t.Fatalf("boot addons again: exit %d\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stdout, " changed ") {
		t.Errorf("the re-run changed something:\n%s", stdout)
	}
	if strings.Contains(stdout+stderr, string(pw)) {
		t.Errorf("the re-run shows the password")
	}
	for _, want := range []string{"Registry:   https://registry.example.com", "in Secret docker-registry/registry-credentials", "docker login 'registry.example.com' -u 'admin' --password-stdin"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the summary lacks %q:\n%s", want, stdout)
		}
	}

	// The converged cluster: a dry run plans nothing, release by release.
	code, stdout, stderr = runBoot(t, "addons", "-i", inv, "--wait=false", "--dry-run", "-o", "json")
	if code != ExitOK {
		t.Fatalf("boot addons --dry-run on the converged cluster: exit %d\n%s%s", code, stdout, stderr)
	}
	if plan := changes(t, stdout, "planned"); len(plan) != 0 {
		t.Errorf("boot addons --dry-run on the converged cluster plans %q", plan)
	}
	for _, r := range []string{"label ingress nodes", "cert-manager/cert-manager", "route53 credentials", "cert-manager/cluster-issuer", "ingress-nginx/ingress-nginx", "registry secrets", "docker-registry/registry"} {
		if !strings.Contains(stdout, `"host":"`+r+`","status":"ok","message":"nothing to do"`) {
			t.Errorf("boot addons --dry-run on the converged cluster: %s does not say it has nothing to do:\n%s", r, stdout)
		}
	}
}

// changes returns the "phase host: message" of the JSON events with the
// status in out, in order.
func changes(t *testing.T, out, status string) []string {
	t.Helper()
	var list []string
	for line := range strings.Lines(out) {
		var e struct{ Phase, Host, Status, Message string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not a JSON event: %q: %v", line, err)
		}
		if e.Status == status {
			list = append(list, e.Phase+" "+e.Host+": "+e.Message)
		}
	}
	return list
}
