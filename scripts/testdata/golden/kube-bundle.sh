#!/usr/bin/env bash
# kube-bundle.sh: rendered by boot from typed parameters; safe to run again.
# Usage: kube-bundle.sh [check]
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
  if [[ -f $dest ]] && cmp -s -- "$src" "$dest" && [[ $(stat -c %a -- "$dest") == "${perm#0}" ]]; then
    return 1
  fi
  change "install $dest" install -D -m "$perm" -- "$src" "$dest"
}

# put_content DEST PERM: put_file with the content read from stdin.
put_content() {
  local src
  src=$(mktemp -p "$tmp")
  cat >"$src"
  put_file "$src" "$1" "$2"
}

# Parameters.
bin='/var/tmp/boot/bundle/bin'
bins=(kubeadm kubelet kubectl)
staging='/var/tmp/boot/bundle'

# kubeadm, kubelet, kubectl from the uploaded bundle into /usr/local/bin,
# kubelet's unit and kubeadm's drop-in into /etc/systemd/system: only files
# that differ are replaced.
reload=0
restart=0
for b in "${bins[@]}"; do
  [[ -f $bin/$b ]] || die "$bin/$b is missing (upload the bundle first)"
  if put_file "$bin/$b" "/usr/local/bin/$b" 0755 && [[ $b == kubelet ]]; then
    restart=1
  fi
done
for f in kubelet.service:/etc/systemd/system/kubelet.service 10-kubeadm.conf:/etc/systemd/system/kubelet.service.d/10-kubeadm.conf; do
  src=$staging/systemd/${f%%:*}
  [[ -f $src ]] || die "$src is missing (upload the bundle first)"
  if put_file "$src" "${f#*:}" 0644; then
    reload=1
    restart=1
  fi
done

if ((reload)); then
  change "reload systemd units" systemctl daemon-reload
fi
# kubelet on at boot. kubeadm init/join start it; a kubelet already running
# (a node that joined) is restarted when its binary or unit changed.
if ! systemctl is-enabled --quiet kubelet 2>/dev/null; then
  change "enable kubelet at boot" systemctl enable kubelet
fi
if ((restart)) && systemctl is-active --quiet kubelet 2>/dev/null; then
  change "restart kubelet" systemctl restart kubelet
fi
