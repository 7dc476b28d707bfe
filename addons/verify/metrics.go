package verify

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"
)

// debugPort is the registry's debug listener (http.debug.addr in the
// registry chart), bound to the pod's loopback: distribution serves
// /debug/pprof there beside /metrics, so no Service port leads to it.
const debugPort = 5001

// readyPod is a Running pod the Service selects whose Ready condition holds.
func readyPod(ctx context.Context, cs kubernetes.Interface, svc *corev1.Service) (*corev1.Pod, error) {
	pods, err := cs.CoreV1().Pods(svc.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("the pods of Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	for i, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return &pods.Items[i], nil
			}
		}
	}
	return nil, fmt.Errorf("no ready pod behind Service %s/%s (%d pods)", svc.Namespace, svc.Name, len(pods.Items))
}

// forwardToPod forwards a loopback port of this machine to port of the
// pod, through the Kubernetes API's port-forward (pods/portforward), which
// connects inside the pod's network namespace and so reaches listeners on
// its loopback. It returns the local address and a function that stops the
// forward.
func forwardToPod(ctx context.Context, cfg *rest.Config, cs kubernetes.Interface, pod *corev1.Pod, port int) (string, func(), error) {
	url := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("portforward").URL()
	// As kubectl: WebSockets, or SPDY from an API server that refuses them.
	websocket, err := portforward.NewSPDYOverWebsocketDialerForStreaming(url, cfg)
	if err != nil {
		return "", nil, err
	}
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return "", nil, err
	}
	dialer := portforward.NewFallbackDialerForStreaming(websocket,
		spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, url),
		func(err error) bool { return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err) })

	ctx, stop := context.WithCancel(ctx)
	ready := make(chan struct{})
	fw, err := portforward.NewOnAddressesForStreamingWithContext(ctx, dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, ready, io.Discard, io.Discard)
	if err != nil {
		stop()
		return "", nil, err
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-done:
		stop()
		return "", nil, fmt.Errorf("port-forward to pod %s/%s port %d: %w", pod.Namespace, pod.Name, port, err)
	case <-ctx.Done():
		stop()
		return "", nil, ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) != 1 {
		stop()
		return "", nil, fmt.Errorf("port-forward to pod %s/%s port %d: no local port (%v)", pod.Namespace, pod.Name, port, err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(ports[0].Local))), func() { stop(); <-done }, nil
}

// metrics reports the registry's cache counters, read from the debug
// listener of one of the Service's ready pods.
func (c *checks) metrics(ctx context.Context, cfg *rest.Config, cs kubernetes.Interface, svc *corev1.Service) {
	pod, err := readyPod(ctx, cs, svc)
	if err != nil {
		c.warn("cache", "the registry's metrics: "+err.Error())
		return
	}
	addr, stop, err := forwardToPod(ctx, cfg, cs, pod, debugPort)
	if err != nil {
		c.warn("cache", "the registry's metrics: "+err.Error())
		return
	}
	defer stop()
	c.cache(ctx, "http://"+addr+"/metrics")
}
