#!/usr/bin/env bash
# snapshot.sh: rendered by boot; prints the state of what boot touches on
# this host, section by section, sorted, so that two snapshots compare line
# by line. Changes nothing.
set -euo pipefail
export LC_ALL=C

section() {
  printf '## %s\n' "$1"
}

section packages
dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Version}\n' 2>/dev/null | awk '$1 ~ /^.i/ { print $2, $3 }' | sort

section units
systemctl list-unit-files --no-legend --no-pager 2>/dev/null | awk '{ print $1, $2 }' | sort

section files
# Configuration and binaries: every file with its mode and sha256.
for p in '/etc/kubernetes' '/etc/cni' '/opt/cni' '/etc/containerd' '/etc/crictl.yaml' '/usr/local/bin' '/usr/local/sbin' '/etc/systemd/system' '/etc/sysctl.d' '/etc/modules-load.d' '/etc/hosts' '/etc/hostname' '/etc/fstab' '/etc/apt/sources.list.d' '/etc/apt/keyrings' '/etc/apt/apt.conf.d' '/etc/boot' ; do
  [[ -e $p || -L $p ]] || continue
  find "$p" -xdev \( -type f -printf 'f %p %m\n' \) -o \( -type l -printf 'l %p -> %l\n' \) -o \( -type d -printf 'd %p %m\n' \) 2>/dev/null
done | sort | while read -r kind path rest; do
  if [[ $kind == f ]]; then
    printf '%s %s %s\n' "$path" "$rest" "$(sha256sum <"$path" | cut -c1-64)"
  else
    printf '%s %s\n' "$path" "$rest"
  fi
done
# State folders: whether they exist and what their top holds.
for p in '/var/lib/kubelet' '/var/lib/etcd' '/var/lib/cni' '/var/lib/containerd' '/var/lib/boot' '/run/flannel' '/run/containerd' '/opt/containerd' '/var/log/pods' '/var/log/containers' ; do
  [[ -e $p ]] || continue
  find "$p" -xdev -maxdepth 1 -printf '%p\n' 2>/dev/null
done | sort

section interfaces
ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort

section iptables
# Rules without counters, by backend. A table holding only built-in chains
# with policy ACCEPT and no rule acts as no table at all: it is left out
# (removing rules leaves such tables behind; they change nothing).
for save in iptables-nft-save iptables-legacy-save ip6tables-nft-save ip6tables-legacy-save; do
  command -v "$save" >/dev/null || continue
  { "$save" 2>/dev/null || true; } | awk -v p="$save" '
    /^#/ { next }
    /^\*/ { table = $0; n = 0; keep = 0; next }
    /^COMMIT/ {
      if (keep) { print p, table; for (i = 1; i <= n; i++) print p, buf[i] }
      next
    }
    {
      line = $0
      gsub(/ ?\[[0-9]+:[0-9]+\]/, "", line)
      buf[++n] = line
      if ($1 ~ /^-A/ || ($1 ~ /^:/ && $2 != "ACCEPT")) keep = 1
    }'
done | sort

section mounts
awk '{ print $2, $3 }' /proc/mounts | grep -E '^(/var/lib/kubelet|/var/lib/containerd|/run/containerd|/run/netns)(/| )' | sort || true
