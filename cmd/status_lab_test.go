//go:build lab

package cmd

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/addons"
)

// checkBootStatus runs boot status on the converged lab cluster with the
// add-ons: healthy (exit 0, no problem), every host reachable with its
// Node Ready and kubeadm at Kubernetes version, the API server and etcd ready,
// the first control-plane certificate to expire about a year away, boot's
// four releases deployed, the registry's read-only checks passing (TLS
// against Pebble's root, the certificate, Redis, DNS) and the Route53
// record up to date.
func checkBootStatus(t *testing.T, inv string, w labWorld, version string) {
	t.Helper()
	start := time.Now()
	code, stdout, stderr := runBoot(t, "status", "-i", inv, "-o", "json", "--registry-ca", w.ACMERoot, "--dns-server", w.DNSServer, "--route53-endpoint", w.Route53Endpoint)
	var r statusReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("boot status -o json: exit %d, not JSON: %v\n%s%s", code, err, stdout, stderr)
	}
	t.Logf("boot status took %s", time.Since(start).Round(time.Millisecond))
	if code != ExitOK || !r.Healthy || len(r.Problems) > 0 {
		t.Errorf("boot status on the converged cluster: exit %d, healthy %v, problems:\n%s", code, r.Healthy, strings.Join(r.Problems, "\n"))
	}
	if len(r.Hosts) != 4 {
		t.Errorf("boot status lists %d hosts, want 4", len(r.Hosts))
	}
	for _, h := range r.Hosts {
		if !h.Reachable || h.Node == nil || h.Node.Ready != "True" || h.Node.Kubelet != version || h.Kubeadm != version {
			t.Errorf("boot status host %+v (node %+v)", h, h.Node)
		}
	}
	cp := r.ControlPlane
	if cp.API != "ok" || cp.Etcd != "ok" || cp.FirstToExpire == nil || time.Until(cp.FirstToExpire.Expires) < 300*24*time.Hour {
		t.Errorf("boot status control plane %+v (first to expire %+v)", cp, cp.FirstToExpire)
	}
	for _, want := range []string{"cert-manager/cert-manager", "cert-manager/cluster-issuer", "traefik/traefik", "docker-registry/registry"} {
		if !slices.ContainsFunc(r.Releases, func(rel addons.ManagedRelease) bool {
			return rel.Namespace+"/"+rel.Name == want && rel.Status == "deployed"
		}) {
			t.Errorf("boot status does not show %s deployed: %+v", want, r.Releases)
		}
	}
	for _, c := range r.Registry.Checks {
		if c.Status != "ok" {
			t.Errorf("boot status registry check %s: %s %s", c.Check, c.Status, c.Message)
		}
	}
	if r.DNSRecord == nil || !r.DNSRecord.UpToDate {
		t.Errorf("boot status DNS record: %+v", r.DNSRecord)
	}
}
