package scripts

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

var testFlannel = FlannelParams{
	PodSubnet:   "10.244.0.0/16",
	Image:       "172.29.40.2:5000/flannel-io/flannel:v0.28.10",
	PluginImage: "172.29.40.2:5000/flannel-io/flannel-cni-plugin:v0.9.1",
}

func TestFlannelGolden(t *testing.T) {
	b, err := Flannel(testFlannel)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "flannel-lab.yaml", b)
}

// TestFlannelDecodesStrictly decodes every document with Kubernetes' own
// types, refusing unknown fields, and checks what the cluster depends on:
// the pod network, the images and the CNI version the plugin speaks.
func TestFlannelDecodesStrictly(t *testing.T) {
	b, err := Flannel(testFlannel)
	if err != nil {
		t.Fatal(err)
	}
	codecs := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict)
	dec := codecs.UniversalDeserializer()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	kinds := map[string]bool{}
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, gvk, err := dec.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("document does not decode strictly: %v\n%s", err, doc)
		}
		kinds[gvk.Kind] = true
		switch o := obj.(type) {
		case *corev1.ConfigMap:
			if !strings.Contains(o.Data["net-conf.json"], `"Network": "10.244.0.0/16"`) {
				t.Errorf("net-conf.json does not name the pod network:\n%s", o.Data["net-conf.json"])
			}
			if !strings.Contains(o.Data["cni-conf.json"], `"cniVersion": "0.4.0"`) {
				t.Errorf("cni-conf.json is not at CNI 0.4.0:\n%s", o.Data["cni-conf.json"])
			}
		case *appsv1.DaemonSet:
			spec := o.Spec.Template.Spec
			if got := spec.Containers[0].Image; got != testFlannel.Image {
				t.Errorf("flanneld image %q, want %q", got, testFlannel.Image)
			}
			if got := spec.InitContainers[0].Image; got != testFlannel.PluginImage {
				t.Errorf("plugin image %q, want %q", got, testFlannel.PluginImage)
			}
		}
	}
	for _, k := range []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet"} {
		if !kinds[k] {
			t.Errorf("no %s in the manifests", k)
		}
	}
}

func TestFlannelRejects(t *testing.T) {
	for name, p := range map[string]FlannelParams{
		"PodSubnet":   {PodSubnet: "10.244.0.1/16", Image: testFlannel.Image, PluginImage: testFlannel.PluginImage},
		"Image":       {PodSubnet: "10.244.0.0/16", Image: "flannel", PluginImage: testFlannel.PluginImage},
		"PluginImage": {PodSubnet: "10.244.0.0/16", Image: testFlannel.Image, PluginImage: "a b:c"},
	} {
		_, err := Flannel(p)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v, want one naming the field", name, err)
		}
	}
}
