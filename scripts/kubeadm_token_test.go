package scripts

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/bootctl/boot/internal/testenv"
)

// kubeadm init makes a bootstrap token whatever its configuration says; the
// one boot's configuration gives it must be expired when it is made. kubeadm
// init --dry-run runs kubeadm's own code and prints the Secret it would
// create (preflight, which checks this machine rather than the
// configuration, is skipped). It writes only below /etc/kubernetes, so it
// runs in a private mount namespace where /etc is an overlay on a tmpfs: the
// host is left as it was.
func TestKubeadmInitTokenExpiresWhenCreated(t *testing.T) {
	kubeadm := bundleBinary(t, "kubeadm")
	testenv.Root(t, "kubeadm init --dry-run in a private mount namespace")
	unshare := needTool(t, "unshare", "apt-get install util-linux")
	// The configurations that name no host name, which kubeadm might look up.
	for _, name := range []string{"kubeadm-init-lab-cgroupv1.yaml", "kubeadm-init-online-ubuntu-cgroupv2.yaml"} {
		t.Run(name, func(t *testing.T) {
			var cfg []byte
			for _, c := range kubeadmCases {
				if c.name == name {
					var err error
					if cfg, err = c.render(); err != nil {
						t.Fatal(err)
					}
				}
			}
			dir := t.TempDir()
			file, overlay := filepath.Join(dir, name), filepath.Join(dir, "etc")
			if err := os.WriteFile(file, cfg, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(overlay, 0o700); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c",
				`mount -t tmpfs tmpfs "$1" && mkdir "$1/up" "$1/work" &&
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/up,workdir=$1/work" /etc &&
exec "$2" init --dry-run --config "$3" --skip-phases=preflight --skip-token-print`,
				"sh", overlay, kubeadm, file)
			out, err := cmd.CombinedOutput()
			end := time.Now()
			if err != nil {
				t.Fatalf("kubeadm init --dry-run: %v\n%s", err, out)
			}
			expirations := bootstrapTokenExpirations(t, string(out))
			if len(expirations) != 1 {
				t.Fatalf("kubeadm init would create %d bootstrap tokens, want 1:\n%s", len(expirations), out)
			}
			exp := expirations[0]
			if exp.After(end) || exp.Before(start.Truncate(time.Second)) {
				t.Errorf("the token expires at %s; want when it is created, between %s and %s",
					exp.Format(time.RFC3339), start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano))
			}
		})
	}
}

// bootstrapTokenExpirations reads the bootstrap token Secrets that kubeadm
// --dry-run prints after "[dryrun] Attached object:" and returns their
// expiration times.
func bootstrapTokenExpirations(t *testing.T, out string) []time.Time {
	t.Helper()
	var times []time.Time
	for _, chunk := range strings.Split(out, "[dryrun] Attached object:\n")[1:] {
		doc, _, _ := strings.Cut(chunk, "\n\n")
		var obj struct {
			Kind, Type string
			Data       map[string]string
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("%v:\n%s", err, doc)
		}
		if obj.Kind != "Secret" || obj.Type != "bootstrap.kubernetes.io/token" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(obj.Data["expiration"])
		if err != nil {
			t.Fatal(err)
		}
		exp, err := time.Parse(time.RFC3339, string(raw))
		if err != nil {
			t.Fatalf("expiration %q: %v", raw, err)
		}
		times = append(times, exp)
	}
	return times
}
