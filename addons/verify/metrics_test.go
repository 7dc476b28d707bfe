package verify

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bootctl/boot/internal/kubetest"
	"github.com/bootctl/boot/internal/run"
)

// The metrics come from a ready pod the Service selects, through the API
// server's port-forward (a real kube-apiserver; without a kubelet the
// forward itself fails, and says to which pod).
func TestMetricsFromAReadyPod(t *testing.T) {
	cluster := kubetest.Start(t)
	cs, err := kubernetes.NewForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const ns = "docker-registry"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// No controller manager makes the namespace's ServiceAccount.
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sel := map[string]string{"app.kubernetes.io/name": "registry"}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "registry", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: sel, Ports: []corev1.ServicePort{{Name: "http", Port: 5000}}}}
	pod := func(name string, labels map[string]string, ready corev1.ConditionStatus) {
		t.Helper()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "registry", Image: "registry:3.1.2"}}}}
		p, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}
		if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	metrics := func() []run.Event {
		var evs []run.Event
		c := &checks{report: func(e run.Event) { evs = append(evs, e) }}
		c.metrics(ctx, cluster.Config, cs, svc)
		return evs
	}
	wantWarning := func(evs []run.Event, want string) {
		t.Helper()
		if len(evs) != 1 || evs[0].Host != "cache" || evs[0].Status != run.Warning || !strings.Contains(evs[0].Message, want) {
			t.Errorf("events %+v, want one cache warning containing %q", evs, want)
		}
	}

	wantWarning(metrics(), "no ready pod behind Service docker-registry/registry (0 pods)")
	pod("other", map[string]string{"app.kubernetes.io/name": "redis"}, corev1.ConditionTrue)
	pod("starting", sel, corev1.ConditionFalse)
	wantWarning(metrics(), "no ready pod behind Service docker-registry/registry (1 pods)")
	pod("ready", sel, corev1.ConditionTrue)
	if p, err := readyPod(ctx, cs, svc); err != nil || p.Name != "ready" {
		t.Errorf("readyPod = %v, %v; want the pod ready", p, err)
	}
	wantWarning(metrics(), fmt.Sprintf("port-forward to pod %s/ready port %d: ", ns, debugPort)+"error upgrading connection: unable to upgrade connection: pod ready does not have a host assigned")
}

// cache tells metrics that are off (404) from counters it reports.
func TestCacheCounters(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   run.Status
		msg    string
	}{
		{http.StatusNotFound, "404 page not found", run.Warning, "the registry's metrics are off (metrics.enabled)"},
		{http.StatusServiceUnavailable, "", run.Warning, "the registry's metrics: 503"},
		{http.StatusOK, "registry_storage_cache_requests_total 0\n", run.Warning, "has served no request"},
		{http.StatusOK, "# HELP x\nregistry_storage_cache_requests_total 8\nregistry_storage_cache_hits_total 6\nregistry_storage_cache_errors_total 1\n",
			run.OK, "inmemory blob-descriptor cache in use: 8 requests, 6 hits (75%), 1 errors"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/metrics" {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte(tc.body))
		}))
		var evs []run.Event
		c := &checks{report: func(e run.Event) { evs = append(evs, e) }, cacheName: "inmemory"}
		c.cache(context.Background(), srv.URL+"/metrics")
		srv.Close()
		if len(evs) != 1 || evs[0].Status != tc.want || !strings.Contains(evs[0].Message, tc.msg) {
			t.Errorf("status %d %q: events %+v, want %v containing %q", tc.status, tc.body, evs, tc.want, tc.msg)
		}
	}
}
