package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/bootctl/boot/internal/run"
	"github.com/bootctl/boot/internal/sshtest"
	"github.com/bootctl/boot/internal/testenv"
	"github.com/bootctl/boot/scripts"
)

// certsSession is the ForceCommand of the renewal test hosts: each session
// runs in a mount namespace of its own whose /etc is an overlay on this
// machine's /etc (which stays as it is) with the test's folder bind-mounted
// on /etc/kubernetes (so what one session changes there the next sees), and
// whose PATH starts with the test's fake crictl and kubectl, then the
// bundle's bin folder (its kubeadm).
const certsSession = `#!/bin/sh
exec unshare --mount --propagation private sh -e -c '
d=$(mktemp -d "$1/session.XXXXXX")
mkdir -p "$d/up/kubernetes" "$d/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$d/up,workdir=$d/work" /etc
mount --bind "$2" /etc/kubernetes
PATH="$3:$4:$PATH" exec sh -c "$SSH_ORIGINAL_COMMAND"' certs-session %s %s %s %s
`

// fakeCrictl stands for the kubelet and containerd: a static pod is ready
// and its container runs while its manifest is in the kubelet's folder; the
// container's ID changes whenever the manifest is moved back.
const fakeCrictl = `#!/bin/sh
m=/etc/kubernetes/manifests
cmd=$1
shift
name=
while [ $# -gt 0 ]; do
  case $1 in
  --label) name=${2#component=}; shift ;;
  --name) name=$(printf '%s' "$2" | tr -d '^$'); shift ;;
  esac
  shift
done
[ -f "$m/$name.yaml" ] || exit 0
case $cmd in
pods) echo "pod-$name" ;;
ps) echo "ctr-$name-$(stat -c %z "$m/$name.yaml" | tr -cd 0-9)" ;;
esac
`

// fakeKubectl answers every API server question and logs it.
const fakeKubectl = `#!/bin/sh
printf '%%s\n' "$*" >>%s
`

// certsHosts starts a control plane cp1 and a worker w1 over real sshds
// whose /etc/kubernetes is etcKube, with kubeadm's certificates valid for
// validity and the four static pod manifests, and returns the inventory
// (its cluster.kubeconfig in dir) and the kubectl log's path.
func certsHosts(t *testing.T, validity string) (dir, etcKube, kubectlLog, inventoryText string) {
	t.Helper()
	testenv.File(t, "/usr/bin/unshare", "util-linux")
	sshtest.Require(t)
	bundleDir := testenv.BundleDir(t)
	dir = t.TempDir()
	etcKube = filepath.Join(dir, "etc-kubernetes")
	kubeadm, _ := kubeadmPKI(t, etcKube, validity)
	version, _ := exec.Command(kubeadm, "version", "-o", "short").Output()
	for _, c := range ControlPlaneComponents {
		writeFile(t, filepath.Join(etcKube, "manifests", c+".yaml"), "apiVersion: v1\nkind: Pod\nmetadata:\n  name: "+c+"\n", 0o600)
	}
	fakes := filepath.Join(dir, "fakes")
	kubectlLog = filepath.Join(dir, "kubectl.log")
	writeFile(t, filepath.Join(fakes, "crictl"), fakeCrictl, 0o755)
	writeFile(t, filepath.Join(fakes, "kubectl"), fmt.Sprintf(fakeKubectl, kubectlLog), 0o755)
	wrapper := filepath.Join(dir, "certs-session")
	writeFile(t, wrapper, fmt.Sprintf(certsSession, dir, etcKube, fakes, filepath.Join(bundleDir, "bin")), 0o755)
	sshAndHosts := startSessionHosts(t, dir, wrapper, []sessionHost{{"cp1", "control-plane", ""}, {"w1", "worker", ""}})
	inventoryText = fmt.Sprintf("apiVersion: boot/v1alpha1\nkind: Cluster\nmetadata:\n  name: certs\ncluster:\n  kubernetesVersion: %s\n  kubeconfig: %s\n%sregistry:\n  host: registry.example.com\n  acmeEmail: ops@example.com\n",
		strings.TrimSpace(string(version)), filepath.Join(dir, "certs.kubeconfig"), sshAndHosts)
	return dir, etcKube, kubectlLog, inventoryText
}

func writeFile(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
}

// treeDigest lists every file under root with its content, to tell that
// nothing there changed.
func treeDigest(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s\n", p)
		if !d.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// restartedLine is the script's line after a restart, streamed.
var restartedLine = regexp.MustCompile(`^\[cp1\] changed: restarted (\S+) in \d+s$`)

// TestCertsRenew, over real sshds, with the real kubeadm on certificates
// it made valid ten days: boot up's preflight warns about them by name and
// date; the renewal's dry run lists the certificates, the first to expire
// and the four restarts and changes nothing; the real run renews them (a
// year out), restarts the static pods in order, each with the API server
// asked /readyz after it (and /readyz/etcd after etcd), puts every manifest
// back, and writes the operator's kubeconfig with the renewed client
// certificate.
func TestCertsRenew(t *testing.T) {
	dir, etcKube, kubectlLog, text := certsHosts(t, "240h")
	inv := testenv.Inventory(t, text)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var output testenv.Buffer
	c, err := Connect(ctx, inv, ConnectOptions{Parallel: 2, Output: &output})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := &recorder{}
	c.Report = r.report

	// boot up's preflight: a warning naming the certificate and its date
	// (both hosts are this machine: same hostname, ports in use, failed).
	if _, err := (Preflight{}).Plan(ctx, c); err != nil && !errors.Is(err, ErrPreflight) {
		t.Fatalf("preflight: %v", err)
	}
	expiry := time.Now().Add(240 * time.Hour).UTC().Format(time.DateOnly)
	warned := regexp.MustCompile(`^certificate \S+ expires on ` + expiry + `, in 9 day\(s\) \(and \d+ more within 30 days\): run boot certs renew$`)
	var warnings []string
	for _, e := range r.events {
		if e.Status == run.Warning {
			warnings = append(warnings, e.Host+": "+e.Message)
			if e.Host == "cp1" && warned.MatchString(e.Message) {
				expiry = ""
			}
		}
	}
	if expiry != "" {
		t.Errorf("preflight warnings %q; want one on cp1 naming the first certificate to expire, in 9 days", warnings)
	}

	before := treeDigest(t, etcKube)
	dry := &recorder{}
	if err := run.Do(ctx, Steps(c, CertsRenewPhases(CertsRenewOptions{})), run.Options{DryRun: true, Report: dry.report}); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	var planned []string
	for _, e := range dry.events {
		if e.Status == run.Planned {
			planned = append(planned, e.Phase+" "+e.Host+": "+e.Message)
		}
	}
	if len(planned) != 2 ||
		!regexp.MustCompile(`^certs renew cp1: renew admin\.conf, .*\bapiserver, .*\(first to expire: \S+ on \d{4}-\d\d-\d\d\); then restart kube-apiserver, kube-controller-manager, kube-scheduler, etcd one at a time`).MatchString(planned[0]) ||
		strings.Contains(planned[0], "front-proxy-ca") ||
		planned[1] != "kubeconfig operator: after certs renew: write the admin kubeconfig with its renewed client certificate to "+inv.Cluster.Kubeconfig {
		t.Errorf("dry run planned:\n%s", strings.Join(planned, "\n"))
	}
	if treeDigest(t, etcKube) != before {
		t.Error("the dry run changed /etc/kubernetes")
	}
	if _, err := os.Stat(inv.Cluster.Kubeconfig); err == nil {
		t.Error("the dry run wrote the kubeconfig")
	}
	if _, err := os.Stat(filepath.Join(dir, "kubectl.log")); err == nil {
		t.Error("the dry run asked the API server")
	}

	start := time.Now()
	if err := run.Do(ctx, Steps(c, CertsRenewPhases(CertsRenewOptions{Timeout: 20 * time.Second})), run.Options{Report: r.report}); err != nil {
		t.Fatalf("renew: %v\n%s", err, output.String())
	}
	t.Logf("renewed and restarted in %s", time.Since(start).Round(time.Millisecond))
	certs, err := controlPlaneCerts(ctx, c.controlPlane().Conn, c.controlPlane().Facts.KubeadmVersion)
	if err != nil {
		t.Fatal(err)
	}
	for _, cert := range certs {
		if d := time.Until(cert.Expires); d < 364*24*time.Hour {
			t.Errorf("after the renewal %s expires on %s", cert.Name, cert.Expires)
		}
	}
	var restarted []string
	for _, l := range strings.Split(output.String(), "\n") {
		if m := restartedLine.FindStringSubmatch(l); m != nil {
			restarted = append(restarted, m[1])
		}
	}
	if strings.Join(restarted, " ") != strings.Join(ControlPlaneComponents, " ") {
		t.Errorf("restarted %q, want %q in order:\n%s", restarted, ControlPlaneComponents, output.String())
	}
	asked, _ := os.ReadFile(kubectlLog)
	if n, etcd := strings.Count(string(asked), "get --raw /readyz\n"), strings.Count(string(asked), "get --raw /readyz/etcd\n"); n != 4 || etcd != 1 {
		t.Errorf("the API server was asked /readyz %d times and /readyz/etcd %d times, want 4 and 1:\n%s", n, etcd, asked)
	}
	for _, comp := range ControlPlaneComponents {
		if _, err := os.Stat(filepath.Join(etcKube, "manifests", comp+".yaml")); err != nil {
			t.Errorf("manifest not back: %v", err)
		}
	}
	if held, _ := filepath.Glob(filepath.Join(etcKube, filepath.Base(scripts.HeldManifestDir), "*")); len(held) != 0 {
		t.Errorf("manifests still held: %v", held)
	}
	got, err := clientcmd.LoadFromFile(inv.Cluster.Kubeconfig)
	if err != nil {
		t.Fatalf("the operator's kubeconfig: %v", err)
	}
	admin, err := clientcmd.LoadFromFile(filepath.Join(etcKube, "admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var adminCert []byte
	for _, a := range admin.AuthInfos {
		adminCert = a.ClientCertificateData
	}
	if u := got.AuthInfos["certs-admin"]; u == nil || !bytes.Equal(u.ClientCertificateData, adminCert) {
		t.Error("the operator's kubeconfig does not hold admin.conf's renewed client certificate")
	}
	if strings.Contains(output.String(), "PRIVATE KEY") {
		t.Error("a private key was printed")
	}
}

// TestCertsRenewPlanChecksControlPlane: a control plane missing a static
// pod manifest is refused while planning, before any change; a manifest a
// failed run held out is put back first (said in the plan).
func TestCertsRenewPlanChecksControlPlane(t *testing.T) {
	_, etcKube, _, text := certsHosts(t, "8760h")
	inv := testenv.Inventory(t, text)
	held := filepath.Join(etcKube, filepath.Base(scripts.HeldManifestDir))
	if err := os.MkdirAll(held, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(etcKube, "manifests", "etcd.yaml"), filepath.Join(held, "etcd.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(etcKube, "manifests", "kube-scheduler.yaml")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Connect(ctx, inv, ConnectOptions{Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = CertsRenew{}.Plan(ctx, c)
	if err == nil || !strings.Contains(err.Error(), "no static pod manifest /etc/kubernetes/manifests/kube-scheduler.yaml") {
		t.Errorf("plan without the scheduler's manifest: %v", err)
	}
	writeFile(t, filepath.Join(etcKube, "manifests", "kube-scheduler.yaml"), "kind: Pod\n", 0o600)
	changes, err := CertsRenew{}.Plan(ctx, c)
	if err != nil || len(changes) != 1 || strings.Count(changes[0].Description, "put back") != 1 ||
		!strings.Contains(changes[0].Description, "; put back /etc/kubernetes/manifests/etcd.yaml, held out by an earlier run; then restart") {
		t.Errorf("plan with etcd's manifest held: %v %+v", err, changes)
	}
	if _, err := os.Stat(filepath.Join(held, "etcd.yaml")); err != nil {
		t.Errorf("planning moved the held manifest: %v", err)
	}
}

func TestCertsRenewParams(t *testing.T) {
	good := scripts.CertsRenewParams{KubeadmConfig: CheckExpirationConfig("v1.37.2", ""), Components: ControlPlaneComponents, AdminConf: adminConf}
	if _, err := scripts.CertsRenew(good); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mutate func(*scripts.CertsRenewParams)
		want   string
	}{
		{func(p *scripts.CertsRenewParams) { p.KubeadmConfig = " " }, "KubeadmConfig is empty"},
		{func(p *scripts.CertsRenewParams) { p.Components = nil }, "Components is empty"},
		{func(p *scripts.CertsRenewParams) { p.Components = []string{"etcd", "../etc/passwd"} }, "Components[1]"},
		{func(p *scripts.CertsRenewParams) { p.Components = []string{"etcd", "etcd"} }, "Components[1] is given twice"},
		{func(p *scripts.CertsRenewParams) { p.AdminConf = "admin.conf" }, "AdminConf"},
		{func(p *scripts.CertsRenewParams) { p.Timeout = time.Millisecond }, "Timeout is shorter than a second"},
	} {
		p := good
		tc.mutate(&p)
		if _, err := scripts.CertsRenew(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", p, err, tc.want)
		}
	}
}
