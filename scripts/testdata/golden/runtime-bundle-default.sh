#!/usr/bin/env bash
# runtime-bundle.sh: rendered by boot from typed parameters; safe to run again.
# Usage: runtime-bundle.sh [check]
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
staging='/var/tmp/boot/bundle'

# containerd, its runc shim, ctr, runc and crictl from the uploaded bundle
# into /usr/local/bin, the CNI plugins into /opt/cni/bin: only files that
# differ are replaced.
restart=0
reload=0
for b in containerd containerd-shim-runc-v2 ctr runc crictl; do
  [[ -f $staging/bin/$b ]] || die "$staging/bin/$b is missing (upload the bundle first)"
  if put_file "$staging/bin/$b" "/usr/local/bin/$b" 0755; then
    restart=1
  fi
done
shopt -s nullglob
plugins=("$staging"/cni/bin/*)
shopt -u nullglob
((${#plugins[@]} > 0)) || die "$staging/cni/bin holds no CNI plugins (upload the bundle first)"
for p in "${plugins[@]}"; do
  put_file "$p" "/opt/cni/bin/${p##*/}" 0755 || true
done

[[ -f $staging/systemd/containerd.service ]] || die "$staging/systemd/containerd.service is missing (upload the bundle first)"
if put_file "$staging/systemd/containerd.service" /etc/systemd/system/containerd.service 0644; then
  reload=1
  restart=1
fi

if put_content /etc/containerd/config.toml 0644 <<'BOOT_EOF'; then
# Written by boot: containerd 2.x with the CRI plugin for Kubernetes.
version = 3

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "registry.k8s.io/pause:3.10.2"

# Registry mirrors: one hosts.toml per upstream registry.
[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = "/etc/containerd/certs.d"

[plugins.'io.containerd.cri.v1.runtime'.containerd]
  default_runtime_name = 'runc'

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = 'io.containerd.runc.v2'

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  SystemdCgroup = true
BOOT_EOF
  restart=1
fi
put_content /etc/crictl.yaml 0644 <<'BOOT_EOF' || true
# Written by boot.
runtime-endpoint: unix:///run/containerd/containerd.sock
image-endpoint: unix:///run/containerd/containerd.sock
timeout: 10
BOOT_EOF

# Docker Engine on the node's containerd: dockerd, docker-proxy and
# docker-init (tini) restart it when they change, the docker CLI does not;
# its units, and the group docker that owns its socket.
docker_restart=0
docker_socket=0
for b in dockerd docker-proxy docker-init docker; do
  [[ -f $staging/bin/$b ]] || die "$staging/bin/$b is missing (upload the bundle first)"
  if put_file "$staging/bin/$b" "/usr/local/bin/$b" 0755 && [[ $b != docker ]]; then
    docker_restart=1
  fi
done
for u in docker.service docker.socket; do
  [[ -f $staging/systemd/$u ]] || die "$staging/systemd/$u is missing (upload the bundle first)"
  if put_file "$staging/systemd/$u" "/etc/systemd/system/$u" 0644; then
    reload=1
    docker_restart=1
    if [[ $u == docker.socket ]]; then
      docker_socket=1
    fi
  fi
done
# A group boot creates is marked so, for teardown to remove it again.
create_docker_group() {
  groupadd --system docker
  mkdir -p /var/lib/boot
  : >/var/lib/boot/docker-group-created
}
if ! getent group docker >/dev/null; then
  change "create group docker" create_docker_group
fi

if ((reload)); then
  change "reload systemd units" systemctl daemon-reload
fi
if ! systemctl is-enabled --quiet containerd 2>/dev/null; then
  change "enable containerd at boot" systemctl enable containerd
fi
if ! systemctl is-active --quiet containerd 2>/dev/null; then
  change "start containerd" systemctl start containerd
elif ((restart)); then
  change "restart containerd" systemctl restart containerd
fi

# Docker after containerd (docker.service requires it).
for u in docker.socket docker.service; do
  if ! systemctl is-enabled --quiet "$u" 2>/dev/null; then
    change "enable $u at boot" systemctl enable --quiet "$u"
  fi
done
if ! systemctl is-active --quiet docker.socket 2>/dev/null; then
  change "start docker.socket" systemctl start docker.socket
elif ((docker_socket)); then
  change "restart docker.socket and docker" systemctl restart docker.socket docker.service
  docker_restart=0
fi
if ! systemctl is-active --quiet docker 2>/dev/null; then
  change "start docker" systemctl start docker
elif ((docker_restart)); then
  change "restart docker" systemctl restart docker
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
