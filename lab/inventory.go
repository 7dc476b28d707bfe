package lab

import (
	"bytes"
	"path/filepath"
	"text/template"
	"time"

	"github.com/bootctl/boot/internal/quote"
)

// LabRegistryHost is the DNS name the inventory gives the private registry
// that boot installs inside the lab cluster (.test is reserved for testing).
const LabRegistryHost = "registry.lab.test"

// inventoryTemplate is the lab's inventory (schema: package inventory). Every
// value is inserted as a YAML double-quoted scalar (quote.YAML).
var inventoryTemplate = template.Must(template.New("inventory").Funcs(template.FuncMap{"q": quote.YAML}).Parse(
	`# Written by boot lab up at {{.Time}}: the lab's four hosts on this machine.
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
  # The lab registry serves the bundle's images (HTTPS; every host trusts its CA).
  imageRepository: {{q .Registry}}
  # The hosts' resolv.conf names Docker's embedded DNS (127.0.0.11), which
  # pods cannot use: the cluster's CoreDNS forwards to the machine's end of
  # the lab bridge, where the lab's CoreDNS serves lab.test (and nothing else).
  nameservers: [{{q .Gateway}}]
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
{{- if .Bundle}}
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
dns:
  provider: route53
  zone: {{q .Zone}}
addons:
  # ingress-nginx's controller (retired upstream) cannot be built into the
  # bundle: the lab serves the registry's Ingress with Traefik, its successor.
  ingress:
    controller: traefik
`))

// renderInventory returns the inventory text for a lab.
func (l *Lab) renderInventory(bundleDir, kubernetesVersion string, now time.Time) ([]byte, error) {
	data := struct {
		*Lab
		Time, Bundle, KubernetesVersion, RuntimeBinary, RegistryHost, ACMEEmail, Zone, Route53Env string
	}{Lab: l, Time: now.UTC().Format(time.RFC3339), Bundle: bundleDir, KubernetesVersion: kubernetesVersion,
		RegistryHost: LabRegistryHost, ACMEEmail: "admin@" + LabZone, Zone: LabZone, Route53Env: filepath.Join(l.Dir, route53EnvFile)}
	if l.CapWrap {
		data.RuntimeBinary = HostWrapperPath
	}
	var buf bytes.Buffer
	if err := inventoryTemplate.Execute(&buf, data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeInventory writes Dir/inventory.yaml.
func (l *Lab) writeInventory(bundleDir, kubernetesVersion string) error {
	text, err := l.renderInventory(bundleDir, kubernetesVersion, time.Now())
	if err != nil {
		return err
	}
	return writeFileAtomic(l.Inventory, text, 0o644)
}
