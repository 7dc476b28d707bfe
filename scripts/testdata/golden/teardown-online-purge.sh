#!/usr/bin/env bash
# teardown.sh: rendered by boot from typed parameters; safe to run again.
# Usage: teardown.sh [check]
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
mode_source='online'
purge=1
installed=( )

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

# The kubelet stops first, so that it starts no container while the pods
# are removed (after its Node is deleted it registers again and starts its
# DaemonSets' pods anew; kubeadm reset would stop it mid-way).
# The runtime's runc calls in flight then end (at most 10 s): one killed
# half-way is what leaves a cgroup frozen (below).
runc_running() {
  local c
  for c in /proc/[0-9]*/comm; do
    [[ $(cat "$c" 2>/dev/null) == runc ]] && return 0
  done
  return 1
}
stop_kubelet() {
  local i
  systemctl stop kubelet
  for ((i = 0; i < 20; i++)); do
    runc_running || return 0
    sleep 0.5
  done
}
if systemctl is-active --quiet kubelet 2>/dev/null; then
  change "stop kubelet" stop_kubelet
fi

# Pod cgroups left frozen: a runc killed while it held a container's cgroup
# frozen (cgroup v1's freezer, which runc uses while it sets a container up;
# a kubelet stopped while it starts a container leaves one so) keeps its
# processes unkillable, and kubeadm reset and the slices' stop would wait on
# them. Thawed before anything is removed, parents and children alike.
frozen_pod_cgroups() {
  {
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
      find /sys/fs/cgroup -path '*/kubepods*' -name cgroup.freeze -exec grep -lx 1 {} +
    else
      find /sys/fs/cgroup/freezer -path '*/kubepods*' -name freezer.state -exec grep -lxE 'FROZEN|FREEZING' {} +
    fi
  } 2>/dev/null || true
}
thaw_pod_cgroups() {
  local f
  frozen_pod_cgroups | while read -r f; do
    if [[ $f == */freezer.state ]]; then echo THAWED >"$f"; else echo 0 >"$f"; fi
  done
}
if [[ -n $(frozen_pod_cgroups) ]]; then
  change "thaw frozen pod cgroups" thaw_pod_cgroups
fi

# kubeadm reset: static pods, the kubelet's and etcd's state, the
# certificates and kubeconfigs. Needs containerd up to remove the pods.
if command -v kubeadm >/dev/null && { [[ -d /etc/kubernetes/manifests ]] || [[ -d /var/lib/kubelet ]] || [[ -d /var/lib/etcd ]] || compgen -G '/etc/kubernetes/*.conf' >/dev/null; }; then
  if systemctl list-unit-files containerd.service >/dev/null 2>&1 && ! systemctl is-active --quiet containerd; then
    change "start containerd for kubeadm reset" systemctl start containerd
  fi
  change "kubeadm reset" kubeadm reset -f --cri-socket unix:///run/containerd/containerd.sock
fi

# Any pod kubeadm reset left (it skips them when the runtime is down).
if command -v crictl >/dev/null && systemctl is-active --quiet containerd 2>/dev/null &&
  [[ -n $(crictl --timeout 10s pods -q 2>/dev/null || true) ]]; then
  change "remove the remaining pods" crictl --timeout 60s rmp -fa
fi

# Units boot enabled: stopped and disabled. Docker and containerd go too
# when they go (they came with the bundle, or online --purge removes
# their packages); online without --purge, Docker's packages keep theirs.
runtime_goes=0
if [[ $mode_source == bundle ]] || ((purge)); then
  runtime_goes=1
fi
units=(kubelet)
if ((runtime_goes)); then
  units+=(docker.socket docker containerd)
fi
for u in "${units[@]}"; do
  # (the kubelet stopped above; in check mode it is still running)
  if [[ $u != kubelet ]] && systemctl is-active --quiet "$u" 2>/dev/null; then
    change "stop $u" systemctl stop "$u"
  fi
  if systemctl is-enabled --quiet "$u" 2>/dev/null; then
    change "disable $u" systemctl disable --quiet "$u"
  fi
done

# The kubelet's pod slices (transient systemd units, cgroup driver systemd).
if [[ -n $(systemctl list-units --all --no-legend --plain 'kubepods*' 2>/dev/null || true) ]]; then
  change "stop the kubelet's pod slices" systemctl stop kubepods.slice
fi

# Mounts on and under the kubelet's and containerd's folders (the kubelet
# bind-mounts /var/lib/kubelet onto itself), and Docker's when it goes (its
# bind mount of the host's network namespace, /run/docker/netns/default),
# deepest first.
mount_dirs='/var/lib/kubelet|/run/containerd|/var/lib/containerd|/run/netns'
if ((runtime_goes)); then
  mount_dirs+='|/run/docker|/var/lib/docker'
fi
runtime_mounts() {
  awk '{print $2}' /proc/mounts | grep -E "^($mount_dirs)(/|\$)" | sort -r || true
}
umount_all() {
  local m
  runtime_mounts | while read -r m; do umount -l "$m"; done
}
if [[ -n $(runtime_mounts) ]]; then
  change "unmount the pods' volumes and sandboxes" umount_all
fi

# Pod network namespaces and the interfaces flannel and the bridge plugin made.
if compgen -G '/run/netns/cni-*' >/dev/null; then
  delete_netns() {
    local ns
    for ns in /run/netns/cni-*; do ip netns delete "${ns##*/}" 2>/dev/null || rm -f "$ns"; done
  }
  change "delete the pods' network namespaces" delete_netns
fi
links=(flannel.1 cni0 kube-ipvs0)
if ((runtime_goes)); then
  links+=(docker0) # Docker's default bridge, left when dockerd stops
fi
for link in "${links[@]}"; do
  if ip link show "$link" >/dev/null 2>&1; then
    change "delete interface $link" ip link delete "$link"
  fi
done

# Kubernetes', flannel's and the CNI plugins' iptables rules and chains (and
# Docker's when it goes: DOCKER and DOCKER-*, its bridge's masquerade), in
# every backend that holds some; all other rules are kept as they are (a
# container's DOCKER_OUTPUT and DOCKER_POSTROUTING, its engine's DNS, too).
k8s_rules='KUBE-|FLANNEL-|CNI-'
rules_of="Kubernetes'"
if ((runtime_goes)); then
  k8s_rules+='|DOCKER(-[A-Z]+)?( |$)|docker0'
  rules_of="Kubernetes' and Docker's"
fi
for family in iptables ip6tables; do
  for backend in nft legacy; do
    save=$family-$backend-save
    restore=$family-$backend-restore
    if ! command -v "$save" >/dev/null || ! command -v "$restore" >/dev/null; then
      continue
    fi
    rules=$("$save" 2>/dev/null || true)
    if grep -qE -- "$k8s_rules" <<<"$rules"; then
      strip_rules() {
        grep -vE -- "$k8s_rules" <<<"$rules" | "$restore"
      }
      change "remove $rules_of $family rules ($backend)" strip_rules
    fi
  done
done

# Files and folders boot or the cluster created.
paths=(
  /etc/kubernetes /var/lib/kubelet /var/lib/etcd /var/lib/cni /run/flannel
  /etc/cni/net.d/10-flannel.conflist /var/log/pods /var/log/containers
  /var/lib/boot /etc/sysctl.d/90-boot-kubernetes.conf /etc/modules-load.d/boot-kubernetes.conf
  /usr/local/bin/helm /etc/crictl.yaml /opt/cni/bin/flannel
  /etc/boot /etc/apt/apt.conf.d/90boot-proxy /etc/apt/apt.conf.d/90boot-docker-ca /etc/apt/apt.conf.d/90boot-kubernetes-ca
  /etc/systemd/system/containerd.service.d/90-boot-proxy.conf /etc/systemd/system/docker.service.d/90-boot-proxy.conf
  /etc/systemd/system/kubelet.service.d/90-boot-proxy.conf
)
# The registry mirrors' files host prep wrote (their first line, or the
# marker beside Docker's daemon.json, says so).
shopt -s nullglob
for f in /etc/containerd/certs.d/*/hosts.toml /etc/docker/certs.d/*/ca.crt; do
  if [[ $(head -n 1 -- "$f") == "# Written by boot: "* ]]; then
    paths+=("${f%/*}")
  fi
done
# The etcd data boot restore replaced, kept beside the data folder.
paths+=(/var/lib/etcd.before-restore-* /var/lib/etcd.restoring)
shopt -u nullglob
if [[ -f /etc/docker/.daemon-json-by-boot ]]; then
  paths+=(/etc/docker/daemon.json /etc/docker/.daemon-json-by-boot)
fi
if [[ $mode_source == bundle ]]; then
  paths+=("${installed[@]}" /etc/systemd/system/kubelet.service.d)
fi
if ((runtime_goes)); then
  paths+=(/etc/containerd /var/lib/containerd /run/containerd /opt/containerd /var/lib/docker /run/docker /etc/docker)
fi
# The group docker, when boot's runtime script created it (bundle mode; the
# marker is in /var/lib/boot, removed below).
if ((runtime_goes)) && [[ -f /var/lib/boot/docker-group-created ]] && getent group docker >/dev/null; then
  change "remove the group docker (boot created it)" groupdel docker
fi
reload=0
for p in "${paths[@]}"; do
  if [[ -e $p || -L $p ]]; then
    change "remove $p" rm -rf -- "$p"
    [[ $p == /etc/systemd/system/* ]] && reload=1
  fi
done
# Folders left empty by the removals above.
for d in /etc/cni/net.d /etc/cni /opt/cni/bin /opt/cni /etc/containerd/certs.d /etc/docker/certs.d /etc/systemd/system/sockets.target.wants \
  /etc/systemd/system/containerd.service.d /etc/systemd/system/docker.service.d /etc/systemd/system/kubelet.service.d; do
  if [[ -d $d ]] && [[ -z $(ls -A -- "$d") ]]; then
    change "remove empty $d" rmdir -- "$d"
  fi
done
if ((reload)); then
  change "reload systemd units" systemctl daemon-reload
fi

# /etc/hosts lines and the fstab swap entries host prep changed.
if grep -q '# added by boot$' /etc/hosts 2>/dev/null; then
  drop_hosts() {
    # In place: /etc/hosts may be a bind mount.
    local kept
    kept=$(grep -v '# added by boot$' /etc/hosts)
    printf '%s\n' "$kept" >/etc/hosts
  }
  change "remove boot's lines from /etc/hosts" drop_hosts
fi
if [[ -f /etc/fstab.boot-backup ]]; then
  restore_fstab() {
    cp -p /etc/fstab.boot-backup /etc/fstab
    rm -f /etc/fstab.boot-backup
  }
  change "restore /etc/fstab from /etc/fstab.boot-backup" restore_fstab
fi

# With --purge (online): the packages and their apt repositories.
if ((purge)) && [[ $mode_source == online ]]; then
  pkgs=()
  for p in kubeadm kubelet kubectl cri-tools kubernetes-cni docker-ce docker-ce-cli containerd.io; do
    [[ -n $(installed_version "$p") ]] && pkgs+=("$p")
  done
  if ((${#pkgs[@]} > 0)); then
    change "unhold ${pkgs[*]}" apt-mark unhold "${pkgs[@]}"
    change "purge ${pkgs[*]}" apt_get purge -y "${pkgs[@]}"
  fi
  for f in /etc/apt/sources.list.d/kubernetes.list /etc/apt/keyrings/kubernetes-apt-keyring.asc \
    /etc/apt/sources.list.d/docker.list /etc/apt/keyrings/docker.asc /var/lib/containerd /var/lib/docker /etc/containerd; do
    if [[ -e $f ]]; then
      change "remove $f" rm -rf -- "$f"
    fi
  done
fi
