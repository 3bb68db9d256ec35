#!/usr/bin/env bash
# setup.sh - install herald's build and runtime dependencies from Debian 12 packages.
# Idempotent: installs only what is missing; runs apt-get only when something is.
#   setup.sh          what building and running herald needs (deploy/run.sh), cluster mode
#                     included (libnats-dev, nats-server: docs/cluster.md)
#   setup.sh --test   also what only the test suite uses (tests/run.sh)
#   setup.sh --fuzz   also clang and its sanitizer runtime for the libFuzzer targets
set -euo pipefail

required=(
  meson ninja-build pkg-config gcc python3 libev-dev
  liburing-dev libwebsockets-dev libmsgpack-dev check libinih-dev
  libssl-dev libjansson-dev zlib1g-dev libhttp-parser-dev libsystemd-dev
  libnats-dev nats-server curl
)
# Only tests/integration/test_nginx.sh runs nginx (its own temp prefix, loopback ports), and
# only the browser tests (tests/web, suite browser) run chromium; those tests skip without
# them, so a failure to install them does not fail the set-up.
optional=()
case "${1:-}" in
  --test) required+=(clang-format); optional+=(nginx libnginx-mod-http-perl chromium openssl prometheus) ;;
  --fuzz) required+=(clang libclang-rt-14-dev) ;;
esac

missing_of() {
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
mapfile -t missing < <(missing_of "${required[@]}")
mapfile -t missing_opt < <(missing_of "${optional[@]}")
[ ${#missing[@]} -eq 0 ] && [ ${#missing_opt[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
fi
if [ ${#missing_opt[@]} -gt 0 ]; then
  echo "setup: installing (optional) ${missing_opt[*]}" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing_opt[@]}" >&2 || echo "setup: optional packages not installed; their tests skip" >&2
fi
