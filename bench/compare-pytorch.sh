#!/bin/sh
# compare-pytorch.sh — anamo and PyTorch training the same two models in the same run: the core
# MNIST autoencoder (bench_dense) and seed 000's convolutional CIFAR-10 autoencoder (bench_conv),
# joint Adam lr 1e-3, MSE, batch 125, on the real training sets, at the same thread count. Rounds
# alternate (anamo, torch, anamo, torch, …) so both see the same machine; each run trains a fresh
# model for 2 epochs and times the 2nd. Prints every round, then the medians, anamo ÷ torch and
# anamo's ceiling ratio (bench/README.md), as `name: value unit` lines.
#
#   sh bench/compare-pytorch.sh [--reps 5] [--threads 2] [--models "dense conv"]
#                               [--samples N] [--mkldnn on|off]
#
# Needs a built tree (make) and Debian's PyTorch, which the project's own install does NOT pull
# in:  apt-get install python3-torch libopenblas0-pthread   (see bench/README.md: torch takes
# libblas.so.3, which must be an OpenBLAS; the script checks and stops if it is not).
# Environment: ANAMO_DATA (the data folder; default data, else ../shared/data), BUILD (build),
# PYTHON (/usr/bin/python3). Unless GOMP_SPINCOUNT or OMP_WAIT_POLICY is set, both run with
# GOMP_SPINCOUNT=1000, the wait policy anamo picks for itself (src/program/setup.c), so the two
# differ in their code and not in how their OpenMP threads wait; likewise, where anamo forces
# OpenBLAS's kernel (OPENBLAS_CORETYPE) for itself, torch runs on that kernel too.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
PYTHON=${PYTHON:-/usr/bin/python3}
REPS=5 THREADS=2 MODELS="dense conv" SAMPLES="" MKLDNN=on
usage() {
    echo "usage: sh bench/compare-pytorch.sh [--reps N] [--threads N] [--models \"dense conv\"]" \
         "[--samples N] [--mkldnn on|off]" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage
    case $1 in
    --reps) REPS=$2 ;;
    --threads) THREADS=$2 ;;
    --models) MODELS=$2 ;;
    --samples) SAMPLES=$2 ;;
    --mkldnn) MKLDNN=$2 ;;
    *) usage ;;
    esac
    shift 2
done

if [ -z "${ANAMO_DATA:-}" ]; then
    if [ -d data ]; then ANAMO_DATA=data; else ANAMO_DATA=$ROOT/../shared/data; fi
fi
export ANAMO_DATA
if [ -z "${GOMP_SPINCOUNT:-}" ] && [ -z "${OMP_WAIT_POLICY:-}" ]; then
    export GOMP_SPINCOUNT=1000
fi
for b in bench_dense bench_conv; do
    [ -x "$BUILD/$b" ] || { echo "compare-pytorch: $BUILD/$b: not built; run make" >&2; exit 1; }
done
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
    echo "compare-pytorch: $PYTHON has no torch; install Debian's PyTorch with" >&2
    echo "    apt-get install python3-torch libopenblas0-pthread" >&2
    exit 1
fi

LOG=$(mktemp -d "${TMPDIR:-/tmp}/compare-pytorch.XXXXXX")
trap 'rm -rf "$LOG"' EXIT

# value NAME FILE: the number on the line `NAME: number …`
value() {
    sed -n "s/^$1: \([-0-9.e+]*\).*/\1/p" "$2" | head -n 1
}
# median FILE FORMAT: the median of the numbers in FILE, one a line, printed with FORMAT
median() {
    sort -g "$1" | awk -v fmt="$2\n" '{ v[NR] = $1 } END {
        if (NR == 0) exit 1
        printf fmt, NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "os_kernel: $(uname -sr)"
echo "threads: $THREADS"
echo "rounds: $REPS"
echo "env_GOMP_SPINCOUNT: ${GOMP_SPINCOUNT:-(not set)}"
echo "env_OMP_WAIT_POLICY: ${OMP_WAIT_POLICY:-(not set)}"

machine_printed=""
for model in $MODELS; do
    case $model in
    dense) spec=mnist:train ;;
    conv) spec=cifar10:train ;;
    *) echo "compare-pytorch: unknown model '$model' (dense, conv)" >&2; exit 2 ;;
    esac
    data_arg="" samples_arg=""
    if [ -n "$SAMPLES" ]; then
        data_arg="--data $spec@$SAMPLES" samples_arg="--samples $SAMPLES"
    fi
    : >"$LOG/$model.anamo" ; : >"$LOG/$model.torch" ; : >"$LOG/$model.ceiling"
    r=1
    while [ "$r" -le "$REPS" ]; do
        # shellcheck disable=SC2086 # data_arg is two words or none
        "$BUILD/bench_$model" --joint-only --reps 1 --threads "$THREADS" $data_arg \
            >"$LOG/out.anamo"
        # shellcheck disable=SC2086
        "$PYTHON" "$ROOT/bench/pytorch_bench.py" "$model" --threads "$THREADS" \
            --mkldnn "$MKLDNN" $samples_arg >"$LOG/out.torch"
        if [ -z "$machine_printed" ]; then
            grep -E '^(cpu|cpu_features|blas|blas_kernel):' "$LOG/out.anamo"
            # where anamo overrides OpenBLAS's kernel choice for itself, torch gets the same
            kernel=$(sed -n 's/^blas_kernel: \([^ ]*\) (forced by anamo.*/\1/p' "$LOG/out.anamo")
            if [ -n "$kernel" ] && [ -z "${OPENBLAS_CORETYPE:-}" ]; then
                export OPENBLAS_CORETYPE="$kernel"
                echo "env_OPENBLAS_CORETYPE: $kernel (anamo's kernel, given to torch too)"
            fi
            "$PYTHON" "$ROOT/bench/pytorch_bench.py" info --threads "$THREADS"
            machine_printed=yes
        fi
        if [ "$r" -eq 1 ]; then
            sed -n "s/^samples per epoch:/${model}_samples_per_epoch:/p" "$LOG/out.anamo"
            grep -E '^flop_joint_step:' "$LOG/out.anamo" | sed "s/^/${model}_/"
        fi
        a=$(value joint "$LOG/out.anamo")
        t=$(value torch_joint "$LOG/out.torch")
        c=$(value joint_ceiling_ratio "$LOG/out.anamo")
        if [ -z "$a" ] || [ -z "$t" ] || [ -z "$c" ]; then
            echo "compare-pytorch: round $r of $model: no figure; the outputs were:" >&2
            cat "$LOG/out.anamo" "$LOG/out.torch" >&2
            exit 1
        fi
        echo "$a" >>"$LOG/$model.anamo"
        echo "$t" >>"$LOG/$model.torch"
        echo "$c" >>"$LOG/$model.ceiling"
        echo "${model}_round_${r}_anamo: $a samples/s"
        echo "${model}_round_${r}_torch: $t samples/s"
        r=$((r + 1))
    done
    a=$(median "$LOG/$model.anamo" %.0f)
    t=$(median "$LOG/$model.torch" %.0f)
    echo "${model}_anamo_joint: $a samples/s"
    echo "${model}_torch_joint: $t samples/s"
    echo "${model}_anamo_over_torch: $(awk -v a="$a" -v t="$t" 'BEGIN { printf "%.3f", a / t }') x"
    echo "${model}_joint_ceiling_ratio: $(median "$LOG/$model.ceiling" %.3f)"
done
