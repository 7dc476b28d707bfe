package lab

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/bootctl/boot/bundle"
)

// fakeBundle writes a bundle folder whose binaries are small scripts, with
// Docker's when withDocker.
func fakeBundle(t *testing.T, withDocker bool) string {
	t.Helper()
	dir := t.TempDir()
	m := bundle.Manifest{KubernetesVersion: "v1.37.2", Arch: "amd64"}
	add := func(rel, component, version, content string) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(content))
		m.Files = append(m.Files, bundle.File{Path: rel, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)),
			Component: component, Version: version})
	}
	script := func(name string) string { return "#!/bin/sh\necho " + name + "\n" }
	for _, b := range []string{"kubeadm", "kubelet", "kubectl"} {
		add("bin/"+b, "kubernetes", "v1.37.2", script(b))
	}
	add("bin/crictl", "crictl", "v1.37.0", script("crictl"))
	add("bin/helm", "helm", "v3.22.0", script("helm"))
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr"} {
		add("bin/"+b, "containerd", "v2.4.2", script(b))
	}
	add("bin/runc", "runc", "v1.5.2", script("runc"))
	add("cni/bin/bridge", "cni-plugins", "v1.10.0", script("bridge"))
	add("cni/bin/loopback", "cni-plugins", "v1.10.0", script("loopback"))
	add("cni/bin/flannel", "flannel-cni-plugin", "v0.9.1", script("flannel"))
	add("systemd/kubelet.service", "kubernetes", "v1.37.2", "[Service]\nExecStart=/usr/local/bin/kubelet\n")
	add("systemd/10-kubeadm.conf", "kubernetes", "v1.37.2", "[Service]\nExecStart=\nExecStart=/usr/local/bin/kubelet $KUBELET_KUBEADM_ARGS\n")
	add("systemd/containerd.service", "containerd", "v2.4.2", "[Service]\nExecStart=/usr/local/bin/containerd\n")
	if withDocker {
		add("bin/dockerd", "moby", "v2.0.0-beta.24", script("dockerd"))
		add("bin/docker-proxy", "moby", "v2.0.0-beta.24", script("docker-proxy"))
		add("bin/docker", "docker-cli", "v29.8.1+incompatible", script("docker"))
		add("bin/docker-init", "tini", "0.19.0-1+b3", script("docker-init"))
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, bundle.ManifestName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// stanzas parses a Packages file into one field map per package.
func stanzas(t *testing.T, file string) map[string]map[string]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, block := range strings.Split(strings.TrimSpace(string(data)), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(block, "\n") {
			if strings.HasPrefix(line, " ") {
				continue
			}
			k, v, ok := strings.Cut(line, ": ")
			if !ok {
				t.Fatalf("%s: line %q", file, line)
			}
			fields[k] = v
		}
		out[fields["Package"]] = fields
	}
	return out
}

func fileSHA256(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// checkRelease checks that dir's Release lists the SHA256 and size of
// each of indexes, and that gpgv accepts Release.gpg and InRelease with
// keyring.
func checkRelease(t *testing.T, dir, keyring string, indexes ...string) {
	t.Helper()
	release, err := os.ReadFile(filepath.Join(dir, "Release"))
	if err != nil {
		t.Fatal(err)
	}
	_, sha, _ := strings.Cut(string(release), "\nSHA256:\n")
	for _, rel := range indexes {
		st, err := os.Stat(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`(?m)^ ` + fileSHA256(t, filepath.Join(dir, rel)) + ` +` + strconv.FormatInt(st.Size(), 10) + ` ` + regexp.QuoteMeta(rel) + `$`)
		if !re.MatchString(sha) {
			t.Errorf("%s/Release: no SHA256 line for %s (%d bytes):\n%s", dir, rel, st.Size(), release)
		}
	}
	if !strings.Contains(string(release), "\nMD5Sum:\n") {
		t.Errorf("%s/Release: no MD5Sum section", dir)
	}
	for _, args := range [][]string{{"Release.gpg", "Release"}, {"InRelease"}} {
		cmd := exec.Command("gpgv", append([]string{"--keyring", keyring}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("gpgv %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
		}
	}
	// trixie's apt verifies with sqv: Release.gpg, and InRelease split as
	// apt splits it (the text between the header and the signature, the
	// signature alone).
	if _, err := exec.LookPath("sqv"); err == nil {
		inRelease := string(readFile(t, filepath.Join(dir, "InRelease")))
		head, rest, ok1 := strings.Cut(inRelease, "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n")
		text, sig, ok2 := strings.Cut(rest, "\n-----BEGIN PGP SIGNATURE-----")
		if !ok1 || !ok2 || head != "" {
			t.Fatalf("%s/InRelease is not a clearsigned message:\n%s", dir, inRelease)
		}
		if text != string(release) {
			t.Errorf("%s: InRelease's text %q is not Release %q", dir, text, release)
		}
		split := t.TempDir()
		if err := os.WriteFile(filepath.Join(split, "text"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(split, "sig"), []byte("-----BEGIN PGP SIGNATURE-----"+sig), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{filepath.Join(dir, "Release.gpg"), filepath.Join(dir, "Release")}, {filepath.Join(split, "sig"), filepath.Join(split, "text")}} {
			if out, err := exec.Command("sqv", append([]string{"--keyring", keyring}, args...)...).CombinedOutput(); err != nil {
				t.Errorf("sqv %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	} else {
		t.Log("sqv is not installed: signatures checked with gpgv only")
	}
	// A changed Release no longer verifies.
	tampered := filepath.Join(t.TempDir(), "Release")
	if err := os.WriteFile(tampered, append(release, "X: y\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("gpgv", "--keyring", keyring, filepath.Join(dir, "Release.gpg"), tampered).CombinedOutput(); err == nil {
		t.Errorf("gpgv accepts a changed Release:\n%s", out)
	}
}

// dearmor writes the armored public key at src as a binary keyring for gpgv.
func dearmor(t *testing.T, src string) string {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block, err := armor.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	if block.Type != "PGP PUBLIC KEY BLOCK" {
		t.Fatalf("%s: armor type %q", src, block.Type)
	}
	data, err := io.ReadAll(block.Body)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "key.gpg")
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// debInfo runs dpkg-deb with args on a .deb.
func debInfo(t *testing.T, deb string, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", append([]string{args[0], deb}, args[1:]...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb %s %s: %v\n%s", strings.Join(args, " "), deb, err, out)
	}
	return string(out)
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
}

func TestBuildMirror(t *testing.T) {
	needTools(t, "gpgv", "dpkg-deb")
	bundleDir := fakeBundle(t, true)
	dir := t.TempDir()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	root, c, err := buildMirror(bundleDir, dir, func() time.Time { return now }, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	want := mirrorContent{Docker: "docker/linux/debian", Kubernetes: "kubernetes/core:/stable:/v1.37/deb", Helm: "helm/helm-v3.22.0-linux-amd64.tar.gz"}
	if c != want {
		t.Fatalf("content %+v, want %+v", c, want)
	}
	keyring := dearmor(t, filepath.Join(dir, mirrorKeyFile))

	// Kubernetes: a flat repository.
	kube := filepath.Join(root, filepath.FromSlash(c.Kubernetes))
	checkRelease(t, kube, keyring, "Packages", "Packages.gz")
	if !bytes.Equal(readFile(t, filepath.Join(kube, "Release.key")), readFile(t, filepath.Join(dir, mirrorKeyFile))) {
		t.Error("Release.key is not the lab's signing key")
	}
	pk := stanzas(t, filepath.Join(kube, "Packages"))
	wantKube := map[string]struct{ version, depends string }{
		"kubeadm":        {"1.37.2-1.1", ""},
		"kubelet":        {"1.37.2-1.1", "kubernetes-cni (>= 1.2.0), mount, util-linux"},
		"kubectl":        {"1.37.2-1.1", ""},
		"cri-tools":      {"1.37.0-1.1", ""},
		"kubernetes-cni": {"1.10.0-1.1", ""},
	}
	if len(pk) != len(wantKube) {
		t.Errorf("Packages has %d packages, want %d", len(pk), len(wantKube))
	}
	for name, w := range wantKube {
		s := pk[name]
		if s["Version"] != w.version || s["Depends"] != w.depends || s["Architecture"] != "amd64" {
			t.Errorf("%s: Version %q Depends %q Architecture %q, want %q %q amd64", name, s["Version"], s["Depends"], s["Architecture"], w.version, w.depends)
		}
		wantFile := "amd64/" + name + "_" + w.version + "_amd64.deb"
		if s["Filename"] != wantFile {
			t.Errorf("%s: Filename %q, want %q", name, s["Filename"], wantFile)
			continue
		}
		deb := filepath.Join(kube, filepath.FromSlash(wantFile))
		if got := fileSHA256(t, deb); s["SHA256"] != got {
			t.Errorf("%s: SHA256 %s, the file's is %s", name, s["SHA256"], got)
		}
		if st, err := os.Stat(deb); err != nil || s["Size"] != strconv.FormatInt(st.Size(), 10) {
			t.Errorf("%s: Size %s (%v)", name, s["Size"], err)
		}
		if got := strings.TrimSpace(debInfo(t, deb, "-f")); !strings.Contains(got, "Version: "+w.version) {
			t.Errorf("%s: dpkg-deb -f:\n%s", name, got)
		}
	}
	if r := pk["kubelet"]["Recommends"]; r != "iptables (>= 1.8.4)" {
		t.Errorf("kubelet Recommends %q", r)
	}
	kubelet := debInfo(t, filepath.Join(kube, "amd64", "kubelet_1.37.2-1.1_amd64.deb"), "-c")
	for _, p := range []string{"./usr/bin/kubelet", "./usr/lib/systemd/system/kubelet.service", "./etc/default/kubelet"} {
		if !strings.Contains(kubelet, " "+p+"\n") {
			t.Errorf("kubelet lacks %s:\n%s", p, kubelet)
		}
	}
	if !strings.Contains(kubelet, "-rwxr-xr-x root/root") {
		t.Errorf("kubelet's files are not root's:\n%s", kubelet)
	}
	cni := debInfo(t, filepath.Join(kube, "amd64", "kubernetes-cni_1.10.0-1.1_amd64.deb"), "-c")
	if !strings.Contains(cni, "./opt/cni/bin/bridge\n") || strings.Contains(cni, "flannel") {
		t.Errorf("kubernetes-cni holds the cni-plugins only:\n%s", cni)
	}
	kubeadm := filepath.Join(kube, "amd64", "kubeadm_1.37.2-1.1_amd64.deb")
	dropIn := extractFromDeb(t, kubeadm, "./usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf")
	if !strings.Contains(dropIn, "ExecStart=/usr/bin/kubelet $KUBELET_KUBEADM_ARGS") || strings.Contains(dropIn, "/usr/local/bin") {
		t.Errorf("10-kubeadm.conf not rewritten for /usr/bin:\n%s", dropIn)
	}

	// Docker: dists/<codename>/stable for bookworm and trixie.
	docker := filepath.Join(root, filepath.FromSlash(c.Docker))
	if !bytes.Equal(readFile(t, filepath.Join(docker, "gpg")), readFile(t, filepath.Join(dir, mirrorKeyFile))) {
		t.Error("docker's gpg is not the lab's signing key")
	}
	for _, cn := range dockerCodenames {
		dist := filepath.Join(docker, "dists", cn.name)
		checkRelease(t, dist, keyring, "stable/binary-amd64/Packages", "stable/binary-amd64/Packages.gz")
		release := string(readFile(t, filepath.Join(dist, "Release")))
		if !strings.Contains(release, "\nCodename: "+cn.name+"\n") || !strings.Contains(release, "\nComponents: stable\n") {
			t.Errorf("%s Release:\n%s", cn.name, release)
		}
		pd := stanzas(t, filepath.Join(dist, "stable", "binary-amd64", "Packages"))
		suffix := "-1~debian." + cn.number + "~" + cn.name
		for name, version := range map[string]string{"containerd.io": "2.4.2" + suffix, "docker-ce": "5:29.8.1" + suffix, "docker-ce-cli": "5:29.8.1" + suffix} {
			if pd[name]["Version"] != version {
				t.Errorf("%s %s: Version %q, want %q", cn.name, name, pd[name]["Version"], version)
			}
			if f := pd[name]["Filename"]; !strings.HasPrefix(f, "dists/"+cn.name+"/pool/stable/amd64/"+name+"_") {
				t.Errorf("%s %s: Filename %q", cn.name, name, f)
			} else if fileSHA256(t, filepath.Join(docker, filepath.FromSlash(f))) != pd[name]["SHA256"] {
				t.Errorf("%s %s: SHA256 does not match %s", cn.name, name, f)
			}
		}
		if d := pd["docker-ce"]["Depends"]; !strings.Contains(d, "containerd.io") || !strings.Contains(d, "docker-ce-cli") || !strings.Contains(d, "iptables") {
			t.Errorf("docker-ce Depends %q", d)
		}
		containerd := filepath.Join(docker, filepath.FromSlash(pd["containerd.io"]["Filename"]))
		if got := debInfo(t, containerd, "--info", "conffiles"); strings.TrimSpace(got) != "/etc/containerd/config.toml" {
			t.Errorf("containerd.io conffiles %q", got)
		}
		if got := extractFromDeb(t, containerd, "./etc/containerd/config.toml"); !strings.Contains(got, "\ndisabled_plugins = [\"cri\"]\n") {
			t.Errorf("containerd.io config.toml:\n%s", got)
		}
		if got := debInfo(t, containerd, "--info", "postinst"); !strings.Contains(got, "systemctl enable containerd.service") {
			t.Errorf("containerd.io postinst:\n%s", got)
		}
		dockerCE := filepath.Join(docker, filepath.FromSlash(pd["docker-ce"]["Filename"]))
		contents := debInfo(t, dockerCE, "-c")
		for _, p := range []string{"./usr/bin/dockerd", "./usr/bin/docker-proxy", "./usr/bin/docker-init", "./lib/systemd/system/docker.service", "./lib/systemd/system/docker.socket"} {
			if !strings.Contains(contents, " "+p+"\n") {
				t.Errorf("docker-ce lacks %s:\n%s", p, contents)
			}
		}
		if got := debInfo(t, dockerCE, "--info", "postinst"); !strings.Contains(got, "groupadd --system docker") {
			t.Errorf("docker-ce postinst:\n%s", got)
		}
	}

	// Helm: the archive with linux-amd64/helm, and its sha256sum.
	archive := filepath.Join(root, filepath.FromSlash(c.Helm))
	sum := string(readFile(t, archive+".sha256sum"))
	if want := fileSHA256(t, archive) + "  helm-v3.22.0-linux-amd64.tar.gz\n"; sum != want {
		t.Errorf("sha256sum %q, want %q", sum, want)
	}
	if got := tarFile(t, archive, "linux-amd64/helm"); got != string(readFile(t, filepath.Join(bundleDir, "bin", "helm"))) {
		t.Errorf("linux-amd64/helm is %q", got)
	}

	// Built again: the packages come from the cache, the key is new.
	firstKey := readFile(t, filepath.Join(dir, mirrorKeyFile))
	firstDeb := readFile(t, kubeadm)
	root2, _, err := buildMirror(bundleDir, dir, func() time.Time { return now }, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if root2 != root || !bytes.Equal(readFile(t, kubeadm), firstDeb) {
		t.Error("a second build did not reuse the packages")
	}
	if bytes.Equal(readFile(t, filepath.Join(dir, mirrorKeyFile)), firstKey) {
		t.Error("a second build kept the signing key")
	}
	checkRelease(t, kube, dearmor(t, filepath.Join(dir, mirrorKeyFile)), "Packages", "Packages.gz")
}

// Without Docker's binaries the mirror has Kubernetes and Helm, and says
// which files Docker's repository lacks.
func TestBuildMirrorWithoutDocker(t *testing.T) {
	bundleDir := fakeBundle(t, false)
	root, c, err := buildMirror(bundleDir, t.TempDir(), time.Now, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if c.Docker != "" || !strings.Contains(c.DockerMissing, "bin/dockerd") || !strings.Contains(c.DockerMissing, "bin/docker-init") {
		t.Errorf("docker %q, missing %q", c.Docker, c.DockerMissing)
	}
	if _, err := os.Stat(filepath.Join(root, "docker")); err == nil {
		t.Error("a docker folder without Docker's packages")
	}
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(c.Kubernetes), "InRelease")); err != nil {
		t.Error(err)
	}
}

// A bundle without kubelet has no mirror, and the error names the file.
func TestBuildMirrorMissingKubelet(t *testing.T) {
	bundleDir := fakeBundle(t, false)
	data := readFile(t, filepath.Join(bundleDir, bundle.ManifestName))
	var m bundle.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	var files []bundle.File
	for _, f := range m.Files {
		if f.Path != "bin/kubelet" {
			files = append(files, f)
		}
	}
	m.Files = files
	data, _ = json.Marshal(m)
	if err := os.WriteFile(filepath.Join(bundleDir, bundle.ManifestName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := buildMirror(bundleDir, t.TempDir(), time.Now, t.Logf)
	if err == nil || !strings.Contains(err.Error(), "bin/kubelet") {
		t.Fatalf("err %v, want one naming bin/kubelet", err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// extractFromDeb returns one file of a .deb's data, read with dpkg-deb.
func extractFromDeb(t *testing.T, deb, name string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "--fsys-tarfile", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --fsys-tarfile %s: %v", deb, err)
	}
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: no %s (%v)", deb, name, err)
		}
		if h.Name == name {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(data)
		}
	}
}

// tarFile returns one file of a .tar.gz.
func tarFile(t *testing.T, archive, name string) string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: no %s (%v)", archive, name, err)
		}
		if h.Name == name {
			if h.Mode != 0o755 {
				t.Errorf("%s: %s mode %o", archive, name, h.Mode)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(data)
		}
	}
}

// apt-get itself reads the mirror, served over HTTPS on loopback: it
// fetches the indexes, checks the signatures with the served keys, and
// downloads packages checked against the signed hashes.
func TestMirrorWithApt(t *testing.T) {
	needTools(t, "apt-get", "apt-cache", "gpgv")
	bundleDir := fakeBundle(t, true)
	root, c, err := buildMirror(bundleDir, t.TempDir(), time.Now, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.FileServer(http.Dir(root)))
	defer srv.Close()
	work := t.TempDir()
	ca := filepath.Join(work, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	// The keys as boot's scripts fetch them: from the mirror.
	client := srv.Client()
	fetch := func(url, dst string) {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %v", url, resp.Status, err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kubeRepo := srv.URL + "/" + c.Kubernetes + "/"
	fetch(kubeRepo+"Release.key", filepath.Join(work, "kubernetes.asc"))
	fetch(srv.URL+"/docker/linux/debian/gpg", filepath.Join(work, "docker.asc"))
	sources := "deb [signed-by=" + filepath.Join(work, "kubernetes.asc") + "] " + kubeRepo + " /\n" +
		"deb [arch=amd64 signed-by=" + filepath.Join(work, "docker.asc") + "] " + srv.URL + "/docker/linux/debian bookworm stable\n"
	for _, d := range []string{"state/lists/partial", "cache/archives/partial", "parts", "prefs"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range map[string]string{"sources.list": sources, "status": ""} {
		if err := os.WriteFile(filepath.Join(work, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := []string{
		"-o", "Dir::Etc::SourceList=" + filepath.Join(work, "sources.list"),
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(work, "parts"),
		"-o", "Dir::Etc::PreferencesParts=" + filepath.Join(work, "prefs"),
		"-o", "Dir::State=" + filepath.Join(work, "state"),
		"-o", "Dir::State::status=" + filepath.Join(work, "status"),
		"-o", "Dir::Cache=" + filepath.Join(work, "cache"),
		"-o", "Acquire::https::CAInfo=" + ca,
		"-o", "Acquire::https::Proxy=DIRECT",
		"-o", "Acquire::Languages=none",
		"-o", "APT::Architecture=amd64", "-o", "APT::Architectures::=amd64",
		"-o", "Debug::NoLocking=1",
	}
	if os.Geteuid() == 0 {
		// The downloads go to folders of this test, which _apt cannot write.
		opts = append(opts, "-o", "APT::Sandbox::User=root")
	}
	run := func(tool string, args ...string) string {
		cmd := exec.Command(tool, append(append([]string{}, opts...), args...)...)
		cmd.Dir = work
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := run("apt-get", "update")
	if strings.Contains(out, "W:") || strings.Contains(out, "E:") {
		t.Errorf("apt-get update warned:\n%s", out)
	}
	t.Logf("apt-get update:\n%s", out)
	// What boot's apt_version reads.
	for pkg, want := range map[string]string{"kubeadm": "1.37.2-1.1", "docker-ce": "5:29.8.1-1~debian.12~bookworm", "containerd.io": "2.4.2-1~debian.12~bookworm"} {
		if got := run("apt-cache", "madison", pkg); !strings.Contains(got, " "+want+" | ") {
			t.Errorf("apt-cache madison %s:\n%s", pkg, got)
		}
	}
	out = run("apt-get", "download", "kubectl", "containerd.io")
	for _, f := range []string{"kubectl_1.37.2-1.1_amd64.deb", "containerd.io_2.4.2-1~debian.12~bookworm_amd64.deb"} {
		if _, err := os.Stat(filepath.Join(work, f)); err != nil {
			t.Errorf("apt-get download: no %s:\n%s", f, out)
		}
	}
	// Installing kubeadm resolves through the repository's dependencies.
	out = run("apt-get", "-s", "install", "--no-install-recommends", "kubeadm", "cri-tools", "kubectl")
	for _, p := range []string{"Inst kubeadm (1.37.2-1.1", "Inst kubectl (1.37.2-1.1", "Inst cri-tools (1.37.0-1.1"} {
		if !strings.Contains(out, p) {
			t.Errorf("apt-get -s install: no %q:\n%s", p, out)
		}
	}
}
