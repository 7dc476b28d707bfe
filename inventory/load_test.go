package inventory

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestDecodeProblems checks the strict decoding: each case is a whole file
// and the exact report.
func TestDecodeProblems(t *testing.T) {
	isolate(t)
	cases := []struct {
		name  string
		edits []string
		add   string
		whole bool // text is the whole file, instead of base+edits+add
		text  string
		want  []string
	}{
		{name: "unknown field with a likely typo", edits: []string{"kubernetesVersion", "kubernetesVerison"},
			want: []string{`inv.yaml:6: cluster.kubernetesVerison: unknown field (did you mean kubernetesVersion?)`}},
		{name: "unknown field differing in case", edits: []string{"podCIDR", "podCidr"},
			want: []string{`inv.yaml:7: cluster.podCidr: unknown field (did you mean podCIDR?)`}},
		{name: "unknown field", add: "extras:\n  a: 1\n",
			want: []string{`inv.yaml:22: extras: unknown field (known fields: apiVersion, kind, metadata, cluster, ssh, hosts, packages, registry, dns, addons, proxy)`}},
		{name: "unknown field in a list item", edits: []string{"    role: worker\n", "    role: worker\n    labels: {a: b}\n"},
			want: []string{`inv.yaml:19: hosts[1].labels: unknown field (known fields: name, address, privateAddress, role, ssh, hostKey, ingress, proxy)`}},
		{name: "clear password", edits: []string{"  port: 22\n", "  port: 22\n  password: hunter2-canary\n"},
			want: []string{`inv.yaml:12: ssh.password: secrets are never stored in the inventory (use passwordEnv: NAME, the name of an environment variable holding it)`}},
		{name: "clear sudo password", edits: []string{"  port: 22\n", "  port: 22\n  sudo:\n    password: hunter2-canary\n"},
			want: []string{`inv.yaml:13: ssh.sudo.password: secrets are never stored in the inventory (use passwordEnv: NAME, the name of an environment variable holding it)`}},
		{name: "clear key passphrase", edits: []string{"  port: 22\n", "  port: 22\n  keyPassphrase: hunter2-canary\n"},
			want: []string{`inv.yaml:12: ssh.keyPassphrase: secrets are never stored in the inventory (use keyPassphraseEnv: NAME, the name of an environment variable holding it)`}},
		{name: "clear private key", edits: []string{"  port: 22\n", "  port: 22\n  privateKey: hunter2-canary\n"},
			want: []string{`inv.yaml:12: ssh.privateKey: secrets are never stored in the inventory (use keyPath: the path of the private key file)`}},
		{name: "clear token", edits: []string{"  acmeEmail: ops@example.org\n", "  acmeEmail: ops@example.org\n  token: hunter2-canary\n"},
			want: []string{`inv.yaml:22: registry.token: secrets are never stored in the inventory (reference an environment variable with a field ending in Env)`}},
		{name: "clear S3 secret key", edits: []string{"  acmeEmail: ops@example.org\n", "  acmeEmail: ops@example.org\n  storage:\n    type: s3\n    s3:\n      bucket: images\n      region: eu-west-1\n      secretKey: hunter2-canary\n"},
			want: []string{`inv.yaml:27: registry.storage.s3.secretKey: secrets are never stored in the inventory (use secretKeyEnv: NAME, the name of an environment variable holding it)`}},
		{name: "misspelt Env field is not a secret", edits: []string{"  port: 22\n", "  port: 22\n  passwordEnvv: LOGIN_PW\n"},
			want: []string{`inv.yaml:12: ssh.passwordEnvv: unknown field (did you mean passwordEnv?)`}},
		{name: "a key path is not a secret", edits: []string{"  port: 22\n", "  port: 22\n  privateKeyPath: ~/.ssh/id\n"},
			want: []string{`inv.yaml:12: ssh.privateKeyPath: unknown field (known fields: user, port, keyPath, keyPassphraseEnv, agent, passwordEnv, knownHosts, hostKeyPolicy, connectTimeout, bastion, sudo)`}},
		{name: "duplicate key", edits: []string{"  port: 22\n", "  port: 22\n  port: 23\n"},
			want: []string{`inv.yaml:12: ssh.port: is set twice (first on line 11) (each field once)`}},
		{name: "text for a number", edits: []string{"port: 22", "port: twenty-two"},
			want: []string{`inv.yaml:11: ssh.port: "twenty-two" is not a whole number`}},
		{name: "quoted number", edits: []string{"port: 22", `port: "22"`},
			want: []string{`inv.yaml:11: ssh.port: "22" is not a whole number`}},
		{name: "fraction for a number", edits: []string{"port: 22", "port: 22.5"},
			want: []string{`inv.yaml:11: ssh.port: "22.5" is not a whole number`}},
		{name: "yes for a boolean", edits: []string{"port: 22", "port: 22\n  agent: yes"},
			want: []string{`inv.yaml:12: ssh.agent: "yes" is not true or false`}},
		{name: "duration without unit", edits: []string{"port: 22", "port: 22\n  connectTimeout: 10"},
			want: []string{`inv.yaml:12: ssh.connectTimeout: "10" is not a duration (a duration such as 10s or 1m30s)`}},
		{name: "explicit tag", edits: []string{"kind: Cluster", "kind: !!binary Q2x1c3Rlcg=="},
			want: []string{`inv.yaml:2: kind: has the YAML tag !!binary (a plain value)`}},
		{name: "custom tag", edits: []string{"name: lab", "name: !mine lab"},
			want: []string{`inv.yaml:4: metadata.name: has the YAML tag !mine (a plain value)`}},
		{name: "mapping for a value", edits: []string{"name: lab", "name: {first: lab}"},
			want: []string{`inv.yaml:4: metadata.name: is a mapping (a single value)`}},
		{name: "value for a mapping", edits: []string{"ssh:\n  user: root\n  port: 22\n", "ssh: root\n"},
			want: []string{`inv.yaml:9: ssh: is the value "root" (a mapping of fields)`}},
		{name: "mapping for a list", add: "dns:\n  addresses:\n    a: 192.0.2.1\n",
			want: []string{`inv.yaml:24: dns.addresses: is a mapping (a list)`}},
		{name: "anchors", edits: []string{"    role: worker\n", "    role: &r worker\n  - name: w2\n    address: 192.0.2.12\n    role: *r\n"},
			want: []string{
				`inv.yaml:18: hosts[1].role: YAML anchors and aliases are not supported (write the value out)`,
				`inv.yaml:21: hosts[2].role: YAML anchors and aliases are not supported (write the value out)`}},
		{name: "merge key", edits: []string{"    role: worker\n", "    <<: {role: worker}\n"},
			want: []string{
				`inv.yaml:12: hosts: has no worker (at least one host with role: worker)`,
				`inv.yaml:12: hosts: no host runs the ingress controller (at least one host with ingress: true (workers by default))`,
				`inv.yaml:16: hosts[1].role: unknown role "" (control-plane or worker)`,
				`inv.yaml:18: hosts[1].<<: YAML merge keys are not supported (write the fields out)`}},
		{name: "empty values are unset", edits: []string{"port: 22", "port:\n  agent: ~\n  bastion:"}},
		{name: "two documents", add: "---\nkind: Cluster\n",
			want: []string{`inv.yaml:22: a second YAML document starts here (one document per inventory file)`}},
		{name: "empty file", whole: true, text: "",
			want: []string{`inv.yaml: the file is empty (an inventory, see examples/inventory.yaml)`}},
		{name: "only a document marker", whole: true, text: "# nothing\n---\n",
			want: []string{`inv.yaml: the file is empty (an inventory, see examples/inventory.yaml)`}},
		{name: "a second document with mistakes of the first", edits: []string{"kind: Cluster", "kind: Clust"}, add: "---\nkind: Cluster\n",
			want: []string{
				`inv.yaml:2: kind: is "Clust" (Cluster)`,
				`inv.yaml:22: a second YAML document starts here (one document per inventory file)`}},
		{name: "comments only", whole: true, text: "# nothing\n",
			want: []string{`inv.yaml: the file is empty (an inventory, see examples/inventory.yaml)`}},
		{name: "syntax error (yaml.v3 names the enclosing block's line)", edits: []string{"  port: 22\n", "  port: 22\n bad\n"},
			want: []string{`inv.yaml:11: invalid YAML: did not find expected key`}},
		{name: "not a mapping", whole: true, text: "- a\n- b\n",
			want: []string{`inv.yaml:1: is a list (a mapping of fields)`}},
		{name: "problems of all kinds at once", edits: []string{"podCIDR", "podCidr", "port: 22", "port: x", "192.0.2.11", "192.0.2.999"},
			want: []string{
				`inv.yaml:7: cluster.podCidr: unknown field (did you mean podCIDR?)`,
				`inv.yaml:11: ssh.port: "x" is not a whole number`,
				`inv.yaml:17: hosts[1].address: "192.0.2.999" is not an IP address or DNS name (an IP address or a DNS name)`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := tc.text
			if !tc.whole {
				text = edit(t, base, tc.edits...) + tc.add
			}
			got := problems(t, text)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if strings.Contains(strings.Join(got, "\n"), "hunter2") {
				t.Errorf("the report shows a secret value:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	home := isolate(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "lab.yaml")
	writeFile(t, path, base+"  storage:\n    s3:\n") // an empty s3 section stays unset
	inv, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	no := false
	want := Inventory{
		APIVersion: APIVersion, Kind: Kind, Metadata: Metadata{Name: "lab"},
		Cluster: Cluster{KubernetesVersion: "v1.37.2", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12",
			CNI: "flannel", ControlPlaneEndpoint: "192.0.2.10:6443", APIServerPort: 6443,
			Kubeconfig: filepath.Join(dir, "lab.kubeconfig")},
		SSH: SSH{User: "root", Port: 22, Agent: &yes, KnownHosts: filepath.Join(home, ".ssh/known_hosts"),
			HostKeyPolicy: "strict", ConnectTimeout: 10 * time.Second},
		Hosts: []Host{
			{Name: "cp1", Address: "192.0.2.10", PrivateAddress: "192.0.2.10", Role: RoleControlPlane, Ingress: &no},
			{Name: "w1", Address: "192.0.2.11", PrivateAddress: "192.0.2.11", Role: RoleWorker, Ingress: &yes},
		},
		Packages: Packages{Source: "online"},
		Registry: Registry{Host: "registry.example.com", ACMEEmail: "ops@example.org", Issuer: "letsencrypt",
			ACME: ACME{Solver: "http01"}, Namespace: "docker-registry", Storage: Storage{Type: "pvc", Size: "20Gi"}, Replicas: 1, Auth: RegistryAuth{Mode: "htpasswd", User: "admin"},
			Redis: Redis{Enabled: &no, MaxMemory: "256mb"}, GC: GC{Schedule: "30 */12 * * *"},
			Pruner: Pruner{Enabled: &yes, Schedule: "0 */12 * * *", MaxDeletions: 500}},
		DNS: DNS{Provider: "none", TTL: 300},
		Addons: Addons{
			Ingress:      Ingress{Controller: "ingress-nginx"},
			IngressNginx: Chart{Repository: "https://kubernetes.github.io/ingress-nginx", Name: "ingress-nginx", Version: "4.15.1"},
			Traefik:      Chart{Repository: "https://traefik.github.io/charts", Name: "traefik", Version: "41.3.0"},
			CertManager:  Chart{Repository: "oci://quay.io/jetstack/charts/cert-manager", Name: "cert-manager", Version: "v1.21.1"},
			IngressMode:  "hostNetwork"},
		Path: path,
	}
	if diff := cmp.Diff(want, *inv, cmpopts.IgnoreUnexported(Inventory{})); diff != "" {
		t.Fatalf("defaults (-want +got):\n%s", diff)
	}
}

func TestDefaultsKeepExplicitValues(t *testing.T) {
	isolate(t)
	inv := mustLoad(t, edit(t, base,
		"  serviceCIDR: 10.96.0.0/12\n", "  serviceCIDR: 10.96.0.0/12\n  controlPlaneEndpoint: api.example.com\n  apiServerPort: 8443\n",
		"  port: 22\n", "  port: 22\n  agent: false\n  bastion:\n    address: 192.0.2.1\n    port: 2222\n",
		"    role: control-plane\n", "    role: control-plane\n    ingress: true\n",
	)+"  pruner:\n    enabled: false\n    maxDeletions: 7\naddons:\n  certManager:\n    repository: oci://mirror.example.com/charts/cm\n    version: v1.18.0\n")
	if got := inv.Cluster.ControlPlaneEndpoint; got != "api.example.com:8443" {
		t.Errorf("controlPlaneEndpoint = %q, want the given host with apiServerPort", got)
	}
	if *inv.SSH.Agent || !*inv.SSH.Bastion.Agent || inv.SSH.Bastion.User != "root" || inv.SSH.Bastion.Port != 2222 {
		t.Errorf("ssh = %+v, bastion = %+v", inv.SSH, *inv.SSH.Bastion)
	}
	if names := hostNames(inv.IngressHosts()); !slices.Equal(names, []string{"cp1", "w1"}) {
		t.Errorf("ingress hosts = %v", names)
	}
	if *inv.Registry.Pruner.Enabled || inv.Registry.Pruner.MaxDeletions != 7 {
		t.Errorf("pruner = %+v", inv.Registry.Pruner)
	}
	if cm := inv.Addons.CertManager; cm.Name != "cm" || cm.Version != "v1.18.0" {
		t.Errorf("certManager = %+v, want the name from the oci reference", cm)
	}
}

// S3 storage gets two registry replicas by default; an explicit count stays.
func TestRegistryReplicasDefault(t *testing.T) {
	isolate(t)
	s3 := "  storage:\n    type: s3\n    s3:\n      bucket: images\n      region: eu-west-1\n"
	if got := mustLoad(t, base+s3).Registry.Replicas; got != 2 {
		t.Errorf("replicas with s3 = %d, want 2", got)
	}
	if got := mustLoad(t, base+s3+"  replicas: 3\n").Registry.Replicas; got != 3 {
		t.Errorf("replicas: 3 with s3 = %d", got)
	}
}

func TestPaths(t *testing.T) {
	home := isolate(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	writeFile(t, path, edit(t, base,
		"  port: 22\n", "  port: 22\n  keyPath: keys/id\n  knownHosts: ~/kh\n  bastion:\n    address: 192.0.2.1\n",
		"    role: worker\n", "    role: worker\n    ssh:\n      keyPath: /abs/w1\n",
		"  serviceCIDR: 10.96.0.0/12\n", "  serviceCIDR: 10.96.0.0/12\n  kubeconfig: ~/kube/config\n  imageRepository: 192.0.2.5:5000/k8s\n",
	)+"packages:\n  source: bundle\n  bundle: ../bundle\n")
	inv, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"ssh.keyPath", inv.SSH.KeyPath, filepath.Join(dir, "keys/id")},
		{"ssh.bastion.keyPath", inv.SSH.Bastion.KeyPath, filepath.Join(dir, "keys/id")},
		{"ssh.knownHosts", inv.SSH.KnownHosts, filepath.Join(home, "kh")},
		{"hosts[1].ssh.keyPath", inv.Hosts[1].SSH.KeyPath, "/abs/w1"},
		{"cluster.kubeconfig", inv.Cluster.Kubeconfig, filepath.Join(home, "kube/config")},
		{"packages.bundle", inv.Packages.Bundle, filepath.Join(filepath.Dir(dir), "bundle")},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}

	// From the environment, a relative path is relative to the current folder.
	t.Setenv("BOOT_SSH_KEYPATH", "envkeys/id")
	inv, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cwd, _ := os.Getwd()
	if want := filepath.Join(cwd, "envkeys/id"); inv.SSH.KeyPath != want || inv.SSH.Bastion.KeyPath != want {
		t.Errorf("keyPath = %q, bastion %q, want %q", inv.SSH.KeyPath, inv.SSH.Bastion.KeyPath, want)
	}

	t.Setenv("BOOT_SSH_KEYPATH", "~root/id")
	_, err = Load(path)
	want := "env BOOT_SSH_KEYPATH: ssh.keyPath: \"~root/id\" uses ~user, which is not supported (an absolute path, a path relative to the inventory, or ~/path)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to contain %q", err, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	var ie *Error
	if errors.As(err, &ie) {
		t.Fatal("a missing file is not an invalid inventory")
	}
}

// An inventory, or a CA bundle it names, that is not a regular file of
// bounded size is refused at once, naming the file: devices and named pipes
// are not read, an oversized file is refused from its size.
func TestUnusableFiles(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	writeFile(t, big, base)
	if err := os.Truncate(big, MaxFileSize+1); err != nil {
		t.Fatal(err)
	}
	bigCA := filepath.Join(dir, "big-ca.pem")
	writeFile(t, bigCA, "")
	if err := os.Truncate(bigCA, maxCAFile+1); err != nil {
		t.Fatal(err)
	}
	timed := func(t *testing.T, path string) error {
		t.Helper()
		start := time.Now()
		_, err := Load(path)
		if took := time.Since(start); took > 500*time.Millisecond {
			t.Errorf("took %s", took)
		}
		if err == nil {
			t.Fatal("loaded")
		}
		return err
	}
	for _, tc := range []struct{ name, path, want string }{
		{"zero", "/dev/zero", "inventory /dev/zero is not a regular file (a character device)"},
		{"urandom", "/dev/urandom", "inventory /dev/urandom is not a regular file (a character device)"},
		{"fifo", fifo, "inventory " + fifo + " is not a regular file (a named pipe)"},
		{"directory", dir, "inventory " + dir + " is not a regular file (a directory)"},
		{"big", big, fmt.Sprintf("inventory %s is %d bytes, more than the limit of 4 MiB", big, MaxFileSize+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := timed(t, tc.path); err.Error() != tc.want {
				t.Errorf("got %v, want %s", err, tc.want)
			}
		})
	}
	acme := "  issuer: acme\n  acme:\n    server: https://acme.example.internal/directory\n    caFile: %s\n"
	for _, tc := range []struct{ name, path, want string }{
		{"zero", "/dev/zero", "CA bundle /dev/zero is not a regular file (a character device)"},
		{"fifo", fifo, "CA bundle " + fifo + " is not a regular file (a named pipe)"},
		{"big", bigCA, fmt.Sprintf("CA bundle %s is %d bytes, more than the limit of 4 MiB", bigCA, maxCAFile+1)},
	} {
		t.Run("caFile "+tc.name, func(t *testing.T) {
			inv := filepath.Join(dir, "inv.yaml")
			writeFile(t, inv, strings.Replace(base, "  acmeEmail: ops@example.org\n", fmt.Sprintf(acme, tc.path), 1))
			want := inv + ":24: registry.acme.caFile: cannot be read: " + tc.want + " (a PEM file of CA certificates)"
			if err := timed(t, inv); err.Error() != want {
				t.Errorf("got %v\nwant %s", err, want)
			}
		})
	}
}

// TestGolden checks the whole report for a file with many mistakes.
// Update with: go test ./inventory -run TestGolden -update
func TestGolden(t *testing.T) {
	isolate(t)
	t.Setenv("BOOT_REGISTRY_PASSWORD", "hunter2-canary") // a secret that is set must not show either
	_, err := Load("testdata/bad.yaml")
	var ie *Error
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v, want *Error", err)
	}
	got := ie.Error() + "\n"
	if strings.Contains(got, "hunter2") {
		t.Errorf("the report shows a secret value")
	}
	golden := "testdata/bad.golden"
	if *update {
		writeFile(t, golden, got)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("report differs from %s (run with -update to accept):\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

// TestExample loads examples/inventory.yaml and checks that it says what the
// seed system needs.
func TestExample(t *testing.T) {
	home := isolate(t)
	inv, err := Load("../examples/inventory.yaml")
	if err != nil {
		t.Fatalf("examples/inventory.yaml: %v", err)
	}
	if cp := inv.ControlPlane(); cp.Name != "cp1" || cp.Address != "192.0.2.10" {
		t.Errorf("control plane = %+v", cp)
	}
	if names := hostNames(inv.Workers()); !slices.Equal(names, []string{"w1", "w2", "w3"}) {
		t.Errorf("workers = %v", names)
	}
	if got := inv.RecordAddresses(); !slices.Equal(got, []string{"192.0.2.11", "192.0.2.12", "192.0.2.13"}) {
		t.Errorf("record addresses = %v", got)
	}
	r := inv.Registry
	if r.Host != "registry.example.com" || r.Issuer != IssuerLetsEncrypt || r.ACMEEmail == "" || *r.Redis.Enabled {
		t.Errorf("registry = %+v", r)
	}
	if inv.DNS.Provider != DNSRoute53 || inv.DNS.Zone != "example.com" {
		t.Errorf("dns = %+v", inv.DNS)
	}
	rules := r.Pruner.Rules
	if len(rules) != 3 ||
		rules[0].KeepLatest == nil || *rules[0].KeepLatest != 10 || len(rules[0].Repositories) != 0 ||
		!slices.Equal(rules[1].Match, []string{"^PR-"}) || rules[1].KeepDays == nil || *rules[1].KeepDays != 14 ||
		!slices.Equal(rules[2].Repositories, []string{"releases/*"}) || rules[2].KeepSemver == nil || rules[2].KeepSemver.Highest != 20 {
		t.Errorf("pruner rules do not express the seed's needs: %s", dump(rules))
	}
	if got := inv.SSH.KeyPath; got != filepath.Join(home, ".ssh/id_ed25519") {
		t.Errorf("ssh.keyPath = %q", got)
	}
}

// dump prints v as indented JSON: pointers show their values.
func dump(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return string(b)
}

func hostNames(hosts []Host) []string {
	var out []string
	for _, h := range hosts {
		out = append(out, h.Name)
	}
	return out
}

// TestExampleDocumentsEveryField keeps examples/inventory.yaml a complete
// reference: every field of the schema appears in it (set or commented out).
func TestExampleDocumentsEveryField(t *testing.T) {
	example, err := os.ReadFile("../examples/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var walk func(rt reflect.Type, path string)
	walk = func(rt reflect.Type, path string) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || rt == durationType {
			return
		}
		fs := fieldsOf(rt)
		for _, name := range fs.names {
			if !strings.Contains(string(example), name+":") {
				t.Errorf("examples/inventory.yaml does not show %s", join(path, name))
			}
			walk(rt.Field(fs.byName[name]).Type, join(path, name))
		}
	}
	walk(reflect.TypeFor[Inventory](), "")
}

// A file with thousands of mistakes is reported by its first MaxProblems
// problems, in file order, and one line counting the rest.
func TestProblemsAreCapped(t *testing.T) {
	isolate(t)
	var hosts strings.Builder
	const bad = 3000
	for i := range bad {
		fmt.Fprintf(&hosts, "  - name: Bad_%d\n    address: 192.0.2.10\n    role: worker\n", i)
	}
	text := strings.Replace(base, "hosts:\n", "hosts:\n"+hosts.String(), 1)
	path := filepath.Join(t.TempDir(), "inv.yaml")
	writeFile(t, path, text)
	_, err := Load(path)
	var ie *Error
	if !errors.As(err, &ie) {
		t.Fatalf("want *Error, got %v", err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != MaxProblems+1 || len(ie.Problems) != MaxProblems {
		t.Fatalf("%d lines, %d problems, want %d problems and a count:\n%s", len(lines), len(ie.Problems), MaxProblems, err)
	}
	if !strings.HasPrefix(lines[0], path+":7: cluster.podCIDR:") || !strings.HasPrefix(lines[1], path+":13: hosts[0].name:") {
		t.Errorf("first lines %q, want the podCIDR's (too small for 3002 hosts), then the first host's name", lines[:2])
	}
	total := ie.More + MaxProblems
	if total < bad {
		t.Errorf("%d problems in all, want at least one per bad host (%d)", total, bad)
	}
	if want := fmt.Sprintf("... and %d more problems", ie.More); lines[MaxProblems] != want {
		t.Errorf("last line %q, want %q", lines[MaxProblems], want)
	}
}
