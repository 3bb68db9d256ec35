#!/usr/bin/env bash
# test_libherald_install.sh - libherald as a producer gets it: `meson install` puts the
# library, its header and pkg-config file in place; docs/examples/producer.c builds against
# them with pkg-config alone and publishes to a real herald-broker (seq 1, then 2).
set -uo pipefail
root=${HERALD_SOURCE_ROOT:?}; build=${HERALD_BUILD_ROOT:?}
command -v pkg-config >/dev/null || { echo "SKIP: pkg-config missing"; exit 77; }
tmp=$(mktemp -d /tmp/herald-libtest.XXXXXX); chmod 700 "$tmp"
pid=
prefix="hlib$$"
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"; rm -f /dev/shm/"$prefix".* 2>/dev/null
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/broker.log" ] && tail -5 "$tmp/broker.log"; exit 1; }

DESTDIR="$tmp/inst" meson install -C "$build" --quiet >"$tmp/install.log" 2>&1 ||
  fail "meson install: $(tail -3 "$tmp/install.log")"
pc=$(find "$tmp/inst" -name herald.pc | head -1)
[ -n "$pc" ] || fail "no herald.pc installed"
lib=$(dirname "$(dirname "$pc")")
[ -f "$tmp/inst/$(sed -n 's/^prefix=//p' "$pc")/include/herald/herald.h" ] || fail "no herald/herald.h installed"
# as a producer on the installed system would: only the sysroot differs (a temp dir)
flags=$(PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$tmp/inst" \
  pkg-config --cflags --libs herald msgpack) ||
  fail "pkg-config herald msgpack"
# A sanitized build's library needs the sanitizer runtime in the program too.
san=
case "$(ldd "$lib/libherald.so")" in *libasan*) san="-fsanitize=address,undefined" ;; esac
cc $san -o "$tmp/producer" "$root/docs/examples/producer.c" $flags 2>"$tmp/cc.log" ||
  fail "the example does not build: $(cat "$tmp/cc.log")"

mkdir -m 700 "$tmp/run"
cat >"$tmp/herald.ini" <<INI
[runtime]
dir = $tmp/run
shm_prefix = $prefix
[auth]
secret = libherald-install-test
INI
port=$(( 20000 + ($$ * 37) % 10000 ))
"$build/broker/herald-broker" -c "$tmp/herald.ini" -o "broker.http=127.0.0.1:$port" >"$tmp/broker.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$tmp/run/broker.sock" ] && break; sleep 0.1; done
[ -S "$tmp/run/broker.sock" ] || fail "the broker did not start"
for want in 1 2; do
  out=$(LD_LIBRARY_PATH="$lib" ASAN_OPTIONS=detect_leaks=0 "$tmp/producer" "$tmp/run/broker.sock" lib-u1 2>&1) ||
    fail "producer: $out"
  [ "$out" = "published for lib-u1: seq $want" ] || fail "expected seq $want, got: $out"
done
case "$(LD_LIBRARY_PATH="$lib" ldd "$tmp/producer")" in *"$lib/libherald.so"*) ;; *) fail "the example did not link the installed library" ;; esac
echo "PASS: installed libherald, pkg-config and the example publish (seq 1, 2)"
