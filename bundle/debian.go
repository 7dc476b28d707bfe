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

// debianSet is one image layer of Debian packages: pkgs and their
// dependency closure, plus files of boot's own.
type debianSet struct {
	name string // for the build log
	pkgs []string
	// prune are packages left out together with whatever only they pull
	// in: they serve the packages' maintainer scripts or init systems,
	// which never run in an image.
	prune map[string]bool
	// extra are files (data, links, folders) added beside the packages';
	// the packages must not hold them.
	extra []layerFile
}

// netSet is the layer of the kube-proxy and flannel images: iptables (nft
// and legacy), nftables, conntrack, ipset, iproute2, and a shell plus
// coreutils for the iptables wrapper and flannel's `cp` init containers.
var netSet = debianSet{
	name:  "network tools",
	pkgs:  []string{"iptables", "nftables", "conntrack", "ipset", "iproute2", "coreutils", "dash"},
	extra: iptablesWrapperFiles(),
}

// redisSet is the layer of the redis image: redis-server, redis-cli, and
// sh and grep for the registry chart's readiness probe
// (`sh -c "redis-cli ping | grep -q PONG"`). Redis works in /data, as in
// the upstream image.
var redisSet = debianSet{
	name: "redis",
	pkgs: []string{"redis-server", "redis-tools", "dash", "grep"},
	// adduser (the redis user), init-system-helpers and lsb-base (the
	// systemd unit and init script) pull in perl, passwd and PAM; dpkg
	// and install-info only serve dash's and grep's maintainer scripts.
	prune: map[string]bool{"adduser": true, "init-system-helpers": true, "lsb-base": true, "dpkg": true, "install-info": true},
	extra: []layerFile{{path: "data", dir: true, mode: 0o755}},
}

// notInImage are packages of the dependency closure that only serve
// package management (their maintainer scripts never run in an image).
var notInImage = map[string]bool{
	"cdebconf": true, "debconf": true, "dpkg": true, "install-info": true, "libdebian-installer4": true,
	"libnewt0.52": true, "libslang2": true, "libtextwrap1": true, "tar": true,
}

// iptablesCommands are the commands the wrapper stands in for until it has
// chosen the backend.
var iptablesCommands = []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"}

// iptablesWrapperFiles are the wrapper, the iptables commands linked to it
// and a /tmp.
func iptablesWrapperFiles() []layerFile {
	files := []layerFile{{path: "usr/sbin/iptables-wrapper", data: []byte(iptablesWrapper), mode: 0o755}, {path: "tmp", dir: true, mode: 0o1777}}
	for _, c := range iptablesCommands {
		files = append(files, layerFile{path: "usr/sbin/" + c, link: "iptables-wrapper", mode: 0o777})
	}
	return files
}

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

// debianLayer builds one image layer from the Debian packages of set and
// their dependency closure (from this machine's apt sources, unpacked with
// dpkg-deb, maintainer scripts not run), plus the set's extra files. It
// returns the layer and each package's version. The layer is cached by the
// package versions and the extra files.
func (b *builder) debianLayer(ctx context.Context, set debianSet) (layer, map[string]string, error) {
	start := time.Now()
	closure, err := debianClosure(ctx, set.pkgs, set.prune)
	if err != nil {
		return layer{}, nil, err
	}
	versions, err := candidateVersions(ctx, closure)
	if err != nil {
		return layer{}, nil, err
	}
	var parts []string
	for _, f := range set.extra {
		k, err := entryKey(f)
		if err != nil {
			return layer{}, nil, err
		}
		parts = append(parts, k)
	}
	for _, p := range closure {
		parts = append(parts, p+"="+versions[p])
	}
	key := keyOf(parts...)
	dst := filepath.Join(b.cache, "layers", key+".tar")
	if _, err := os.Stat(dst); err == nil {
		fmt.Fprintf(b.log, "bundle: debian layer %s: cached (%d packages)\n", set.name, len(closure))
		return layer{key: key, path: dst}, versions, nil
	}
	root, err := b.unpackDebs(ctx, closure, versions)
	if err != nil {
		return layer{}, nil, err
	}
	defer os.RemoveAll(root)
	files, err := treeFiles(root)
	if err != nil {
		return layer{}, nil, err
	}
	have := map[string]bool{}
	for _, f := range files {
		have[f.path] = true
	}
	for _, f := range set.extra {
		if have[f.path] {
			return layer{}, nil, fmt.Errorf("debian layer %s: the packages already hold /%s", set.name, f.path)
		}
	}
	if err := writeLayerFile(dst, append(files, set.extra...)); err != nil {
		return layer{}, nil, err
	}
	fmt.Fprintf(b.log, "bundle: debian layer %s: %d packages in %s\n", set.name, len(closure), time.Since(start).Round(time.Second))
	return layer{key: key, path: dst}, versions, nil
}

// unpackDebs downloads the packages (at versions) that the cache lacks and
// unpacks them all into a new folder under the cache, which the caller
// removes.
func (b *builder) unpackDebs(ctx context.Context, pkgs []string, versions map[string]string) (string, error) {
	env := os.Environ()
	debDir := filepath.Join(b.cache, "debian", "debs")
	if err := os.MkdirAll(debDir, 0o755); err != nil {
		return "", err
	}
	var fetch []string
	for _, p := range pkgs {
		if findDeb(debDir, p, versions[p]) == "" {
			fetch = append(fetch, p+"="+versions[p])
		}
	}
	if len(fetch) > 0 {
		if err := b.run(ctx, debDir, env, "apt-get", append([]string{"download", "-q"}, fetch...)...); err != nil {
			return "", fmt.Errorf("downloading Debian packages: %w", err)
		}
	}
	root, err := os.MkdirTemp(filepath.Join(b.cache, "debian"), "root-")
	if err != nil {
		return "", err
	}
	for _, p := range pkgs {
		deb := findDeb(debDir, p, versions[p])
		if deb == "" {
			os.RemoveAll(root)
			return "", fmt.Errorf("debian package %s %s: apt-get download left no .deb in %s", p, versions[p], debDir)
		}
		if err := b.run(ctx, "", env, "dpkg-deb", "-x", deb, root); err != nil {
			os.RemoveAll(root)
			return "", err
		}
	}
	return root, nil
}

// debianClosure is pkgs and everything they depend on (Depends and
// PreDepends, every alternative of a choice, the providers of a virtual
// package), as `apt-cache depends --recurse` lists it, sorted. A package in
// prune is not followed; packages in notInImage are followed but left out.
// A real package's other providers (libelogind0 for libsystemd0) are not
// taken: apt installs the real one.
func debianClosure(ctx context.Context, pkgs []string, prune map[string]bool) ([]string, error) {
	args := append([]string{"depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
		"--no-breaks", "--no-replaces", "--no-enhances"}, pkgs...)
	out, err := output(ctx, "", os.Environ(), "apt-cache", args...)
	if err != nil {
		return nil, fmt.Errorf("resolving Debian packages (run apt-get update first?): %w", err)
	}
	deps := parseDepends(out)
	seen := map[string]bool{}
	var closure []string
	todo := append([]string{}, pkgs...)
	for len(todo) > 0 {
		p := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if seen[p] || prune[p] {
			continue
		}
		seen[p] = true
		if !notInImage[p] && !strings.HasPrefix(p, "<") {
			closure = append(closure, p)
		}
		todo = append(todo, deps[p]...)
	}
	sort.Strings(closure)
	return closure, nil
}

// parseDepends reads `apt-cache depends --recurse` output into each
// package's dependencies: the named package of a Depends or PreDepends line
// and, for a virtual package (<name>), the providers listed under it.
func parseDepends(out []byte) map[string][]string {
	deps := map[string][]string{}
	cur, virtual := "", false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
		case !strings.HasPrefix(line, " "):
			cur, virtual = line, false
		case strings.HasPrefix(line, "    "): // a provider of the dependency above
			if virtual {
				deps[cur] = append(deps[cur], strings.TrimSpace(line))
			}
		default:
			kind, dep, ok := strings.Cut(strings.TrimLeft(line, " |"), ": ")
			virtual = false
			if !ok || kind != "Depends" && kind != "PreDepends" {
				continue
			}
			if strings.HasPrefix(dep, "<") {
				virtual = true
				continue
			}
			deps[cur] = append(deps[cur], dep)
		}
	}
	return deps
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
