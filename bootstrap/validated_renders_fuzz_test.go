package bootstrap

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/route53"
	"gopkg.in/yaml.v3"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"

	"github.com/bootctl/boot/addons"
	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
	"github.com/bootctl/boot/scripts"
)

// FuzzValidatedInventoryRenders proves that validation is complete: every
// inventory that inventory.Load (what `boot validate` runs) accepts, every
// renderer accepts too — each host script (host prep, container runtime and
// Kubernetes packages in both sources, helm, teardown), kubeadm's init and
// join configurations, flannel's manifests, the add-ons' chart values
// (cert-manager, the issuer, ingress-nginx, Traefik, the registry, and the
// bundle's images) with boot's issuer and registry charts rendered from them
// (their schemas included), the registry's credentials and the DNS record.
// So nothing the renderers refuse can stop a run after it has changed hosts.
//
// Inputs are the seed inventories with up to two fields set to a fuzzed
// string. Its seed corpus (run by go test as a unit test) holds the issue's
// examples; fuzz it with
//
//	go test ./bootstrap -run '^$' -fuzz FuzzValidatedInventoryRenders -fuzztime 60s
func FuzzValidatedInventoryRenders(f *testing.F) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "BOOT_") {
			f.Setenv(k, "") // an empty override is ignored: only the file counts
		}
	}
	f.Setenv("HOME", f.TempDir())
	seeds := fuzzSeedInventories(f)
	for i := range seeds {
		f.Add(uint8(i), uint8(255), "", uint8(255), "")
	}
	values := []string{
		"$(id)", "`id`", `"`, "'", "a\rb", "a\nb", "\u00e9", "\u2028", strings.Repeat("a", 300), "",
		"3.22.0", "v3.22.0", "latest", "1.2.3$(id)", "/usr/bin/runc\r", "/usr/bin/../runc",
		"Registry.Example.com", "registry.example.com.", "CP1.example.com", "2001:db8::1", "[::1]:6443",
		"reg.example.com:5000/k8s", "reg.example.com/$(id)", "ad min", "ad:min", "admin\u00a0",
	}
	// Each field gets each value on one seed, the seeds taking turns.
	for fi := range fuzzFields {
		for vi, v := range values {
			f.Add(uint8((fi+vi)%len(seeds)), uint8(fi), v, uint8(255), "")
		}
	}
	f.Fuzz(func(t *testing.T, seed, field1 uint8, value1 string, field2 uint8, value2 string) {
		text, ok := mutate(t, seeds[int(seed)%len(seeds)], field1, value1, field2, value2)
		if !ok {
			return
		}
		path := filepath.Join(t.TempDir(), "inventory.yaml")
		if err := os.WriteFile(path, text, 0o600); err != nil {
			t.Fatal(err)
		}
		inv, err := inventory.Load(path)
		if err != nil {
			if int(field1) >= len(fuzzFields) && int(field2) >= len(fuzzFields) {
				t.Fatalf("seed inventory %d is refused: %v", seed, err)
			}
			return // refused before anything runs: what validation is for
		}
		if err := renderAll(inv); err != nil {
			t.Fatalf("boot validate accepts this inventory, a renderer refuses it: %v\n%s", err, text)
		}
	})
}

// fuzzFields are the inventory fields the fuzzer sets: every string a
// renderer reads, and the choices that select what is rendered.
var fuzzFields = []string{
	"metadata.name", "cluster.kubernetesVersion", "cluster.podCIDR", "cluster.serviceCIDR",
	"cluster.controlPlaneEndpoint", "cluster.imageRepository", "cluster.nameservers[0]",
	"hosts[0].name", "hosts[0].address", "hosts[0].privateAddress", "hosts[1].name", "hosts[1].address", "hosts[1].privateAddress",
	"packages.source", "packages.runtimeBinary", "packages.versions.containerd", "packages.versions.docker", "packages.versions.helm",
	"registry.host", "registry.acmeEmail", "registry.issuer", "registry.namespace", "registry.acme.server", "registry.acme.solver",
	"registry.acme.recursiveNameservers[0]", "registry.storage.type", "registry.storage.size", "registry.storage.storageClass",
	"registry.storage.s3.bucket", "registry.storage.s3.region", "registry.storage.s3.endpoint", "registry.auth.user",
	"registry.redis.maxMemory", "registry.gc.schedule", "registry.pruner.schedule", "registry.pruner.rules[0].repositories[0]",
	"registry.pruner.rules[0].match[0]", "dns.provider", "dns.zone", "dns.addresses[0]",
	"addons.ingress.controller", "addons.ingressMode",
}

// fuzzSeedInventories returns the seeds: examples/inventory.yaml and
// inventories like the tests' (a bundle, DNS-01 with S3 and Traefik behind
// NodePorts, a self-signed one that sets the package fields).
func fuzzSeedInventories(f *testing.F) [][]byte {
	example, err := os.ReadFile("../examples/inventory.yaml")
	if err != nil {
		f.Fatal(err)
	}
	const hosts = `hosts:
  - {name: cp1, address: 192.0.2.10, role: control-plane}
  - {name: w1, address: 192.0.2.11, role: worker}
`
	return [][]byte{
		example,
		[]byte(`apiVersion: boot/v1alpha1
kind: Cluster
metadata: {name: lab}
cluster:
  imageRepository: 172.29.40.2:5000
packages:
  source: bundle
  bundle: ` + fuzzBundle(f) + `
  runtimeBinary: /usr/local/sbin/runc-capwrap
` + hosts + `registry:
  host: registry.lab.example
  issuer: selfsigned
addons:
  ingress: {controller: traefik}
`),
		[]byte(`apiVersion: boot/v1alpha1
kind: Cluster
metadata: {name: prod}
` + hosts + `registry:
  host: registry.example.com
  issuer: acme
  acmeEmail: ops@example.com
  acme:
    server: https://acme.example.com/directory
    solver: dns01
    recursiveNameservers: [192.0.2.53:53]
  storage:
    type: s3
    s3: {bucket: images, region: eu-west-1, endpoint: https://s3.example.com, accessKeyEnv: S3_KEY, secretKeyEnv: S3_SECRET}
  pruner:
    rules:
      - {repositories: [releases/*], match: [^v], keepLatest: 5}
dns:
  provider: route53
  zone: example.com
addons:
  ingress: {controller: traefik}
  ingressMode: nodePort
`),
		[]byte(`apiVersion: boot/v1alpha1
kind: Cluster
metadata: {name: small}
cluster:
  controlPlaneEndpoint: api.example.com:8443
  imageRepository: registry.example.com/k8s
  nameservers: [192.0.2.53]
packages:
  runtimeBinary: /usr/local/bin/runc
  versions: {containerd: 1.7.27, docker: 28.1.1, helm: 3.22.0}
hosts:
  - {name: cp1, address: cp1.example.com, privateAddress: 10.0.0.10, role: control-plane}
  - {name: w1, address: 10.0.0.11, role: worker}
registry:
  host: registry.example.com
  issuer: selfsigned
  storage: {storageClass: fast, size: 5Gi}
`),
	}
}

// fuzzBundle writes a bundle folder holding only a manifest that names the
// images boot's phases and the add-ons take from a bundle (nothing reads the
// files themselves here).
func fuzzBundle(f *testing.F) string {
	dir := f.TempDir()
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	m := bundle.Manifest{KubernetesVersion: "v1.37.2", Arch: "amd64"}
	for _, img := range []struct{ component, name, repoTag string }{
		{"pause", "registry.k8s.io/pause:3.10.2", "pause:3.10.2"},
		{"flannel", "ghcr.io/flannel-io/flannel:v0.28.10", "flannel-io/flannel:v0.28.10"},
		{"flannel-cni-plugin", "ghcr.io/flannel-io/flannel-cni-plugin:v1.8.0-flannel1", "flannel-io/flannel-cni-plugin:v1.8.0-flannel1"},
		{"registry", "docker.io/library/registry:3.1.2", "library/registry:3.1.2"},
		{"redis", "docker.io/library/redis:7.0.15-debian", "library/redis:7.0.15-debian"},
		{"boot", "docker.io/bootctl/boot:v0.0.0", "bootctl/boot:v0.0.0"},
		{"traefik", "docker.io/library/traefik:v3.7.13", "library/traefik:v3.7.13"},
		{"cert-manager-controller", "quay.io/jetstack/cert-manager-controller:v1.21.1", "jetstack/cert-manager-controller:v1.21.1"},
		{"cert-manager-webhook", "quay.io/jetstack/cert-manager-webhook:v1.21.1", "jetstack/cert-manager-webhook:v1.21.1"},
		{"cert-manager-cainjector", "quay.io/jetstack/cert-manager-cainjector:v1.21.1", "jetstack/cert-manager-cainjector:v1.21.1"},
		{"cert-manager-acmesolver", "quay.io/jetstack/cert-manager-acmesolver:v1.21.1", "jetstack/cert-manager-acmesolver:v1.21.1"},
		{"cert-manager-startupapicheck", "quay.io/jetstack/cert-manager-startupapicheck:v1.21.1", "jetstack/cert-manager-startupapicheck:v1.21.1"},
	} {
		p := "images/" + img.component + ".tar"
		m.Files = append(m.Files, bundle.File{Path: p, SHA256: strings.Repeat("0", 64), Component: img.component})
		m.Images = append(m.Images, bundle.Image{Name: img.name, RepoTag: img.repoTag, Path: p, Digest: digest, Component: img.component})
	}
	data, err := json.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), data, 0o600); err != nil {
		f.Fatal(err)
	}
	if _, err := bundle.ReadManifest(dir); err != nil {
		f.Fatalf("the test's bundle manifest: %v", err)
	}
	return dir
}

// mutate sets up to two fields (fuzzFields[field]; other numbers set
// nothing) of the inventory text to value, as double-quoted YAML strings.
// It reports false for values no YAML file can hold (invalid UTF-8).
func mutate(t *testing.T, text []byte, field1 uint8, value1 string, field2 uint8, value2 string) ([]byte, bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		t.Fatalf("seed: %v", err)
	}
	for _, e := range []struct {
		field uint8
		value string
	}{{field1, value1}, {field2, value2}} {
		if int(e.field) >= len(fuzzFields) {
			continue
		}
		if !utf8.ValidString(e.value) {
			return nil, false
		}
		setField(doc.Content[0], strings.Split(fuzzFields[e.field], "."), e.value)
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, false
	}
	return out, true
}

// setField sets the field at path (keys, each optionally with one [index])
// under the mapping n, making the mappings and lists it needs.
func setField(n *yaml.Node, path []string, value string) {
	key, index := path[0], -1
	if k, i, ok := strings.Cut(key, "["); ok {
		key = k
		fmt.Sscanf(i, "%d]", &index)
	}
	var child *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			child = n.Content[i+1]
		}
	}
	if child == nil {
		child = &yaml.Node{}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, child)
	}
	if index >= 0 {
		if child.Kind != yaml.SequenceNode {
			*child = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		}
		for len(child.Content) <= index {
			child.Content = append(child.Content, &yaml.Node{})
		}
		child = child.Content[index]
	}
	if len(path) == 1 {
		*child = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value, Style: yaml.DoubleQuotedStyle}
		return
	}
	if child.Kind != yaml.MappingNode {
		*child = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	setField(child, path[1:], value)
}

// renderAll renders, from a valid inventory, everything boot up, boot
// addons and teardown render from it, with the values the phases pass (the
// hosts' facts being those of a Debian or Ubuntu host boot supports), and
// returns the first refusal.
func renderAll(inv *inventory.Inventory) error {
	c := &Cluster{Inventory: inv}
	for _, spec := range inv.Hosts {
		c.Hosts = append(c.Hosts, &Host{Spec: spec, Facts: &nodes.Facts{OSID: "debian", OSVersionID: "12", Arch: "x86_64", CgroupVersion: 2}})
	}
	if c.bundleMode() {
		m, err := bundle.ReadManifest(inv.Packages.Bundle)
		if err != nil {
			return err
		}
		// The files are not there: the phases' planning reads the manifest only.
		c.bundleOnce.once.Do(func() { c.bundleOnce.b = &bundle.Bundle{Dir: inv.Packages.Bundle, Manifest: *m} })
	}
	for _, render := range []func(*Cluster) error{renderHostScripts, renderKubeadm, renderFlannel, renderAddons, renderDNS} {
		if err := render(c); err != nil {
			return err
		}
	}
	return nil
}

// renderHostScripts renders each host's scripts, as the phases host prep,
// container runtime, kubernetes packages, helm cli and reset do.
func renderHostScripts(c *Cluster) error {
	inv := c.Inventory
	pause, err := c.pauseTag()
	if err != nil {
		return err
	}
	for _, h := range c.Hosts {
		if _, err := scripts.HostPrep(scripts.HostPrepParams{Hostname: h.Spec.Name, Address: h.Spec.PrivateAddress,
			Packages: nodePackages[inv.Packages.Source], Nameservers: inv.Cluster.Nameservers}); err != nil {
			return err
		}
	}
	if c.bundleMode() {
		if _, err := scripts.RuntimeBundle(scripts.RuntimeBundleParams{StagingDir: StagingDir, ImageRepository: inv.Cluster.ImageRepository,
			PauseTag: pause, RuntimeBinary: inv.Packages.RuntimeBinary}); err != nil {
			return err
		}
		if _, err := scripts.KubeBundle(scripts.KubeBundleParams{StagingDir: StagingDir}); err != nil {
			return err
		}
	} else {
		for osVersion, codename := range codenames {
			osID, _, _ := strings.Cut(osVersion, " ")
			if _, err := scripts.RuntimeOnline(scripts.RuntimeOnlineParams{OSID: osID, Codename: codename,
				DockerVersion: inv.Packages.Versions.Docker, ContainerdVersion: inv.Packages.Versions.Containerd,
				ImageRepository: inv.Cluster.ImageRepository, PauseTag: pause, RuntimeBinary: inv.Packages.RuntimeBinary}); err != nil {
				return err
			}
		}
		if _, err := scripts.KubeOnline(scripts.KubeOnlineParams{KubernetesVersion: inv.Cluster.KubernetesVersion}); err != nil {
			return err
		}
		for _, arch := range []string{"amd64", "arm64"} {
			if _, err := scripts.HelmOnline(scripts.HelmOnlineParams{Version: cmp.Or(inv.Packages.Versions.Helm, defaultHelmVersion), Arch: arch}); err != nil {
				return err
			}
		}
	}
	for _, purge := range []bool{false, true} {
		if _, err := scripts.Teardown(scripts.TeardownParams{Source: inv.Packages.Source, Purge: purge}); err != nil {
			return err
		}
	}
	return nil
}

// renderKubeadm renders kubeadm init's configuration as the control plane
// phase does (on cgroup v1 and v2 hosts) and each worker's join
// configuration as the join phase does.
func renderKubeadm(c *Cluster) error {
	cp := c.controlPlane()
	for _, cgroup := range []int{1, 2} {
		cp.Facts.CgroupVersion = cgroup
		if _, err := scripts.KubeadmInit(c.kubeadmInitParams(cp)); err != nil {
			return err
		}
	}
	for _, w := range c.workers() {
		if _, err := scripts.KubeadmJoin(scripts.JoinParams{
			NodeName: w.Spec.Name, NodeIP: w.Spec.PrivateAddress, APIServerEndpoint: c.endpoint(),
			Token: "abcdef.0123456789abcdef", CACertHashes: []string{"sha256:" + strings.Repeat("ab", 32)},
			IgnorePreflightErrors: ignoredPreflight(w),
		}); err != nil {
			return err
		}
	}
	return nil
}

// renderFlannel renders the pod network's manifests as its phase does.
func renderFlannel(c *Cluster) error {
	image, plugin, err := c.flannelImages()
	if err != nil {
		return err
	}
	_, err = scripts.Flannel(scripts.FlannelParams{PodSubnet: c.Inventory.Cluster.PodCIDR, Image: image, PluginImage: plugin})
	return err
}

// fuzzRoute53 is the DNS-01 solver's hosted zone, as boot would find it.
var fuzzRoute53 = &addons.Route53Solver{Region: "us-east-1", HostedZoneID: "Z0123456789ABCDEFGHIJ"}

// renderAddons makes every add-on's values as addons' Installer.Plan does
// (both ingress controllers: switching is one field), with the bundle's
// images merged in, renders boot's issuer and registry charts from them, and
// makes the registry's credentials for registry.auth.user.
func renderAddons(c *Cluster) error {
	inv := c.Inventory
	r := inv.Registry
	values := map[string]map[string]any{addons.CertManagerRelease: addons.CertManagerValues(true, r, "")}
	var err error
	if values[addons.IngressNginxRelease], err = addons.IngressNginxValues(inv.Addons.IngressMode); err != nil {
		return err
	}
	if values[addons.TraefikRelease], err = addons.TraefikValues(inv.Addons.IngressMode, inv.RecordAddresses()); err != nil {
		return err
	}
	var route53 *addons.Route53Solver
	if r.ACME.Solver == inventory.SolverDNS01 {
		route53 = fuzzRoute53
	}
	if values[addons.IssuerRelease], err = addons.IssuerValues(r, route53); err != nil {
		return err
	}
	if values[addons.DefaultRegistryRelease], err = addons.RegistryValues(r); err != nil {
		return err
	}
	for release, v := range values {
		images, err := addons.BundleImageValues(inv, release)
		if err != nil {
			return err
		}
		chartutil.MergeTables(v, images)
	}
	if err := renderIssuerChart(values[addons.IssuerRelease]); err != nil {
		return err
	}
	if _, err := addons.RenderRegistry(addons.RenderOptions{Namespace: r.Namespace, Values: values[addons.DefaultRegistryRelease]}); err != nil {
		return err
	}
	return checkRegistryUser(r.Auth.User)
}

// renderIssuerChart renders boot's issuer chart with values, as helm does
// on install: the schema first, then every template.
func renderIssuerChart(values map[string]any) error {
	ch, err := addons.IssuerChart()
	if err != nil {
		return err
	}
	top, err := chartutil.ToRenderValues(ch, values, chartutil.ReleaseOptions{Name: addons.IssuerRelease, Namespace: addons.IssuerNamespace, IsInstall: true},
		chartutil.DefaultCapabilities.Copy())
	if err != nil {
		return fmt.Errorf("issuer chart values: %w", err)
	}
	_, err = engine.Engine{Strict: true}.Render(ch, top)
	return err
}

// usersChecked remembers the registry users already accepted: making the
// credentials hashes a password with bcrypt, which is slow.
var usersChecked sync.Map

func checkRegistryUser(user string) error {
	if _, ok := usersChecked.Load(user); ok {
		return nil
	}
	if _, err := addons.NewRegistryCredentials(user, ""); err != nil {
		return err
	}
	usersChecked.Store(user, true)
	return nil
}

// errRoute53 is what the DNS test's Route53 answers: reaching it means the
// record's values were accepted.
var errRoute53 = errors.New("route53 reached")

type refusingRoute53 struct{}

func (refusingRoute53) ListHostedZonesByName(context.Context, *route53.ListHostedZonesByNameInput, ...func(*route53.Options)) (*route53.ListHostedZonesByNameOutput, error) {
	return nil, errRoute53
}

func (refusingRoute53) ListResourceRecordSets(context.Context, *route53.ListResourceRecordSetsInput, ...func(*route53.Options)) (*route53.ListResourceRecordSetsOutput, error) {
	return nil, errRoute53
}

func (refusingRoute53) ChangeResourceRecordSets(context.Context, *route53.ChangeResourceRecordSetsInput, ...func(*route53.Options)) (*route53.ChangeResourceRecordSetsOutput, error) {
	return nil, errRoute53
}

func (refusingRoute53) GetChange(context.Context, *route53.GetChangeInput, ...func(*route53.Options)) (*route53.GetChangeOutput, error) {
	return nil, errRoute53
}

// renderDNS makes the registry's DNS record as boot addons does with
// dns.provider route53: the record's checks run before Route53 is asked.
func renderDNS(c *Cluster) error {
	inv := c.Inventory
	if inv.DNS.Provider != inventory.DNSRoute53 {
		return nil
	}
	d := addons.DNS{Client: refusingRoute53{}, Zone: inv.DNS.Zone, Host: inv.Registry.Host, TTL: int64(inv.DNS.TTL),
		Addresses: inv.RecordAddresses(), Owner: inv.Metadata.Name}
	if _, err := d.Ensure(context.Background()); !errors.Is(err, errRoute53) {
		return fmt.Errorf("dns record: %w", err)
	}
	return nil
}
