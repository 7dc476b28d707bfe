package lab

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/internal/quote"
	"github.com/bootctl/boot/inventory"
)

// LabRegistryHost is the DNS name the inventory gives the private registry
// that boot installs inside the lab cluster (.test is reserved for testing).
const LabRegistryHost = "registry.lab.test"

// EvictionFree is the free space under which the lab's kubelets evict pods
// (their nodefs and imagefs hard eviction thresholds): on a disk shared with
// the machine, a share of its size (the kubelet's 10% and 15%) would hold
// back tens of GB the lab does not need, or evict it when other work fills
// the disk.
const EvictionFree = "2Gi"

// inventoryTemplate is the lab's inventory (schema: package inventory). Every
// value is inserted as a YAML double-quoted scalar (quote.YAML).
var inventoryTemplate = template.Must(template.New("inventory").Funcs(template.FuncMap{"q": quote.YAML}).Parse(
	`# Written by boot lab up at {{.Time}}: the lab's four hosts on this machine.
{{- if .Online}}
# Online: packages from the lab's mirror of Docker's and Kubernetes' apt
# repositories and get.helm.sh, images under their upstream names through the
# lab registry as every registry's mirror, charts from the bundle's folder.
{{- end}}
# Strict host-key checking against the lab's own known_hosts file.
#
# The lab's outside world, on this machine at the lab bridge's gateway:
#   ACME directory (Pebble):   {{.ACMEDirectory}}
#     its TLS certificate is signed by the lab CA {{.ACMECA}}
#     the certificates it issues chain to {{.ACMERoot}} (new at every lab up)
#   Route53 API (moto):        {{.Route53Endpoint}} (any SigV4 key), zone {{.Zone}} = {{.Route53ZoneID}}
#     boot's DNS step: --route53-endpoint {{.Route53Endpoint}}, AWS key from {{.Route53Env}}
{{- if .DNSServer}}
#   DNS (CoreDNS):             {{.DNSServer}} serves {{.Zone}} from moto and refuses all else
#     verify's DNS check: --dns-server {{.DNSServer}}
{{- end}}
apiVersion: boot/v1alpha1
kind: Cluster
metadata:
  name: lab
cluster:
  kubernetesVersion: {{q .KubernetesVersion}}
{{- if .Online}}
  # The lab registry serves the bundle's images under their upstream names.
  registryMirrors:
{{- range .Online.Registries}}
    - registry: {{q .Registry}}
      endpoints: [{{q .Endpoint}}]
      caFile: {{q $.RegistryCA}}
{{- end}}
{{- else}}
  # The lab registry serves the bundle's images (HTTPS; every host trusts its CA).
  imageRepository: {{q .Registry}}
{{- end}}
  # The hosts' resolv.conf names Docker's embedded DNS (127.0.0.11), which
  # pods cannot use: the cluster's CoreDNS forwards to the machine's end of
  # the lab bridge, where the lab's CoreDNS serves lab.test (and nothing else).
  nameservers: [{{q .Gateway}}]
  # The hosts share this machine's disk, whose free share of its size says
  # nothing of the lab: the kubelets evict by amount instead.
  kubelet:
    evictionHard:
      nodefsAvailable: {{q .EvictionFree}}
      imagefsAvailable: {{q .EvictionFree}}
ssh:
  user: root
  port: 22
  keyPath: {{q .KeyPath}}
  knownHosts: {{q .KnownHosts}}
  hostKeyPolicy: strict
hosts:
{{- range .Hosts}}
  - name: {{q .Name}}
    address: {{q .Address}}
    role: {{q .Role}}
{{- end}}
packages:
{{- if .Online}}
  source: online
  mirrors:
    docker: {url: {{q .DockerMirror}}, caFile: {{q .RegistryCA}}, keyFile: {{q .MirrorKey}}}
    kubernetes: {url: {{q .KubernetesMirror}}, caFile: {{q .RegistryCA}}, keyFile: {{q .MirrorKey}}}
    helm: {url: {{q .HelmMirror}}, caFile: {{q .RegistryCA}}}
{{- else if .Bundle}}
  source: bundle
  bundle: {{q .Bundle}}
{{- else}}
  source: online
{{- end}}
{{- if .RuntimeBinary}}
  # This machine's capability bounding set is incomplete: containers asking for
  # a missing capability need runc-capwrap, which the lab placed in every host.
  runtimeBinary: {{q .RuntimeBinary}}
{{- end}}
registry:
  host: {{q .RegistryHost}}
  # The lab's Pebble over HTTP-01: it resolves the registry's name through the
  # lab's CoreDNS and fetches the challenge from port 80 of the ingress hosts.
  issuer: acme
  acmeEmail: {{q .ACMEEmail}}
  acme:
    server: {{q .ACMEDirectory}}
    caFile: {{q .ACMECA}}
  # Redis on the lab's volume too (the default there is each pod's own
  # inmemory cache): the lab then proves the cache flush of garbage collection.
  redis:
    enabled: true
{{- if .Online}}
  # boot's image from the bundle, by digest from the lab registry.
  maintenance:
    image: {{q .Online.MaintenanceImage}}
{{- end}}
dns:
  provider: route53
  zone: {{q .Zone}}
addons:
  # ingress-nginx's controller (retired upstream) cannot be built into the
  # bundle: the lab serves the registry's Ingress with Traefik, its successor.
  ingress:
    controller: traefik
{{- if .Online}}
{{- range .Online.Charts}}
  {{.Slot}}:
    path: {{q .Path}}
{{- end}}
{{- end}}
`))

// onlineLab is what the online inventory adds: the registries the lab
// registry mirrors, boot's maintenance image from it, and the bundle's
// charts.
type onlineLab struct {
	Registries       []mirroredRegistry
	MaintenanceImage string
	Charts           []bundle.Chart // Path absolute
}

// mirroredRegistry is an upstream registry and the lab registry's endpoint
// for it.
type mirroredRegistry struct{ Registry, Endpoint string }

// mirrored lists the upstream registries an online cluster pulls from
// (inventory.OnlineRegistries), each mirrored by the lab registry:
// docker.io's endpoint without a path (so that Docker's daemon takes it as
// a registry mirror too), the others' with the path /v2 that containerd
// then uses as is.
func (l *Lab) mirrored() []mirroredRegistry {
	var out []mirroredRegistry
	for _, r := range inventory.OnlineRegistries {
		e := "https://" + l.Registry + "/v2"
		if r == "docker.io" {
			e = "https://" + l.Registry
		}
		out = append(out, mirroredRegistry{r, e})
	}
	return out
}

// renderInventory returns the inventory text for a lab: with online, the
// online inventory.
func (l *Lab) renderInventory(bundleDir, kubernetesVersion string, online *onlineLab, now time.Time) ([]byte, error) {
	data := struct {
		*Lab
		Time, Bundle, KubernetesVersion, RuntimeBinary, RegistryHost, ACMEEmail, Zone, Route53Env, EvictionFree string
		Online                                                                                                  *onlineLab
	}{Lab: l, EvictionFree: EvictionFree, Time: now.UTC().Format(time.RFC3339), Bundle: bundleDir, KubernetesVersion: kubernetesVersion,
		RegistryHost: LabRegistryHost, ACMEEmail: "admin@" + LabZone, Zone: LabZone, Route53Env: filepath.Join(l.Dir, route53EnvFile),
		Online: online}
	if l.CapWrap {
		data.RuntimeBinary = HostWrapperPath
	}
	var buf bytes.Buffer
	if err := inventoryTemplate.Execute(&buf, data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeInventory writes Dir/inventory.yaml and, when the lab serves a
// package mirror with Docker, Dir/inventory-online.yaml.
func (l *Lab) writeInventory(bundleDir, kubernetesVersion string) error {
	text, err := l.renderInventory(bundleDir, kubernetesVersion, nil, time.Now())
	if err != nil {
		return err
	}
	if err := writeFileAtomic(l.Inventory, text, 0o644); err != nil {
		return err
	}
	if bundleDir == "" || l.DockerMirror == "" {
		return nil
	}
	online, err := l.online(bundleDir)
	if err != nil {
		return err
	}
	if text, err = l.renderInventory(bundleDir, kubernetesVersion, online, time.Now()); err != nil {
		return err
	}
	l.OnlineInventory = filepath.Join(l.Dir, onlineInventoryFile)
	if err := writeFileAtomic(l.OnlineInventory, text, 0o644); err != nil {
		return err
	}
	return l.save()
}

// online is what the online inventory of a lab on bundleDir adds.
func (l *Lab) online(bundleDir string) (*onlineLab, error) {
	m, err := bundle.ReadManifest(bundleDir)
	if err != nil {
		return nil, err
	}
	o := &onlineLab{Registries: l.mirrored()}
	for _, img := range m.Images {
		if img.Component == "boot" {
			repo, _, _ := strings.Cut(img.RepoTag, ":")
			o.MaintenanceImage = l.Registry + "/" + repo + "@" + img.Digest
		}
	}
	if o.MaintenanceImage == "" {
		return nil, fmt.Errorf("bundle %s has no boot image (the registry's maintenance jobs run it)", bundleDir)
	}
	for _, c := range m.Charts {
		c.Path = filepath.Join(bundleDir, c.Path)
		o.Charts = append(o.Charts, c)
	}
	return o, nil
}
