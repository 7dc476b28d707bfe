#!/usr/bin/env bash
# etcd-restore.sh: rendered by boot from typed parameters; safe to run again.
# Usage: etcd-restore.sh [check]
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

# Replaces this control plane's etcd data with data restored from a
# snapshot (boot restore made it, with etcdutl's restore, and uploaded it as
# an archive). The archive is unpacked beside the data folder first; then
# the control plane's static pods are stopped (their manifests moved out of
# the kubelet's folder), the old data folder is kept under another name, the
# restored one takes its place, and the pods are started again: etcd first,
# then the others; the API server must answer /readyz and /readyz/etcd.
# Stopped half way, the old data goes back in place and the manifests are
# put back. Nothing is deleted but the archive, once the API answers.
manifests='/etc/kubernetes/manifests'
held='/etc/kubernetes/boot-held-manifests'
admin='/etc/kubernetes/admin.conf'
timeout=180
data='/var/lib/etcd'
archive='/var/lib/boot/restore/etcd-data.tar.gz'
aside='/var/lib/etcd'.before-restore-20261207T150405Z
incoming='/var/lib/etcd'.restoring
components=('kube-apiserver' 'kube-controller-manager' 'kube-scheduler' 'etcd' )

# Static pods: a manifest moved from $manifests to $held stops its pod; put
# back, the kubelet runs it again. Each wait lasts at most $timeout seconds.

# put_back_held: put back every manifest held out of the kubelet's folder
# (by this run or by an earlier one that stopped half way).
put_back_held() {
  local f
  for f in "$held"/*.yaml; do
    [[ -e $f ]] || continue
    if [[ $mode == check ]]; then
      printf 'would: %s\n' "put back $manifests/${f##*/}, held out by an earlier run"
      continue
    fi
    mv -- "$f" "$manifests/${f##*/}"
    warn "put $manifests/${f##*/} back"
  done
}

# running_id NAME: the ID of NAME's running container, or nothing.
running_id() {
  crictl ps --name "^$1\$" --state running -q 2>/dev/null | sed -n 1p
}

# ready_pod NAME: the ID of NAME's ready static pod sandbox, or nothing.
ready_pod() {
  crictl pods --namespace kube-system --label "component=$1" --state ready -q 2>/dev/null | sed -n 1p
}

pod_gone() {
  [[ -z $(ready_pod "$1") ]]
}

# restarted NAME OLD: NAME runs again in a ready pod, in another container
# than OLD.
restarted() {
  local id
  id=$(running_id "$1")
  [[ -n $id && $id != "$2" && -n $(ready_pod "$1") ]]
}

api_ready() {
  kubectl --kubeconfig "$admin" --request-timeout=5s get --raw "$1" >/dev/null 2>&1
}

# wait_for WHAT COMMAND [ARG...]: run COMMAND every second until it
# succeeds, at most $timeout seconds.
wait_for() {
  local what=$1 deadline=$((SECONDS + timeout))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || die "timed out after ${timeout}s waiting until $what"
    sleep 1
  done
}

put_back_held
for c in "${components[@]}"; do
  [[ -f $manifests/$c.yaml ]] || die "no static pod manifest $manifests/$c.yaml: not a kubeadm control plane"
done
for tool in kubectl crictl tar gzip; do
  command -v "$tool" >/dev/null || die "$tool not found on root's PATH"
done
[[ ! -e $aside ]] || die "$aside exists already: a restore with this stamp ran before"

if [[ $mode == check ]]; then
  printf 'would: %s\n' "stop ${components[*]}"
  if [[ -e $data ]]; then
    printf 'would: %s\n' "keep etcd's data $data as $aside"
  fi
  printf 'would: %s\n' "put the restored data in $data, start etcd and then the others"
  exit 0
fi
[[ -f $archive ]] || die "no restored data at $archive"

# put_back_data: the old data goes back when the run stopped after moving
# it aside and before the restored data took its place.
put_back_data() {
  if [[ ! -e $data && -d $aside ]]; then
    mv -- "$aside" "$data"
    warn "put etcd's data $data back"
  fi
}
trap 'put_back_data; put_back_held; rm -rf -- "$incoming" "$tmp"' EXIT

rm -rf -- "$incoming"
install -d -m 0700 -- "$incoming"
tar -xzf "$archive" -C "$incoming" --no-same-owner
[[ -f $incoming/member/snap/db ]] || die "the restored data in $archive has no member/snap/db"

install -d -m 0700 -- "$held"
declare -A before
start=$SECONDS
for c in "${components[@]}"; do
  before[$c]=$(running_id "$c")
  mv -- "$manifests/$c.yaml" "$held/$c.yaml"
done
for c in "${components[@]}"; do
  wait_for "the kubelet stopped $c" pod_gone "$c"
done
printf 'changed: %s\n' "stopped ${components[*]} in $((SECONDS - start))s"

if [[ -e $data ]]; then
  mv -- "$data" "$aside"
  printf 'changed: %s\n' "kept etcd's data $data as $aside"
fi
mv -- "$incoming" "$data"
printf 'changed: %s\n' "put the restored data in $data"

mv -- "$held/etcd.yaml" "$manifests/etcd.yaml"
wait_for "etcd runs again in a new container" restarted etcd "${before[etcd]}"
for c in "${components[@]}"; do
  if [[ -e $held/$c.yaml ]]; then
    mv -- "$held/$c.yaml" "$manifests/$c.yaml"
  fi
done
wait_for "kube-apiserver runs again in a new container" restarted kube-apiserver "${before[kube-apiserver]}"
wait_for "the API server answers /readyz" api_ready /readyz
wait_for "etcd answers the API server (/readyz/etcd)" api_ready /readyz/etcd
rm -f -- "$archive"
printf 'changed: %s\n' "started ${components[*]} again in $((SECONDS - start))s"
