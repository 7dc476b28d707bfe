package addons

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/bootctl/boot/internal/kubetest"
)

// TestGCExecPolicy checks, against a real kube-apiserver, the gc job's
// rights as the chart renders them (Role, RoleBinding and the admission
// policy on pods/exec): its ServiceAccount may exec garbage-collect in the
// registry container of the registry Deployment's pods and nothing else;
// other users are not affected. Here no kubelet runs, so an exec that
// passes admission fails after it (the pod has no node): the test tells the
// two apart.
func TestGCExecPolicy(t *testing.T) {
	c := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	out, err := RenderRegistry(RenderOptions{Values: requiredValues()})
	if err != nil {
		t.Fatal(err)
	}
	r := decodeManifests(t, out)
	const ns, full = DefaultRegistryNamespace, "registry"
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, sa := range []string{"default", full + "-gc"} {
		if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mustCreate := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = admin.RbacV1().Roles(ns).Create(ctx, get[*rbacv1.Role](t, r, "Role/"+full+"-gc"), metav1.CreateOptions{})
	mustCreate(err)
	_, err = admin.RbacV1().RoleBindings(ns).Create(ctx, get[*rbacv1.RoleBinding](t, r, "RoleBinding/"+full+"-gc"), metav1.CreateOptions{})
	mustCreate(err)
	policy := ns + "." + full + "-gc-exec"
	_, err = admin.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, get[*admissionv1.ValidatingAdmissionPolicy](t, r, "ValidatingAdmissionPolicy/"+policy), metav1.CreateOptions{})
	mustCreate(err)
	_, err = admin.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, get[*admissionv1.ValidatingAdmissionPolicyBinding](t, r, "ValidatingAdmissionPolicyBinding/"+policy), metav1.CreateOptions{})
	mustCreate(err)
	// Pods as the Deployments name them: the registry's, and the token
	// service's with a container of the same name.
	for _, p := range []string{full + "-5d8f7c9b4-x2k7q", full + "-token-6c4b9d7f8-p9z3w"} {
		_, err := admin.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "registry", Image: "registry:3.1.2"}}}}, metav1.CreateOptions{})
		mustCreate(err)
	}
	tok, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, full+"-gc", &authnv1.TokenRequest{}, metav1.CreateOptions{})
	mustCreate(err)
	gcCfg := rest.AnonymousClientConfig(c.Config)
	gcCfg.BearerToken = tok.Status.Token
	gc, err := kubernetes.NewForConfig(gcCfg)
	if err != nil {
		t.Fatal(err)
	}
	gcCmd := RegistryGCCommand("/etc/distribution/config.yml")
	// exec returns the API server's answer to an exec request by cs.
	exec := func(cs kubernetes.Interface, pod string, opts corev1.PodExecOptions) string {
		opts.Stdout = true
		err := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
			VersionedParams(&opts, scheme.ParameterCodec).Do(ctx).Error()
		if err == nil {
			return "allowed and ran"
		}
		return err.Error()
	}
	const denied = "the registry's gc ServiceAccount may only exec garbage-collect in the registry's own pods"
	const passed = "does not have a host assigned"
	cases := []struct {
		what string
		cs   kubernetes.Interface
		pod  string
		opts corev1.PodExecOptions
		want string
	}{
		{"gc in the registry's pod", gc, full + "-5d8f7c9b4-x2k7q", corev1.PodExecOptions{Container: "registry", Command: gcCmd}, passed},
		{"a shell in the registry's pod", gc, full + "-5d8f7c9b4-x2k7q", corev1.PodExecOptions{Container: "registry", Command: []string{"sh"}, Stdin: true, TTY: true}, denied},
		{"gc with more arguments", gc, full + "-5d8f7c9b4-x2k7q", corev1.PodExecOptions{Container: "registry", Command: append(gcCmd[:len(gcCmd):len(gcCmd)], "--dry-run")}, denied},
		{"gc with stdin", gc, full + "-5d8f7c9b4-x2k7q", corev1.PodExecOptions{Container: "registry", Command: gcCmd, Stdin: true}, denied},
		{"gc in the token service's pod", gc, full + "-token-6c4b9d7f8-p9z3w", corev1.PodExecOptions{Container: "registry", Command: gcCmd}, denied},
		{"the admin's shell", admin, full + "-token-6c4b9d7f8-p9z3w", corev1.PodExecOptions{Container: "registry", Command: []string{"sh"}}, passed},
	}
	// The API server takes a moment to load a new policy.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(exec(gc, cases[1].pod, cases[1].opts), denied) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	for _, tc := range cases {
		if got := exec(tc.cs, tc.pod, tc.opts); !strings.Contains(got, tc.want) {
			t.Errorf("%s: %s, want %q", tc.what, got, tc.want)
		}
	}
}
