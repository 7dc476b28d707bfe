//go:build lab

package cmd

import (
	"crypto/x509"
	"encoding/pem"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/bootctl/boot/bootstrap"
)

// cpCertExpiry reads the certificates kubeadm manages on cp1, as boot
// status does: kubeadm certs check-expiration, configured with cp1's own
// kubeadm version.
func cpCertExpiry(t *testing.T) map[string]time.Time {
	t.Helper()
	version := strings.TrimSpace(docker(t, "exec", "boot-lab-cp1", "kubeadm", "version", "-o", "short"))
	cmd := exec.Command("docker", "exec", "-i", "boot-lab-cp1", "kubeadm", "certs", "check-expiration", "--config", "/dev/stdin", "-o", "json")
	cmd.Stdin = strings.NewReader(bootstrap.CheckExpirationConfig(version, ""))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubeadm certs check-expiration on cp1: %v", err)
	}
	certs, err := bootstrap.ParseCertExpiration(out)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]time.Time{}
	for _, c := range certs {
		if !c.Authority {
			m[c.Name] = c.Expires
		}
	}
	return m
}

// cpContainers returns the running container of each control-plane
// component on cp1, as crictl shows it ("" when none runs).
func cpContainers(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, c := range bootstrap.ControlPlaneComponents {
		m[c] = strings.TrimSpace(docker(t, "exec", "boot-lab-cp1", "crictl", "ps", "--name", "^"+c+"$", "--state", "running", "-q"))
	}
	return m
}

// clientCertExpiry is when the client certificate of the kubeconfig at path
// expires.
func clientCertExpiry(t *testing.T, path string) time.Time {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.AuthInfos[ctx.AuthInfo] == nil {
		t.Fatalf("%s has no current user", path)
	}
	block, _ := pem.Decode(cfg.AuthInfos[ctx.AuthInfo].ClientCertificateData)
	if block == nil {
		t.Fatalf("%s: no client certificate", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert.NotAfter
}

// readyzPoller asks the API server /readyz every half second until stopped
// and counts the answers that were not "ok".
type readyzPoller struct {
	polls, failures int
	longest         time.Duration // the longest run of failures
	firstFailure    string
	stop            chan struct{}
	done            sync.WaitGroup
}

func pollReadyz(k kube) *readyzPoller {
	p := &readyzPoller{stop: make(chan struct{})}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		var down time.Time
		for {
			out, err := exec.Command(k.bin, "--kubeconfig", k.kubeconfig, "--request-timeout", "5s", "get", "--raw", "/readyz").CombinedOutput()
			now := time.Now()
			p.polls++
			if err != nil || strings.TrimSpace(string(out)) != "ok" {
				p.failures++
				if down.IsZero() {
					down = now
				}
				if p.firstFailure == "" {
					p.firstFailure = strings.TrimSpace(string(out))
				}
			} else if !down.IsZero() {
				p.longest = max(p.longest, now.Sub(down))
				down = time.Time{}
			}
			select {
			case <-p.stop:
				if !down.IsZero() {
					p.longest = max(p.longest, now.Sub(down))
				}
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return p
}

func (p *readyzPoller) finish() {
	close(p.stop)
	p.done.Wait()
}

// checkCertsRenew runs boot certs renew on the lab cluster: its dry run
// plans the renewal on cp1 and the kubeconfig and changes nothing (same
// expiry dates, same containers, same kubeconfig); the real run renews
// every certificate (each expires later than before), restarts every
// control-plane component (a new running container each, the pods Running
// and ready), writes the kubeconfig with a later client certificate that
// works, and is what the dry run planned. The API server's /readyz is
// polled throughout: the failures (with one control plane, while the API
// server and etcd restart) are reported, and it must answer at the end.
func checkCertsRenew(t *testing.T, k kube, invPath string) {
	t.Helper()
	expiry, containers := cpCertExpiry(t), cpContainers(t)
	kubeconfig, err := os.ReadFile(k.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	clientBefore := clientCertExpiry(t, k.kubeconfig)

	plan := dryRun(t, "boot certs renew --dry-run", "certs", "renew", "-i", invPath)
	if p := planned(plan); len(p) != 2 || p[0].Phase != "certs renew" || p[0].Host != "cp1" || !strings.Contains(p[0].Message, "apiserver") ||
		!strings.Contains(p[0].Message, "restart kube-apiserver, kube-controller-manager, kube-scheduler, etcd") || p[1].Phase != "kubeconfig" || p[1].Host != "operator" {
		t.Errorf("boot certs renew --dry-run planned %+v", p)
	}
	if after := cpCertExpiry(t); !maps.Equal(after, expiry) {
		t.Errorf("the dry run changed the certificates: %v, before %v", after, expiry)
	}
	if after := cpContainers(t); !maps.Equal(after, containers) {
		t.Errorf("the dry run restarted containers: %v, before %v", after, containers)
	}
	if after, _ := os.ReadFile(k.kubeconfig); string(after) != string(kubeconfig) {
		t.Error("the dry run rewrote the kubeconfig")
	}

	poller := pollReadyz(k)
	start := time.Now()
	code, stdout, stderr := runBoot(t, "certs", "renew", "-i", invPath, "--yes", "-o", "json")
	took := time.Since(start)
	poller.finish()
	evs := parseEvents(t, stdout)
	if code != ExitOK {
		t.Fatalf("boot certs renew --yes: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("boot certs renew took %s; /readyz polled %d times during it, %d failure(s), the longest outage %s (first failure: %q)",
		took.Round(time.Millisecond), poller.polls, poller.failures, poller.longest.Round(time.Millisecond), poller.firstFailure)
	if poller.longest > 90*time.Second {
		t.Errorf("the API server did not answer for %s at a stretch during the renewal (measured: about 36 s, while kube-apiserver restarts)", poller.longest.Round(time.Second))
	}
	checkPlan(t, "boot certs renew", plan, evs)
	for _, want := range []string{"certs renew cp1", "kubeconfig operator"} {
		if !slices.ContainsFunc(evs, func(e event) bool { return e.Phase+" "+e.Host == want && e.Status == "changed" }) {
			t.Errorf("boot certs renew did not change %s", want)
		}
	}
	if strings.Contains(stdout+stderr, "PRIVATE KEY") {
		t.Error("boot certs renew printed a private key")
	}

	for name, after := range cpCertExpiry(t) {
		if !after.After(expiry[name]) {
			t.Errorf("certificate %s expires on %s after the renewal, before it on %s", name, after, expiry[name])
		}
	}
	for c, id := range cpContainers(t) {
		if id == "" || id == containers[c] {
			t.Errorf("%s: running container %q after the renewal, %q before: not restarted", c, id, containers[c])
		}
	}
	eventually(t, "the control-plane pods Running and ready after the renewal", time.Minute, func() string {
		out := k.must("", "get", "pods", "-n", "kube-system", "-l", "tier=control-plane", "-o",
			`jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.status.containerStatuses[*].ready}{"\n"}{end}`)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != len(bootstrap.ControlPlaneComponents) {
			return "control-plane pods: " + out
		}
		for _, l := range lines {
			if f := strings.Fields(l); len(f) != 3 || f[1] != "Running" || f[2] != "true" {
				return "control-plane pods: " + strings.ReplaceAll(out, "\n", "; ")
			}
		}
		return ""
	})
	if after := clientCertExpiry(t, k.kubeconfig); !after.After(clientBefore) {
		t.Errorf("the kubeconfig's client certificate expires on %s, as before the renewal (%s)", after, clientBefore)
	}
	if out := k.must("", "get", "--raw", "/readyz"); strings.TrimSpace(out) != "ok" {
		t.Errorf("/readyz with the refreshed kubeconfig: %q", out)
	}
	eventually(t, "four Ready nodes after the renewal", time.Minute, func() string { return nodesReady(k) })
}
