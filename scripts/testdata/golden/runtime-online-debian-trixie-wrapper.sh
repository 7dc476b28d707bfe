#!/usr/bin/env bash
# runtime-online.sh: rendered by boot from typed parameters; safe to run again.
# Usage: runtime-online.sh [check]
#   check  report what would change ("would: ...") and change nothing.
# Every change is reported on stdout as "changed: ...".
set -euo pipefail
umask 022

mode=apply
if [[ ${1:-} == check ]]; then
  mode=check
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# change WHAT COMMAND [ARG...]: run COMMAND and report WHAT; in check mode
# only report that WHAT would be done.
change() {
  local what=$1
  shift
  if [[ $mode == check ]]; then
    printf 'would: %s\n' "$what"
    return 0
  fi
  printf 'changed: %s\n' "$what"
  # Fails the script even where the caller tests the result (if put_file
  # ...; then), where set -e does not apply.
  "$@" || die "$what failed (exit $?)"
}

warn() {
  printf 'warning: %s\n' "$*" >&2
}

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# put_file SRC DEST PERM: install SRC as DEST (mode PERM, parents created)
# unless DEST already has that content and mode. Succeeds only when it
# changed (or, in check mode, would change) DEST.
put_file() {
  local src=$1 dest=$2 perm=$3
  if [[ -f $dest ]] && same_file "$src" "$dest" && [[ $(stat -c %a -- "$dest") == "${perm#0}" ]]; then
    return 1
  fi
  change "install $dest" install -D -m "$perm" -- "$src" "$dest"
  remember_same "$src" "$dest"
}

# same_file SRC DEST: whether DEST holds SRC's bytes. cmp reads both; a
# record of the two files' identities (size, inode, modification and change
# time: any write or chmod moves the change time, which cannot be set back),
# kept when an applying run last found or made them equal, spares that
# while neither changed. A checking run only reads the record.
same_files=/var/lib/boot/same-files
same_file() {
  local ids
  ids=$(identities "$1" "$2") || return 1
  if [[ -f $same_files ]] && grep -qxF -- "$ids" "$same_files"; then
    return 0
  fi
  cmp -s -- "$1" "$2" || return 1
  remember_same "$1" "$2"
}

# identities FILE...: one line naming each file with its identity.
identities() {
  stat -c '%n %s %i %.9Y %.9Z' -- "$@" | tr '\n' '|'
}

# remember_same SRC DEST: record that SRC and DEST, as they are now, hold
# the same bytes (applying runs only), replacing DEST's earlier line.
remember_same() {
  [[ $mode == apply ]] || return 0
  local ids
  ids=$(identities "$1" "$2") || return 0
  mkdir -p -- "${same_files%/*}"
  { grep -vF -- "|$2 " "$same_files" 2>/dev/null || true; printf '%s\n' "$ids"; } >"$same_files.new"
  mv -f -- "$same_files.new" "$same_files"
}

# put_content DEST PERM: put_file with the content read from stdin.
put_content() {
  local src
  src=$(mktemp -p "$tmp")
  cat >"$src"
  put_file "$src" "$1" "$2"
}

# Parameters.
os_id='debian'
codename='trixie'
docker_version=''
containerd_version=''

# apt helpers: non-interactive, waiting for another apt's lock.
export DEBIAN_FRONTEND=noninteractive
apt_get() {
  apt-get -o DPkg::Lock::Timeout=300 -q "$@"
}

# apt_update: refresh the package lists, once per run.
updated=0
apt_update() {
  if ((updated == 0)); then
    change "refresh apt package lists" apt_get update
    updated=1
  fi
}

# installed_version PKG: the installed version of PKG, empty if none.
installed_version() {
  { dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null || true; } | awk '$3 == "installed" { print $4 }'
}

# apt_version PKG WANT: the newest available version of PKG that is WANT
# exactly or has WANT as its upstream version (28.1.1 matches
# 5:28.1.1-1~debian.12~bookworm, 1.37.2 matches 1.37.2-1.1); empty if none.
apt_version() {
  { apt-cache madison "$1" 2>/dev/null || true; } | awk -F'|' -v want="$2" '
    { v = $2; gsub(/[[:space:]]/, "", v); u = v; sub(/^[0-9]+:/, "", u) }
    v == want || index(u, want "-") == 1 || index(u, want "~") == 1 { print v; exit }'
}

# ensure_packages PKG...: install those of the packages that are missing.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    [[ -n $(installed_version "$p") ]] || missing+=("$p")
  done
  if ((${#missing[@]} > 0)); then
    command -v apt-get >/dev/null || die "packages missing and no apt-get: ${missing[*]}"
    apt_update
    change "install ${missing[*]}" apt_get install -y --no-install-recommends "${missing[@]}"
  fi
}

# What apt needs to fetch over HTTPS and check signatures.
ensure_packages ca-certificates curl



# Docker's apt repository (or its mirror), signed by its key in
# /etc/apt/keyrings.
# The CA of download.docker.com, when the system roots do not sign its certificate:
# curl and apt trust it for that host only. Without one, boot's earlier files go.
curl_ca=()
ca_files=(/etc/boot/ca/docker.crt /etc/apt/apt.conf.d/90boot-docker-ca)
ca_changed=0
for f in "${ca_files[@]}"; do
  if [[ -f $f ]]; then
    change "remove $f (no CA)" rm -f -- "$f"
    ca_changed=1
  fi
done
docker_repo='https://download.docker.com'/linux/$os_id
repo_changed=$ca_changed

if [[ $mode == apply ]] || command -v curl >/dev/null; then
  curl -fsSL --retry 3 --max-time 60 "${curl_ca[@]}" -o "$tmp/key.asc" "$docker_repo/gpg" ||
    die "cannot download the apt key from ""$docker_repo/gpg"
  if put_file "$tmp/key.asc" '/etc/apt/keyrings/docker.asc' 0644; then
    repo_changed=1
  fi
else
  printf 'would: install %s\n' '/etc/apt/keyrings/docker.asc'
fi
arch=$(dpkg --print-architecture)
if put_content /etc/apt/sources.list.d/docker.list 0644 <<BOOT_EOF; then
deb [arch=$arch signed-by=/etc/apt/keyrings/docker.asc] $docker_repo $codename stable
BOOT_EOF
  repo_changed=1
fi
if ((repo_changed)); then
  updated=0
  apt_update
fi

# docker-ce, docker-ce-cli and containerd.io, at the pinned versions when
# given.
install=()
for spec in "docker-ce:$docker_version" "docker-ce-cli:$docker_version" "containerd.io:$containerd_version"; do
  pkg=${spec%%:*}
  want=${spec#*:}
  have=$(installed_version "$pkg")
  if [[ -z $want ]]; then
    [[ -n $have ]] || install+=("$pkg")
    continue
  fi
  version=$(apt_version "$pkg" "$want")
  if [[ -z $version && $mode == apply ]]; then
    apt_update
    version=$(apt_version "$pkg" "$want")
  fi
  if [[ -z $version ]]; then
    if [[ $mode == check ]]; then
      printf 'would: install %s %s\n' "$pkg" "$want"
      continue
    fi
    die "$pkg $want is not in Docker's apt repository for $os_id $codename"
  fi
  [[ $have == "$version" ]] || install+=("$pkg=$version")
done
if ((${#install[@]} > 0)); then
  change "install ${install[*]}" apt_get install -y --allow-downgrades "${install[@]}"
fi

# containerd's CRI plugin on (the package turns it off) with the systemd
# cgroup driver, in the config layout of the installed major version.
restart=0
major=$(containerd --version 2>/dev/null | awk '{ v = $3; sub(/^v/, "", v); split(v, p, "."); print p[1] }' || true)
case $major in
1)
  if put_content /etc/containerd/config.toml 0644 <<'BOOT_EOF'; then
# Written by boot: containerd 1.x with the CRI plugin for Kubernetes
# (replaces the package's config, which disables CRI).
version = 2

[plugins.'io.containerd.grpc.v1.cri']
  sandbox_image = "registry.example.com/k8s/pause:3.10.2"

# Registry mirrors: one hosts.toml per upstream registry.
[plugins.'io.containerd.grpc.v1.cri'.registry]
  config_path = "/etc/containerd/certs.d"

[plugins.'io.containerd.grpc.v1.cri'.containerd]
  default_runtime_name = 'runc'

[plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes.runc]
  runtime_type = 'io.containerd.runc.v2'

[plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes.runc.options]
  BinaryName = "/usr/local/sbin/runc-wrapper"
  SystemdCgroup = true
BOOT_EOF
    restart=1
  fi
  ;;
2)
  if put_content /etc/containerd/config.toml 0644 <<'BOOT_EOF'; then
# Written by boot: containerd 2.x with the CRI plugin for Kubernetes.
version = 3

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "registry.example.com/k8s/pause:3.10.2"

# Registry mirrors: one hosts.toml per upstream registry.
[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = "/etc/containerd/certs.d"

[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = 'runc'

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = 'io.containerd.runc.v2'

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  BinaryName = "/usr/local/sbin/runc-wrapper"
  SystemdCgroup = true
BOOT_EOF
    restart=1
  fi
  ;;
*)
  if [[ $mode == check ]]; then
    printf 'would: write /etc/containerd/config.toml\n'
  else
    die "cannot tell containerd's major version (containerd --version)"
  fi
  ;;
esac
put_content /etc/crictl.yaml 0644 <<'BOOT_EOF' || true
# Written by boot.
runtime-endpoint: unix:///run/containerd/containerd.sock
image-endpoint: unix:///run/containerd/containerd.sock
timeout: 10
BOOT_EOF

for unit in containerd docker; do
  if ! systemctl is-enabled --quiet "$unit" 2>/dev/null; then
    change "enable $unit at boot" systemctl enable "$unit"
  fi
done
if ! systemctl is-active --quiet containerd 2>/dev/null; then
  change "start containerd" systemctl start containerd
elif ((restart)); then
  change "restart containerd" systemctl restart containerd
fi
if ! systemctl is-active --quiet docker 2>/dev/null; then
  change "start docker" systemctl start docker
fi

# Wait (bounded) until containerd's CRI runtime reports RuntimeReady
# (crictl info; before crictl is installed, the CRI plugin's status in ctr).
cri_ready() {
  if command -v crictl >/dev/null; then
    [[ $(crictl info -o go-template --template "$ready_template" 2>/dev/null || true) == true ]]
  else
    ctr plugins ls 2>/dev/null | awk '$1 == "io.containerd.grpc.v1" && $2 == "cri" && $NF == "ok" { ok = 1 } END { exit !ok }'
  fi
}
if [[ $mode == apply ]]; then
  ready_template='{{range .status.conditions}}{{if eq .type "RuntimeReady"}}{{.status}}{{end}}{{end}}'
  deadline=$((SECONDS + 120))
  until cri_ready; do
    if ((SECONDS >= deadline)); then
      systemctl status containerd --no-pager -l >&2 || true
      die "containerd's CRI runtime is not ready after 120s"
    fi
    sleep 1
  done
fi
