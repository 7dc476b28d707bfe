//go:build lab

package cmd

import (
	"encoding/json"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bootctl/boot/bootstrap"
)

// checkBackupRestore proves boot backup and boot restore on the lab
// cluster: a namespace with a ConfigMap exists at the backup and is deleted
// after it, another namespace is created after it; the backup's files are
// 0600 in 0700 folders, it reads back whole, and nothing printed holds a
// key; restore's dry run plans the restore on cp1 and the kubelets' restarts
// and changes nothing; the restore brings the deleted namespace and its
// ConfigMap back, the later namespace is gone, the old etcd data is kept on
// cp1, and the four nodes are Ready again. The API server's outage during
// the restore is reported.
func checkBackupRestore(t *testing.T, k kube, invPath string) {
	t.Helper()
	k.must("", "create", "namespace", "restore-probe")
	k.must("", "-n", "restore-probe", "create", "configmap", "probe", "--from-literal=kept=before-backup")

	dir := filepath.Join(t.TempDir(), "backup")
	start := time.Now()
	code, stdout, stderr := runBoot(t, "backup", "-i", invPath, "--out", dir, "-o", "json")
	if code != ExitOK {
		t.Fatalf("boot backup: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("boot backup took %s: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(stdout))
	if strings.Contains(stdout+stderr, "PRIVATE KEY") {
		t.Error("boot backup printed a private key")
	}
	var files int
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			files++
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s has mode %o, want %o", p, info.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bootstrap.ReadBackup(dir)
	if err != nil {
		t.Fatalf("the backup does not read back: %v", err)
	}
	if b.Cluster != "lab" || b.Etcd.Member != "cp1" || b.Etcd.Keys == 0 || !slices.ContainsFunc(b.Files, func(f bootstrap.BackupFile) bool { return f.Path == "pki/ca.key" }) {
		raw, _ := json.Marshal(b)
		t.Errorf("backup.json: %s", raw)
	}
	if files != len(b.Files)+2 {
		t.Errorf("%d files in the backup folder, backup.json lists %d besides the snapshot", files, len(b.Files))
	}

	k.must("", "delete", "namespace", "restore-probe", "--wait=true", "--timeout=120s")
	k.must("", "create", "namespace", "after-backup")

	plan := dryRun(t, "boot restore --dry-run", "restore", "-i", invPath, "--from", dir)
	p := planned(plan)
	if len(p) != 1+len(labHosts) || p[0].Phase != "restore etcd" || p[0].Host != "cp1" || !strings.Contains(p[0].Message, "restore etcd member cp1") {
		t.Errorf("boot restore --dry-run planned %+v", p)
	}
	if out, err := k.run("", "get", "namespace", "restore-probe"); err == nil {
		t.Errorf("the dry run brought the namespace back: %s", out)
	}

	poller := pollReadyz(k)
	start = time.Now()
	code, stdout, stderr = runBoot(t, "restore", "-i", invPath, "--from", dir, "--yes", "-o", "json")
	took := time.Since(start)
	poller.finish()
	if code != ExitOK {
		t.Fatalf("boot restore --yes: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("boot restore took %s; /readyz polled %d times during it, %d failure(s), the longest outage %s",
		took.Round(time.Millisecond), poller.polls, poller.failures, poller.longest.Round(time.Millisecond))
	checkPlan(t, "boot restore", plan, parseEvents(t, stdout))

	eventually(t, "the namespace deleted after the backup back", 2*time.Minute, func() string {
		out, err := k.run("", "-n", "restore-probe", "get", "configmap", "probe", "-o", "jsonpath={.data.kept}")
		if err != nil || out != "before-backup" {
			return out
		}
		return ""
	})
	if out, err := k.run("", "get", "namespace", "after-backup"); err == nil {
		t.Errorf("the namespace created after the backup is still there: %s", out)
	}
	if kept := docker(t, "exec", "boot-lab-cp1", "sh", "-c", "ls -d /var/lib/etcd.before-restore-*"); strings.Count(kept, "\n") != 1 {
		t.Errorf("cp1 keeps the old etcd data as %q", kept)
	}
	eventually(t, "four Ready nodes after the restore", 2*time.Minute, func() string { return nodesReady(k) })
	k.must("", "delete", "namespace", "restore-probe", "--wait=true", "--timeout=120s")
}
