#!/usr/bin/env bash
# Debian packages the tests and the demo use: lsof (the agent benchmark's yardstick), nftables and
# iproute2 (network namespaces and dropped ACKs in node-agent tests), util-linux (setpriv: control-plane
# children die with their parent), procps, time (peak memory of the Go builds), busybox and dash (the
# policy engine's `ulimit` dialects are checked against the real shells). Installs only what is missing.
set -euo pipefail
declare -A want=([busybox]=busybox [dash]=dash [lsof]=lsof [nft]=nftables [ip]=iproute2 [setpriv]=util-linux [pgrep]=procps [ss]=iproute2 [taskset]=util-linux)
missing=()
for cmd in "${!want[@]}"; do command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}"); done
[[ -x /usr/bin/time ]] || missing+=(time)
if (( ${#missing[@]} == 0 )); then exit 0; fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "[install-system-deps] installing: ${missing[*]}" >&2
if [[ $(id -u) -ne 0 ]]; then echo "[install-system-deps] need root to install ${missing[*]}" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
