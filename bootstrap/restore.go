package bootstrap

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"github.com/bootctl/boot/nodes"
	"github.com/bootctl/boot/scripts"
)

// restoreArchive is where the restored etcd data is uploaded on the control
// plane before the restore script puts it in place.
const restoreArchive = "/var/lib/boot/restore/etcd-data.tar.gz"

// restoreRevisionBump is added to the restored revision (etcdutl's
// --bump-revision, with --mark-compacted): the API server's and the
// kubelets' watches, which know later revisions than the snapshot's, then
// see their revisions compacted and list again, instead of waiting for
// revisions the restored etcd would reuse for other changes.
const restoreRevisionBump = 1_000_000_000

// restorePhase names the restore in events and in the dry run's deferrals.
const restorePhase = "restore etcd"

// RestoreOptions tune RestorePhases.
type RestoreOptions struct {
	From    string  // the backup folder
	Backup  *Backup // read and checked from it (ReadBackup)
	Timeout time.Duration
	Now     func() time.Time
}

// RestorePhases are what boot restore does: put the backup's etcd snapshot
// in place of the control plane's etcd data, then restart every host's
// kubelet so that it lists the restored state.
func RestorePhases(o RestoreOptions) []Phase {
	return []Phase{EtcdRestore{o}, restartKubelets{}}
}

// EtcdRestore restores the backup's etcd snapshot onto the control plane:
// etcdutl's restore makes, on this machine, a data folder for the control
// plane's etcd member (its name and peer URL read from its manifest), which
// is uploaded and put in place by scripts.EtcdRestore with the control
// plane's static pods stopped; the old data folder is kept beside it.
type EtcdRestore struct{ RestoreOptions }

// Name implements Phase.
func (EtcdRestore) Name() string { return restorePhase }

// Plan implements Phase.
func (r EtcdRestore) Plan(ctx context.Context, c *Cluster) ([]Change, error) {
	cp := c.controlPlane()
	if !cp.Facts.AdminConf {
		return nil, fmt.Errorf("%s has no %s: no cluster to restore onto (boot up first)", cp.Spec.Name, adminConf)
	}
	member, err := readEtcdMember(ctx, cp.Conn)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	text, err := scripts.EtcdRestore(scripts.EtcdRestoreParams{
		DataDir: member.DataDir, Archive: restoreArchive, Stamp: now().UTC().Format("20060102T150405Z"),
		Components: ControlPlaneComponents, AdminConf: adminConf, Timeout: r.Timeout,
	})
	if err != nil {
		return nil, err
	}
	s := script{name: "etcd-restore.sh", text: text}
	if _, err := s.check(ctx, cp); err != nil {
		return nil, err
	}
	b := r.Backup
	desc := fmt.Sprintf("restore etcd member %s (%s) from %s: the snapshot of %s taken %s, revision %d, %d keys; the control plane stops meanwhile and %s is kept as %s.before-restore-<time>",
		member.Name, member.PeerURL, r.From, b.Cluster, b.Taken.Format(time.RFC3339), b.Etcd.Revision, b.Etcd.Keys, member.DataDir, member.DataDir)
	return []Change{{Host: cp.Spec.Name, Description: desc, Apply: func(ctx context.Context) error {
		tmp, err := os.MkdirTemp("", "boot-restore-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		archive, err := restoredData(filepath.Join(r.From, filepath.FromSlash(b.Etcd.File)), member, tmp)
		if err != nil {
			return err
		}
		if err := cp.Conn.MkdirAll(ctx, 0o700, filepath.Dir(restoreArchive)); err != nil {
			return err
		}
		if _, err := cp.Conn.UploadFile(ctx, archive, restoreArchive, 0o600, nodes.AsRoot()); err != nil {
			return err
		}
		return s.apply(ctx, cp)
	}}}, nil
}

// restoredData runs etcdutl's snapshot restore for the member into the
// folder tmp and archives the data folder there as a gzipped tar, hashed as
// it is written: the archive is streamed from disk, never held in memory.
func restoredData(db string, m EtcdMember, tmp string) (nodes.LocalFile, error) {
	data := filepath.Join(tmp, "data")
	err := snapshot.NewV3(zap.NewNop()).Restore(snapshot.RestoreConfig{
		SnapshotPath:        db,
		Name:                m.Name,
		OutputDataDir:       data,
		PeerURLs:            []string{m.PeerURL},
		InitialCluster:      m.Name + "=" + m.PeerURL,
		InitialClusterToken: "etcd-cluster",
		RevisionBump:        restoreRevisionBump,
		MarkCompacted:       true,
	})
	if err != nil {
		return nodes.LocalFile{}, fmt.Errorf("etcdutl snapshot restore of %s: %w", db, err)
	}
	archive := nodes.LocalFile{Path: filepath.Join(tmp, "data.tar.gz")}
	f, err := os.OpenFile(archive.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nodes.LocalFile{}, err
	}
	sum := sha256.New()
	err = tarGz(data, io.MultiWriter(f, sum))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nodes.LocalFile{}, fmt.Errorf("archiving the restored data: %w", err)
	}
	archive.SHA256 = hex.EncodeToString(sum.Sum(nil))
	return archive, nil
}

// tarGz writes the folder's contents (paths relative to it) to w as a
// gzipped tar.
func tarGz(dir string, w io.Writer) error {
	zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr.Name = filepath.ToSlash(rel)
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = zw.Close()
	}
	return err
}

// restartKubelets restarts every host's kubelet after a restore, so that
// it drops what it had cached of the state before it.
type restartKubelets struct{}

// Name implements Phase.
func (restartKubelets) Name() string { return "restart kubelets" }

// Plan implements Phase.
func (restartKubelets) Plan(_ context.Context, c *Cluster) ([]Change, error) {
	var out []Change
	for _, h := range c.Hosts {
		out = append(out, Change{Host: h.Spec.Name, Description: "restart the kubelet, so that it lists the restored state",
			Apply: func(ctx context.Context) error {
				_, err := h.Conn.Sudo(ctx, "systemctl restart kubelet", nodes.Label("restart kubelet"))
				return err
			}})
	}
	return out, nil
}
