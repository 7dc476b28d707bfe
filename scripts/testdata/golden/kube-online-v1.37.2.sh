#!/usr/bin/env bash
# kube-online.sh: rendered by boot from typed parameters; safe to run again.
# Usage: kube-online.sh [check]
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
minor='v1.37'
version='1.37.2'

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

ensure_packages ca-certificates curl



# The Kubernetes apt repository of this minor version at pkgs.k8s.io (or
# its mirror), signed by its current key (fetched each run: it rotates),
# or by the mirror's own key.
# The CA of pkgs.k8s.io, when the system roots do not sign its certificate:
# curl and apt trust it for that host only. Without one, boot's earlier files go.
curl_ca=()
ca_files=(/etc/boot/ca/kubernetes.crt /etc/apt/apt.conf.d/90boot-kubernetes-ca)
ca_changed=0
for f in "${ca_files[@]}"; do
  if [[ -f $f ]]; then
    change "remove $f (no CA)" rm -f -- "$f"
    ca_changed=1
  fi
done
repo='https://pkgs.k8s.io'/core:/stable:/$minor/deb/
repo_changed=$ca_changed

if [[ $mode == apply ]] || command -v curl >/dev/null; then
  curl -fsSL --retry 3 --max-time 60 "${curl_ca[@]}" -o "$tmp/key.asc" "${repo}Release.key" ||
    die "cannot download the apt key from ""${repo}Release.key"
  if put_file "$tmp/key.asc" '/etc/apt/keyrings/kubernetes-apt-keyring.asc' 0644; then
    repo_changed=1
  fi
else
  printf 'would: install %s\n' '/etc/apt/keyrings/kubernetes-apt-keyring.asc'
fi
if put_content /etc/apt/sources.list.d/kubernetes.list 0644 <<BOOT_EOF; then
deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.asc] $repo /
BOOT_EOF
  repo_changed=1
fi

# kubeadm, kubelet, kubectl at exactly $version, held there.
pkgs=(kubeadm kubelet kubectl)
if ((repo_changed)); then
  updated=0
  apt_update
fi
install=()
restart=0
for p in "${pkgs[@]}"; do
  have=$(installed_version "$p")
  if [[ $have == "$version"-* ]]; then
    continue
  fi
  v=$(apt_version "$p" "$version")
  if [[ -z $v && $mode == apply ]] && ((updated == 0)); then
    apt_update
    v=$(apt_version "$p" "$version")
  fi
  if [[ -z $v ]]; then
    if [[ $mode == check ]]; then
      printf 'would: install %s %s\n' "$p" "$version"
      continue
    fi
    die "$p $version is not in $repo"
  fi
  install+=("$p=$v")
  if [[ $p == kubelet ]]; then
    restart=1
  fi
done
if ((${#install[@]} > 0)); then
  change "install ${install[*]}" apt_get install -y --allow-downgrades --allow-change-held-packages "${install[@]}"
fi
# crictl, which boot's scripts use (the CRI wait, teardown): cri-tools from
# the same repository (its own version numbers), installed when missing.
ensure_packages cri-tools
held=$(apt-mark showhold 2>/dev/null || true)
for p in "${pkgs[@]}"; do
  if ! grep -qx -- "$p" <<<"$held"; then
    change "hold $p at $version" apt-mark hold "$p"
  fi
done
# kubelet on at boot. kubeadm init/join start it; a kubelet already running
# (a node that joined) is restarted when its binary or unit changed.
if ! systemctl is-enabled --quiet kubelet 2>/dev/null; then
  change "enable kubelet at boot" systemctl enable kubelet
fi
if ((restart)) && systemctl is-active --quiet kubelet 2>/dev/null; then
  change "restart kubelet" systemctl restart kubelet
fi
