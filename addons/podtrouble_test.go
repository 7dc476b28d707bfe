package addons

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bootctl/boot/internal/kubetest"
)

// TestPodTrouble checks, against a real kube-apiserver (pods given the
// status a scheduler or kubelet would write), that a workload's not-ready
// reason names its first not-ready pod and why.
func TestPodTrouble(t *testing.T) {
	c := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "default"
	// No controller-manager makes the namespace's service account here.
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	taint := "0/4 nodes are available: 4 node(s) had untolerated taint {node.kubernetes.io/disk-pressure: }.\n preemption: not helpful"
	cases := []struct {
		app    string
		status []corev1.PodStatus // one pod each, named <app>-0, <app>-1...
		want   string
	}{
		{"none", nil, "no pod"},
		{"unscheduled", []corev1.PodStatus{{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: taint}}}},
			"pod unscheduled-0: not scheduled: 0/4 nodes are available: 4 node(s) had untolerated taint {node.kubernetes.io/disk-pressure: }. preemption: not helpful"},
		{"pull", []corev1.PodStatus{{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: "x",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image \"x\"\x1b[31m"}}}}}},
			`pod pull-0: container app ImagePullBackOff: Back-off pulling image "x"\x1b[31m`},
		{"crash", []corev1.PodStatus{
			{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
			{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: "x", RestartCount: 4,
				State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 1m20s"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}}}}}},
			"pod crash-1: container app CrashLoopBackOff: back-off 1m20s (last exit 2 Error, 4 restarts)"},
		{"probe", []corev1.PodStatus{{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: "x",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}},
			"pod probe-0: container app running, not ready (its readiness probe fails)"},
		{"evicted", []corev1.PodStatus{{Phase: corev1.PodFailed, Reason: "Evicted", Message: "The node was low on resource: ephemeral-storage. " + strings.Repeat("x", 400)}},
			"pod evicted-0: failed Evicted: The node was low on resource: ephemeral-storage. " + strings.Repeat("x", 300-len("failed Evicted: The node was low on resource: ephemeral-storage. ")) + "…"},
	}
	for _, tc := range cases {
		for i, st := range tc.status {
			p := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: tc.app + "-" + string(rune('0'+i)), Labels: map[string]string{"app": tc.app}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "x"}}},
			}
			p, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			p.Status = st
			if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		got := podTrouble(ctx, cs, ns, &metav1.LabelSelector{MatchLabels: map[string]string{"app": tc.app}})
		if got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.app, got, tc.want)
		}
	}
}
