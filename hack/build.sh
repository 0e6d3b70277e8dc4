#!/usr/bin/env bash
# Builds the local control plane's binaries from their Go modules at the
# versions pinned in versions.env, into a cache outside the repository.
# A binary whose pinned version is already built is reused as it is.
#
#   hack/build.sh            build whatever is missing, print the bin dir
#
# Environment: WORKUNITS_CACHE (default ~/.cache/workunits).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${WORKUNITS_CACHE:-$HOME/.cache/workunits}"
bin="$cache/bin"
work="$cache/build"
mkdir -p "$bin" "$work"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

log() { printf 'build: %s\n' "$*" >&2; }

fail() {
  local component=$1 logfile=$2
  log "FAILED to build $component; last lines of $logfile:"
  tail -n 30 "$logfile" >&2
  exit 1
}

# logged COMPONENT LOGFILE FUNCTION: runs FUNCTION in a subshell with its
# output in LOGFILE. errexit is ignored inside anything tested with `||` or
# `if`, so the subshell runs as a plain command and its status is read after.
logged() {
  local component=$1 logfile=$2 rc
  shift 2
  set +e
  (
    set -e
    "$@"
  ) >"$logfile" 2>&1
  rc=$?
  set -e
  ((rc == 0)) || fail "$component" "$logfile"
}

# Kubernetes' staging modules are replaced by local folders in its go.mod, so
# `go install` refuses it. A module of ours requires k8s.io/kubernetes and
# points every staging module at its published v0.Y.Z twin.
build_kube() {
  local want=() name
  for name in kube-apiserver kube-controller-manager kube-scheduler; do
    [[ -x "$bin/$name-$KUBE_VERSION" ]] || want+=("$name")
  done
  ((${#want[@]})) || return 0

  local dir="$work/kube-$KUBE_VERSION" logfile="$work/kube-$KUBE_VERSION.log"
  mkdir -p "$dir"
  log "kubernetes $KUBE_VERSION: ${want[*]} (a cold build takes several minutes)"
  logged "kubernetes $KUBE_VERSION (${want[*]})" "$logfile" _build_kube "$dir" "${want[@]}"
}

_build_kube() {
  local dir=$1 staging="v0.${KUBE_VERSION#v1.}" modfile minor ldflags pkg name
  shift
  local want=("$@")
  cd "$dir"
  modfile=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  {
    echo "module workunits.dev/hack/kube"
    echo
    echo "go 1.24.0"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$modfile" |
      awk -v v="$staging" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } >go.mod
  printf 'package main\n' >main.go
  # `go get` of each command records every requirement and go.sum line its
  # build needs. No `go mod tidy`: main.go imports nothing, so tidy would
  # drop k8s.io/kubernetes again and the build would find no package.
  for name in "${want[@]}"; do
    go get "k8s.io/kubernetes/cmd/$name@$KUBE_VERSION"
  done
  minor=${KUBE_VERSION#v1.}
  minor=${minor%%.*}
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=$KUBE_VERSION"
    ldflags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for name in "${want[@]}"; do
    go build -ldflags "$ldflags" -o "$bin/$name-$KUBE_VERSION.tmp" "k8s.io/kubernetes/cmd/$name"
    mv "$bin/$name-$KUBE_VERSION.tmp" "$bin/$name-$KUBE_VERSION"
  done
}

# etcd's modules use replace directives too; its server main is one call.
build_etcd() {
  [[ -x "$bin/etcd-$ETCD_VERSION" ]] && return 0
  local dir="$work/etcd-$ETCD_VERSION" logfile="$work/etcd-$ETCD_VERSION.log"
  mkdir -p "$dir"
  log "etcd $ETCD_VERSION"
  logged "etcd $ETCD_VERSION" "$logfile" _build_etcd "$dir"
}

_build_etcd() {
  local dir=$1 ldflags
  cd "$dir"
  cat >go.mod <<MOD
module workunits.dev/hack/etcd

go 1.26.0
MOD
  cat >main.go <<'GO'
// Command etcd runs the etcd server, built from its published module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go mod tidy
  ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION"
  go build -ldflags "$ldflags" -o "$bin/etcd-$ETCD_VERSION.tmp" .
  mv "$bin/etcd-$ETCD_VERSION.tmp" "$bin/etcd-$ETCD_VERSION"
}

build_kwok() {
  local name
  for name in kwok kwokctl; do
    [[ -x "$bin/$name-$KWOK_VERSION" ]] && continue
    local logfile="$work/$name-$KWOK_VERSION.log"
    log "$name $KWOK_VERSION"
    logged "$name $KWOK_VERSION" "$logfile" _build_kwok "$name"
  done
}

_build_kwok() {
  local name=$1
  GOBIN="$work/gobin-$KWOK_VERSION" go install "sigs.k8s.io/kwok/cmd/$name@$KWOK_VERSION"
  mv "$work/gobin-$KWOK_VERSION/$name" "$bin/$name-$KWOK_VERSION"
}

# Helm's module has no replace directives: `go install` builds it as published.
build_helm() {
  [[ -x "$bin/helm-$HELM_VERSION" ]] && return 0
  local logfile="$work/helm-$HELM_VERSION.log"
  log "helm $HELM_VERSION"
  logged "helm $HELM_VERSION" "$logfile" _build_helm
}

_build_helm() {
  local major=${HELM_VERSION%%.*} gobin="$work/gobin-helm-$HELM_VERSION"
  GOBIN="$gobin" go install -ldflags "-s -w -X helm.sh/helm/$major/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/$major/cmd/helm@$HELM_VERSION"
  mv "$gobin/helm" "$bin/helm-$HELM_VERSION"
}

command -v go >/dev/null || { log "go is not installed; the local control plane is built with Go"; exit 1; }
build_etcd
build_kwok
build_kube
build_helm
echo "$bin"
