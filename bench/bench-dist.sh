#!/bin/sh
# bench-dist.sh — data-parallel training over MPI on this one machine: samples/s and the bytes
# all-reduced per step of one run trained (a) as one process with 2 OpenMP threads and (b) as
# `mpirun -np 2` with 1 thread per rank, each rank bound to its own core — the same 2 cores
# either way — for joint training and for NAM. Per repetition every configuration trains once,
# a and b adjacent and alternating which goes first (a, b, then b, a, …), so the paired ratio
# b/a cancels a machine that slows down for a while; REPS (5) repetitions, medians [min, max].
#   sh bench/bench-dist.sh            seed 000's CIFAR-10 conv model (experiments/cifar-nam-vs-
#                                     joint.ini), 2 epochs on all 50,000 training images
#   sh bench/bench-dist.sh mnist      the main job's dense MNIST model (experiments/mnist-nam-vs-
#                                     joint.ini), 30 epochs on all 60,000 training images
#   REPS=7 EPOCHS=4 SAMPLES=20000 ONE_THREAD=1 sh bench/bench-dist.sh cifar
# What each figure is:
#   samples/s          summary.json's samples_per_s: training time only (rank 0's clock), the
#                      epochs' code caches included, the final evaluation not
#   decoder/encoder    the NAM run's decoder and encoder epochs apart (epochs.csv's seconds;
#   phase              NAM alternates every epoch, decoder first)
#   gradient bytes     summary.json's data_parallel.gradient_bytes_per_step (np = 2 only: one
#   per step           process reduces nothing and has no data_parallel object); for a NAM run
#                      it is the mean over its decoder and encoder steps, so each phase is also
#                      measured alone, once, by a 1-epoch run on 1,000 samples (nam.start)
#   load, others %     the load average before a run, and the CPU other processes used while
#                      it ran (/proc/stat's busy time less the run's own, as `times` counts
#                      it) in % of the machine. Before each scheme's runs the script waits (up
#                      to QUIET_WAIT, 600 s) until others use under MAX_OTHERS (5) % over 2 s;
#                      when a run was disturbed (others above MAX_OTHERS) all that scheme's runs
#                      of the repetition run again, up to RETRIES (3) times
#   allreduce          MPI_Allreduce (in place, float sum) of each size a step reduces, timed
#                      by a small MPI program the script compiles with mpicc, bound as the runs,
#                      once per repetition
# Knobs: REPS, EPOCHS, SAMPLES (a subset of the training set: data.train=…@SAMPLES), ONE_THREAD=1
# (also one process with 1 thread: the cost model's T1), BIN (build/anamo), MPIRUN (mpirun),
# MPI_ARGS ("--bind-to core --map-by core"), SET="--set …" (more overrides), MAX_OTHERS, RETRIES,
# QUIET_WAIT. On an idle 2-core machine the CIFAR-10 bench takes about 4 minutes, MNIST 4.5.
set -eu
cd "$(dirname "$0")/.."
MODEL=${1:-cifar}
BIN=${BIN:-build/anamo}
MPIRUN=${MPIRUN:-mpirun}
MPI_ARGS=${MPI_ARGS:-"--bind-to core --map-by core"}
REPS=${REPS:-5}
ONE_THREAD=${ONE_THREAD:-0}
MAX_OTHERS=${MAX_OTHERS:-5}
RETRIES=${RETRIES:-3}
QUIET_WAIT=${QUIET_WAIT:-600}
export ANAMO_DATA="${ANAMO_DATA:-../shared/data}"
case $MODEL in
  cifar) CONFIG=experiments/cifar-nam-vs-joint.ini SET_NAME=cifar10 EPOCHS=${EPOCHS:-2};;
  mnist) CONFIG=experiments/mnist-nam-vs-joint.ini SET_NAME=mnist EPOCHS=${EPOCHS:-30};;
  *) echo "usage: sh bench/bench-dist.sh [cifar|mnist]" >&2; exit 2;;
esac
TRAIN=$SET_NAME:train${SAMPLES:+@$SAMPLES}
[ "$REPS" -ge 5 ] || { echo "bench-dist.sh: REPS must be 5 or more (medians of 5)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "bench-dist.sh: no $BIN (make first)" >&2; exit 2; }
command -v "$MPIRUN" >/dev/null || { echo "bench-dist.sh: no $MPIRUN (Open MPI's mpirun)" >&2; exit 2; }
"$BIN" --version | grep -q '^mpi: ' ||
  { echo "bench-dist.sh: $BIN was built without MPI (ANAMO_MPI)" >&2; exit 2; }
[ "$(id -u)" = 0 ] && MPI_ARGS="--allow-run-as-root $MPI_ARGS"
TMP=$(mktemp -d /tmp/anamo-bench-dist.XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM
mkdir "$TMP/runs"
NCPU=$(getconf _NPROCESSORS_ONLN)
HZ=$(getconf CLK_TCK)
# every run: the config's model, optimizers and batch; no per-epoch test evaluation, no
# Jacobian, no checkpoint but the last (none of them is in samples/s; they only cost wall time)
COMMON="--set data.train=$TRAIN --set data.test=$SET_NAME:test@500 --set train.jacobian_samples=0
 --set train.eval_every_epoch=false --set train.checkpoint_every=0 ${SET:-}"

# the machine's busy and steal jiffies, all CPUs
jiffies() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9, $9}' /proc/stat; }
# the children's user + system seconds of `times` (second line; "0m1.50s 0m0.20s")
child_cpu() { sed -n 2p "$1" | awk '{s = 0; for (i = 1; i <= 2; i++) {split($i, p, "m"); sub("s", "", p[2]); s += p[1] * 60 + p[2]}; print s}'; }
median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "nan"; else print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
minmax() { sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%s %s", lo, hi}'; }
# a number of summary.json's, by key (its first occurrence)
json() { awk -v k="\"$2\":" '$1 == k {gsub(/,/, "", $2); print $2; exit}' "$1"; }
# a summary's data_parallel figures: "bytes gradient_reductions scalar_reductions" per step
dp_line() { echo "$(json "$1" gradient_bytes_per_step) $(json "$1" gradient_reductions_per_step) $(json "$1" scalar_reductions_per_step)"; }
# samples/s of the epochs of epochs.csv whose phase is $2 (n samples per epoch)
phase_rate() { awk -F, -v ph="$2" -v n="$3" 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "seconds") c = i; next}
  $2 == ph {s += $c; k++} END {if (k) printf "%.1f", n * k / s; else print "nan"}' "$1"; }

# waits (up to QUIET_WAIT s) until other processes use less than MAX_OTHERS % of the machine
# over 2 s in which this script only sleeps
quiet() {
  waited=0
  while :; do
    b0=$(jiffies)
    sleep 2
    b1=$(jiffies)
    busy=$(echo "$b0 $b1" | awk -v hz="$HZ" -v n="$NCPU" '{printf "%.1f", 100 * ($3 - $1) / hz / (2 * n)}')
    awk -v o="$busy" -v m="$MAX_OTHERS" 'BEGIN {exit !(o > m)}' || break
    [ "$waited" -ge "$QUIET_WAIT" ] && { echo "  (still busy after ${waited} s: ${busy}%; going on)"; break; }
    [ "$waited" = 0 ] && echo "  (others use ${busy}% of the machine, load $(cut -d' ' -f1-3 /proc/loadavg): waiting)"
    sleep 8
    waited=$((waited + 10))
  done
}

# one training run: $1 scheme, $2 processes, $3 threads per process, $4 its name. Sets LINE
# ("samples/s [decoder encoder]"), DP (np > 1: the summary's per-step reductions), TEXT (what to
# print) and DISTURBED (1 when other processes used more than MAX_OTHERS % of the machine)
one() {
  dir=$TMP/runs/$4
  rm -rf "$dir"
  load=$(cut -d' ' -f1-3 /proc/loadavg) rc=0
  j0=$(jiffies)
  times >"$TMP/t0"
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  if [ "$2" = 1 ]; then
    "$BIN" train "$CONFIG" -o "$dir" $COMMON --set train.epochs="$EPOCHS" \
      --set train.scheme="$1" --set train.threads="$3" >"$dir.out" 2>&1 || rc=$?
  else
    "$MPIRUN" $MPI_ARGS -np "$2" "$BIN" train "$CONFIG" -o "$dir" $COMMON \
      --set train.epochs="$EPOCHS" --set train.scheme="$1" --set train.threads="$3" \
      >"$dir.out" 2>&1 || rc=$?
  fi
  end=$(date +%s.%N)
  times >"$TMP/t1"
  j1=$(jiffies)
  [ "$rc" = 0 ] || { echo "bench-dist.sh: the run $4 failed:" >&2; cat "$dir.out" >&2; exit 1; }
  own=$(echo "$(child_cpu "$TMP/t1") $(child_cpu "$TMP/t0")" | awk '{print $1 - $2}')
  # $1 $2: busy and steal jiffies before, $3 $4 after, $5 own CPU s, $6 $7 start and end
  others=$(echo "$j0 $j1 $own $start $end" | awk -v hz="$HZ" -v n="$NCPU" \
    '{w = $7 - $6; printf "%.1f %.1f", 100 * (($3 - $1) / hz - $5) / (w * n), 100 * ($4 - $2) / hz / (w * n)}')
  o=${others% *} steal=${others#* }
  DISTURBED=0
  awk -v o="$o" -v m="$MAX_OTHERS" 'BEGIN {exit !(o > m)}' && DISTURBED=1
  n=$(json "$dir/summary.json" samples)
  sps=$(json "$dir/summary.json" samples_per_s)
  LINE=$(printf '%.1f' "$sps")
  extra=
  if [ "$1" = nam ]; then
    dec=$(phase_rate "$dir/epochs.csv" decoder "$n") enc=$(phase_rate "$dir/epochs.csv" encoder "$n")
    LINE="$LINE $dec $enc" extra=" (decoder $dec, encoder $enc)"
  fi
  DP=
  [ "$2" -gt 1 ] && DP=$(dp_line "$dir/summary.json")
  TEXT=$(printf '  %s: %.0f samples/s%s, %.1f s wall; load %s, others %s%%, steal %s%%' "$4" "$sps" \
    "$extra" "$(echo "$end $start" | awk '{print $1 - $2}')" "$load" "$o" "$steal")
  rm -rf "$dir"
}

# the all-reduces a step makes, timed alone (once per repetition, into $TMP/ar.all)
AR=
if command -v mpicc >/dev/null; then
  cat >"$TMP/ar.c" <<'C'
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
static int cmp(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
int main(int argc, char **argv)
{
    enum { REPS = 400 };
    static double t[REPS];
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    for (int a = 1; a < argc; a++) {
        const int n = atoi(argv[a]) / 4;
        float *buf = calloc(n > 0 ? n : 1, sizeof *buf);
        for (int w = 0; w < 40; w++)
            MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        for (int r = 0; r < REPS; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            const double t0 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            t[r] = MPI_Wtime() - t0;
        }
        qsort(t, REPS, sizeof *t, cmp);
        if (rank == 0)
            printf("%d %.2f %.2f %.2f\n", n * 4, 1e6 * t[REPS / 2], 1e6 * t[REPS / 10],
                   1e6 * t[9 * REPS / 10]);
        free(buf);
    }
    MPI_Finalize();
    return 0;
}
C
  mpicc -O2 -o "$TMP/ar" "$TMP/ar.c" 2>"$TMP/ar.err" && AR=1
fi
: >"$TMP/ar.all"
time_allreduce() {
  [ -n "$AR" ] || return 0
  # shellcheck disable=SC2086
  "$MPIRUN" $MPI_ARGS -np 2 "$TMP/ar" 48 "$ENCB" "$DECB" $((ENCB + DECB)) >>"$TMP/ar.all" 2>"$TMP/ar.err" ||
    { echo "  (allreduce timing failed: $(head -1 "$TMP/ar.err"))"; AR=; }
}

"$BIN" --version
echo "model: $MODEL ($CONFIG), data.train=$TRAIN, $EPOCHS epochs a run, $REPS repetitions; $NCPU CPUs"
echo "uptime at start: $(uptime)"
echo "bindings (mpirun $MPI_ARGS -np 2 --report-bindings):"
# shellcheck disable=SC2086
"$MPIRUN" $MPI_ARGS -np 2 --report-bindings true 2>&1 | sed 's/^/  /'

# each NAM phase alone, once: what its steps reduce
for ph in decoder encoder; do
  d=$TMP/phase-$ph
  # shellcheck disable=SC2086
  "$MPIRUN" $MPI_ARGS -np 2 "$BIN" train "$CONFIG" -o "$d" $COMMON --set data.train="$SET_NAME:train@1000" \
    --set train.epochs=1 --set train.scheme=nam --set nam.start="$ph" --set train.threads=1 \
    >"$d.out" 2>&1 || { echo "bench-dist.sh: the $ph-phase run failed:" >&2; cat "$d.out" >&2; exit 1; }
  dp_line "$d/summary.json" >"$TMP/phase-$ph.dp"
done
ENCB=$(($(json "$TMP/phase-decoder/summary.json" encoder_params) * 4))
DECB=$(($(json "$TMP/phase-decoder/summary.json" decoder_params) * 4))

CONFIGS="1-2 2-1"
[ "$ONE_THREAD" = 1 ] && CONFIGS="$CONFIGS 1-1"
KEPT_DISTURBED=0
r=1
while [ "$r" -le "$REPS" ]; do
  echo "repetition $r:"
  # rotate the order, so no configuration always runs first
  order=$(echo "$CONFIGS" | tr ' ' '\n' | awk -v r="$r" '{s[NR - 1] = $0} END {for (i = 0; i < NR; i++) print s[(i + r - 1) % NR]}')
  for scheme in joint nam; do
    # the scheme's configurations, back to back; all again when one of them was disturbed
    tries=0
    while :; do
      quiet
      : >"$TMP/group" && bad=0
      for c in $order; do
        one "$scheme" "${c%-*}" "${c#*-}" "rep$r-$scheme-np${c%-*}-t${c#*-}"
        echo "$c|$LINE|$DP|$DISTURBED" >>"$TMP/group"
        if [ "$DISTURBED" = 1 ]; then echo "$TEXT *disturbed*"; bad=1; else echo "$TEXT"; fi
      done
      if [ "$bad" = 0 ] || [ "$tries" -ge "$RETRIES" ]; then break; fi
      tries=$((tries + 1))
      echo "  (a run was disturbed: the $scheme runs of repetition $r again)"
    done
    [ "$bad" = 1 ] && KEPT_DISTURBED=$((KEPT_DISTURBED + 1))
    while IFS='|' read -r c line dp _; do
      echo "$line" >>"$TMP/$scheme-$c"
      [ -n "$dp" ] && echo "$dp" >"$TMP/$scheme-$c.dp"
    done <"$TMP/group"
  done
  quiet
  time_allreduce
  r=$((r + 1))
done
echo "uptime at end: $(uptime)"
[ "$KEPT_DISTURBED" -gt 0 ] && echo "kept disturbed: $KEPT_DISTURBED groups stayed disturbed after $RETRIES reruns and are in the medians"

if [ -n "$AR" ]; then
  echo "allreduce, 2 ranks (MPI_Allreduce in place, float sum; per repetition the median of 400 calls after 40, each after a barrier; here the median over repetitions [min, max]):"
  for size in 48 "$ENCB" "$DECB" $((ENCB + DECB)); do
    med=$(awk -v b="$size" '$1 == b {print $2}' "$TMP/ar.all" | median)
    mm=$(awk -v b="$size" '$1 == b {print $2}' "$TMP/ar.all" | minmax)
    echo "$size $med $mm" | awk '{printf "  %d bytes: %.1f us [%.1f, %.1f]; %.2f GB/s (bytes / median time)\n", $1, $2, $3, $4, $1 / $2 / 1e3}'
  done
  ar_us() { awk -v b="$1" '$1 == b {print $2}' "$TMP/ar.all" | median; }
  AR48=$(ar_us 48) AR_ENC=$(ar_us "$ENCB") AR_DEC=$(ar_us "$DECB")
else
  echo "allreduce: not timed (no mpicc, or it failed)"
fi

# the table
B=$(awk '/^\[train\]/{t = 1; next} /^\[/{t = 0} t && $1 == "batch" {print $3}' "$CONFIG")
stats() { # $1 file, $2 column: "median [min, max]"
  m=$(cut -d' ' -f"$2" "$1" | median)
  mm=$(cut -d' ' -f"$2" "$1" | minmax)
  echo "$m $mm" | awk '{printf "%.0f [%.0f, %.0f]", $1, $2, $3}'
}
ratio() { # $1 np=2 file, $2 np=1 file, $3 column: paired median [min, max]
  paste -d' ' "$1" "$2" | awk -v c="$3" -v k="$(($(head -1 "$1" | wc -w)))" '{print $c / $(c + k)}' >"$TMP/ratio"
  m=$(median <"$TMP/ratio")
  mm=$(minmax <"$TMP/ratio")
  echo "$m $mm" | awk '{printf "%.3f [%.3f, %.3f]", $1, $2, $3}'
}
bytes() { [ -f "$1" ] && awk '{printf "%.0f (%g + %g reductions)", $1, $2, $3}' "$1" || echo "none (one process)"; }
echo
echo "| scheme | np | threads/rank | samples/s, median [min, max] | np2/np1, paired median [min, max] | gradient bytes per step (gradient + scalar all-reduces) |"
echo "|---|---:|---:|---|---|---|"
for row in "joint joint 1" "nam cycle 1" "nam decoder 2" "nam encoder 3"; do
  # shellcheck disable=SC2086
  set -- $row
  file=$1 col=$3
  case $2 in cycle) label="NAM (decoder + encoder epoch)";; decoder) label="NAM decoder phase";; encoder) label="NAM encoder phase";; *) label=$2;; esac
  case $2 in decoder|encoder) dp=$TMP/phase-$2.dp;; *) dp=$TMP/$file-2-1.dp;; esac
  for c in $CONFIGS; do
    np=${c%-*} th=${c#*-}
    if [ "$np" = 2 ]; then r2=$(ratio "$TMP/$file-2-1" "$TMP/$file-1-2" "$col"); by=$(bytes "$dp")
    elif [ "$th" = 1 ]; then r2="(np2 / this: $(ratio "$TMP/$file-2-1" "$TMP/$file-1-1" "$col"))"; by="none (one process)"
    else r2=""; by="none (one process)"; fi
    echo "| $label | $np | $th | $(stats "$TMP/$file-$c" "$col") | $r2 | $by |"
  done
done
echo
echo "ratio of medians np2/np1: joint $(echo "$(cut -d' ' -f1 "$TMP/joint-2-1" | median) $(cut -d' ' -f1 "$TMP/joint-1-2" | median)" | awk '{printf "%.3f", $1 / $2}'), NAM $(echo "$(cut -d' ' -f1 "$TMP/nam-2-1" | median) $(cut -d' ' -f1 "$TMP/nam-1-2" | median)" | awk '{printf "%.3f", $1 / $2}')"
echo "bytes per step by parameter count (4 bytes each): joint $((ENCB + DECB)) (encoder $ENCB + decoder $DECB), NAM decoder phase $DECB, encoder phase $ENCB; NAM's mean over its two phases' steps $(((ENCB + DECB) / 2))"
if [ -n "$AR" ]; then
  for s in joint nam; do
    med=$(cut -d' ' -f1 "$TMP/$s-2-1" | median)
    # shellcheck disable=SC2046
    set -- $(cat "$TMP/$s-2-1.dp")
    # a step's gradient all-reduces (joint: encoder's then decoder's; NAM: the phase's block,
    # the mean of the two) and its scalar ones, each at its size's median time
    case $s in
      joint) g=$(echo "$AR_ENC $AR_DEC" | awk '{print $1 + $2}');;
      nam) g=$(echo "$AR_ENC $AR_DEC" | awk '{print ($1 + $2) / 2}');;
    esac
    echo "$s at np=2: a step of $B samples takes $(echo "$B $med" | awk '{printf "%.3f", 1e3 * $1 / $2}') ms (median rate); its all-reduces alone $(echo "$g $3 $AR48" | awk '{printf "%.3f", ($1 + $2 * $3) / 1e3}') ms ($2 gradient, $(printf '%.2f' "$3") scalar at <= 48 bytes)"
  done
fi
