#!/usr/bin/env bash
# run.sh - set up, build with ASan+UBSan, run the whole suite, then the ring and doorbell
# tests under ThreadSanitizer (HERALD_TSAN=0 skips that), print failing logs and one closing
# line "N passed, N failed" (Check test cases, plus one per non-Check test; skips apart).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/deploy/setup.sh" --test || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
build="${HERALD_TEST_BUILD:-$root/build-test}"
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$root" --buildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false >/dev/null ||
    { echo "meson setup failed"; echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$build"; then
  echo "build failed"; echo "0 passed, 1 failed"; exit 1
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
meson test -C "$build" --print-errorlogs --num-processes 2 "$@"
rc=$?

# The ring and its doorbell (shared memory, atomics, a helper thread) under ThreadSanitizer:
# a build of their own (TSan cannot join ASan), only the targets the ring suite needs.
logs=("$build/meson-logs/testlog.json")
if [ $# -eq 0 ] && [ "${HERALD_TSAN:-1}" != 0 ]; then
  tsan="${HERALD_TSAN_BUILD:-$root/build-tsan}"
  if [ ! -f "$tsan/build.ninja" ]; then
    meson setup "$tsan" "$root" --buildtype=debugoptimized -Db_sanitize=thread \
      -Db_lundef=false >/dev/null || echo "meson setup of the TSan build failed"
  fi
  if ninja -C "$tsan" tests/unit/test_ring tests/unit/ring_peer >/dev/null; then
    TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}" \
      meson test -C "$tsan" --no-rebuild --print-errorlogs --suite unit ring
    rc=$((rc | $?))
  else
    rc=1
  fi
  logs+=("$tsan/meson-logs/testlog.json")
fi

python3 - "${logs[@]}" <<'PY'
import json, re, sys
passed = failed = skipped = 0
skips = []
check = re.compile(r"^\d+%: Checks: (\d+), Failures: (\d+), Errors: (\d+)", re.M)
skip_line = re.compile(r"^SKIP (\S+): (.*)$", re.M)
lines = []
for path in sys.argv[1:]:
    try:
        lines += open(path).read().splitlines()
    except OSError:
        failed += 1  # a log that should be there is not
for line in lines:
    t = json.loads(line)
    name, result = t.get("name", "?"), t.get("result")
    out = t.get("stdout", "") or ""
    if result == "SKIP":
        skipped += 1
        skips.append(f"{name} (whole program)")
        continue
    ok = result in ("OK", "EXPECTEDFAIL")
    runs = check.findall(out)
    if runs:
        case_skips = skip_line.findall(out)
        for case, why in case_skips:
            skips.append(f"{name}/{case}: {why}")
        for n, f, e in runs:
            passed += int(n) - int(f) - int(e)
            failed += int(f) + int(e)
        # a skipped case returned early, so Check counted it as passed
        passed -= len(case_skips)
        skipped += len(case_skips)
        if not ok and all(int(f) + int(e) == 0 for n, f, e in runs):
            failed += 1  # crashed or timed out after its checks reported
    else:
        passed += ok
        failed += not ok
if not lines:
    failed += 1
for s in skips:
    print(f"SKIP {s}")
print(f"{skipped} skipped (not counted as passed)")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
summary=$?
[ $rc -eq 0 ] && [ $summary -eq 0 ]
