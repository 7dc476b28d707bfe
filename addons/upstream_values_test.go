package addons

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/inventory"
)

// missing returns the wanted items list lacks.
func missing(list []string, want ...string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(list, w) {
			out = append(out, w)
		}
	}
	return out
}

// withPrefix returns the items of list that start with prefix.
func withPrefix(list []string, prefix string) []string {
	var out []string
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// TestTraefikChart renders the Traefik chart 41.3.0 from its release
// archive with TraefikValues and the bundle's image, in both ingress modes,
// and checks what the registry's uploads and the switch from ingress-nginx
// depend on: the kubernetesIngressNGINX provider alone, serving class nginx
// through an IngressClass nginx of controller k8s.io/ingress-nginx; no
// call home; entrypoints that never cut a long upload; a DaemonSet on the
// labelled nodes (control plane tolerated); ports 80/443 on the host (root
// with only NET_BIND_SERVICE) or NodePorts 30080/30443; the ingress hosts'
// addresses in the Ingress status; no Traefik CRDs.
func TestTraefikChart(t *testing.T) {
	c := upstreamChart(t, traefikArchive, traefikChartDir)
	if len(c.CRDObjects()) == 0 {
		t.Fatal("the chart has no crds/: skipping them proves nothing")
	}
	inv := &inventory.Inventory{
		Cluster:  inventory.Cluster{ImageRepository: "172.29.40.2:5000"},
		Packages: inventory.Packages{Source: inventory.SourceBundle, Bundle: writeBundle(t)},
	}
	images, err := BundleImageValues(inv, TraefikRelease)
	if err != nil {
		t.Fatal(err)
	}
	addresses := []string{"192.0.2.11", "192.0.2.12"}
	for _, mode := range []string{inventory.IngressHostNetwork, inventory.IngressNodePort} {
		t.Run(mode, func(t *testing.T) {
			values, err := TraefikValues(mode, addresses)
			if err != nil {
				t.Fatal(err)
			}
			mergeValues(values, images)
			objs := renderRelease(t, Release{Name: TraefikRelease, Namespace: TraefikNamespace, Chart: c, Values: values, SkipCRDs: true}, "v1.37.2")
			if crds := ofKind(objs, "CustomResourceDefinition"); len(crds) != 0 {
				t.Errorf("%d Traefik CRDs rendered, want none", len(crds))
			}
			if ds := ofKind(objs, "Deployment"); len(ds) != 0 {
				t.Errorf("a Deployment rendered beside the DaemonSet")
			}
			ds := find(t, objs, "DaemonSet", "traefik")
			pod, _, _ := unstructured.NestedMap(ds.Object, "spec", "template", "spec")
			if d := cmp.Diff(map[string]any{"kubernetes.io/os": "linux", IngressNodeLabel: IngressNodeValue}, pod["nodeSelector"]); d != "" {
				t.Errorf("nodeSelector (-want +got):\n%s", d)
			}
			if d := cmp.Diff([]any{controlPlaneToleration}, pod["tolerations"]); d != "" {
				t.Errorf("tolerations (-want +got):\n%s", d)
			}
			ctr := container(t, ds)
			if ctr["image"] != "172.29.40.2:5000/library/traefik:v3.7.13" {
				t.Errorf("image %v, want the bundle's from cluster.imageRepository", ctr["image"])
			}
			args := stringsOf(ctr, "args")
			web, websecure := "8000", "8443"
			if mode == inventory.IngressHostNetwork {
				web, websecure = "80", "443"
			}
			if m := missing(args,
				"--global.checkNewVersion=false",
				"--global.sendAnonymousUsage=false",
				"--providers.kubernetesingressnginx",
				"--providers.kubernetesingressnginx.ingressClass=nginx",
				"--providers.kubernetesingressnginx.controllerClass=k8s.io/ingress-nginx",
				"--providers.kubernetesingressnginx.publishStatusAddress=192.0.2.11,192.0.2.12",
				"--providers.kubernetesingressnginx.proxyBodySize=0",
				"--providers.kubernetesingressnginx.proxyRequestBuffering=false",
				"--providers.kubernetesingressnginx.proxyReadTimeout=900",
				"--providers.kubernetesingressnginx.proxySendTimeout=900",
				"--entryPoints.web.address=:"+web+"/tcp",
				"--entryPoints.websecure.address=:"+websecure+"/tcp",
				"--entryPoints.web.transport.respondingTimeouts.readTimeout=0s",
				"--entryPoints.web.transport.respondingTimeouts.writeTimeout=0s",
				"--entryPoints.web.transport.respondingTimeouts.idleTimeout=180s",
				"--entryPoints.websecure.transport.respondingTimeouts.readTimeout=0s",
				"--entryPoints.websecure.transport.respondingTimeouts.writeTimeout=0s",
				"--entryPoints.websecure.transport.respondingTimeouts.idleTimeout=180s",
			); len(m) > 0 {
				t.Errorf("args lack %q\nargs: %q", m, args)
			}
			for _, off := range []string{"--providers.kubernetescrd", "--providers.kubernetesingress.", "--providers.kubernetesgateway", "--metrics.prometheus", "--entryPoints.metrics", "--api.dashboard=true", "--global.sendAnonymousUsage=true", "--experimental.kubernetesingressnginx"} {
				if got := withPrefix(args, off); len(got) > 0 {
					t.Errorf("args have %q", got)
				}
			}
			if slices.Contains(args, "--providers.kubernetesingress") || slices.Contains(args, "--global.sendAnonymousUsage") {
				t.Errorf("a provider or usage reporting that should be off is on: %q", args)
			}
			if got := withPrefix(args, "--providers.kubernetesingressnginx.publishservice"); len(got) > 0 {
				t.Errorf("publishService would report the Service's cluster IP: %q", got)
			}

			classes := ofKind(objs, "IngressClass")
			if len(classes) != 1 || classes[0].GetName() != IngressClassName {
				t.Fatalf("IngressClasses %v, want exactly nginx", classes)
			}
			if ctl, _, _ := unstructured.NestedString(classes[0].Object, "spec", "controller"); ctl != IngressClassController {
				t.Errorf("IngressClass nginx controller %q", ctl)
			}

			svc := find(t, objs, "Service", "traefik")
			spec, _, _ := unstructured.NestedMap(svc.Object, "spec")
			ports := map[string]string{}
			for _, p := range spec["ports"].([]any) {
				p := p.(map[string]any)
				ports[p["name"].(string)] = fmt.Sprintf("%v->%v node %v", p["port"], p["targetPort"], p["nodePort"])
			}
			cports := map[string]string{}
			for _, p := range ctr["ports"].([]any) {
				p := p.(map[string]any)
				cports[p["name"].(string)] = fmt.Sprintf("%v host %v", p["containerPort"], p["hostPort"])
			}
			sc, _ := ctr["securityContext"].(map[string]any)
			psc, _ := pod["securityContext"].(map[string]any)
			switch mode {
			case inventory.IngressHostNetwork:
				if pod["hostNetwork"] != true || pod["dnsPolicy"] != "ClusterFirstWithHostNet" || spec["type"] != "ClusterIP" {
					t.Errorf("hostNetwork %v, dnsPolicy %v, Service type %v", pod["hostNetwork"], pod["dnsPolicy"], spec["type"])
				}
				if cports["web"] != "80 host 80" || cports["websecure"] != "443 host 443" {
					t.Errorf("container ports %v, want 80 and 443 on the host", cports)
				}
				if d := cmp.Diff(map[string]any{"drop": []any{"ALL"}, "add": []any{"NET_BIND_SERVICE"}}, sc["capabilities"]); d != "" || sc["allowPrivilegeEscalation"] != false || sc["readOnlyRootFilesystem"] != true {
					t.Errorf("securityContext %v (capabilities -want +got:\n%s)", sc, d)
				}
				if fmt.Sprint(psc["runAsUser"]) != "0" || psc["runAsNonRoot"] != false {
					t.Errorf("pod securityContext %v, want root (for NET_BIND_SERVICE to take effect)", psc)
				}
				upd, _, _ := unstructured.NestedMap(ds.Object, "spec", "updateStrategy", "rollingUpdate")
				if fmt.Sprint(upd["maxUnavailable"], upd["maxSurge"]) != "1 0" {
					t.Errorf("rolling update %v: two pods cannot hold a node's ports", upd)
				}
			case inventory.IngressNodePort:
				if pod["hostNetwork"] == true || spec["type"] != "NodePort" || spec["externalTrafficPolicy"] != "Local" {
					t.Errorf("hostNetwork %v, Service %v", pod["hostNetwork"], spec)
				}
				if ports["web"] != "80->web node 30080" || ports["websecure"] != "443->websecure node 30443" {
					t.Errorf("Service ports %v", ports)
				}
				if psc["runAsNonRoot"] != true || fmt.Sprint(psc["runAsUser"]) != "65532" {
					t.Errorf("pod securityContext %v, want the chart's non-root user", psc)
				}
			}
			if _, ok := ports["metrics"]; ok {
				t.Errorf("the Service exposes metrics: %v", ports)
			}
		})
	}
	if _, err := TraefikValues("loadBalancer", addresses); err == nil || !strings.HasPrefix(err.Error(), "addons.ingressMode:") {
		t.Errorf("unknown mode: %v", err)
	}
	if _, err := TraefikValues(inventory.IngressHostNetwork, nil); err == nil {
		t.Error("no status addresses: no error")
	}
}

// TestCertManagerChart renders the cert-manager chart v1.21.1 from its
// release archive with CertManagerValues and the bundle's five images:
// every component runs its image from cluster.imageRepository (the
// controller's --acme-http01-solver-image included), and with a DNS-01
// solver the self-check asks only the inventory's nameservers and the
// controller's AWS SDK goes where boot's Route53 calls go.
func TestCertManagerChart(t *testing.T) {
	c := upstreamChart(t, certManagerArchive, certManagerChartDir)
	inv := &inventory.Inventory{
		Cluster:  inventory.Cluster{ImageRepository: "172.29.40.2:5000"},
		Packages: inventory.Packages{Source: inventory.SourceBundle, Bundle: writeBundle(t)},
	}
	images, err := BundleImageValues(inv, CertManagerRelease)
	if err != nil {
		t.Fatal(err)
	}
	dns01 := inventory.Registry{Issuer: inventory.IssuerACME, ACME: inventory.ACME{Server: "https://acme.example.internal/directory",
		Solver: inventory.SolverDNS01, RecursiveNameservers: []string{"10.0.0.2:53", "10.0.0.3:53"}}}
	values := CertManagerValues(true, dns01, "http://172.29.40.3:5000")
	mergeValues(values, images)
	objs := renderRelease(t, Release{Name: CertManagerRelease, Namespace: CertManagerNamespace, Chart: c, Values: values}, "v1.37.2")

	const repo = "172.29.40.2:5000/jetstack/cert-manager-"
	for name, component := range map[string]string{"cert-manager": "controller", "cert-manager-webhook": "webhook", "cert-manager-cainjector": "cainjector"} {
		if img := container(t, find(t, objs, "Deployment", name))["image"]; img != repo+component+":v1.21.1" {
			t.Errorf("Deployment %s runs %v", name, img)
		}
	}
	job := find(t, objs, "Job", "cert-manager-startupapicheck")
	if img := container(t, job)["image"]; img != repo+"startupapicheck:v1.21.1" {
		t.Errorf("startupapicheck runs %v", img)
	}
	ctr := container(t, find(t, objs, "Deployment", "cert-manager"))
	args := stringsOf(ctr, "args")
	if m := missing(args,
		"--acme-http01-solver-image="+repo+"acmesolver:v1.21.1",
		"--dns01-recursive-nameservers-only=true",
		"--dns01-recursive-nameservers=10.0.0.2:53,10.0.0.3:53",
		"--enable-certificate-owner-ref=true",
	); len(m) > 0 {
		t.Errorf("controller args lack %q\nargs: %q", m, args)
	}
	env, _ := ctr["env"].([]any)
	if !slices.ContainsFunc(env, func(e any) bool {
		return cmp.Equal(e, map[string]any{"name": "AWS_ENDPOINT_URL_ROUTE_53", "value": "http://172.29.40.3:5000"})
	}) {
		t.Errorf("controller env %v lacks AWS_ENDPOINT_URL_ROUTE_53", env)
	}
	if len(ofKind(objs, "CustomResourceDefinition")) != 6 {
		t.Errorf("%d CRDs rendered, want cert-manager's 6", len(ofKind(objs, "CustomResourceDefinition")))
	}

	// HTTP-01 (and Let's Encrypt): no DNS-01 settings; without waiting, no
	// startupapicheck hook.
	http01 := CertManagerValues(false, inventory.Registry{Issuer: inventory.IssuerLetsEncrypt, ACME: inventory.ACME{Solver: inventory.SolverHTTP01}}, "http://172.29.40.3:5000")
	objs = renderRelease(t, Release{Name: CertManagerRelease, Namespace: CertManagerNamespace, Chart: c, Values: http01}, "v1.37.2")
	ctr = container(t, find(t, objs, "Deployment", "cert-manager"))
	if got := withPrefix(stringsOf(ctr, "args"), "--dns01"); len(got) > 0 {
		t.Errorf("HTTP-01: args %q", got)
	}
	if env, _ := ctr["env"].([]any); len(env) != 1 {
		t.Errorf("HTTP-01: env %v, want POD_NAMESPACE only", env)
	}
	if len(ofKind(objs, "Job")) != 0 {
		t.Error("startupapicheck without waiting")
	}
	if img := ctr["image"]; img != "quay.io/jetstack/cert-manager-controller:v1.21.1" {
		t.Errorf("online: controller runs %v, want the chart's image", img)
	}
}

// TestBundleImageValues: each chart's images come from the bundle's manifest
// (by component, tags as the manifest says); a bundle built before it held
// cert-manager's or Traefik's images is named with what to do.
func TestBundleImageValues(t *testing.T) {
	inv := &inventory.Inventory{
		Cluster:  inventory.Cluster{ImageRepository: "172.29.40.2:5000/mirror"},
		Packages: inventory.Packages{Source: inventory.SourceBundle, Bundle: writeBundle(t)},
	}
	got := map[string]map[string]any{}
	for _, r := range []string{DefaultRegistryRelease, CertManagerRelease, TraefikRelease, IngressNginxRelease, IssuerRelease} {
		v, err := BundleImageValues(inv, r)
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		got[r] = v
	}
	img := func(repo, tag string) map[string]any { return map[string]any{"repository": repo, "tag": tag} }
	pinned := func(repo, tag string) map[string]any {
		return map[string]any{"repository": repo, "tag": tag, "digest": "sha256:" + strings.Repeat("0", 64)}
	}
	const R = "172.29.40.2:5000/mirror"
	want := map[string]map[string]any{
		// boot's own chart runs them pinned by the manifest's digests.
		DefaultRegistryRelease: {"image": pinned(R+"/library/registry", "3.1.2"), "redis": map[string]any{"image": pinned(R+"/library/redis", "7.0.15-debian")},
			"maintenance": map[string]any{"image": pinned(R+"/bootctl/boot", "0.0.0-test")}},
		CertManagerRelease: {
			"image":           img(R+"/jetstack/cert-manager-controller", "v1.21.1"),
			"webhook":         map[string]any{"image": img(R+"/jetstack/cert-manager-webhook", "v1.21.1")},
			"cainjector":      map[string]any{"image": img(R+"/jetstack/cert-manager-cainjector", "v1.21.1")},
			"acmesolver":      map[string]any{"image": img(R+"/jetstack/cert-manager-acmesolver", "v1.21.1")},
			"startupapicheck": map[string]any{"image": img(R+"/jetstack/cert-manager-startupapicheck", "v1.21.1")},
		},
		TraefikRelease:      {"image": map[string]any{"registry": R, "repository": "library/traefik", "tag": "v3.7.13"}},
		IngressNginxRelease: nil, // its controller image cannot be built: the chart's stays
		IssuerRelease:       nil,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("image values (-want +got):\n%s", d)
	}

	// A bundle without them: the registry's images only.
	old := writeBundle(t)
	stripImages(t, old, "cert-manager-webhook", "traefik")
	inv.Packages.Bundle = old
	for r, component := range map[string]string{CertManagerRelease: "cert-manager-webhook", TraefikRelease: "traefik"} {
		_, err := BundleImageValues(inv, r)
		if err == nil || !strings.Contains(err.Error(), "has no "+component+" image") || !strings.HasSuffix(err.Error(), "rebuild the bundle") {
			t.Errorf("%s from a bundle without %s: %v", r, component, err)
		}
	}
	inv.Packages.Source = inventory.SourceOnline
	if v, err := BundleImageValues(inv, CertManagerRelease); v != nil || err != nil {
		t.Errorf("online: %v %v, want nothing", v, err)
	}
}

// stripImages removes the images of components from the manifest of the
// bundle folder dir, as a bundle built before them would be.
func stripImages(t *testing.T, dir string, components ...string) {
	t.Helper()
	m, err := bundle.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	m.Images = slices.DeleteFunc(m.Images, func(img bundle.Image) bool { return slices.Contains(components, img.Component) })
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, bundle.ManifestName), data, 0o644); err != nil {
		t.Fatal(err)
	}
}
