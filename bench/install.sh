#!/usr/bin/env bash
# Installs what the benchmark needs and skips what is there:
#   Debian packages nginx, haproxy, wrk (apt-get update only when one is missing),
#   vegeta (a constant-rate load generator) built from the Go module proxy into .tools/bin,
#   the npm dependencies (npm ci when node_modules is missing or older than the lockfile),
#   and the dist/ build of portcullis (tsc) when a source file is newer than it.
# Quiet when everything is present; every step says what it does on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

VEGETA_VERSION=v12.13.0 # on the Go module proxy (go list -m -versions github.com/tsenart/vegeta/v12)

log() { printf '[bench] %s\n' "$*" >&2; }

# --- Debian packages -----------------------------------------------------------------------
missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  log "installing ${missing[*]} (apt-get)"
  "${sudo[@]}" apt-get update -qq >&2
  # The services these packages ship are never used: the harness runs nginx and haproxy as its
  # own foreground children with generated configs.
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
else
  log "nginx, haproxy, wrk present"
fi

# --- vegeta --------------------------------------------------------------------------------
mkdir -p .tools/bin
if [ -x .tools/bin/vegeta ] && [ "$(cat .tools/vegeta.version 2>/dev/null)" = "$VEGETA_VERSION" ]; then
  log "vegeta $VEGETA_VERSION present"
else
  command -v go >/dev/null 2>&1 || { log "go is needed to build vegeta (install Go 1.22+)"; exit 1; }
  log "building vegeta $VEGETA_VERSION (go install)"
  GOBIN="$PWD/.tools/bin" go install "github.com/tsenart/vegeta/v12@$VEGETA_VERSION" >&2
  echo "$VEGETA_VERSION" >.tools/vegeta.version
fi

# --- npm dependencies and the build --------------------------------------------------------
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund >&2
else
  log "npm dependencies present"
fi
# The deno npm package ships its binary; npm 11 may skip the install script that links it.
[ -x node_modules/deno/deno ] || node node_modules/deno/install.cjs >/dev/null

if [ ! -f dist/main.js ] || [ -n "$(find src -newer dist/main.js -name '*.ts' -print -quit)" ]; then
  log "building portcullis (tsc)"
  npx tsc -p tsconfig.json >&2
else
  log "dist/ is up to date"
fi
