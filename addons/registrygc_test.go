package addons

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/bootctl/boot/internal/kubetest"
	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/pruner"
)

// The tests below run against a real kube-apiserver (kubetest), which has no
// controller-manager and no kubelet: nothing rolls a Deployment out and no
// pod ever runs. Where a rollout matters the test plays the Deployment
// controller itself (fakeController: Recreate-style, it deletes the old pods,
// creates one pod from the current template, marks it Running and Ready via
// the pods/status subresource, then writes the Deployment's status
// subresource). The exec cannot run without a kubelet, so GarbageCollect is
// given a recordingExecer that records what would be executed; the real
// APIExecer is only shown to be refused (no node) as "not started". The real
// exec is left to the lab end-to-end.

const gcTestDeployment = "docker-registry"

var gcTestLabels = map[string]string{"app.kubernetes.io/name": "registry", "app.kubernetes.io/instance": "docker-registry"}

func newGCClient(t *testing.T) (kubernetes.Interface, *rest.Config) {
	t.Helper()
	c := kubetest.Start(t)
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return cs, c.Config
}

// gcNamespace creates a fresh namespace for one subtest.
func gcNamespace(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()))
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	name = strings.Trim(name, "-")
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// no controller-manager creates the default service account pods need
	if _, err := cs.CoreV1().ServiceAccounts(name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// registryContainer is the chart's registry container, reduced to what the
// gc cares about, plus another env var the patch must leave alone.
func registryContainer(readOnly string) corev1.Container {
	return corev1.Container{
		Name:  "registry",
		Image: "registry:3.1.2",
		Env: []corev1.EnvVar{
			{Name: "REGISTRY_HTTP_ADDR", Value: ":5000"},
			{Name: RegistryReadOnlyEnv, Value: readOnly},
		},
	}
}

func createRegistryDeployment(t *testing.T, cs kubernetes.Interface, ns, readOnly string, annotations map[string]string) {
	t.Helper()
	one := int32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: gcTestDeployment, Namespace: ns, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: gcTestLabels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: gcTestLabels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					registryContainer(readOnly),
					{Name: "sidecar", Image: "busybox", Env: []corev1.EnvVar{{Name: RegistryReadOnlyEnv, Value: "untouched"}}},
				}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func getDeployment(t *testing.T, cs kubernetes.Interface, ns string) *appsv1.Deployment {
	t.Helper()
	d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), gcTestDeployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// envOf returns container name's env as a map.
func registryEnvOf(d *appsv1.Deployment, name string) map[string]string {
	env := map[string]string{}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == name {
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
		}
	}
	return env
}

// createPod creates a pod of the Deployment with the registry container's
// read-only value, then sets its status phase and Ready condition.
func createPod(t *testing.T, cs kubernetes.Interface, ns, name string, labels map[string]string, readOnly string, phase corev1.PodPhase, ready bool, finalizers ...string) {
	t.Helper()
	ctx := context.Background()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, Finalizers: finalizers},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{registryContainer(readOnly)}},
	}
	p, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cond := corev1.ConditionFalse
	if ready {
		cond = corev1.ConditionTrue
	}
	p.Status.Phase = phase
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: cond}}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// fakeController plays the Deployment controller and kubelet that kubetest
// lacks (see the comment at the top). With noPods it only writes the
// Deployment status, so the rollout completes but no pod exists.
type fakeController struct {
	t      *testing.T
	cs     kubernetes.Interface
	ns     string
	name   string
	delay  time.Duration
	noPods bool

	mu       sync.Mutex
	rollouts []int64 // generations rolled out
}

func startController(t *testing.T, cs kubernetes.Interface, ns string, noPods bool) *fakeController {
	return startControllerFor(t, cs, ns, gcTestDeployment, noPods)
}

func startControllerFor(t *testing.T, cs kubernetes.Interface, ns, name string, noPods bool) *fakeController {
	fc := &fakeController{t: t, cs: cs, ns: ns, name: name, delay: 300 * time.Millisecond, noPods: noPods}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := fc.step(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("fake controller: %v", err)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return fc
}

func (fc *fakeController) step(ctx context.Context) error {
	d, err := fc.cs.AppsV1().Deployments(fc.ns).Get(ctx, fc.name, metav1.GetOptions{})
	if err != nil || d.Status.ObservedGeneration >= d.Generation {
		return err
	}
	// Recreate: the old pods go first, the new one comes up a little later.
	if err := fc.cs.CoreV1().Pods(fc.ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(d.Spec.Selector)}); err != nil {
		return err
	}
	time.Sleep(fc.delay)
	if !fc.noPods {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-g%d", d.Name, d.Generation), Namespace: fc.ns, Labels: d.Spec.Template.Labels},
			Spec:       d.Spec.Template.Spec,
		}
		p, err := fc.cs.CoreV1().Pods(fc.ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		if _, err := fc.cs.CoreV1().Pods(fc.ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	n := *d.Spec.Replicas
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
	if _, err := fc.cs.AppsV1().Deployments(fc.ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		return err
	}
	fc.mu.Lock()
	fc.rollouts = append(fc.rollouts, d.Generation)
	fc.mu.Unlock()
	return nil
}

func (fc *fakeController) generations() []int64 {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]int64(nil), fc.rollouts...)
}

// waitRolledOut waits until the fake controller has rolled out the
// Deployment's current generation.
func waitRolledOut(t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if d := getDeployment(t, cs, ns); d.Status.ObservedGeneration >= d.Generation {
			return
		}
	}
	t.Fatal("the fake controller never rolled the Deployment out")
}

// execCall is one exec a recordingExecer received.
type execCall struct {
	namespace, pod, container string
	command                   []string
	// deployment is the Deployment as it was during the exec.
	deployment *appsv1.Deployment
}

// recordingExecer records what would be executed, writes some output the
// way garbage-collect does, and returns err.
type recordingExecer struct {
	t          *testing.T
	cs         kubernetes.Interface
	deployment string // default gcTestDeployment
	err        error
	calls      []execCall
}

func (r *recordingExecer) Exec(ctx context.Context, namespace, pod, container string, command []string, stdout, stderr io.Writer) error {
	name := r.deployment
	if name == "" {
		name = gcTestDeployment
	}
	d, err := r.cs.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		r.t.Errorf("exec: %v", err)
	}
	r.calls = append(r.calls, execCall{namespace, pod, container, command, d})
	fmt.Fprintln(stdout, "library/app: marking manifest sha256:0123")
	fmt.Fprintln(stderr, "blob eligible for deletion: sha256:4567")
	return r.err
}

func newMaintenance(cs kubernetes.Interface, ns string, x PodExecer, out *strings.Builder) *RegistryMaintenance {
	return &RegistryMaintenance{
		Client: cs, Exec: x, Namespace: ns, Deployment: gcTestDeployment,
		Stdout: out, Stderr: out, Poll: 50 * time.Millisecond,
	}
}

func TestRegistryGC(t *testing.T) {
	cs, cfg := newGCClient(t)

	t.Run("protocol", func(t *testing.T) {
		ns := gcNamespace(t, cs)
		createRegistryDeployment(t, cs, ns, RegistryReadOnlyOff, nil)
		fc := startController(t, cs, ns, false)
		waitRolledOut(t, cs, ns)
		x := &recordingExecer{t: t, cs: cs}
		var out strings.Builder
		m := newMaintenance(cs, ns, x, &out)
		m.Config = "/etc/distribution/config.yml"
		var events []run.Event
		m.Report = func(e run.Event) { events = append(events, e) }
		rep, err := pruner.CollectGarbage(context.Background(), m, pruner.GCOptions{})
		if err != nil {
			t.Fatalf("CollectGarbage: %v", err)
		}
		// Each step is reported, in order, as an ok event of the gc phase.
		name := ns + "/" + gcTestDeployment
		where := "pod " + ns + "/" + gcTestDeployment + "-g2 container registry"
		wantSteps := []string{
			"switching deployment " + name + " to read-only (" + RegistryReadOnlyEnv + "=" + RegistryReadOnlyOn + ")",
			"deployment " + name + " rolled out (",
			`running "registry garbage-collect --delete-untagged /etc/distribution/config.yml" in ` + where,
			"garbage-collect in " + where + " finished",
			"switching deployment " + name + " back (" + RegistryReadOnlyEnv + "=" + RegistryReadOnlyOff + ")",
			"deployment " + name + " rolled out (",
		}
		if len(events) != len(wantSteps) {
			t.Errorf("%d events %+v, want %d", len(events), events, len(wantSteps))
		}
		for i, e := range events[:min(len(events), len(wantSteps))] {
			if e.Phase != RegistryGCPhase || e.Status != run.OK || e.Host != "" || !strings.HasPrefix(e.Message, wantSteps[i]) {
				t.Errorf("event %d: %+v, want %s ok %q...", i, e, RegistryGCPhase, wantSteps[i])
			}
		}
		if !rep.Collected || !rep.ReadWriteBack || rep.LeftReadOnly {
			t.Errorf("report %+v, want collected and read-write again", rep)
		}
		if len(x.calls) != 1 {
			t.Fatalf("%d execs, want 1", len(x.calls))
		}
		call := x.calls[0]
		// generation 1 is the initial rollout, 2 the read-only one: the pod
		// exec'd in must be the read-only rollout's.
		if call.namespace != ns || call.pod != gcTestDeployment+"-g2" || call.container != "registry" {
			t.Errorf("exec in %s/%s container %s, want %s/%s-g2 container registry", call.namespace, call.pod, call.container, ns, gcTestDeployment)
		}
		if got, want := strings.Join(call.command, " "), "registry garbage-collect --delete-untagged /etc/distribution/config.yml"; got != want {
			t.Errorf("command %q, want %q", got, want)
		}
		if env := registryEnvOf(call.deployment, "registry"); env[RegistryReadOnlyEnv] != RegistryReadOnlyOn || env["REGISTRY_HTTP_ADDR"] != ":5000" {
			t.Errorf("during the exec the registry env is %v, want %s=%s and the other vars kept", env, RegistryReadOnlyEnv, RegistryReadOnlyOn)
		}
		if got := call.deployment.Annotations[RegistryGCRestoreAnnotation]; got != RegistryReadOnlyOff {
			t.Errorf("during the exec annotation %s = %q, want %q", RegistryGCRestoreAnnotation, got, RegistryReadOnlyOff)
		}
		if call.deployment.Status.ObservedGeneration < call.deployment.Generation {
			t.Errorf("exec started before the rollout of generation %d", call.deployment.Generation)
		}
		d := getDeployment(t, cs, ns)
		if env := registryEnvOf(d, "registry"); env[RegistryReadOnlyEnv] != RegistryReadOnlyOff || env["REGISTRY_HTTP_ADDR"] != ":5000" {
			t.Errorf("afterwards the registry env is %v, want %s=%s", env, RegistryReadOnlyEnv, RegistryReadOnlyOff)
		}
		if env := registryEnvOf(d, "sidecar"); env[RegistryReadOnlyEnv] != "untouched" {
			t.Errorf("the sidecar's env changed: %v", env)
		}
		if v, ok := d.Annotations[RegistryGCRestoreAnnotation]; ok {
			t.Errorf("annotation %s = %q left behind", RegistryGCRestoreAnnotation, v)
		}
		if got := fc.generations(); fmt.Sprint(got) != "[1 2 3]" {
			t.Errorf("rollouts %v, want [1 2 3] (initial, read-only, back)", got)
		}
		if d.Status.ObservedGeneration != 3 {
			t.Errorf("SetReadOnly(false) returned before the rollout: %+v", d.Status)
		}
		for _, want := range []string{"marking manifest", "eligible for deletion"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("garbage-collect's output %q was not streamed", want)
			}
		}
	})

	t.Run("resume after a crash", func(t *testing.T) {
		// An earlier run switched read-only and died: the env is on, the
		// annotation says what to restore.
		ns := gcNamespace(t, cs)
		createRegistryDeployment(t, cs, ns, RegistryReadOnlyOn, map[string]string{RegistryGCRestoreAnnotation: RegistryReadOnlyOff})
		fc := startController(t, cs, ns, false)
		waitRolledOut(t, cs, ns)
		x := &recordingExecer{t: t, cs: cs}
		var out strings.Builder
		if _, err := pruner.CollectGarbage(context.Background(), newMaintenance(cs, ns, x, &out), pruner.GCOptions{}); err != nil {
			t.Fatalf("CollectGarbage: %v", err)
		}
		if len(x.calls) != 1 || x.calls[0].deployment.Generation != 1 {
			t.Errorf("execs %+v, want one, in generation 1 (no second switch to read-only)", x.calls)
		}
		d := getDeployment(t, cs, ns)
		if got := registryEnvOf(d, "registry")[RegistryReadOnlyEnv]; got != RegistryReadOnlyOff {
			t.Errorf("%s = %q after resuming, want the annotation's %q", RegistryReadOnlyEnv, got, RegistryReadOnlyOff)
		}
		if _, ok := d.Annotations[RegistryGCRestoreAnnotation]; ok {
			t.Error("annotation left behind")
		}
		if got := fc.generations(); fmt.Sprint(got) != "[1 2]" {
			t.Errorf("rollouts %v, want [1 2] (initial, back)", got)
		}
	})

	t.Run("read-only by values stays read-only", func(t *testing.T) {
		ns := gcNamespace(t, cs)
		createRegistryDeployment(t, cs, ns, RegistryReadOnlyOn, nil)
		fc := startController(t, cs, ns, false)
		waitRolledOut(t, cs, ns)
		x := &recordingExecer{t: t, cs: cs}
		var out strings.Builder
		if _, err := pruner.CollectGarbage(context.Background(), newMaintenance(cs, ns, x, &out), pruner.GCOptions{}); err != nil {
			t.Fatalf("CollectGarbage: %v", err)
		}
		d := getDeployment(t, cs, ns)
		if got := registryEnvOf(d, "registry")[RegistryReadOnlyEnv]; got != RegistryReadOnlyOn || d.Generation != 1 || len(d.Annotations) != 0 {
			t.Errorf("generation %d, %s = %q, annotations %v: want generation 1, %q, none", d.Generation, RegistryReadOnlyEnv, got, d.Annotations, RegistryReadOnlyOn)
		}
		if len(x.calls) != 1 || fmt.Sprint(fc.generations()) != "[1]" {
			t.Errorf("%d execs, rollouts %v; want 1 exec, no rollout but the first", len(x.calls), fc.generations())
		}
	})

	t.Run("pod choice", func(t *testing.T) {
		ns := gcNamespace(t, cs)
		createRegistryDeployment(t, cs, ns, RegistryReadOnlyOn, nil)
		other := map[string]string{"app.kubernetes.io/name": "registry", "app.kubernetes.io/instance": "another"}
		createPod(t, cs, ns, "a-other-release", other, RegistryReadOnlyOn, corev1.PodRunning, true)
		createPod(t, cs, ns, "b-not-ready", gcTestLabels, RegistryReadOnlyOn, corev1.PodRunning, false)
		createPod(t, cs, ns, "c-pending", gcTestLabels, RegistryReadOnlyOn, corev1.PodPending, false)
		createPod(t, cs, ns, "d-read-write", gcTestLabels, RegistryReadOnlyOff, corev1.PodRunning, true)
		createPod(t, cs, ns, "e-terminating", gcTestLabels, RegistryReadOnlyOn, corev1.PodRunning, true, "boot.test/hold")
		if err := cs.CoreV1().Pods(ns).Delete(context.Background(), "e-terminating", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		m := newMaintenance(cs, ns, &recordingExecer{t: t, cs: cs}, new(strings.Builder))
		_, err := m.PickPod(context.Background())
		if err == nil {
			t.Fatal("PickPod chose a pod; none is fit")
		}
		for _, want := range []string{ns + "/" + gcTestDeployment, "b-not-ready: not Ready", "c-pending: phase Pending", "d-read-write: container registry is not read-only", "e-terminating: terminating"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		if strings.Contains(err.Error(), "a-other-release") {
			t.Errorf("error %q names a pod outside the selector", err)
		}
		if err := m.GarbageCollect(context.Background()); !errors.Is(err, pruner.ErrGarbageCollectNotStarted) {
			t.Errorf("GarbageCollect without a fit pod: %v, want ErrGarbageCollectNotStarted", err)
		}
		createPod(t, cs, ns, "f-fit", gcTestLabels, RegistryReadOnlyOn, corev1.PodRunning, true)
		if pod, err := m.PickPod(context.Background()); err != nil || pod != "f-fit" {
			t.Errorf("PickPod = %q, %v; want f-fit", pod, err)
		}
	})

	t.Run("no pod: restored", func(t *testing.T) {
		ns := gcNamespace(t, cs)
		createRegistryDeployment(t, cs, ns, RegistryReadOnlyOff, nil)
		startController(t, cs, ns, true)
		waitRolledOut(t, cs, ns)
		x := &recordingExecer{t: t, cs: cs}
		rep, err := pruner.CollectGarbage(context.Background(), newMaintenance(cs, ns, x, new(strings.Builder)), pruner.GCOptions{})
		if !errors.Is(err, pruner.ErrGarbageCollectNotStarted) || !strings.Contains(err.Error(), ns+"/"+gcTestDeployment) {
			t.Fatalf("error %v, want ErrGarbageCollectNotStarted naming %s/%s", err, ns, gcTestDeployment)
		}
		if len(x.calls) != 0 || !rep.ReadWriteBack || rep.LeftReadOnly {
			t.Errorf("%d execs, report %+v; want none and read-write again", len(x.calls), rep)
		}
		d := getDeployment(t, cs, ns)
		if got := registryEnvOf(d, "registry")[RegistryReadOnlyEnv]; got != RegistryReadOnlyOff || len(d.Annotations) != 0 {
			t.Errorf("%s = %q, annotations %v; want %q and none", RegistryReadOnlyEnv, got, d.Annotations, RegistryReadOnlyOff)
		}
	})

	t.Run("exec refused: restored", func(t *testing.T) {
		ns := gcNamespace(t, cs)
		createRegistryDeployment(t, cs, ns, RegistryReadOnlyOff, nil)
		startController(t, cs, ns, false)
		waitRolledOut(t, cs, ns)
		x := &recordingExecer{t: t, cs: cs, err: &PodExecNotStartedError{errors.New("unable to upgrade connection: forbidden")}}
		rep, err := pruner.CollectGarbage(context.Background(), newMaintenance(cs, ns, x, new(strings.Builder)), pruner.GCOptions{})
		if !errors.Is(err, pruner.ErrGarbageCollectNotStarted) || !strings.Contains(err.Error(), "pod "+ns+"/"+gcTestDeployment+"-g2") {
			t.Fatalf("error %v, want ErrGarbageCollectNotStarted naming the pod", err)
		}
		d := getDeployment(t, cs, ns)
		if got := registryEnvOf(d, "registry")[RegistryReadOnlyEnv]; got != RegistryReadOnlyOff || len(d.Annotations) != 0 || !rep.ReadWriteBack {
			t.Errorf("%s = %q, annotations %v, report %+v; want %q, none, read-write", RegistryReadOnlyEnv, got, d.Annotations, rep, RegistryReadOnlyOff)
		}
	})

	t.Run("garbage-collect fails: left read-only, resumable", func(t *testing.T) {
		ns := gcNamespace(t, cs)
		createRegistryDeployment(t, cs, ns, RegistryReadOnlyOff, nil)
		startController(t, cs, ns, false)
		waitRolledOut(t, cs, ns)
		x := &recordingExecer{t: t, cs: cs, err: utilexec.CodeExitError{Err: errors.New("command terminated with exit code 1"), Code: 1}}
		rep, err := pruner.CollectGarbage(context.Background(), newMaintenance(cs, ns, x, new(strings.Builder)), pruner.GCOptions{})
		if err == nil || errors.Is(err, pruner.ErrGarbageCollectNotStarted) || !strings.Contains(err.Error(), "exited with code 1") ||
			!strings.Contains(err.Error(), "pod "+ns+"/"+gcTestDeployment+"-g2") {
			t.Fatalf("error %v, want the exit code and the pod", err)
		}
		if !rep.LeftReadOnly || rep.ReadWriteBack {
			t.Errorf("report %+v, want left read-only", rep)
		}
		d := getDeployment(t, cs, ns)
		if got := registryEnvOf(d, "registry")[RegistryReadOnlyEnv]; got != RegistryReadOnlyOn || d.Annotations[RegistryGCRestoreAnnotation] != RegistryReadOnlyOff {
			t.Errorf("%s = %q, annotations %v; want read-only with the annotation kept for the next run", RegistryReadOnlyEnv, got, d.Annotations)
		}
		// The next run succeeds and finishes the job.
		x.err = nil
		if _, err := pruner.CollectGarbage(context.Background(), newMaintenance(cs, ns, x, new(strings.Builder)), pruner.GCOptions{}); err != nil {
			t.Fatalf("the next run: %v", err)
		}
		d = getDeployment(t, cs, ns)
		if got := registryEnvOf(d, "registry")[RegistryReadOnlyEnv]; got != RegistryReadOnlyOff || len(d.Annotations) != 0 {
			t.Errorf("after the next run %s = %q, annotations %v; want %q, none", RegistryReadOnlyEnv, got, d.Annotations, RegistryReadOnlyOff)
		}
	})

	t.Run("rollout never completes", func(t *testing.T) {
		ns := gcNamespace(t, cs)
		createRegistryDeployment(t, cs, ns, RegistryReadOnlyOff, nil)
		// no controller: the status never catches up
		m := newMaintenance(cs, ns, &recordingExecer{t: t, cs: cs}, new(strings.Builder))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := m.SetReadOnly(ctx, true)
		if err == nil || !strings.Contains(err.Error(), "deployment "+ns+"/"+gcTestDeployment+": waiting for the rollout") {
			t.Fatalf("SetReadOnly: %v, want a rollout timeout naming the deployment", err)
		}
	})

	t.Run("bad annotation", func(t *testing.T) {
		ns := gcNamespace(t, cs)
		createRegistryDeployment(t, cs, ns, RegistryReadOnlyOn, map[string]string{RegistryGCRestoreAnnotation: "{enabled: maybe}"})
		m := newMaintenance(cs, ns, &recordingExecer{t: t, cs: cs}, new(strings.Builder))
		if err := m.SetReadOnly(context.Background(), false); err == nil || !strings.Contains(err.Error(), "holds \"{enabled: maybe}\"") {
			t.Errorf("SetReadOnly(false): %v, want a refusal quoting the annotation", err)
		}
	})

	t.Run("the chart's Deployment with the chart's Role", func(t *testing.T) {
		// The registry Deployment and the gc job's ServiceAccount, Role and
		// RoleBinding as the chart renders them; the gc runs impersonating
		// that ServiceAccount, so RBAC proves the Role is enough.
		ns := gcNamespace(t, cs)
		out, err := RenderRegistry(RenderOptions{Namespace: ns, Values: requiredValues()})
		if err != nil {
			t.Fatal(err)
		}
		r := decodeManifests(t, out)
		ctx := context.Background()
		deploy := get[*appsv1.Deployment](t, r, "Deployment/registry")
		if _, err := cs.AppsV1().Deployments(ns).Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, get[*corev1.ServiceAccount](t, r, "ServiceAccount/registry-gc"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.RbacV1().Roles(ns).Create(ctx, get[*rbacv1.Role](t, r, "Role/registry-gc"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, get[*rbacv1.RoleBinding](t, r, "RoleBinding/registry-gc"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		fc := startControllerFor(t, cs, ns, deploy.Name, false)
		asGC := rest.CopyConfig(cfg)
		asGC.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":registry-gc"}
		gcClient, err := kubernetes.NewForConfig(asGC)
		if err != nil {
			t.Fatal(err)
		}
		// RBAC must also refuse what the Role does not grant.
		if _, err := gcClient.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); err == nil {
			t.Fatal("the impersonated gc account may list Secrets: impersonation is not in effect")
		}
		for deadline := time.Now().Add(10 * time.Second); fmt.Sprint(fc.generations()) != "[1]"; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the fake controller never rolled the Deployment out")
			}
		}
		x := &recordingExecer{t: t, cs: cs, deployment: deploy.Name}
		m := &RegistryMaintenance{Client: gcClient, Exec: x, Namespace: ns, Deployment: deploy.Name, Poll: 50 * time.Millisecond}
		if _, err := pruner.CollectGarbage(ctx, m, pruner.GCOptions{}); err != nil {
			t.Fatalf("CollectGarbage as the gc ServiceAccount: %v", err)
		}
		if len(x.calls) != 1 || x.calls[0].pod != deploy.Name+"-g2" || registryEnvOf(x.calls[0].deployment, "registry")[RegistryReadOnlyEnv] != RegistryReadOnlyOn {
			t.Errorf("execs %+v, want one in the read-only pod %s-g2", x.calls, deploy.Name)
		}
		after, err := cs.AppsV1().Deployments(ns).Get(ctx, deploy.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := registryEnvOf(after, "registry")[RegistryReadOnlyEnv]; got != RegistryReadOnlyOff || after.Annotations[RegistryGCRestoreAnnotation] != "" {
			t.Errorf("afterwards %s = %q, annotations %v", RegistryReadOnlyEnv, got, after.Annotations)
		}
		if !equalContainers(deploy.Spec.Template.Spec.Containers, after.Spec.Template.Spec.Containers) {
			t.Errorf("the round trip changed the containers:\n%+v\nwant\n%+v", after.Spec.Template.Spec.Containers, deploy.Spec.Template.Spec.Containers)
		}
		// The real exec as the gc account: the Role lets it through to the
		// point where the API server finds the pod has no node.
		real, err := NewAPIExecer(asGC)
		if err != nil {
			t.Fatal(err)
		}
		err = real.Exec(ctx, ns, deploy.Name+"-g3", "registry", RegistryGCCommand("/etc/distribution/config.yml"), io.Discard, io.Discard)
		if err == nil || strings.Contains(err.Error(), "forbidden") || !strings.Contains(err.Error(), "does not have a host assigned") {
			t.Errorf("exec as the gc account: %v; want refused for want of a node, not forbidden", err)
		}
	})

	t.Run("real exec without a node is not started", func(t *testing.T) {
		// The API server refuses the exec (the pod has no node), before any
		// stream: APIExecer must say so, through both the websocket and the
		// SPDY executor.
		ns := gcNamespace(t, cs)
		createPod(t, cs, ns, "nowhere", gcTestLabels, RegistryReadOnlyOn, corev1.PodRunning, true)
		x, err := NewAPIExecer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = x.Exec(ctx, ns, "nowhere", "registry", RegistryGCCommand("/etc/distribution/config.yml"), io.Discard, io.Discard)
		var ns1 *PodExecNotStartedError
		if !errors.As(err, &ns1) {
			t.Fatalf("Exec: %v (%T), want PodExecNotStartedError", err, err)
		}
		t.Logf("refused as expected: %v", err)
	})
}

func TestRolledOut(t *testing.T) {
	two := int32(2)
	for _, tc := range []struct {
		name   string
		d      appsv1.Deployment
		done   bool
		failed bool
	}{
		{"not observed", appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: 3}, Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1}}, false, false},
		{"done, default replicas", appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: 3}, Status: appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1}}, true, false},
		{"old pod still there", appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: 3}, Spec: appsv1.DeploymentSpec{Replicas: &two}, Status: appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 3, UpdatedReplicas: 2, ReadyReplicas: 2}}, false, false},
		{"not ready", appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: 3}, Spec: appsv1.DeploymentSpec{Replicas: &two}, Status: appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 1}}, false, false},
		{"deadline exceeded", appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: 3}, Status: appsv1.DeploymentStatus{ObservedGeneration: 3, Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: "ReplicaSet has timed out progressing"}}}}, false, true},
	} {
		done, _, failed := rolledOut(&tc.d)
		if done != tc.done || (failed != nil) != tc.failed {
			t.Errorf("%s: done %v failed %v, want %v %v", tc.name, done, failed, tc.done, tc.failed)
		}
	}
}

// equalContainers compares containers the way the API server stores them
// (defaults filled in on both sides are equal; env order matters).
func equalContainers(a, b []corev1.Container) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !apiequality.Semantic.DeepEqual(a[i].Env, b[i].Env) {
			return false
		}
	}
	return true
}
