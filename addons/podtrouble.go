package addons

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bootctl/boot/nodes"
)

// maxTrouble caps the cluster's own text (a scheduler or kubelet message)
// in a reason podTrouble gives.
const maxTrouble = 300

// podTrouble says why the pods in ns that sel selects are not ready, from
// the first such pod by name: failed (evicted, with the kubelet's message),
// not scheduled (the scheduler's message, which names the nodes' taints
// and shortages), a container waiting (ImagePullBackOff, CrashLoopBackOff
// with its last exit...), or running but not ready. "no pod" when there is
// none (the controller's events say why); empty when it cannot tell.
func podTrouble(ctx context.Context, cs kubernetes.Interface, ns string, sel *metav1.LabelSelector) string {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || sel == nil {
		return ""
	}
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: s.String()})
	if err != nil {
		return ""
	}
	if len(list.Items) == 0 {
		return "no pod"
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	for _, p := range list.Items {
		if why := notReadyReason(p); why != "" {
			return "pod " + p.Name + ": " + clip(why)
		}
	}
	return ""
}

// notReadyReason says why pod p is not ready, or "" when it is ready or
// nothing in its status says.
func notReadyReason(p corev1.Pod) string {
	if p.Status.Phase == corev1.PodFailed {
		return strings.TrimSpace("failed " + p.Status.Reason + ": " + p.Status.Message)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return "not scheduled: " + c.Message
		}
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return ""
		}
	}
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for i, c := range statuses {
		initC := i < len(p.Status.InitContainerStatuses)
		switch {
		case c.State.Waiting != nil && c.State.Waiting.Reason != "" && c.State.Waiting.Reason != "PodInitializing":
			why := "container " + c.Name + " " + c.State.Waiting.Reason
			if m := c.State.Waiting.Message; m != "" {
				why += ": " + m
			}
			if t := c.LastTerminationState.Terminated; t != nil {
				why += fmt.Sprintf(" (last exit %d %s, %d restarts)", t.ExitCode, t.Reason, c.RestartCount)
			}
			return why
		case c.State.Running != nil && !initC && !c.Ready:
			return "container " + c.Name + " running, not ready (its readiness probe fails)"
		case c.State.Running != nil && initC:
			return "init container " + c.Name + " still running"
		}
	}
	if p.Status.Phase == corev1.PodPending {
		return "pending"
	}
	return ""
}

// clip escapes the cluster's text and caps it at maxTrouble bytes.
func clip(s string) string {
	s = nodes.EscapeHostText(strings.Join(strings.Fields(s), " "))
	if len(s) > maxTrouble {
		cut := maxTrouble
		for !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
