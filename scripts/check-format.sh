#!/bin/sh
# check-format.sh — fails when clang-format (Debian 12's clang-format 14, with the repository's
# .clang-format) would change any tracked C file, and names the files it would change. It
# changes nothing; to format a file: clang-format -i FILE.
#   CLANG_FORMAT=clang-format-14    the program (default: clang-format-14, else clang-format)
set -eu
cd "$(dirname "$0")/.."
CF=${CLANG_FORMAT:-}
if [ -z "$CF" ]; then
  CF=clang-format
  command -v clang-format-14 >/dev/null 2>&1 && CF=clang-format-14
fi
command -v "$CF" >/dev/null 2>&1 ||
  { echo "check-format: no $CF (Debian 12: apt-get install clang-format)" >&2; exit 1; }
# another version may format some lines its own way: say so, and check all the same
"$CF" --version | grep -q "version 14\." ||
  echo "check-format: $("$CF" --version) is not clang-format 14, which .clang-format is set for" >&2

# tracked files that still exist (a file deleted but not yet committed is skipped)
files=$(git ls-files '*.c' '*.h' | while read -r f; do [ -f "$f" ] && echo "$f"; done)
bad=""
for f in $files; do
  "$CF" --dry-run --Werror "$f" >/dev/null 2>&1 || bad="$bad $f"
done
if [ -n "$bad" ]; then
  echo "check-format: clang-format would change these files:" >&2
  for f in $bad; do
    echo "  $f ($("$CF" --dry-run "$f" 2>&1 | grep -c ': warning: ') places)" >&2
  done
  echo "check-format: see with  $CF --dry-run FILE  and fix with  $CF -i FILE" >&2
  exit 1
fi
echo "check-format: $(echo "$files" | wc -l) files formatted as .clang-format says"
