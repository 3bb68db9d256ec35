#!/usr/bin/env bash
# run.sh - set up, build (release) and run herald: the supervisor with the broker and
# gateway.count gateways, in the foreground. Extra arguments go to herald-supervisor
# (e.g. -o gateway.count=4). Stop with Ctrl-C.
# This is the development runner: it sets auth.allow_dev_secret = true, so the public
# development secret of deploy/herald.ini works (every process logs a loud warning while it
# is in use). A real deployment sets its own auth.secret and runs the supervisor directly.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/deploy/setup.sh"
build="$root/build-release"
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$root" --buildtype=release -Dtests=false >/dev/null
fi
ninja -C "$build" >/dev/null
# Development mode: the demo page (http://127.0.0.1:7500/) gets tokens from the broker and
# may publish; the pages are served from the source tree.
echo "run.sh: DEVELOPMENT MODE (auth.allow_dev_secret = true): anyone who can reach the broker's" \
  "HTTP port can get a client token for any user. Never run it like this in production." >&2
exec "$build/tools/supervisor/herald-supervisor" -c "${HERALD_CONFIG:-$root/deploy/herald.ini}" \
  -o auth.allow_dev_secret=true -o "runtime.web_dir=$root/clients/web" "$@"
