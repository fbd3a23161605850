#!/usr/bin/env bash
# `npm run bench -- [options]`: installs what is missing (bench/install.sh), raises the open
# files limit for the socket flood, then runs the harness (bench/harness.mjs --help for options).
set -euo pipefail
cd "$(dirname "$0")/.."
for a in "$@"; do
  if [ "$a" = --help ] || [ "$a" = -h ]; then exec node bench/harness.mjs --help; fi
done
bash bench/install.sh
# 10,000 flood sockets on each side of 127.0.0.1 need more than the usual 1024 descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec node bench/harness.mjs "$@"
