#!/usr/bin/env bash
# Builds the example apps with Debian's clang and wasi-libc (scripts/install-deps.sh
# installs them): Examples/<app>/main.c → <out>/<app>/app.wasm, beside a copy of its
# app_manifest.json, ready for `rampart app pack --manifest <out>/<app>/app_manifest.json
# --wasm <out>/<app>/app.wasm`.
#   Examples/build.sh [OUT]     (default: .build/examples)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../.build/examples}"
clang="${CLANG:-$(command -v clang-14 || command -v clang)}"
for app in blink telemetry crasher storage; do
  mkdir -p "$out/$app"
  "$clang" --target=wasm32-wasi -O2 -Wall -Werror -I"$here/../SDK" -o "$out/$app/app.wasm" "$here/$app/main.c"
  cp "$here/$app/app_manifest.json" "$out/$app/app_manifest.json"
  echo "built $out/$app/app.wasm ($(stat -c %s "$out/$app/app.wasm") bytes)"
done
