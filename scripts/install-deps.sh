#!/usr/bin/env bash
# Installs the Debian packages Rampart needs. Idempotent, no prompts; run as root.
# Installs only what is missing, so a machine that has everything needs no network.
set -euo pipefail

packages=(
  openssl          # `openssl verify` checks our certificate chains in tests and the demo
  postgresql       # tests start their own throwaway PostgreSQL cluster
  ca-certificates
  libtss2-dev      # TPM 2.0 software stack (ESYS) the device runtime links against
  libsqlite3-dev   # the service's embedded database engine (SQLite)
  pkg-config       # SwiftPM finds libtss2 through it
  zlib1g-dev       # ZIPFoundation (image packages) links zlib
  swtpm            # tests run a software TPM 2.0 ...
  swtpm-tools      # ... made by swtpm_setup, with endorsement-key certificates from its local CA
  clang-14         # builds the C example apps (Examples/build.sh) for wasm32-wasi ...
  lld-14           # ... linked by wasm-ld ...
  wasi-libc        # ... against WASI's C library ...
  libclang-rt-14-dev-wasm32  # ... and compiler-rt's wasm32 builtins
  nginx-light      # a TLS server that checks client certificates, for the app network test and the demo
  libnginx-mod-stream  # nginx as the TCP balancer in front of two service nodes (scale-out test)
  binutils         # strip: the system-software tests ship a smaller build of rampartd as an update
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

# From PyPI, for the tests: schemathesis fuzzes the service from its OpenAPI document; tuf
# (python-tuf, the reference client, with securesystemslib) checks our update metadata.
python_missing=()
python3 -c "import schemathesis" 2>/dev/null || python_missing+=("schemathesis>=4,<5")
python3 -c "import tuf.ngclient" 2>/dev/null || python_missing+=("tuf>=7,<8")

if [ ${#missing[@]} -eq 0 ] && [ ${#python_missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

if [ ${#python_missing[@]} -ne 0 ]; then
  echo "install-deps: installing ${python_missing[*]} from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "${python_missing[@]}"
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${missing[*]}; run this script as root" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# nginx's package starts a server on port 80; Rampart's tests start their own.
if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then systemctl stop nginx || true; fi
if [ -x /etc/init.d/nginx ]; then /etc/init.d/nginx stop >/dev/null 2>&1 || true; fi
# The package starts a cluster of its own; Rampart's tests never use it.
if command -v pg_lsclusters >/dev/null && command -v pg_ctlcluster >/dev/null; then
  pg_lsclusters -h 2>/dev/null | awk '$4 == "online" {print $1, $2}' | while read -r version cluster; do
    pg_ctlcluster "$version" "$cluster" stop || true
  done
fi
