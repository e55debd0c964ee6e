#!/bin/sh
# sanitize.sh — builds everything with AddressSanitizer and UndefinedBehaviorSanitizer
# (-DANAMO_SANITIZE=ON: library, CLI, tests) into build-asan and runs the whole test suite
# there once. Any invalid access, leak or undefined behaviour aborts the process that has it
# (abort_on_error: a test that runs the CLI sees a signal, never a plausible exit code).
#   ASAN_BUILD=build-asan     the build directory
#   CC=gcc                    the compiler (gcc or clang)
set -eu
cd "$(dirname "$0")/.."
BUILD=${ASAN_BUILD:-build-asan}
sh scripts/install-deps.sh
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANAMO_SANITIZE=ON \
        -DANAMO_WERROR=ON >/dev/null
fi
cmake --build "$BUILD" -j "$(nproc)"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1:detect_invalid_pointer_pairs=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:abort_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS
cd "$BUILD"
ctest --output-on-failure -j "$(nproc)" --timeout 1500
echo "sanitize.sh: every test passed under ASan + UBSan"
