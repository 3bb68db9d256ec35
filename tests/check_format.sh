#!/usr/bin/env bash
# check_format.sh - every C source and header git tracks is formatted by the repository's
# .clang-format (STYLE 9): a meson test, so the README's test command checks it. Skips (77)
# without clang-format or outside a git checkout.
set -uo pipefail
root=${HERALD_SOURCE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 1
command -v clang-format >/dev/null || { echo "SKIP: clang-format not installed"; exit 77; }
git rev-parse --git-dir >/dev/null 2>&1 || { echo "SKIP: not a git checkout"; exit 77; }
mapfile -t files < <(git ls-files '*.c' '*.h')
out=$(clang-format --dry-run --Werror "${files[@]}" 2>&1)
if [ -n "$out" ]; then
  echo "$out" | grep -E "(error|warning):" | cut -d: -f1 | sort | uniq -c | sed 's/^/not formatted: /'
  echo "FAIL: run clang-format -i on the files above"
  exit 1
fi
echo "PASS: ${#files[@]} files formatted"
