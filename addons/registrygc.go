package addons

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/pruner"
)

// RegistryGCRestoreAnnotation is the annotation `boot registry gc` sets on the
// registry Deployment while it is read-only for garbage collection. It holds
// the value of RegistryReadOnlyEnv to put back afterwards, so a run that died
// half-way is finished by the next one.
const RegistryGCRestoreAnnotation = "registry.bootctl.io/gc-restore"

// RegistryGCCommand is the command RegistryMaintenance runs inside the
// registry container, for the registry configuration file config.
func RegistryGCCommand(config string) []string {
	return []string{"registry", "garbage-collect", "--delete-untagged", config}
}

// PodExecer runs command in container of a pod and streams its output. An
// error that is a PodExecNotStartedError means the command never started.
type PodExecer interface {
	Exec(ctx context.Context, namespace, pod, container string, command []string, stdout, stderr io.Writer) error
}

// PodExecNotStartedError says an exec was refused before the command could
// start (the API server or kubelet rejected the request, or it never reached
// them), so the command did nothing.
type PodExecNotStartedError struct{ Err error }

func (e *PodExecNotStartedError) Error() string { return e.Err.Error() }
func (e *PodExecNotStartedError) Unwrap() error { return e.Err }

// APIExecer execs through the Kubernetes API (pods/exec): the websocket
// protocol first (a GET, what newer API servers speak), SPDY (a POST) when
// the websocket upgrade is refused, like kubectl exec.
type APIExecer struct {
	config *rest.Config
	client rest.Interface
}

// NewAPIExecer returns an APIExecer for the cluster cfg reaches.
func NewAPIExecer(cfg *rest.Config) (*APIExecer, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &APIExecer{config: cfg, client: cs.CoreV1().RESTClient()}, nil
}

// Exec implements PodExecer. It returns a PodExecNotStartedError only when
// the request failed before any stream was set up and no output arrived;
// an error after that (a broken connection, a non-zero exit) may come from a
// command that ran.
func (x *APIExecer) Exec(ctx context.Context, namespace, pod, container string, command []string, stdout, stderr io.Writer) error {
	u := x.client.Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: command, Stdout: true, Stderr: true}, scheme.ParameterCodec).URL()
	ws, err := remotecommand.NewWebSocketExecutor(x.config, http.MethodGet, u.String())
	if err != nil {
		return &PodExecNotStartedError{err}
	}
	spdy, err := remotecommand.NewSPDYExecutor(x.config, http.MethodPost, u)
	if err != nil {
		return &PodExecNotStartedError{err}
	}
	exe, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return &PodExecNotStartedError{err}
	}
	out, errOut := &countingWriter{w: stdout}, &countingWriter{w: stderr}
	err = exe.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: out, Stderr: errOut})
	if err != nil && out.n.Load() == 0 && errOut.n.Load() == 0 && execRefused(err) {
		return &PodExecNotStartedError{err}
	}
	return err
}

// execRefused reports whether err is one the exec executors return before a
// stream exists: the websocket handshake or the SPDY upgrade was refused, or
// the request was never answered. Anything else counts as "may have run".
func execRefused(err error) bool {
	if httpstream.IsUpgradeFailure(err) {
		return true
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "unable to upgrade connection") || strings.HasPrefix(msg, "error sending request")
}

type countingWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// RegistryGCPhase is the phase of the events a registry garbage collection
// reports.
const RegistryGCPhase = "registry-gc"

// RegistryMaintenance is pruner.Maintenance for the registry chart's
// Deployment (addons/charts/registry/README.md, "Garbage collection"): the
// read-only switch is the registry container's env RegistryReadOnlyEnv,
// garbage-collect runs in a registry pod through the API.
type RegistryMaintenance struct {
	Client     kubernetes.Interface
	Exec       PodExecer
	Namespace  string
	Deployment string
	// Container is the registry container (default "registry").
	Container string
	// Config is the registry configuration file inside the container
	// (default /etc/distribution/config.yml).
	Config string
	// Stdout and Stderr receive garbage-collect's output (default: discarded).
	Stdout, Stderr io.Writer
	// Report is told about each step: an event of phase RegistryGCPhase,
	// status ok, one line.
	Report run.Reporter
	// Poll is how often the rollout is checked (default 2s).
	Poll time.Duration
}

var _ pruner.Maintenance = (*RegistryMaintenance)(nil)

func (m *RegistryMaintenance) container() string {
	if m.Container == "" {
		return "registry"
	}
	return m.Container
}

func (m *RegistryMaintenance) config() string {
	if m.Config == "" {
		return "/etc/distribution/config.yml"
	}
	return m.Config
}

func (m *RegistryMaintenance) name() string { return m.Namespace + "/" + m.Deployment }

func (m *RegistryMaintenance) progress(format string, args ...any) {
	m.Report.Report(run.Event{Phase: RegistryGCPhase, Status: run.OK, Message: fmt.Sprintf(format, args...)})
}

// SetReadOnly implements pruner.Maintenance. SetReadOnly(true) switches the
// Deployment to read-only unless it already is, remembering the value to
// restore in RegistryGCRestoreAnnotation (kept when an earlier run left it),
// and waits for the rollout. SetReadOnly(false) puts the remembered value
// back and removes the annotation; without the annotation there is nothing
// to undo (the chart itself asks for read-only, or nothing was switched), and
// it only waits for the rollout.
func (m *RegistryMaintenance) SetReadOnly(ctx context.Context, readOnly bool) error {
	d, err := m.Client.AppsV1().Deployments(m.Namespace).Get(ctx, m.Deployment, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("deployment %s: %w", m.name(), err)
	}
	current, err := m.readOnlyEnv(d)
	if err != nil {
		return err
	}
	saved, hasSaved := d.Annotations[RegistryGCRestoreAnnotation]
	if hasSaved && saved != RegistryReadOnlyOn && saved != RegistryReadOnlyOff {
		return fmt.Errorf("deployment %s: annotation %s holds %q, expected %s or %s; set env %s of container %s by hand and remove the annotation",
			m.name(), RegistryGCRestoreAnnotation, saved, RegistryReadOnlyOn, RegistryReadOnlyOff, RegistryReadOnlyEnv, m.container())
	}
	switch {
	case readOnly && current == RegistryReadOnlyOn && hasSaved:
		m.progress("deployment %s is still read-only from an earlier run (annotation %s=%s)", m.name(), RegistryGCRestoreAnnotation, saved)
	case readOnly && current == RegistryReadOnlyOn:
		m.progress("deployment %s is read-only already (its values ask for it); it stays read-only afterwards", m.name())
	case readOnly:
		restoreTo := current
		if hasSaved {
			restoreTo = saved
		}
		m.progress("switching deployment %s to read-only (%s=%s)", m.name(), RegistryReadOnlyEnv, RegistryReadOnlyOn)
		if err := m.patch(ctx, RegistryReadOnlyOn, &restoreTo); err != nil {
			return err
		}
	case hasSaved:
		m.progress("switching deployment %s back (%s=%s)", m.name(), RegistryReadOnlyEnv, saved)
		if err := m.patch(ctx, saved, nil); err != nil {
			return err
		}
	default:
		m.progress("deployment %s has no %s annotation: nothing to switch back", m.name(), RegistryGCRestoreAnnotation)
	}
	return m.waitRollout(ctx)
}

// readOnlyEnv returns the registry container's RegistryReadOnlyEnv value.
func (m *RegistryMaintenance) readOnlyEnv(d *appsv1.Deployment) (string, error) {
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name != m.container() {
			continue
		}
		for _, e := range c.Env {
			if e.Name == RegistryReadOnlyEnv {
				if e.ValueFrom != nil {
					return "", fmt.Errorf("deployment %s: container %s takes env %s from a reference, not a value", m.name(), c.Name, RegistryReadOnlyEnv)
				}
				return e.Value, nil
			}
		}
		return "", fmt.Errorf("deployment %s: container %s has no env %s (is it the registry chart's Deployment?)", m.name(), c.Name, RegistryReadOnlyEnv)
	}
	return "", fmt.Errorf("deployment %s has no container %s", m.name(), m.container())
}

// patch sets the env var to value with one strategic merge patch, and the
// restore annotation to *restoreTo, or removes it when restoreTo is nil.
func (m *RegistryMaintenance) patch(ctx context.Context, value string, restoreTo *string) error {
	var ann any
	if restoreTo != nil {
		ann = *restoreTo
	}
	p := map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{RegistryGCRestoreAnnotation: ann}},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{
			map[string]any{"name": m.container(), "env": []any{map[string]any{"name": RegistryReadOnlyEnv, "value": value}}},
		}}}},
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if _, err := m.Client.AppsV1().Deployments(m.Namespace).Patch(ctx, m.Deployment, types.StrategicMergePatchType, b, metav1.PatchOptions{FieldManager: "boot-registry-gc"}); err != nil {
		return fmt.Errorf("deployment %s: set %s=%s: %w", m.name(), RegistryReadOnlyEnv, value, err)
	}
	return nil
}

// waitRollout polls the Deployment (the gc Role allows get, not watch) until
// the controller has seen the latest spec and every replica is updated and
// ready, or the rollout exceeded its progress deadline, or ctx ends.
func (m *RegistryMaintenance) waitRollout(ctx context.Context) error {
	poll := m.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	last := "not read yet"
	for {
		d, err := m.Client.AppsV1().Deployments(m.Namespace).Get(ctx, m.Deployment, metav1.GetOptions{})
		switch {
		case err == nil:
			done, state, failed := rolledOut(d)
			if failed != nil {
				return fmt.Errorf("deployment %s: rollout: %w", m.name(), failed)
			}
			if done {
				m.progress("deployment %s rolled out (%s)", m.name(), state)
				return nil
			}
			last = state
		case ctx.Err() == nil:
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deployment %s: waiting for the rollout: %w (last seen: %s)", m.name(), ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// rolledOut applies the chart README's rule: observedGeneration >=
// generation and updatedReplicas == readyReplicas == replicas ==
// spec.replicas.
func rolledOut(d *appsv1.Deployment) (done bool, state string, failed error) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	state = fmt.Sprintf("generation %d observed %d, replicas %d/%d updated %d ready %d",
		d.Generation, s.ObservedGeneration, s.Replicas, want, s.UpdatedReplicas, s.ReadyReplicas)
	if s.ObservedGeneration < d.Generation {
		return false, state, nil
	}
	for _, c := range s.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
			return false, state, fmt.Errorf("%s: %s", c.Reason, c.Message)
		}
	}
	return s.UpdatedReplicas == want && s.ReadyReplicas == want && s.Replicas == want, state, nil
}

// GarbageCollect implements pruner.Maintenance: it picks a Running, Ready,
// not-terminating pod of the Deployment whose registry container has the
// read-only env value and runs RegistryGCCommand there. When there is no
// such pod, the pods cannot be read or the exec was refused before it
// started, the error wraps pruner.ErrGarbageCollectNotStarted.
func (m *RegistryMaintenance) GarbageCollect(ctx context.Context) error {
	pod, err := m.PickPod(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", pruner.ErrGarbageCollectNotStarted, err)
	}
	cmd := RegistryGCCommand(m.config())
	where := fmt.Sprintf("pod %s/%s container %s", m.Namespace, pod, m.container())
	m.progress("running %q in %s", strings.Join(cmd, " "), where)
	stdout, stderr := m.Stdout, m.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	err = m.Exec.Exec(ctx, m.Namespace, pod, m.container(), cmd, stdout, stderr)
	var notStarted *PodExecNotStartedError
	var exit utilexec.ExitError
	switch {
	case err == nil:
		m.progress("garbage-collect in %s finished", where)
		return nil
	case errors.As(err, &notStarted):
		return fmt.Errorf("%w: exec in %s: %w", pruner.ErrGarbageCollectNotStarted, where, err)
	case errors.As(err, &exit):
		return fmt.Errorf("%q in %s exited with code %d", strings.Join(cmd, " "), where, exit.ExitStatus())
	default:
		return fmt.Errorf("%q in %s: %w", strings.Join(cmd, " "), where, err)
	}
}

// PickPod returns the name of the pod GarbageCollect would run in, or an
// error naming every pod of the Deployment and why it was passed over.
func (m *RegistryMaintenance) PickPod(ctx context.Context) (string, error) {
	d, err := m.Client.AppsV1().Deployments(m.Namespace).Get(ctx, m.Deployment, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("deployment %s: %w", m.name(), err)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return "", fmt.Errorf("deployment %s: selector: %w", m.name(), err)
	}
	pods, err := m.Client.CoreV1().Pods(m.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return "", fmt.Errorf("deployment %s: pods %q: %w", m.name(), sel, err)
	}
	items := pods.Items
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	var skipped []string
	for i := range items {
		p := &items[i]
		if why := m.unfit(p); why != "" {
			skipped = append(skipped, p.Name+": "+why)
			continue
		}
		return p.Name, nil
	}
	if len(skipped) == 0 {
		return "", fmt.Errorf("deployment %s: no pod matches its selector %q", m.name(), sel)
	}
	return "", fmt.Errorf("deployment %s: no Running, Ready pod with %s=%s in container %s (%s)",
		m.name(), RegistryReadOnlyEnv, RegistryReadOnlyOn, m.container(), strings.Join(skipped, "; "))
}

// unfit says why garbage-collect must not run in p, or "" when it may.
func (m *RegistryMaintenance) unfit(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "terminating"
	}
	if p.Status.Phase != corev1.PodRunning {
		return "phase " + string(p.Status.Phase)
	}
	ready := false
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			ready = c.Status == corev1.ConditionTrue
		}
	}
	if !ready {
		return "not Ready"
	}
	for _, c := range p.Spec.Containers {
		if c.Name != m.container() {
			continue
		}
		for _, e := range c.Env {
			if e.Name == RegistryReadOnlyEnv && e.ValueFrom == nil && e.Value == RegistryReadOnlyOn {
				return ""
			}
		}
		return "container " + c.Name + " is not read-only"
	}
	return "no container " + m.container()
}
