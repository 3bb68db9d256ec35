#!/usr/bin/env bash
# setup.sh - install herald's build and runtime dependencies from Debian 12 packages.
# Idempotent: installs only what is missing; runs apt-get only when something is.
set -euo pipefail

packages=(
  meson ninja-build pkg-config gcc python3 libev-dev
  liburing-dev libwebsockets-dev libmsgpack-dev check libinih-dev
  libssl-dev libjansson-dev zlib1g-dev
  nginx libnginx-mod-http-perl
)
# nginx is only run by tests/integration/test_nginx.sh (its own temp prefix, loopback ports);
# where the package's own service may start, it is the distribution's, not ours.
if [ "${1:-}" = "--fuzz" ]; then packages+=(clang libclang-rt-14-dev); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
