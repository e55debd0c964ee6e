#!/bin/sh
# valgrind.sh — a tiny run of every anamo verb under valgrind's memcheck: train (and a resumed
# train, and a small convolutional one on CIFAR-10 when it is there), eval, encode, reconstruct,
# compare (with trials, a sweep, PCA and step-function
# analyses and every figure), and a rejected input (the error paths free what they took
# too). Fails on any invalid read or write, use of uninitialised memory, or definitely or
# indirectly lost block; "possibly lost" and "still reachable" blocks (OpenMP's and OpenBLAS's
# thread pools) are reported by neither. tests/valgrind.supp holds the suppressions.
#   VALGRIND_BUILD=build-valgrind   a plain build (no sanitizers: valgrind cannot run them)
set -eu
cd "$(dirname "$0")/.."
BUILD=${VALGRIND_BUILD:-build-valgrind}
if ! command -v valgrind >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi
sh scripts/install-deps.sh
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANAMO_TESTS=OFF >/dev/null
fi
cmake --build "$BUILD" -j "$(nproc)" --target anamo_cli >/dev/null

WORK=$(mktemp -d /tmp/anamo-valgrind-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/tiny.ini" <<'INI'
[data]
train = halves:train
test = halves:test
[model]
encoder = linear 10, sigmoid
decoder = linear 100, sigmoid
[train]
epochs = 2
batch = 10
INI
# valgrind's own failures exit 99, apart from anamo's exit codes (1 for a rejected input)
VG="valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --track-origins=yes --suppressions=tests/valgrind.supp"
# OpenBLAS and oneDNN would pick AVX-512 kernels that valgrind cannot decode on such CPUs
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
export ONEDNN_MAX_CPU_ISA=${ONEDNN_MAX_CPU_ISA:-AVX2}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# anamo runs itself again through /proc/self/exe to set GOMP_SPINCOUNT (src/program/setup.c);
# under valgrind that path is valgrind's own tool, which refuses to start. A spin count chosen
# here makes anamo skip the re-run.
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-1000}
failed=0
check() { # check EXPECTED-EXIT NAME ARGS...: runs anamo ARGS under valgrind
  want=$1 name=$2
  shift 2
  rc=0
  # shellcheck disable=SC2086
  $VG "$BUILD/anamo" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" || rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "valgrind.sh: $name: exit $rc, expected $want:" >&2
    cat "$WORK/$name.err" >&2
    failed=1
  else
    echo "valgrind.sh: $name: clean"
  fi
}
check 0 train train "$WORK/tiny.ini" -o "$WORK/run"
check 0 resume train --resume "$WORK/run" --set train.epochs=3
check 0 anamo-scheme train "$WORK/tiny.ini" -o "$WORK/run-anamo" --set train.scheme=anamo \
      --set train.epochs=1
check 0 eval eval "$WORK/run" --data halves:test
check 0 encode encode "$WORK/run" --data halves:test -o "$WORK/codes.npy"
check 0 reconstruct reconstruct "$WORK/run" --data halves:test -o "$WORK/grid.png"
# compare: trials, a sweep, the tables and figures; a linear model (the PCA analysis); step
# functions (their analysis and figure)
cat > "$WORK/compare.ini" <<'INI'
[data]
train = halves:train
test = halves:test
[model]
encoder = linear 10, relu
decoder = linear 100, sigmoid
[train]
epochs = 2
batch = 20
[compare]
arms = joint, nam
trials = 2
sweep = loss.lambda
sweep_values = 1e-3, 100
[arm joint]
train.scheme = joint
[arm nam]
train.scheme = nam
INI
check 0 compare compare "$WORK/compare.ini" -o "$WORK/cmp"
check 0 compare-linear compare "$WORK/compare.ini" -o "$WORK/cmp-linear" \
      --set model.encoder="linear 4" --set model.decoder="linear 100" --set compare.sweep=
check 0 compare-steps compare "$WORK/compare.ini" -o "$WORK/cmp-steps" --set data.train=steps:16 \
      --set data.test=steps:16 --set model.encoder="linear 1" \
      --set model.decoder="linear 8, relu, linear 16" --set compare.sweep=
# the convolutions on oneDNN's primitives (and a ConvTranspose2d's forward on sgemm + col2im):
# seed 000's CIFAR-10 model on 100 images, NAM, so both blocks' backward parts run (no
# Jacobian measure: its 768 tangent passes per image take minutes under valgrind)
if [ -e "${ANAMO_DATA:-data}/cifar10" ]; then
  check 0 train-conv train experiments/cifar-nam-vs-joint.ini -o "$WORK/run-conv" \
        --set data.train=cifar10:train@100 --set data.test=cifar10:test@20 --set train.epochs=2 \
        --set train.batch=50 --set train.scheme=nam --set train.jacobian_samples=0
else
  echo "valgrind.sh: train-conv: skipped (no CIFAR-10 under ${ANAMO_DATA:-data})"
fi
printf '1,2\n3,x\n' > "$WORK/bad.csv"
check 1 rejected-data train "$WORK/tiny.ini" -o "$WORK/bad" --set "data.train=$WORK/bad.csv"
printf '[train]\nepohcs = 2\n' > "$WORK/typo.ini"
check 2 rejected-config train "$WORK/typo.ini" -o "$WORK/bad"
[ "$failed" -eq 0 ] || exit 1
echo "valgrind.sh: no memory errors, no definite or indirect leaks"
