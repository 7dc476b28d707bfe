package lab

import (
	"bytes"
	"encoding/json"
	"text/template"
	"time"
)

// LabRegistryHost is the DNS name the inventory gives the private registry
// that boot installs inside the lab cluster (.test is reserved for testing).
const LabRegistryHost = "registry.lab.test"

// inventoryTemplate is the lab's inventory (schema: package inventory). Every
// value is inserted JSON-quoted, which YAML reads as the same string.
var inventoryTemplate = template.Must(template.New("inventory").Funcs(template.FuncMap{"q": quoteYAML}).Parse(
	`# Written by boot lab up at {{.Time}}: the lab's four hosts on this machine.
# Strict host-key checking against the lab's own known_hosts file.
apiVersion: boot/v1alpha1
kind: Cluster
metadata:
  name: lab
cluster:
  kubernetesVersion: {{q .KubernetesVersion}}
  # The lab registry serves the bundle's images (HTTPS; every host trusts its CA).
  imageRepository: {{q .Registry}}
  # The hosts' resolv.conf names Docker's embedded DNS (127.0.0.11), which
  # pods cannot use: CoreDNS forwards to the machine's end of the lab bridge.
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
  issuer: selfsigned
dns:
  provider: none
`))

func quoteYAML(s string) (string, error) {
	b, err := json.Marshal(s)
	return string(b), err
}

// renderInventory returns the inventory text for a lab.
func (l *Lab) renderInventory(bundleDir, kubernetesVersion string, now time.Time) ([]byte, error) {
	data := struct {
		*Lab
		Time, Bundle, KubernetesVersion, RuntimeBinary, RegistryHost string
	}{Lab: l, Time: now.UTC().Format(time.RFC3339), Bundle: bundleDir, KubernetesVersion: kubernetesVersion, RegistryHost: LabRegistryHost}
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
