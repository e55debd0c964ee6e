#!/bin/sh
# fuzz.sh — builds the libFuzzer targets in fuzz/ (clang, ASan + UBSan, into build-fuzz),
# writes the seed corpus (fuzz/make-corpus.sh), replays every file of fuzz/corpus/TARGET/,
# then fuzzes each target. Exits 1 if any input crashed, leaked, ran out of memory, hung, or
# broke a harness's oracle; the input is then in build-fuzz/fuzz-artifacts/TARGET/. Out of
# memory means one allocation over 256 MB (inputs are a few KB, so the reader trusted a header)
# or 2 GB in all.
#   sh scripts/fuzz.sh          each target for FUZZ_SECONDS (CI: FUZZ_SECONDS=30); new inputs
#                               are kept in build-fuzz/fuzz-work/TARGET/ for the next run
#   sh scripts/fuzz.sh --long   each target to FUZZ_RUNS executions, new inputs in a temporary
#                               directory removed afterwards (nothing grows in the tree)
# The summary gives per target the seconds, executions, edges covered (libFuzzer's cov),
# features (ft) and the corpus it ended with (units/bytes).
#   FUZZ_SECONDS=30     fuzzing time per target
#   FUZZ_RUNS=1000000   --long: executions per target
#   FUZZ_LONG_MAX_SECONDS=7200   --long: a target still short of FUZZ_RUNS stops here
#   FUZZ_TARGETS="idx npy csv cifar safetensors config"
#   FUZZ_BUILD=build-fuzz
#   FUZZ_ARGS=          more libFuzzer flags (e.g. "-fork=2 -ignore_crashes=1" to collect many)
# Needs Debian's clang and the package holding libclang_rt.fuzzer (libclang-rt-N-dev for
# clang N), installed here when missing.
set -eu
cd "$(dirname "$0")/.."
LONG=0
case "${1:-}" in
  --long) LONG=1 ;;
  "") ;;
  *) echo "usage: sh scripts/fuzz.sh [--long]" >&2; exit 2 ;;
esac
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
FUZZ_RUNS=${FUZZ_RUNS:-1000000}
FUZZ_LONG_MAX_SECONDS=${FUZZ_LONG_MAX_SECONDS:-7200}
FUZZ_TARGETS=${FUZZ_TARGETS:-"idx npy csv cifar safetensors config"}
BUILD=${FUZZ_BUILD:-build-fuzz}
FUZZ_ARGS=${FUZZ_ARGS:-}
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo

apt_install() {
  echo "fuzz.sh: installing $*"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ---- the toolchain: clang and its libFuzzer runtime --------------------------------------
command -v clang >/dev/null 2>&1 || apt_install clang
CLANG_MAJOR=$(clang -dumpversion | cut -d. -f1)
fuzzer_lib() { echo "$(clang -print-runtime-dir)/libclang_rt.fuzzer-$(uname -m).a"; }
if [ ! -f "$(fuzzer_lib)" ]; then
  apt_install "libclang-rt-$CLANG_MAJOR-dev"
  [ -f "$(fuzzer_lib)" ] || { echo "fuzz.sh: $(fuzzer_lib) still missing" >&2; exit 1; }
fi
sh scripts/install-deps.sh

# ---- build --------------------------------------------------------------------------------
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DANAMO_FUZZ=ON -DANAMO_SANITIZE=ON -DANAMO_TESTS=OFF >/dev/null
fi
targets=""
for t in $FUZZ_TARGETS; do targets="$targets fuzz_$t"; done
# shellcheck disable=SC2086
cmake --build "$BUILD" -j "$(nproc)" --target $targets >/dev/null

# ---- corpus, replay, fuzz -----------------------------------------------------------------
sh fuzz/make-corpus.sh fuzz/corpus
failed=""
summary=""
scratch=""
if [ "$LONG" = 1 ]; then
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/anamo-fuzz.XXXXXX")
  trap 'rm -rf "$scratch"' EXIT
  trap 'exit 130' INT TERM
fi
for t in $FUZZ_TARGETS; do
  bin=$BUILD/fuzz/fuzz_$t
  work=$BUILD/fuzz-work/$t
  [ "$LONG" = 1 ] && work=$scratch/$t
  art=$BUILD/fuzz-artifacts/$t
  log=$BUILD/fuzz-logs/$t.log
  mkdir -p "$work" "$art" "$(dirname "$log")"
  dict=""
  [ -f "fuzz/$t.dict" ] && dict="-dict=fuzz/$t.dict"
  # inputs are a few KB: a reader asking for 256 MB of one is trusting a header
  common="-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 -artifact_prefix=$art/"
  # replay: each file of the corpus once (seeds and kept reproducers)
  # shellcheck disable=SC2086
  if ! "$bin" $common fuzz/corpus/"$t"/* > "$log.replay" 2>&1; then
    echo "fuzz.sh: $t: replaying fuzz/corpus/$t failed:" >&2
    grep -a -E "Running:|ERROR|SUMMARY|^fuzz:" "$log.replay" | tail -n 8 >&2
    failed="$failed $t"
    summary="$summary$(printf '%-12s replay FAILED' "$t")\n"
    continue
  fi
  # fuzz: new inputs go to the work corpus; the seeds are read only
  if [ "$LONG" = 1 ]; then
    budget="-runs=$FUZZ_RUNS -max_total_time=$FUZZ_LONG_MAX_SECONDS"
  else
    budget="-max_total_time=$FUZZ_SECONDS"
  fi
  status=ok
  before=$(ls "$art" | wc -l)
  start=$(date +%s)
  # shellcheck disable=SC2086
  "$bin" $common $dict $budget -print_final_stats=1 $FUZZ_ARGS \
         "$work" "fuzz/corpus/$t" > "$log" 2>&1 || status=FAILED
  secs=$(($(date +%s) - start))
  # with -fork and -ignore_crashes libFuzzer exits 0 but still writes what it found
  [ "$(ls "$art" | wc -l)" -gt "$before" ] && status=FAILED
  execs=$(grep -a -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
  [ -n "$execs" ] || execs=$(grep -a -o '^#[0-9]*' "$log" | tr -d '#' | tail -n 1)
  # the last status line: "#N  DONE  cov: E ft: F corp: U/SIZE ..."
  last=$(grep -a -E '^#[0-9]+.* cov: ' "$log" | tail -n 1)
  cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p')
  if [ "$status" != ok ]; then
    echo "fuzz.sh: $t: crash (input in $art/):" >&2
    grep -a -E "ERROR|SUMMARY|^fuzz:|Test unit written" "$log" | tail -n 8 >&2
    failed="$failed $t"
  elif [ "$LONG" = 1 ] && [ "${execs:-0}" -lt "$FUZZ_RUNS" ]; then
    status="ok, stopped at ${FUZZ_LONG_MAX_SECONDS}s"
  fi
  summary="$summary$(printf '%-12s %6ss %12s %7s %7s %14s  %s' "$t" "$secs" "${execs:-?}" \
                     "${cov:-?}" "${ft:-?}" "${corp:-?}" "$status")\n"
done
printf '\nfuzz.sh: target          time   executions     cov      ft    corpus (units/size)\n%b' \
       "$summary"
if [ -n "$failed" ]; then
  echo "fuzz.sh: FAILED:$failed (logs in $BUILD/fuzz-logs/)" >&2
  exit 1
fi
echo "fuzz.sh: no crashes, no oracle failures"
