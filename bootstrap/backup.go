package bootstrap

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/bootctl/boot/bundle"
	"github.com/bootctl/boot/internal/boundedfile"
	"github.com/bootctl/boot/inventory"
	"github.com/bootctl/boot/nodes"
	"github.com/bootctl/boot/scripts"
)

// What boot backup copies from the control plane besides etcd's snapshot.
const (
	pkiDir = "/etc/kubernetes/pki"
	// The etcd client certificate kubeadm makes for health checks: signed
	// by etcd's CA, so etcd serves it a snapshot.
	etcdCA         = pkiDir + "/etcd/ca.crt"
	etcdClientCert = pkiDir + "/etcd/healthcheck-client.crt"
	etcdClientKey  = pkiDir + "/etcd/healthcheck-client.key"
)

// A backup folder's layout.
const (
	backupManifest = "backup.json"
	backupSnapshot = "etcd-snapshot.db"
	backupFormat   = 1
	// maxBackupManifest bounds backup.json when it is read back.
	maxBackupManifest = 1 << 20
)

// Backup describes a backup folder (its backup.json, written last: a
// folder without it is not a backup).
type Backup struct {
	Format       int          `json:"format"`
	Cluster      string       `json:"cluster"`
	ControlPlane string       `json:"controlPlane"`
	Taken        time.Time    `json:"taken"`
	Etcd         EtcdBackup   `json:"etcd"`
	Files        []BackupFile `json:"files"`
}

// EtcdBackup is the snapshot's file and what etcdutl's snapshot status says
// of it, and the member it was taken from.
type EtcdBackup struct {
	File     string `json:"file"`
	SHA256   string `json:"sha256"`
	Member   string `json:"member"`
	Revision int64  `json:"revision"`
	Hash     uint32 `json:"hash"`
	Keys     int    `json:"keys"`
	Size     int64  `json:"size"`
	Version  string `json:"version,omitempty"`
}

// BackupFile is a file copied from the control plane: Path in the backup
// folder, Source on the host.
type BackupFile struct {
	Path   string `json:"path"`
	Source string `json:"source"`
	SHA256 string `json:"sha256"`
}

// EtcdMember is what the control plane's etcd manifest says of its member.
type EtcdMember struct {
	Name      string
	DataDir   string
	PeerURL   string // --initial-advertise-peer-urls
	ClientURL string // the first of --listen-client-urls
}

// readEtcdMember reads etcd's static pod manifest on the control plane
// (from the kubelet's folder, or where a stopped run held it).
func readEtcdMember(ctx context.Context, h *nodes.Host) (EtcdMember, error) {
	var raw []byte
	var err error
	for _, dir := range []string{scripts.ManifestDir, scripts.HeldManifestDir} {
		if raw, err = h.ReadFile(ctx, path.Join(dir, "etcd.yaml")); !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return EtcdMember{}, fmt.Errorf("etcd's manifest: %w", err)
	}
	return parseEtcdManifest(raw)
}

// parseEtcdManifest reads the member's flags from etcd's static pod
// manifest, as kubeadm writes it (--flag=value in the container's command).
func parseEtcdManifest(raw []byte) (EtcdMember, error) {
	c, err := staticPodContainer(raw, "etcd's manifest", "etcd")
	if err != nil {
		return EtcdMember{}, err
	}
	flags := map[string]string{}
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		if k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok && strings.HasPrefix(a, "--") {
			flags[k] = v
		}
	}
	m := EtcdMember{Name: flags["name"], DataDir: flags["data-dir"], PeerURL: flags["initial-advertise-peer-urls"]}
	m.ClientURL, _, _ = strings.Cut(flags["listen-client-urls"], ",")
	for flag, v := range map[string]string{"--name": m.Name, "--data-dir": m.DataDir, "--initial-advertise-peer-urls": m.PeerURL, "--listen-client-urls": m.ClientURL} {
		if v == "" {
			return EtcdMember{}, fmt.Errorf("etcd's manifest has no %s", flag)
		}
	}
	if strings.Contains(m.PeerURL, ",") {
		return EtcdMember{}, fmt.Errorf("etcd's manifest advertises several peer URLs (%s): boot restores single-URL members only", m.PeerURL)
	}
	if !path.IsAbs(m.DataDir) {
		return EtcdMember{}, fmt.Errorf("etcd's --data-dir %q is not an absolute path", m.DataDir)
	}
	return m, nil
}

// staticPodContainer returns the container named name of the static pod
// manifest raw (what names the manifest in errors).
func staticPodContainer(raw []byte, what, name string) (corev1.Container, error) {
	var pod corev1.Pod
	if err := yaml.Unmarshal(raw, &pod); err != nil {
		return corev1.Container{}, fmt.Errorf("%s: %w", what, err)
	}
	i := slices.IndexFunc(pod.Spec.Containers, func(c corev1.Container) bool { return c.Name == name })
	if i < 0 {
		return corev1.Container{}, fmt.Errorf("%s has no container named %s", what, name)
	}
	return pod.Spec.Containers[i], nil
}

// DefaultBackupDir is where boot backup writes when --out is not given:
// backups/<UTC time> in the cluster's state folder (StateDir).
func DefaultBackupDir(inv *inventory.Inventory, now time.Time) string {
	return filepath.Join(StateDir(inv), "backups", now.UTC().Format("20060102T150405Z"))
}

// TakeBackup copies to dir, on this machine, an etcd snapshot of the
// control plane h (taken through SSH from etcd's client port, checked with
// etcdutl's snapshot status), the control plane's PKI and kubeadm's cluster
// configuration, each file with mode 0600 in folders with mode 0700, and
// writes backup.json last. dir must not exist or be empty; on failure what
// was written is removed.
func TakeBackup(ctx context.Context, inv *inventory.Inventory, h *nodes.Host, dir string, now time.Time) (b *Backup, err error) {
	if err := makeBackupDir(dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	b = &Backup{Format: backupFormat, Cluster: inv.Metadata.Name, ControlPlane: inv.ControlPlane().Name, Taken: now.UTC()}
	member, err := readEtcdMember(ctx, h)
	if err != nil {
		return nil, err
	}
	creds := map[string][]byte{}
	if b.Files, err = copyPKI(ctx, h, dir, creds); err != nil {
		return nil, err
	}
	cfg, err := kubectlOutput(ctx, &Host{Conn: h}, nil, "--request-timeout=15s", "-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "jsonpath={.data.ClusterConfiguration}")
	if err != nil {
		return nil, fmt.Errorf("reading kubeadm's cluster configuration: %w", err)
	}
	f, err := writeBackupFile(dir, "kubeadm/cluster-configuration.yaml", []byte(cfg))
	if err != nil {
		return nil, err
	}
	f.Source = "configmap kube-system/kubeadm-config"
	b.Files = append(b.Files, f)

	tlsCfg, err := etcdClientTLS(creds)
	if err != nil {
		return nil, err
	}
	if b.Etcd, err = saveSnapshot(ctx, h, member, tlsCfg, dir); err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFile0600(filepath.Join(dir, backupManifest), append(data, '\n')); err != nil {
		return nil, err
	}
	return b, nil
}

// makeBackupDir creates dir (mode 0700, parents 0700) or accepts it empty.
func makeBackupDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case err == nil && len(entries) > 0:
		return fmt.Errorf("backup folder %s is not empty: give another --out", dir)
	case err == nil:
		return os.Chmod(dir, 0o700)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("backup folder: %w", err)
	}
	return os.MkdirAll(dir, 0o700)
}

// copyPKI copies every regular file under the control plane's PKI folder,
// keeping etcd's client credentials in creds by their host path.
func copyPKI(ctx context.Context, h *nodes.Host, dir string, creds map[string][]byte) ([]BackupFile, error) {
	out, err := h.Sudo(ctx, "find "+pkiDir+" -type f -print0", nodes.Stream(nil), nodes.Label("list "+pkiDir))
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", pkiDir, err)
	}
	var files []BackupFile
	for _, src := range strings.Split(strings.TrimSuffix(out.Stdout, "\x00"), "\x00") {
		rel, ok := strings.CutPrefix(src, pkiDir+"/")
		if !ok || !filepath.IsLocal(rel) {
			return nil, fmt.Errorf("listing %s: unexpected path %q", pkiDir, src)
		}
		data, err := h.ReadFile(ctx, src)
		if err != nil {
			return nil, err
		}
		if slices.Contains([]string{etcdCA, etcdClientCert, etcdClientKey}, src) {
			creds[src] = data
		}
		f, err := writeBackupFile(dir, path.Join("pki", rel), data)
		if err != nil {
			return nil, err
		}
		f.Source = src
		files = append(files, f)
	}
	if len(creds) != 3 {
		return nil, fmt.Errorf("%s lacks etcd's CA or its health-check client certificate (%s, %s)", pkiDir, etcdCA, etcdClientCert)
	}
	return files, nil
}

// writeBackupFile writes data at rel (slash-separated) in dir, mode 0600.
func writeBackupFile(dir, rel string, data []byte) (BackupFile, error) {
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return BackupFile{}, err
	}
	if err := writeFile0600(p, data); err != nil {
		return BackupFile{}, err
	}
	sum := sha256.Sum256(data)
	return BackupFile{Path: rel, SHA256: hex.EncodeToString(sum[:])}, nil
}

// writeFile0600 creates p (which must not exist) with mode 0600, whatever
// the umask.
func writeFile0600(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// etcdClientTLS is the TLS configuration of etcd's health-check client.
func etcdClientTLS(creds map[string][]byte) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(creds[etcdClientCert], creds[etcdClientKey])
	if err != nil {
		return nil, fmt.Errorf("etcd's client certificate %s: %w", etcdClientCert, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(creds[etcdCA]) {
		return nil, fmt.Errorf("etcd's CA %s holds no certificate", etcdCA)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, MinVersion: tls.VersionTLS12}, nil
}

// saveSnapshot streams an etcd snapshot from the member's client URL,
// dialled through the SSH connection (with tlsCfg, when not nil), to dir,
// and checks it with etcdutl's snapshot status (its hash, revision and
// keys).
func saveSnapshot(ctx context.Context, h *nodes.Host, m EtcdMember, tlsCfg *tls.Config, dir string) (EtcdBackup, error) {
	u, err := url.Parse(m.ClientURL)
	if err != nil || u.Host == "" {
		return EtcdBackup{}, fmt.Errorf("etcd's client URL %q: not a URL", m.ClientURL)
	}
	if tlsCfg != nil {
		tlsCfg.ServerName = u.Hostname()
	}
	db := filepath.Join(dir, backupSnapshot)
	mgr := snapshot.NewV3(zap.NewNop())
	version, err := mgr.Save(ctx, clientv3.Config{
		Endpoints:   []string{u.Host},
		TLS:         tlsCfg,
		DialTimeout: 15 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return h.DialContext(ctx, "tcp", addr)
		})},
	}, db)
	if err != nil {
		return EtcdBackup{}, fmt.Errorf("etcd snapshot from %s on %s: %w", m.ClientURL, h.Name(), err)
	}
	if err := os.Chmod(db, 0o600); err != nil {
		return EtcdBackup{}, err
	}
	e, err := checkSnapshot(db)
	if err != nil {
		return EtcdBackup{}, err
	}
	e.Member, e.Version = m.Name, version
	return e, nil
}

// checkSnapshot runs etcdutl's snapshot status on the file (which checks
// its hash) and hashes it.
func checkSnapshot(db string) (EtcdBackup, error) {
	st, err := snapshot.NewV3(zap.NewNop()).Status(db)
	if err != nil {
		return EtcdBackup{}, fmt.Errorf("etcd snapshot %s: %w", db, err)
	}
	sum, _, err := bundle.HashFile(db)
	if err != nil {
		return EtcdBackup{}, err
	}
	return EtcdBackup{File: filepath.Base(db), SHA256: sum, Revision: st.Revision, Hash: st.Hash, Keys: st.TotalKey, Size: st.TotalSize}, nil
}

// ReadBackup reads the backup in dir and checks it whole: its backup.json,
// every file's sha256 and the snapshot's own hash (etcdutl's snapshot
// status). Its errors name the file.
func ReadBackup(dir string) (*Backup, error) {
	raw, err := boundedfile.Read(filepath.Join(dir, backupManifest), "backup manifest", maxBackupManifest)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s is not a boot backup (no %s: a backup that did not finish has none)", dir, backupManifest)
		}
		return nil, err
	}
	var b Backup
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, backupManifest), err)
	}
	if b.Format != backupFormat {
		return nil, fmt.Errorf("%s: format %d, this boot reads format %d", filepath.Join(dir, backupManifest), b.Format, backupFormat)
	}
	for _, f := range append(slices.Clone(b.Files), BackupFile{Path: b.Etcd.File, SHA256: b.Etcd.SHA256}) {
		if !filepath.IsLocal(filepath.FromSlash(f.Path)) {
			return nil, fmt.Errorf("%s: file %q is outside the backup", filepath.Join(dir, backupManifest), f.Path)
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		sum, _, err := bundle.HashFile(p)
		if err != nil {
			return nil, fmt.Errorf("backup file: %w", err)
		}
		if sum != f.SHA256 {
			return nil, fmt.Errorf("backup file %s has sha256 %s, %s says %s: the backup was changed", p, sum, backupManifest, f.SHA256)
		}
	}
	st, err := checkSnapshot(filepath.Join(dir, filepath.FromSlash(b.Etcd.File)))
	if err != nil {
		return nil, err
	}
	if st.Revision != b.Etcd.Revision || st.Hash != b.Etcd.Hash {
		return nil, fmt.Errorf("etcd snapshot %s: revision %d hash %d, %s says revision %d hash %d", b.Etcd.File, st.Revision, st.Hash, backupManifest, b.Etcd.Revision, b.Etcd.Hash)
	}
	return &b, nil
}
