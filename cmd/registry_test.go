package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/internal/kubetest"
	"github.com/bootctl/boot/internal/testenv"
)

func TestRegistryGCHelp(t *testing.T) {
	code, out, errOut := runBoot(t, "registry", "gc", "--help")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr: %s", code, errOut)
	}
	for _, want := range []string{"boot registry gc --namespace", "--deployment", "--container", "--config", "--redis ", "--redis-db", "--timeout", "--kubeconfig", "BOOT_REDIS_PASSWORD", "read-only"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
	if code, out, _ := runBoot(t, "registry", "--help"); code != ExitOK || !strings.Contains(out, "gc ") {
		t.Errorf("boot registry --help: exit %d, output %q", code, out)
	}
}

func TestRegistryGCBadCommandLine(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no flags", nil, nil, "--namespace, --deployment required"},
		{"no deployment", nil, []string{"--namespace", "r"}, "--deployment required"},
		{"empty container", nil, []string{"--namespace", "r", "--deployment", "d", "--container", ""}, "--container required"},
		{"redis-db without redis", nil, []string{"--namespace", "r", "--deployment", "d", "--redis-db", "1"}, "--redis-db needs --redis"},
		{"password without redis", map[string]string{envRedisPassword: "pw-9c1d"}, []string{"--namespace", "r", "--deployment", "d"}, "--redis is not"},
		{"zero timeout", nil, []string{"--namespace", "r", "--deployment", "d", "--timeout", "0s"}, "--timeout 0s"},
		{"bad timeout", nil, []string{"--namespace", "r", "--deployment", "d", "--timeout", "soon"}, "soon"},
		{"bad redis-db", nil, []string{"--namespace", "r", "--deployment", "d", "--redis", "r:6379", "--redis-db", "x"}, "redis-db"},
		{"negative redis-db", nil, []string{"--namespace", "r", "--deployment", "d", "--redis", "r:6379", "--redis-db", "-1"}, "--redis-db -1"},
		{"dry run", nil, []string{"--namespace", "r", "--deployment", "d", "--dry-run"}, "no dry run"},
		{"argument", nil, []string{"--namespace", "r", "--deployment", "d", "extra"}, "extra"},
		{"no cluster", nil, []string{"--namespace", "r", "--deployment", "d"}, "no cluster"},
		{"missing kubeconfig", nil, []string{"--namespace", "r", "--deployment", "d", "--kubeconfig", filepath.Join(dir, "none")}, "kubeconfig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KUBERNETES_SERVICE_HOST", "")
			t.Setenv("KUBECONFIG", "")
			t.Setenv(envRedisPassword, "")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, out, errOut := runBoot(t, append([]string{"registry", "gc"}, tc.args...)...)
			if code != ExitInvalid {
				t.Errorf("exit %d, want %d; stderr: %s", code, ExitInvalid, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q lacks %q", errOut, tc.want)
			}
			if strings.Contains(out+errOut, "pw-9c1d") {
				t.Error("the Redis password was printed")
			}
		})
	}
}

// TestRegistryGCCommand runs the command against a real kube-apiserver and
// a real redis-server. kubetest has no kubelet, so the exec is refused (the
// pod has no node): the command must report that garbage collection did not
// start, name the pod, leave the cache alone and the Deployment as it was,
// and exit 1. The exec itself is proven only by the lab end-to-end. The
// Deployment is read-only by its values (no switch, so no rollout is needed
// and the test need not play the Deployment controller beyond writing its
// status once); addons' TestRegistryGC covers the switch.
func TestRegistryGCCommand(t *testing.T) {
	const password = "redis-secret-5b7e"
	rdb := startTestRedis(t, password)
	ctx := context.Background()
	cacheKeys := []string{"blobs::sha256:aa", "repository::library/app::blobs::sha256:aa", "other"}
	for _, k := range cacheKeys {
		if err := rdb.Set(ctx, k, "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	api := kubetest.Start(t)
	cs, err := kubernetes.NewForConfig(api.Config)
	if err != nil {
		t.Fatal(err)
	}
	const ns, name = "docker-registry", "docker-registry"
	labels := map[string]string{"app.kubernetes.io/name": "registry"}
	container := corev1.Container{Name: "registry", Image: "registry:3.1.2", Env: []corev1.EnvVar{{Name: addons.RegistryReadOnlyEnv, Value: addons.RegistryReadOnlyOn}}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{container}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// What the Deployment controller would write once its pod is ready.
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1}
	if _, err := cs.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name + "-0", Namespace: ns, Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{container}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	args := []string{"registry", "gc", "--kubeconfig", api.Kubeconfig, "--namespace", ns, "--deployment", name,
		"--container", "registry", "--config", "/etc/distribution/config.yml", "--redis", rdb.Options().Addr, "--redis-db", "0", "--timeout", "1m"}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")

	t.Run("exec refused", func(t *testing.T) {
		t.Setenv(envRedisPassword, password)
		code, out, errOut := runBoot(t, append(args, "-o", "json")...)
		if code != ExitFailure {
			t.Fatalf("exit %d, want %d; stdout %s stderr %s", code, ExitFailure, out, errOut)
		}
		for _, want := range []string{"garbage collection did not start", "pod " + ns + "/" + name + "-0 container registry", "does not have a host assigned"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr %q lacks %q", errOut, want)
			}
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for _, l := range lines {
			var e jsonEvent
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Errorf("stdout line %q is not a JSON event: %v", l, err)
			}
		}
		if last := lines[len(lines)-1]; !strings.Contains(last, `"failed"`) || !strings.Contains(last, "garbage collection not completed") {
			t.Errorf("last event %s, want a failed summary", last)
		}
		if strings.Contains(out+errOut, password) {
			t.Error("the Redis password was printed")
		}
		if n, err := rdb.Exists(ctx, cacheKeys...).Result(); err != nil || n != int64(len(cacheKeys)) {
			t.Errorf("%d of %d cache keys left (%v): nothing was swept, so nothing may be flushed", n, len(cacheKeys), err)
		}
		after, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if after.Generation != d.Generation || len(after.Annotations) != 0 {
			t.Errorf("the Deployment changed: generation %d (was %d), annotations %v", after.Generation, d.Generation, after.Annotations)
		}
	})

	t.Run("wrong redis password", func(t *testing.T) {
		t.Setenv(envRedisPassword, "wrong-pw-77d1")
		code, out, errOut := runBoot(t, args...)
		if code != ExitFailure || !strings.Contains(errOut, "nothing was changed") || !strings.Contains(errOut, rdb.Options().Addr) {
			t.Errorf("exit %d, stderr %q; want 1 and a Redis error naming the address", code, errOut)
		}
		if strings.Contains(out+errOut, "wrong-pw-77d1") {
			t.Error("the Redis password was printed")
		}
	})
}

// startTestRedis runs redis-server on a free loopback port with password
// (given through stdin, not argv) and no persistence; stopped by PID.
func startTestRedis(t *testing.T, password string) *redis.Client {
	t.Helper()
	const bin = "/usr/bin/redis-server"
	testenv.File(t, bin, "redis-server")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-")
	cmd.Stdin = strings.NewReader(fmt.Sprintf("bind 127.0.0.1\nport %d\nrequirepass %s\nsave \"\"\nappendonly no\ndir %s\n", port, password, t.TempDir()))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), Password: password})
	t.Cleanup(func() { _ = rdb.Close() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return rdb
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d did not answer: %v", port, err)
		}
	}
}
