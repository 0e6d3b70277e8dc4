#!/usr/bin/env bash
# The local control plane: real etcd, kube-apiserver, kube-controller-manager
# and kube-scheduler, with kwok playing the kubelet of a few fake nodes, all
# run as local processes by kwokctl's binary runtime. Binaries come from
# hack/build.sh; nothing is downloaded.
#
#   hack/cluster.sh up           create the cluster (or say it is up), print
#                                `export KUBECONFIG=...`
#   hack/cluster.sh down         delete it and end all its processes
#   hack/cluster.sh restart      stop and start every component (etcd keeps its
#                                data), as a control plane upgrade would
#   hack/cluster.sh status       say whether it is up (exit 0) or not (exit 1)
#   hack/cluster.sh kubeconfig   print the kubeconfig path
#   hack/cluster.sh audit-log    print the API server's audit log path
#
# Environment: WORKUNITS_CACHE (default ~/.cache/workunits),
# WORKUNITS_CLUSTER (cluster name, default workunits), WORKUNITS_NODES
# (fake nodes, default 3), KUBECTL (default kubectl).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${WORKUNITS_CACHE:-$HOME/.cache/workunits}"
bin="$cache/bin"
name="${WORKUNITS_CLUSTER:-workunits}"
nodes="${WORKUNITS_NODES:-3}"
export KWOK_WORKDIR="$cache/kwok"
dir="$KWOK_WORKDIR/clusters/$name"
kubeconfig="$dir/kubeconfig.yaml"
audit_log="$dir/logs/audit.log"
kwokctl="$bin/kwokctl-$KWOK_VERSION"
kubectl="${KUBECTL:-kubectl}"

log() { printf 'cluster: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}

k() { "$kubectl" --kubeconfig "$kubeconfig" "$@"; }

# Pids of this cluster's processes, from the pid files kwokctl keeps.
pids() {
  local f pid
  for f in "$dir"/pids/*.pid; do
    [[ -f $f ]] || continue
    pid=$(<"$f")
    if [[ $pid =~ ^[0-9]+$ ]]; then
      printf '%s %s\n' "$pid" "$(basename "$f" .pid)"
    fi
  done
}

# Whether the process PID still runs a binary of ours (a recycled pid runs
# something else).
ours() {
  local exe
  exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
  [[ $exe == "$bin"/* ]]
}

healthy() {
  [[ -f $kubeconfig && -d $dir/pids ]] || return 1
  local pid component count=0
  while read -r pid component; do
    ours "$pid" || return 1
    count=$((count + 1))
  done < <(pids)
  ((count >= 5)) || return 1
  k --request-timeout=5s get --raw /readyz >/dev/null 2>&1 || return 1
  # A cluster made before kwok's Logs CRD was enabled is made again.
  k --request-timeout=5s get crd logs.kwok.x-k8s.io >/dev/null 2>&1
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out waiting for $what"
    sleep 0.5
  done
}

nodes_ready() {
  local ready
  ready=$(k get nodes -o jsonpath='{range .items[*]}{range .status.conditions[?(@.type=="Ready")]}{.status}{"\n"}{end}{end}' | grep -c '^True$')
  ((ready >= nodes))
}

install_stages() {
  wait_for 60 "the Stage CRD" k wait --for condition=established --timeout=5s crd/stages.kwok.x-k8s.io
  k apply -f "$here/stages/" >/dev/null
}

add_nodes() {
  local have
  have=$(k get nodes -o name | wc -l)
  if ((have < nodes)); then
    "$kwokctl" --name "$name" scale node --replicas "$nodes" >/dev/null 2>&1 ||
      die "kwokctl scale node failed"
  fi
  wait_for 120 "$nodes Ready nodes" nodes_ready
}

up() {
  local start=$SECONDS
  if healthy; then
    # Stages may have changed since the cluster was created: apply is a no-op
    # when they have not.
    install_stages
    add_nodes
    log "cluster $name is already up"
  else
    if [[ -d $dir ]]; then
      log "cluster $name exists but is not healthy; recreating it"
      down
    fi
    "$here/build.sh" >/dev/null
    local flags=(
      --name "$name"
      --runtime binary
      --config "$here/kwokctl.yaml"
      --etcd-binary "$bin/etcd-$ETCD_VERSION"
      --kube-apiserver-binary "$bin/kube-apiserver-$KUBE_VERSION"
      --kube-controller-manager-binary "$bin/kube-controller-manager-$KUBE_VERSION"
      --kube-scheduler-binary "$bin/kube-scheduler-$KUBE_VERSION"
      --kwok-controller-binary "$bin/kwok-$KWOK_VERSION"
      --kube-audit-policy "$here/audit-policy.yaml"
      --kube-authorization
      --kube-admission
      --disable-qps-limits
      --enable-crds Stage,Logs
      --kubeconfig ''
      --wait 120s
    )
    local create_log="$KWOK_WORKDIR/create-$name.log"
    mkdir -p "$KWOK_WORKDIR"
    log "creating cluster $name"
    if ! "$kwokctl" create cluster "${flags[@]}" >"$create_log" 2>&1; then
      tail -n 30 "$create_log" >&2
      die "kwokctl create cluster failed; its output is in $create_log"
    fi
    install_stages
    add_nodes
    wait_for 60 "the default ServiceAccount" k get serviceaccount default -n default
    log "cluster $name is up ($((SECONDS - start))s)"
  fi
  echo "export KUBECONFIG=$kubeconfig"
}

down() {
  if [[ ! -d $dir ]]; then
    log "cluster $name does not exist"
    return 0
  fi
  local left=() pid component
  mapfile -t left < <(pids)
  # --kubeconfig names the file kwokctl removes the cluster's context from:
  # the cluster's own (an empty value is refused here, unlike at create).
  "$kwokctl" --name "$name" delete cluster --kubeconfig "$kubeconfig" >"$KWOK_WORKDIR/delete-$name.log" 2>&1 ||
    log "kwokctl delete cluster failed (see $KWOK_WORKDIR/delete-$name.log); ending the processes by pid"
  # kwokctl stops the processes it started; end any that survived, by pid.
  for entry in "${left[@]}"; do
    read -r pid component <<<"$entry"
    if ours "$pid"; then
      log "ending leftover $component (pid $pid)"
      kill "$pid" 2>/dev/null || true
    fi
  done
  for entry in "${left[@]}"; do
    read -r pid component <<<"$entry"
    local deadline=$((SECONDS + 10))
    while ours "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    if ours "$pid"; then
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$dir"
  log "cluster $name deleted"
}


restart() {
  healthy || die "cluster $name is not up"
  local before
  before=$(pids)
  "$kwokctl" stop cluster --name "$name" >/dev/null 2>&1 || die "kwokctl stop cluster failed"
  # kwokctl signals the components and returns: on a busy machine etcd and the API
  # server take a while to exit, and a start before then finds their ports taken.
  wait_for 60 "the components to exit" bash -c "$(declare -f ours); bin='$bin'; \
    while read -r pid _; do ! ours \"\$pid\" || exit 1; done <<<'$before'"
  local stopped
  stopped=$(date -u +%Y-%m-%dT%H:%M:%S)
  "$kwokctl" start cluster --name "$name" >/dev/null 2>&1 || die "kwokctl start cluster failed"
  wait_for 120 "the API server" k --request-timeout=5s get --raw /readyz
  # kwok moves pods only on the nodes whose Lease it holds. A restarted kwok finds
  # the Leases of its predecessor held by another identity and would wait minutes for
  # them to expire, with no pod starting or ending; removed, they are taken at once
  # (or at kwok's next try, under a minute later, if it looked before the removal).
  k delete leases -n kube-node-lease --all --wait=false >/dev/null
  wait_for 120 "$nodes Ready nodes" nodes_ready
  wait_for 180 "kwok to take the $nodes node leases" leases_renewed_since "$stopped"
  log "cluster $name restarted"
}

leases_renewed_since() {
  local renewed
  renewed=$(k get leases -n kube-node-lease -o jsonpath='{range .items[*]}{.spec.renewTime}{"\n"}{end}' |
    awk -v since="$1" 'substr($0, 1, 19) >= since' | grep -c .)
  ((renewed >= nodes))
}

status() {
  if healthy; then
    echo "cluster $name is up; KUBECONFIG=$kubeconfig"
  elif [[ -d $dir ]]; then
    echo "cluster $name exists but is not healthy"
    return 1
  else
    echo "cluster $name is down"
    return 1
  fi
}

case "${1:-}" in
up) up ;;
down) down ;;
restart) restart ;;
status) status ;;
kubeconfig) echo "$kubeconfig" ;;
audit-log) echo "$audit_log" ;;
*)
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
