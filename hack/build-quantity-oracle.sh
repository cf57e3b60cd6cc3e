#!/usr/bin/env bash
# Builds hack/quantity-oracle (k8s.io/apimachinery's ParseQuantity behind stdin/stdout) into a cache
# outside the repo, keyed by the apimachinery version, so test/unit/policy-quantity-oracle.test.ts can
# cross-check src/policy/quantity.ts against the API server's own parser. Prints the binary's path.
#   CG_CACHE_DIR   cache root (default ~/.cache/concurrency-guard)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module="$here/quantity-oracle"
version="$(awk '$1 == "k8s.io/apimachinery" {print $2}' "$module/go.mod")"
[[ -n "$version" ]] || { echo "no k8s.io/apimachinery version in $module/go.mod" >&2; exit 1; }

cache_root="${CG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/concurrency-guard}"
binary="$cache_root/quantity-oracle-$version"
# Rebuild when the oracle's source is newer than the cached binary.
if [[ -x "$binary" && "$binary" -nt "$module/main.go" && "$binary" -nt "$module/go.sum" ]]; then
  echo "$binary"
  exit 0
fi
mkdir -p "$cache_root"
export GOWORK=off GOFLAGS="${GOFLAGS:-} -mod=mod" CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
(cd "$module" && go build -trimpath -o "$binary.tmp" .)
mv "$binary.tmp" "$binary"
echo "$binary"
