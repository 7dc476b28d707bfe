package bootstrap

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/internal/kubetest"
	"github.com/bootctl/boot/internal/testenv"
)

// kubeadmEtcdManifest is etcd's static pod manifest as kubeadm writes it
// (the flags boot reads, among others).
const kubeadmEtcdManifest = `apiVersion: v1
kind: Pod
metadata:
  name: etcd
  namespace: kube-system
spec:
  containers:
  - command:
    - etcd
    - --advertise-client-urls=https://10.0.0.10:2379
    - --cert-file=/etc/kubernetes/pki/etcd/server.crt
    - --client-cert-auth=true
    - --data-dir=/var/lib/etcd
    - --initial-advertise-peer-urls=https://10.0.0.10:2380
    - --initial-cluster=cp1=https://10.0.0.10:2380
    - --listen-client-urls=https://127.0.0.1:2379,https://10.0.0.10:2379
    - --listen-peer-urls=https://10.0.0.10:2380
    - --name=cp1
    image: registry.k8s.io/etcd:3.7.0-0
    name: etcd
`

func TestParseEtcdManifest(t *testing.T) {
	m, err := parseEtcdManifest([]byte(kubeadmEtcdManifest))
	if err != nil {
		t.Fatal(err)
	}
	if want := (EtcdMember{Name: "cp1", DataDir: "/var/lib/etcd", PeerURL: "https://10.0.0.10:2380", ClientURL: "https://127.0.0.1:2379"}); m != want {
		t.Errorf("parseEtcdManifest = %+v, want %+v", m, want)
	}
	for _, c := range []struct{ drop, add, want string }{
		{"    - --name=cp1\n", "", "no --name"},
		{"    - --data-dir=/var/lib/etcd\n", "    - --data-dir=var/lib/etcd\n", "not an absolute path"},
		{"    - --initial-advertise-peer-urls=https://10.0.0.10:2380\n", "    - --initial-advertise-peer-urls=https://10.0.0.10:2380,https://10.0.0.11:2380\n", "several peer URLs"},
		{"    name: etcd\n", "    name: other\n", "no container named etcd"},
	} {
		_, err := parseEtcdManifest([]byte(strings.Replace(kubeadmEtcdManifest, c.drop, c.add, 1)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("without %q: error %v, want one saying %q", strings.TrimSpace(c.drop), err, c.want)
		}
	}
}

// A snapshot taken through a real sshd from a real etcd (the one under a
// real kube-apiserver) holds the cluster's namespaces; its backup reads
// back checked, and a changed byte is refused naming the file; the data
// etcdutl's restore makes from it runs a new etcd member whose revision is
// bumped past the snapshot's, holding the namespace.
func TestSnapshotThroughSSHRestores(t *testing.T) {
	api := kubetest.Start(t)
	client := kubernetes.NewForConfigOrDie(api.Config)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kept-by-backup"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	h := dialLoopbackHost(t, true)
	dir := t.TempDir()

	backup := filepath.Join(dir, "backup")
	if err := makeBackupDir(backup); err != nil {
		t.Fatal(err)
	}
	e, err := saveSnapshot(ctx, h, EtcdMember{Name: "kubetest", ClientURL: api.EtcdURL}, nil, backup)
	if err != nil {
		t.Fatal(err)
	}
	if e.Revision < 2 || e.Keys == 0 || e.Member != "kubetest" || e.Version == "" {
		t.Errorf("snapshot %+v", e)
	}
	b := Backup{Format: backupFormat, Cluster: "lab", Etcd: e}
	raw, _ := json.Marshal(b)
	if err := writeFile0600(filepath.Join(backup, backupManifest), raw); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBackup(backup); err != nil {
		t.Fatalf("ReadBackup: %v", err)
	}

	// etcdutl's restore for a new member, run as an etcd of its own.
	ports := make([]int, 2)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	peer, clientURL := "http://127.0.0.1:"+strconv.Itoa(ports[0]), "http://127.0.0.1:"+strconv.Itoa(ports[1])
	archive, err := restoredData(filepath.Join(backup, e.File), EtcdMember{Name: "restored", PeerURL: peer}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if sum, _, err := bundle.HashFile(archive.Path); err != nil || sum != archive.SHA256 {
		t.Fatalf("the archive's sha256 is %s (%v), restoredData says %s", sum, err, archive.SHA256)
	}
	data := filepath.Join(dir, "restored")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	untar := exec.Command("tar", "-xzf", archive.Path, "-C", data)
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("tar -xz of the restored data: %v\n%s", err, out)
	}
	bins, err := kubetest.ExtractBinaries(testenv.BundleDir(t))
	if err != nil {
		t.Fatal(err)
	}
	etcd := exec.Command(bins.Etcd, "--data-dir", data, "--name", "restored",
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "restored="+peer,
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL, "--listen-metrics-urls", "", "--log-level", "warn")
	var etcdLog testenv.Buffer
	etcd.Stdout, etcd.Stderr = &etcdLog, &etcdLog
	if err := etcd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		etcd.Process.Kill()
		etcd.Wait()
	}()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{clientURL}, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got *clientv3.GetResponse
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		got, err = c.Get(rctx, "/registry/namespaces/kept-by-backup")
		rcancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("the restored etcd does not answer: %v\n%s", err, etcdLog.String())
	}
	if len(got.Kvs) != 1 {
		t.Errorf("the restored etcd has %d namespace kept-by-backup", len(got.Kvs))
	}
	if got.Header.Revision < e.Revision+restoreRevisionBump {
		t.Errorf("the restored revision is %d, want at least the snapshot's %d bumped by %d", got.Header.Revision, e.Revision, restoreRevisionBump)
	}

	// A changed byte in the snapshot.
	f, err := os.OpenFile(filepath.Join(backup, e.File), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff}, e.Size/2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := ReadBackup(backup); err == nil || !strings.Contains(err.Error(), "the backup was changed") || !strings.Contains(err.Error(), e.File) {
		t.Errorf("ReadBackup of a changed snapshot: %v", err)
	}
}
