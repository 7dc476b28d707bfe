//go:build lab

package cmd

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// onHost runs a shell command in a lab host's container and returns its
// combined output and whether it exited 0: for checks whose failure is an
// answer, not an error.
func onHost(host, script string) (string, bool) {
	out, err := exec.Command("docker", "exec", "boot-lab-"+host, "sh", "-c", script).CombinedOutput()
	return string(out), err == nil
}

// failedEvents lists the failed events as "phase/host: message" lines.
func failedEvents(evs []event) string {
	var b strings.Builder
	for _, e := range evs {
		if e.Status == "failed" {
			b.WriteString(e.Phase + "/" + e.Host + ": " + e.Message + "\n")
		}
	}
	return b.String()
}

// plantedManifest is a static pod manifest left on the control plane, as an
// earlier cluster's can be: kubeadm init's own preflight refuses to
// overwrite it (FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml),
// while boot's preflight has nothing against it. (An occupied API server
// port would not do: boot's preflight refuses that before any change.)
const plantedManifest = "/etc/kubernetes/manifests/kube-apiserver.yaml"

// failKubeadmInit runs `boot up --cluster-only` on torn-down hosts while
// cp1 holds a leftover kube-apiserver manifest. The run must fail at the
// control plane naming cp1 and kubeadm's reason, and the reset that follows
// a failed init must have run: no admin.conf and no manifest left (the
// planted one included).
func failKubeadmInit(t *testing.T, inv string) {
	docker(t, "exec", "boot-lab-cp1", "sh", "-c", "mkdir -p /etc/kubernetes/manifests && echo '# left by an earlier cluster' >"+plantedManifest)
	start := time.Now()
	code, stdout, stderr := runBoot(t, "up", "-i", inv, "--cluster-only", "-o", "json")
	took := time.Since(start)
	evs := parseEvents(t, stdout)
	failed := failedEvents(evs)
	if code == ExitOK {
		t.Fatalf("boot up succeeded although kubeadm init had to fail on cp1:\n%s", stdout)
	}
	if !strings.Contains(failed, "control plane/cp1: ") || !strings.Contains(failed, "kube-apiserver.yaml already exists") {
		t.Errorf("the failure does not name cp1's control plane and kubeadm's reason: failed events\n%s%s", failed, stderr)
	}
	if !strings.Contains(stderr, "cp1") || !strings.Contains(stderr, "the host was reset") {
		t.Errorf("the error does not name cp1 and the reset: %s", stderr)
	}
	for _, e := range evs {
		if e.Phase == "join workers" && e.Status == "changed" {
			t.Errorf("workers joined after the control plane failed: %+v", e)
		}
	}
	if out, ok := onHost("cp1", "ls /etc/kubernetes/admin.conf /etc/kubernetes/manifests/*.yaml 2>/dev/null"); ok || strings.TrimSpace(out) != "" {
		t.Errorf("after the failed init, cp1 still has %q: the reset did not run", out)
	}
	t.Logf("boot up with kubeadm init failing on cp1: exit %d after %s; failed events:\n%s%s",
		code, took.Round(time.Millisecond), failed, strings.TrimSpace(stderr))
}

// teardownUnreachableWorker tears the cluster down while w3's sshd is
// stopped: cp1, w1 and w2 are torn down, w3 is named and the exit is
// non-zero (3, a host unreachable); once w3's sshd is back a re-run tears it
// down too and exits 0.
func teardownUnreachableWorker(t *testing.T, inv string, more ...string) {
	docker(t, "exec", "boot-lab-w3", "systemctl", "stop", "ssh")
	sshdBack := false
	defer func() {
		if !sshdBack {
			docker(t, "exec", "boot-lab-w3", "systemctl", "start", "ssh")
		}
	}()
	start := time.Now()
	code, stdout, stderr := runBoot(t, append([]string{"teardown", "-i", inv, "--yes", "-o", "json"}, more...)...)
	took := time.Since(start)
	evs := parseEvents(t, stdout)
	failed := failedEvents(evs)
	phaseTimes(t, "boot teardown with w3 unreachable", evs)
	if code != ExitUnreachable {
		t.Errorf("boot teardown with w3 unreachable: exit %d, want %d\n%s%s", code, ExitUnreachable, stdout, stderr)
	}
	if !strings.Contains(failed, "connect/w3: ") || !strings.Contains(failed, "teardown/w3: not torn down") || !strings.Contains(stderr, "w3 not torn down") {
		t.Errorf("the teardown does not name w3 as not torn down: failed events\n%s%s", failed, stderr)
	}
	for _, h := range []string{"cp1", "w1", "w2"} {
		if strings.Contains(failed, "/"+h+":") {
			t.Errorf("teardown failed on %s, which it reaches:\n%s", h, failed)
		}
		if !containsEvent(evs, "reset", h, "changed") {
			t.Errorf("teardown did not reset %s", h)
		}
	}
	if out, ok := onHost("cp1", "ls /etc/kubernetes/admin.conf"); ok {
		t.Errorf("cp1 still has its admin.conf after the teardown: %s", out)
	}
	if out, ok := onHost("w1", "command -v kubelet || systemctl is-active kubelet"); ok {
		t.Errorf("w1 still has its kubelet after the teardown: %s", out)
	}
	if _, ok := onHost("w3", "ls /etc/kubernetes/kubelet.conf"); !ok {
		t.Errorf("w3, unreachable, lost its kubelet.conf: something reached it")
	}
	t.Logf("boot teardown with w3 unreachable: exit %d after %s:\n%s%s", code, took.Round(time.Millisecond), failed, strings.TrimSpace(stderr))

	docker(t, "exec", "boot-lab-w3", "systemctl", "start", "ssh")
	sshdBack = true
	start = time.Now()
	code, stdout, stderr = runBoot(t, append([]string{"teardown", "-i", inv, "--yes", "-o", "json"}, more...)...)
	evs = parseEvents(t, stdout)
	phaseTimes(t, "boot teardown again, w3 reachable", evs)
	if code != ExitOK {
		t.Fatalf("boot teardown again, w3 reachable: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, e := range changedEvents(evs) {
		if e.Host != "w3" {
			t.Errorf("the re-run changed %s, which the first teardown had done: %+v", e.Host, e)
		}
	}
	if !containsEvent(evs, "reset", "w3", "changed") {
		t.Errorf("the re-run did not reset w3")
	}
	if out, ok := onHost("w3", "ls /etc/kubernetes/kubelet.conf || command -v kubelet"); ok {
		t.Errorf("w3 is not torn down after the re-run: %s", out)
	}
	t.Logf("boot teardown again with w3 reachable: exit %d after %s", code, time.Since(start).Round(time.Millisecond))
}

func containsEvent(evs []event, phase, host, status string) bool {
	for _, e := range evs {
		if e.Phase == phase && e.Host == host && e.Status == status {
			return true
		}
	}
	return false
}
