#!/usr/bin/env bash
# host-prep.sh: rendered by boot from typed parameters; safe to run again.
# Usage: host-prep.sh [check]
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
hostname='w3'
address='10.0.0.13'
packages=( )
nameservers=( )

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

# Kernel modules: containerd's overlayfs snapshotter and bridged pod traffic
# through iptables. A module that is loaded or built into the kernel needs
# nothing; a loadable one is loaded now and listed for boot.
modules_conf=/etc/modules-load.d/boot-kubernetes.conf
# in_kernel MODULE: the kernel already has what MODULE provides (built in,
# or loaded where /sys/module does not show it).
in_kernel() {
  case $1 in
  overlay) grep -qw overlay /proc/filesystems ;;
  br_netfilter) [[ -d /proc/sys/net/bridge ]] ;;
  *) false ;;
  esac
}
loadable=()
for m in overlay br_netfilter; do
  if [[ -e /sys/module/$m/initstate ]]; then
    loadable+=("$m") # a loaded module: load it at boot too
  elif [[ -d /sys/module/$m ]] || in_kernel "$m" || grep -qs "/$m\.ko" "/lib/modules/$(uname -r)/modules.builtin"; then
    continue # built into the kernel
  elif command -v modprobe >/dev/null && modprobe -n -q "$m" 2>/dev/null; then
    loadable+=("$m")
    change "load kernel module $m" modprobe "$m"
  else
    warn "kernel module $m is neither loaded, built in nor loadable here"
  fi
done
if ((${#loadable[@]} > 0)); then
  printf '%s\n' "# Written by boot: kernel modules Kubernetes needs." "${loadable[@]}" |
    put_content "$modules_conf" 0644 || true
fi

# Forwarding and bridge netfilter sysctls, set now and at boot. A key that
# is read-only here (a container sharing the host's settings) is reported,
# not fatal.
sysctl_conf=/etc/sysctl.d/90-boot-kubernetes.conf
put_content "$sysctl_conf" 0644 <<'BOOT_EOF' || true
# Written by boot: kernel settings Kubernetes needs.
net.ipv4.ip_forward = 1
net.bridge.bridge-nf-call-iptables = 1
net.bridge.bridge-nf-call-ip6tables = 1
BOOT_EOF
for key in net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables; do
  value=$(sysctl -n "$key" 2>/dev/null || true)
  if [[ $value == 1 ]]; then
    continue
  elif [[ -z $value ]]; then
    warn "$key does not exist on this kernel (is br_netfilter available?)"
  elif [[ ! -w /proc/sys/${key//.//} ]]; then
    warn "$key is read-only here and stays $value"
  else
    # This key alone: sysctl --system would re-apply every sysctl.d file,
    # and in a privileged container that rewrites the machine's global keys.
    change "set $key = 1" sysctl -q -w "$key=1"
  fi
done

# Swap off now and at boot (the kubelet refuses to run with swap by default).
if [[ -n $(swapon --show=NAME --noheadings 2>/dev/null || true) ]]; then
  change "turn swap off" swapoff -a
fi
if [[ -f /etc/fstab ]] && grep -Eq '^[[:space:]]*[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]]' /etc/fstab; then
  if [[ ! -e /etc/fstab.boot-backup ]]; then
    change "back up /etc/fstab to /etc/fstab.boot-backup" cp -p /etc/fstab /etc/fstab.boot-backup
  fi
  change "comment out swap in /etc/fstab" \
    sed -i -E 's/^([[:space:]]*[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]])/#\1/' /etc/fstab
fi

# Packages the node needs, installed when missing.
ensure_packages "${packages[@]}"

# Hostname: the inventory name, now and at boot.
set_hostname() {
  if command -v hostnamectl >/dev/null && hostnamectl set-hostname "$hostname" 2>/dev/null; then
    return 0
  fi
  # No hostnamectl, or it cannot replace /etc/hostname (a bind mount in a
  # container): write the file in place and set the running name.
  printf '%s\n' "$hostname" >/etc/hostname
  printf '%s' "$hostname" >/proc/sys/kernel/hostname
}
if [[ $(uname -n) != "$hostname" || $(cat /etc/hostname 2>/dev/null || true) != "$hostname" ]]; then
  change "set hostname to $hostname" set_hostname
fi

# /etc/hosts maps the name to the node's address. Appended in place: the
# file may be a bind mount.
if ! awk -v a="$address" -v n="$hostname" '
    $1 == a { for (i = 2; i <= NF && $i !~ /^#/; i++) if ($i == n) found = 1 }
    END { exit !found }' /etc/hosts 2>/dev/null; then
  add_host() {
    printf '%s %s # added by boot\n' "$address" "$hostname" >>/etc/hosts
  }
  change "map $hostname to $address in /etc/hosts" add_host
fi

# The kubelet's resolv.conf, when the inventory names upstream DNS servers:
# pods (CoreDNS first) must not inherit a loopback stub resolver.
if ((${#nameservers[@]} > 0)); then
  {
    echo "# Written by boot: upstream DNS servers for CoreDNS and host-network pods."
    printf 'nameserver %s\n' "${nameservers[@]}"
  } | put_content '/etc/kubernetes/resolv.conf' 0644 || true
fi

# The forward proxy: apt's setting, and the environment of containerd,
# docker and the kubelet (drop-ins; a unit whose drop-in changed is
# restarted when it runs). Without a proxy, boot's earlier files go.
apt_proxy=/etc/apt/apt.conf.d/90boot-proxy
proxy_restart=()
put_content "$apt_proxy" 0644 <<'BOOT_EOF' || true
// Written by boot: the forward proxy.
Acquire::http::Proxy "http://proxy.example.com:3128";
Acquire::https::Proxy "http://proxy.example.com:3128";
Acquire::http::Proxy::localhost "DIRECT";
Acquire::https::Proxy::localhost "DIRECT";
Acquire::http::Proxy::127.0.0.1 "DIRECT";
Acquire::https::Proxy::127.0.0.1 "DIRECT";
Acquire::http::Proxy::10.0.0.10 "DIRECT";
Acquire::https::Proxy::10.0.0.10 "DIRECT";
Acquire::http::Proxy::mirror.example.com "DIRECT";
Acquire::https::Proxy::mirror.example.com "DIRECT";
BOOT_EOF
for unit in containerd docker kubelet; do
  if put_content "/etc/systemd/system/$unit.service.d/90-boot-proxy.conf" 0644 <<'BOOT_EOF'; then
# Written by boot: the forward proxy.
[Service]
Environment="HTTP_PROXY=http://proxy.example.com:3128" "http_proxy=http://proxy.example.com:3128"
Environment="HTTPS_PROXY=http://proxy.example.com:3128" "https_proxy=http://proxy.example.com:3128"
Environment="NO_PROXY=localhost,127.0.0.1,10.244.0.0/16,10.96.0.0/12,10.0.0.10,.svc,mirror.example.com" "no_proxy=localhost,127.0.0.1,10.244.0.0/16,10.96.0.0/12,10.0.0.10,.svc,mirror.example.com"
BOOT_EOF
    proxy_restart+=("$unit")
  fi
done
if ((${#proxy_restart[@]} > 0)); then
  change "reload systemd units" systemctl daemon-reload
  for unit in "${proxy_restart[@]}"; do
    if systemctl is-active --quiet "$unit" 2>/dev/null; then
      change "restart $unit (proxy settings)" systemctl restart "$unit"
    fi
  done
fi

# drop_unlisted PARENT FILE WHAT KEEP...: removes each folder of PARENT
# whose FILE says in its first line that boot wrote it, unless the folder's
# name is among KEEP (it is no longer WHAT).
drop_unlisted() {
  local parent=$1 file=$2 what=$3 f dir keep name
  shift 3
  for f in "$parent"/*/"$file"; do
    [[ -f $f ]] || continue
    dir=${f%/"$file"}
    keep=0
    for name in "$@"; do
      [[ ${dir##*/} == "$name" ]] && keep=1
    done
    if ((keep == 0)) && [[ $(head -n 1 -- "$f") == "# Written by boot: "* ]]; then
      change "remove $dir (no longer $what)" rm -rf -- "$dir"
    fi
  done
}

# Registry mirrors: containerd's hosts.toml per upstream registry (read at
# each pull: no restart), with the mirrors' CA beside it. boot's files of
# registries no longer listed go.
hosts_dir='/etc/containerd/certs.d'
mirrored=( 'registry.k8s.io' 'docker.io' )
put_content "$hosts_dir/"'registry.k8s.io'/boot-ca.crt 0644 <<'BOOT_EOF' || true
-----BEGIN CERTIFICATE-----
MIIBszCCAVmgAwIBAgIUboot
-----END CERTIFICATE-----
BOOT_EOF
put_content "$hosts_dir/"'registry.k8s.io'/hosts.toml 0644 <<'BOOT_EOF' || true
# Written by boot: the mirrors of registry.k8s.io.
server = "https://registry.k8s.io"

[host."https://mirror.example.com:5000/v2/registry.k8s.io"]
  capabilities = ["pull", "resolve"]
  ca = "/etc/containerd/certs.d/registry.k8s.io/boot-ca.crt"
  override_path = true

[host."https://cache.example.com"]
  capabilities = ["pull", "resolve"]
  ca = "/etc/containerd/certs.d/registry.k8s.io/boot-ca.crt"
BOOT_EOF
if [[ -f "$hosts_dir/"'docker.io'/boot-ca.crt ]]; then
  change "remove $hosts_dir/"'docker.io'"/boot-ca.crt (no CA)" rm -f -- "$hosts_dir/"'docker.io'/boot-ca.crt
fi
put_content "$hosts_dir/"'docker.io'/hosts.toml 0644 <<'BOOT_EOF' || true
# Written by boot: the mirrors of docker.io.
server = "https://registry-1.docker.io"

[host."http://10.0.0.5:5000"]
  capabilities = ["pull", "resolve"]
BOOT_EOF
drop_unlisted "$hosts_dir" hosts.toml "a registry mirror" "${mirrored[@]}"

# Docker's registry mirrors: docker.io's mirrors without a path, in
# /etc/docker/daemon.json when boot owns that file (the marker beside it
# says so; another daemon.json is left alone, with a warning), their CA in
# /etc/docker/certs.d/<host>/ (a file boot marks in its first line). Docker
# is restarted when it runs and the file changed.
docker_json=/etc/docker/daemon.json
docker_marker=/etc/docker/.daemon-json-by-boot
docker_restart=0
docker_ca=( )
if [[ -f $docker_json && ! -f $docker_marker ]]; then
  warn "$docker_json was not written by boot: add \"registry-mirrors\": [\"http://10.0.0.5:5000\"] to it yourself"
else
  if put_content "$docker_json" 0644 <<'BOOT_EOF'; then
{"registry-mirrors": ["http://10.0.0.5:5000"], "insecure-registries": ["10.0.0.5:5000"]}
BOOT_EOF
    docker_restart=1
  fi
  put_content "$docker_marker" 0644 <<<"/etc/docker/daemon.json is boot's (registry mirrors); boot teardown removes it" || true
fi
drop_unlisted /etc/docker/certs.d ca.crt "a docker.io mirror" "${docker_ca[@]}"
if ((docker_restart)) && systemctl is-active --quiet docker 2>/dev/null; then
  change "restart docker (registry mirrors)" systemctl restart docker
fi
