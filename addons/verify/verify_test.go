package verify

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/internal/kubetest"
	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
)

// Run reads the registry's credentials and Service from the cluster (a real
// kube-apiserver) before it connects to the control plane, and says what is
// missing.
func TestRunNeedsTheRegistrysObjects(t *testing.T) {
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
	inv := &inventory.Inventory{}
	inv.Cluster.Kubeconfig = cluster.Kubeconfig
	inv.Registry.Host = "registry.example.com"
	inv.Registry.Namespace = ns
	dialed := 0
	errNoSSH := errors.New("no SSH in this test")
	o := Options{Inventory: inv, ThroughService: true, ControlPlane: func(context.Context) (*nodes.Host, error) { dialed++; return nil, errNoSSH }}
	check := func(want string) {
		t.Helper()
		var evs []run.Event
		err := Run(ctx, o, func(e run.Event) { evs = append(evs, e) })
		if err == nil || !strings.Contains(err.Error(), want) || len(evs) != 0 {
			t.Errorf("Run = %v with events %+v; want an error containing %q and no event", err, evs, want)
		}
	}

	check("the registry's credentials (Secret docker-registry/registry-credentials): ")
	check("(run boot addons first)")
	creds, err := addons.NewRegistryCredentials("admin", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, creds.Secret(addons.RegistryCredentialsSecret, ns), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	check("the registry's Service docker-registry/registry: ")
	if dialed != 0 {
		t.Errorf("the control plane was dialled %d times before the cluster's objects were found", dialed)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: addons.DefaultRegistryRelease, Namespace: ns},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 5000}}}}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	check(errNoSSH.Error())
	if dialed != 1 {
		t.Errorf("the control plane was dialled %d times, want once", dialed)
	}
}
