#!/usr/bin/env bash
# run.sh - set up, build with ASan+UBSan, run the whole suite, print failing logs and one
# closing line "N passed, N failed" (Check test cases, plus one per non-Check test).
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

python3 - "$build/meson-logs/testlog.json" <<'PY'
import json, re, sys
passed = failed = skipped = 0
skips = []
check = re.compile(r"^\d+%: Checks: (\d+), Failures: (\d+), Errors: (\d+)", re.M)
skip_line = re.compile(r"^SKIP (\S+): (.*)$", re.M)
try:
    lines = open(sys.argv[1]).read().splitlines()
except OSError:
    lines = []
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
