#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs `rampart demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build --product rampart
exec .build/debug/rampart demo "$@"
