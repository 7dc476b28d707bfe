package bundle

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// netPackages are the Debian packages the kube-proxy and flannel images
// need: iptables (nft and legacy), nftables, conntrack, ipset, iproute2, and
// a shell plus coreutils for the iptables wrapper and flannel's `cp`
// init containers.
var netPackages = []string{"iptables", "nftables", "conntrack", "ipset", "iproute2", "coreutils", "dash"}

// notInImage are packages of the dependency closure that only serve
// package management (their maintainer scripts never run in an image).
var notInImage = map[string]bool{
	"cdebconf": true, "debconf": true, "dpkg": true, "install-info": true, "libdebian-installer4": true,
	"libnewt0.52": true, "libslang2": true, "libtextwrap1": true, "tar": true,
}

// iptablesCommands are the commands the wrapper stands in for until it has
// chosen the backend.
var iptablesCommands = []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"}

// iptablesWrapper picks the iptables backend the host already uses (the one
// holding more rules; nft when neither holds any, as on Debian), points the
// iptables commands at it, and runs the command it was called as.
const iptablesWrapper = `#!/bin/sh
# Written by boot's bundle builder. Chooses between iptables-nft and
# iptables-legacy by which one already holds the host's rules.
set -e
count() {
	n=0
	for cmd in iptables-save ip6tables-save; do
		m=$("$1" "$cmd" 2>/dev/null | {
			c=0
			while read -r line; do
				case "$line" in -A*) c=$((c + 1)) ;; esac
			done
			echo "$c"
		}) || m=0
		n=$((n + m))
	done
	echo "$n"
}
mode=nft
if [ "$(count xtables-legacy-multi)" -gt "$(count xtables-nft-multi)" ]; then
	mode=legacy
fi
for cmd in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
	ln -sf "xtables-$mode-multi" "/usr/sbin/$cmd"
done
exec "$0" "$@"
`

// debianLayer builds one image layer from the Debian packages pkgs and
// their dependency closure (from this machine's apt sources, unpacked with
// dpkg-deb, maintainer scripts not run), plus the iptables wrapper. It
// returns the layer and each package's version. The layer is cached by the
// package versions.
func (b *builder) debianLayer(ctx context.Context, pkgs []string) (layer, map[string]string, error) {
	start := time.Now()
	env := os.Environ()
	args := append([]string{"depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
		"--no-breaks", "--no-replaces", "--no-enhances"}, pkgs...)
	out, err := output(ctx, "", env, "apt-cache", args...)
	if err != nil {
		return layer{}, nil, fmt.Errorf("resolving Debian packages (run apt-get update first?): %w", err)
	}
	var closure []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "<") || notInImage[line] {
			continue
		}
		closure = append(closure, line)
	}
	sort.Strings(closure)
	closure = compactStrings(closure)
	versions, err := candidateVersions(ctx, closure)
	if err != nil {
		return layer{}, nil, err
	}
	parts := []string{iptablesWrapper}
	for _, p := range closure {
		parts = append(parts, p+"="+versions[p])
	}
	key := keyOf(parts...)
	dst := filepath.Join(b.cache, "layers", key+".tar")
	if _, err := os.Stat(dst); err == nil {
		fmt.Fprintf(b.log, "bundle: debian layer: cached (%d packages)\n", len(closure))
		return layer{key: key, path: dst}, versions, nil
	}

	debDir := filepath.Join(b.cache, "debian", "debs")
	if err := os.MkdirAll(debDir, 0o755); err != nil {
		return layer{}, nil, err
	}
	var fetch []string
	for _, p := range closure {
		if findDeb(debDir, p, versions[p]) == "" {
			fetch = append(fetch, p+"="+versions[p])
		}
	}
	if len(fetch) > 0 {
		if err := b.run(ctx, debDir, env, "apt-get", append([]string{"download", "-q"}, fetch...)...); err != nil {
			return layer{}, nil, fmt.Errorf("downloading Debian packages: %w", err)
		}
	}
	root, err := os.MkdirTemp(filepath.Join(b.cache, "debian"), "root-")
	if err != nil {
		return layer{}, nil, err
	}
	defer os.RemoveAll(root)
	for _, p := range closure {
		deb := findDeb(debDir, p, versions[p])
		if deb == "" {
			return layer{}, nil, fmt.Errorf("debian package %s %s: apt-get download left no .deb in %s", p, versions[p], debDir)
		}
		if err := b.run(ctx, "", env, "dpkg-deb", "-x", deb, root); err != nil {
			return layer{}, nil, err
		}
	}
	files, err := treeFiles(root)
	if err != nil {
		return layer{}, nil, err
	}
	have := map[string]bool{}
	for _, f := range files {
		have[f.path] = true
	}
	extra := []layerFile{{path: "usr/sbin/iptables-wrapper", data: []byte(iptablesWrapper), mode: 0o755}, {path: "tmp", dir: true, mode: 0o1777}}
	for _, c := range iptablesCommands {
		extra = append(extra, layerFile{path: "usr/sbin/" + c, link: "iptables-wrapper", mode: 0o777})
	}
	for _, f := range extra {
		if have[f.path] {
			return layer{}, nil, fmt.Errorf("debian layer: the packages already hold /%s", f.path)
		}
	}
	if err := writeLayerFile(dst, append(files, extra...)); err != nil {
		return layer{}, nil, err
	}
	fmt.Fprintf(b.log, "bundle: debian layer: %d packages in %s\n", len(closure), time.Since(start).Round(time.Second))
	return layer{key: key, path: dst}, versions, nil
}

// candidateVersions are the versions apt would install of pkgs.
func candidateVersions(ctx context.Context, pkgs []string) (map[string]string, error) {
	out, err := output(ctx, "", os.Environ(), "apt-cache", append([]string{"policy"}, pkgs...)...)
	if err != nil {
		return nil, err
	}
	versions := map[string]string{}
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, " ") && strings.HasSuffix(line, ":") {
			cur = strings.TrimSuffix(line, ":")
			continue
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate: "); ok && cur != "" && v != "(none)" {
			versions[cur] = v
		}
	}
	for _, p := range pkgs {
		if versions[p] == "" {
			return nil, fmt.Errorf("debian package %s: no installable candidate (apt-cache policy)", p)
		}
	}
	return versions, nil
}

// findDeb is the .deb apt-get download wrote for package p version v (an
// epoch's colon is written %3a; the architecture is amd64 or all), or "".
func findDeb(dir, p, v string) string {
	for _, arch := range []string{"amd64", "all"} {
		f := filepath.Join(dir, p+"_"+strings.ReplaceAll(v, ":", "%3a")+"_"+arch+".deb")
		if _, err := os.Stat(f); err == nil {
			return f
		}
	}
	return ""
}

func compactStrings(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
