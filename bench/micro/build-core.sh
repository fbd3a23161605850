#!/usr/bin/env bash
# Builds src/core of a git revision (or of the working tree with "worktree") into OUT/dist/core/*.js,
# for bench/micro/admission.mjs to compare builds side by side in one run.
#   bash bench/micro/build-core.sh HEAD~3 /tmp/pc-before
#   bash bench/micro/build-core.sh worktree /tmp/pc-after
set -euo pipefail
rev=$1 out=$2
root=$(git rev-parse --show-toplevel)
rm -rf "$out" && mkdir -p "$out/src"
if [ "$rev" = worktree ]; then cp -r "$root/src/core" "$out/src/core"
else git -C "$root" archive "$rev" src/core | tar -x -C "$out"; fi
ln -s "$root/node_modules" "$out/node_modules"
echo '{"type":"module"}' >"$out/package.json"
sed -e 's#"include": \["src/\*\*/\*.ts"\]#"include": ["src/core/**/*.ts"]#' "$root/tsconfig.json" >"$out/tsconfig.json"
(cd "$out" && node_modules/.bin/tsc -p tsconfig.json --outDir dist --sourceMap false)
echo "built $rev into $out/dist/core"
