#!/bin/sh
# kernels.sh — does the default run get the fastest kernels? The joint step of both models
# (bench_dense, and bench_conv on 10,000 images) under anamo's own choice and under kernels
# forced by hand, in alternating rounds (every setting once per round, the order rotating),
# medians over ROUNDS (5) per setting, and each setting's median over rounds of its ratio to the
# default in the same round (a machine that slows down for a while slows both).
#   default                 oneDNN's dispatch on the CPU's features, OpenBLAS's own core
#   isa_LEVEL               ONEDNN_MAX_CPU_ISA=LEVEL: oneDNN capped at an older instruction set
#                           (each of ISAS that is below the CPU's own)
#   openblas_prescott       OPENBLAS_CORETYPE=Prescott: the SSE3 fallback Debian's OpenBLAS
#                           gives CPUs it does not know (training makes no OpenBLAS call now, so
#                           this should change nothing)
#   ROUNDS=7 ISAS="AVX2 AVX SSE41" sh bench/kernels.sh
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
ISAS=${ISAS:-"AVX SSE41"}
export ANAMO_DATA="${ANAMO_DATA:-../shared/data}"
[ "$ROUNDS" -ge 5 ] || { echo "kernels.sh: ROUNDS must be 5 or more" >&2; exit 2; }
for b in build/bench_dense build/bench_conv; do
  [ -x "$b" ] || { echo "kernels.sh: no $b (make first)" >&2; exit 2; }
done
TMP=$(mktemp -d /tmp/anamo-kernels.XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM

SETTINGS="default openblas_prescott"
for isa in $ISAS; do SETTINGS="$SETTINGS isa_$isa"; done

# one measurement: the joint samples/s of MODEL under SETTING, appended to TMP/MODEL_SETTING
measure() {
  model=$1 setting=$2
  case $setting in
    default) env=;;
    openblas_prescott) env="OPENBLAS_CORETYPE=Prescott";;
    isa_*) env="ONEDNN_MAX_CPU_ISA=${setting#isa_}";;
  esac
  case $model in
    dense) args="--joint-only --reps 1";;
    conv) args="--joint-only --reps 1 --data cifar10:train@10000";;
  esac
  # shellcheck disable=SC2086
  out=$(env $env build/bench_$model $args)
  echo "$out" | sed -n 's/^joint: \([0-9]*\) samples\/s.*/\1/p' >> "$TMP/${model}_$setting"
  echo "$out" | grep -E '^(blas_kernel|convolutions):' | sed "s/^/${model}_${setting}_/" \
    > "$TMP/${model}_${setting}.what"
}

median() { sort -n "$1" | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

build/bench_dense --joint-only --reps 1 --data mnist:train@1000 | grep -E '^(cpu|cpu_features|blas):'
echo "rounds: $ROUNDS"
r=0
while [ "$r" -lt "$ROUNDS" ]; do
  # rotate the order, so no setting always runs first
  order=$(echo $SETTINGS | tr ' ' '\n' | awk -v r="$r" '{s[NR-1] = $0} END {for (i = 0; i < NR; i++) print s[(i + r) % NR]}')
  for s in $order; do
    for m in dense conv; do measure "$m" "$s"; done
  done
  r=$((r + 1))
done
for m in dense conv; do
  base=$(median "$TMP/${m}_default")
  for s in $SETTINGS; do
    cat "$TMP/${m}_${s}.what"
    med=$(median "$TMP/${m}_$s")
    echo "${m}_${s}: $med samples/s (runs: $(tr '\n' ' ' < "$TMP/${m}_$s"| sed 's/ $//'))"
    echo "${m}_${s}_over_default: $(awk -v a="$med" -v b="$base" 'BEGIN {printf "%.3f", a / b}')"
    paste "$TMP/${m}_$s" "$TMP/${m}_default" | awk '{print $1 / $2}' > "$TMP/ratio"
    echo "${m}_${s}_over_default_paired: $(median "$TMP/ratio" | awk '{printf "%.3f", $1}')"
  done
done
