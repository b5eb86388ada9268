#!/usr/bin/env bash
# Every benchmark in BENCHMARKS.md, on a release build, one after another (about 25 minutes
# on 2 cores after the build). Figures go to stdout; `--json` makes each command print JSON.
# Set FLEET=10000 for a shorter renewal storm than the 100,000 devices BENCHMARKS.md quotes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release --product rampart
swift build -c release --product rampart-server
bin=.build/release
json=("$@")
echo "== DAA: attestations beside the ECDSA P-256 ceiling";   "$bin/rampart" bench attestation --seconds 5 "${json[@]}"
echo "== update checks beside nginx serving the same bytes"; "$bin/rampart" bench updates --seconds 5 "${json[@]}"
echo "== failure-report ingestion";                          "$bin/rampart" bench reports --seconds 5 "${json[@]}"
echo "== device runtime: cold start, host calls, memory";    "$bin/rampart" bench apps "${json[@]}"
echo "== one node vs two on PostgreSQL";                     "$bin/rampart" bench nodes --devices 5000 "${json[@]}"
echo "== renewal storm after an outage";                     "$bin/rampart" sim --devices "${FLEET:-100000}" --ramp 0 --duration 0 "${json[@]}"
