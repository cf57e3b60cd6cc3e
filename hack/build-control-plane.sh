#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, kubectl and helm from the Go module proxy into a
# cache outside the repo, one folder per component and version, so a warm machine rebuilds nothing.
# Each component gets its own wrapper module: k8s.io/kubernetes cannot be `go install`ed (its go.mod
# replaces every staging module with ./staging), and a separate module keeps MVS from moving the pins
# of one component under another.
#   CG_CACHE_DIR   cache root (default ~/.cache/concurrency-guard)
# Prints the bin folders on the last line as KEY=path pairs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache_root="${CG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/concurrency-guard}"
mkdir -p "$cache_root"
export GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=mod" CGO_ENABLED=0
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

log() { printf '[build-control-plane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Runs a long command with a heartbeat every 30 s and records wall time and peak RSS of the whole tree.
run_timed() {
  local what="$1"; shift
  local start=$SECONDS timefile
  timefile="$(mktemp)"
  /usr/bin/time -f '%M' -o "$timefile" "$@" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30 &
    wait $! || true
    kill -0 "$pid" 2>/dev/null && log "$what: still building ($((SECONDS - start)) s)"
  done
  wait "$pid"
  log "$what: done in $((SECONDS - start)) s, peak RSS of the largest process $(( $(tail -1 "$timefile") / 1024 )) MiB"
  rm -f "$timefile"
}

k8s_minor="${K8S_VERSION#v1.}"; k8s_minor="${k8s_minor%%.*}"
staging_version="v0.${K8S_VERSION#v1.}"

build_kubernetes() {
  local dir="$cache_root/kubernetes-$K8S_VERSION"
  if [[ -f "$dir/.complete" ]]; then log "kubernetes $K8S_VERSION: cached in $dir"; return; fi
  log "kubernetes $K8S_VERSION: building kube-apiserver, kube-controller-manager, kubectl into $dir"
  local mod="$dir/module"
  rm -rf "$dir"; mkdir -p "$mod" "$dir/bin"
  local gomod
  gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')"
  [[ -f "$gomod" ]] || { log "cannot read the go.mod of k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
  # The staging list is read from upstream's go.mod rather than hard-coded: it grows between minors.
  local staging
  staging="$( { awk '/=> \.\/staging\// {print $1}' "$gomod"; awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod"; } | sort -u)"
  local count; count="$(wc -l <<<"$staging")"
  (( count >= 25 )) || { log "only $count staging modules found in $gomod"; exit 1; }
  log "kubernetes $K8S_VERSION: $count staging modules replaced by their $staging_version tags"
  (
    cd "$mod"
    go mod init concurrency-guard.invalid/kubernetes-bins >/dev/null 2>&1
    go mod edit -go=1.26.0 -require="k8s.io/kubernetes@$K8S_VERSION"
    for m in $staging; do go mod edit -replace="$m=$m@$staging_version"; done
    grep -E '^godebug ' "$gomod" | while read -r _ kv; do go mod edit -godebug="$kv"; done || true
    for t in kube-apiserver kube-controller-manager kubectl; do go mod edit -tool="k8s.io/kubernetes/cmd/$t"; done
    run_timed "kubernetes go mod tidy" go mod tidy
    local ldf="-s -w" pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldf+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
      ldf+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    run_timed "kubernetes go build" go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags="$ldf" -o "$dir/bin/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl
  )
  touch "$dir/.complete"
}

build_etcd() {
  local dir="$cache_root/etcd-$ETCD_VERSION"
  if [[ -f "$dir/.complete" ]]; then log "etcd $ETCD_VERSION: cached in $dir"; return; fi
  log "etcd $ETCD_VERSION: building into $dir"
  rm -rf "$dir"; mkdir -p "$dir/module" "$dir/bin"
  (
    cd "$dir/module"
    go mod init concurrency-guard.invalid/etcd-bins >/dev/null 2>&1
    go mod edit -go=1.26.0 -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION" -tool=go.etcd.io/etcd/server/v3
    run_timed "etcd go mod tidy" go mod tidy
    # The binary's package is the server module root (package main); without -o it would be named `server`.
    run_timed "etcd go build" go build -trimpath -ldflags='-s -w' -o "$dir/bin/etcd" go.etcd.io/etcd/server/v3
  )
  touch "$dir/.complete"
}

build_helm() {
  local dir="$cache_root/helm-$HELM_VERSION"
  if [[ -f "$dir/.complete" ]]; then log "helm $HELM_VERSION: cached in $dir"; return; fi
  log "helm $HELM_VERSION: building into $dir"
  rm -rf "$dir"; mkdir -p "$dir/module" "$dir/bin"
  local major="${HELM_VERSION%%.*}"
  local modpath="helm.sh/helm"; [[ "$major" != v1 && "$major" != v2 ]] && modpath="helm.sh/helm/$major"
  (
    cd "$dir/module"
    go mod init concurrency-guard.invalid/helm-bins >/dev/null 2>&1
    go mod edit -go=1.26.0 -require="$modpath@$HELM_VERSION" -tool="$modpath/cmd/helm"
    run_timed "helm go mod tidy" go mod tidy
    run_timed "helm go build" go build -trimpath \
      -ldflags="-s -w -X $modpath/internal/version.version=$HELM_VERSION" -o "$dir/bin/helm" "$modpath/cmd/helm"
  )
  touch "$dir/.complete"
}

total_start=$SECONDS
build_etcd
build_kubernetes
build_helm
log "all components ready in $((SECONDS - total_start)) s"
echo "ETCD_BIN_DIR=$cache_root/etcd-$ETCD_VERSION/bin KUBERNETES_BIN_DIR=$cache_root/kubernetes-$K8S_VERSION/bin HELM_BIN_DIR=$cache_root/helm-$HELM_VERSION/bin"
