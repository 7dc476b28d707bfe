package verify

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/bootctl/boot/internal/dnsquery"
)

var certificatesGVR = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}

// certificate reports the Ready condition of the registry's Certificates.
func (c *checks) certificate(ctx context.Context, cfg *rest.Config, namespace string) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		c.warn("certificate", err.Error())
		return
	}
	list, err := dyn.Resource(certificatesGVR).Namespace(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		c.warn("certificate", "cannot list cert-manager Certificates: "+err.Error())
		return
	}
	if len(list.Items) == 0 {
		c.warn("certificate", "no Certificate in "+namespace+" (yet): cert-manager makes one from the Ingress")
		return
	}
	for _, cert := range list.Items {
		conds, _, _ := unstructured.NestedSlice(cert.Object, "status", "conditions")
		ready, msg := false, "no Ready condition yet"
		for _, x := range conds {
			m, _ := x.(map[string]any)
			if m["type"] == "Ready" {
				ready, msg = m["status"] == "True", fmt.Sprint(m["message"])
			}
		}
		if ready {
			c.ok("certificate", cert.GetName()+": ready: "+msg)
		} else {
			c.fail("certificate", cert.GetName()+": not ready: "+msg)
		}
	}
}

// dns checks that host resolves to exactly the expected addresses, asking
// server (HOST:PORT) when it is set, else this machine's resolver. A wrong
// answer is asked again every 2 seconds for up to settle.
func (c *checks) dns(ctx context.Context, server, host string, want []string, settle time.Duration) {
	w := slices.Clone(want)
	slices.Sort(w)
	list := func(addrs []string) string {
		if len(addrs) == 0 {
			return "no address"
		}
		return strings.Join(addrs, ", ")
	}
	asked := ""
	if server != "" {
		asked = " (asked " + server + ")"
	}
	deadline := time.Now().Add(settle)
	for {
		got, err := resolveOnce(ctx, server, host)
		slices.Sort(got)
		problem := ""
		switch {
		case err != nil:
			problem = host + ": " + err.Error()
		case !slices.Equal(got, w):
			problem = fmt.Sprintf("%s resolves to %s, want %s%s", host, list(got), list(w), asked)
		default:
			c.ok("dns", host+" resolves to "+list(got)+asked)
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.fail("dns", problem)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

// resolveOnce asks server (HOST:PORT) for host's addresses, or this
// machine's resolver when server is empty, waiting at most 10 seconds.
func resolveOnce(ctx context.Context, server, host string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if server == "" {
		return net.DefaultResolver.LookupHost(ctx, host)
	}
	return dnsquery.LookupHost(ctx, server, host)
}
