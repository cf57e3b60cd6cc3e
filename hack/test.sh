#!/usr/bin/env bash
# The whole test suite, from a machine that has only run `npm ci`: system packages, the control-plane
# binaries (cached outside the repo), typecheck, lint, then every vitest project.
# REQUIRE_E2E=1 turns a skip for a missing binary or privilege into a failure (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/install-system-deps.sh
bash hack/build-control-plane.sh >/dev/null
echo "[test] typecheck" >&2
tsc -p tsconfig.json --noEmit
echo "[test] lint" >&2
eslint .
echo "[test] vitest" >&2
exec vitest run "$@"
