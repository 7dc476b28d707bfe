package cmd

import (
	"encoding/base64"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootctl/boot/addons/kubetest"
	"github.com/bootctl/boot/internal/testenv"
)

// TestAddonsAgainstAPIServer drives `boot addons` against a real etcd and
// kube-apiserver: the releases go in (the upstream charts' slots filled by a
// small local chart, which is how an offline bundle supplies charts), a
// re-run changes nothing, the generated password is shown once in text and
// never in JSON output, and --dry-run lists the releases.
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

	code, stdout, stderr := run(t, "addons", "-i", inv, "--dry-run", "-o", "json")
	if code != ExitOK || !strings.Contains(stdout, `"host":"docker-registry/registry","status":"planned"`) {
		t.Fatalf("boot addons --dry-run: exit %d\n%s%s", code, stdout, stderr)
	}
	// ingress-nginx: one warning; the plan removes Traefik's release if boot
	// installed it.
	if strings.Count(stdout, "ingress-nginx was retired upstream in March 2026") != 1 || !strings.Contains(stdout, `"phase":"inventory","status":"warning"`) {
		t.Errorf("boot addons --dry-run: want one warning about ingress-nginx:\n%s", stdout)
	}
	if !strings.Contains(stdout, `"host":"traefik/traefik","status":"planned","message":"remove if boot installed it (addons.ingress.controller is ingress-nginx)"`) {
		t.Errorf("boot addons --dry-run: the plan does not say Traefik's release goes:\n%s", stdout)
	}

	// First run, JSON: every release made, the password nowhere.
	code, stdout, stderr = run(t, "addons", "-i", inv, "--wait=false", "-o", "json")
	if code != ExitOK {
		t.Fatalf("boot addons: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, r := range []string{"cert-manager/cert-manager", "cert-manager/cluster-issuer", "ingress-nginx/ingress-nginx", "docker-registry/registry"} {
		if !strings.Contains(stdout, `"host":"`+r+`","status":"changed","message":"revision 1"`) {
			t.Errorf("first run: no revision 1 of %s:\n%s", r, stdout)
		}
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
	code, stdout, stderr = run(t, "addons", "-i", inv, "--wait=false")
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
}
