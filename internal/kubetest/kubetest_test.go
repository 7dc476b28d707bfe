package kubetest

import (
	"context"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// TestStartServesAPI starts etcd and kube-apiserver in a subtest, creates a
// namespace through the returned config, lists it back through the kubeconfig
// file, checks that a request without the admin token is refused, and, once
// the subtest's cleanup has run, that neither server still listens.
func TestStartServesAPI(t *testing.T) {
	var c *Cluster
	t.Run("serve", func(t *testing.T) {
		c = Start(t)
		serve(t, c)
	})
	if c == nil {
		return
	}
	for _, u := range []string{c.Config.Host, c.EtcdURL} {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		if conn, err := net.DialTimeout("tcp", pu.Host, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after cleanup", u)
		}
	}
}

func serve(t *testing.T, c *Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kubetest-probe"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	fromFile, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs2, err := kubernetes.NewForConfig(fromFile)
	if err != nil {
		t.Fatal(err)
	}
	list, err := cs2.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ns := range list.Items {
		found = found || ns.Name == "kubetest-probe"
	}
	if !found {
		t.Fatalf("namespace kubetest-probe not listed; got %d namespaces", len(list.Items))
	}

	anon := rest.AnonymousClientConfig(c.Config)
	csAnon, err := kubernetes.NewForConfig(anon)
	if err != nil {
		t.Fatal(err)
	}
	_, err = csAnon.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) && !apierrors.IsUnauthorized(err) {
		t.Fatalf("anonymous list: want forbidden/unauthorized, got %v", err)
	}

	if fi, err := os.Stat(c.Kubeconfig); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("kubeconfig %s: %v, mode %v; want readable by owner only", c.Kubeconfig, err, fi.Mode())
	}
}

// TestExtractBinariesBadBundle checks that a folder without a bundle gives an
// error naming the manifest file.
func TestExtractBinariesBadBundle(t *testing.T) {
	_, err := extractBinaries(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "manifest.json") {
		t.Fatalf("extractBinaries on an empty folder: want an error naming manifest.json, got %v", err)
	}
}
