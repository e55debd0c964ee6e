#!/bin/sh
# bench-live.sh — what `--live` costs training: samples/s of the same run with and without it,
# alternating (live, plain, plain, live, …: neither side always runs first, on a warmer
# machine), the median of each side over RUNS (9) pairs, their ratio, and the median of the
# pairs' own ratios. samples/s is the one
# `anamo train` prints: training time only, the per-epoch evaluation excluded, so the page's
# pictures (drawn at epochs' ends) are the only part of the live view it does not see; their
# forward passes show only in the wall times, printed beside.
#   sh bench/bench-live.sh            the main job's dense MNIST model (joint, 2 epochs on
#                                     all of mnist:train), or seed 000's halves when there is
#                                     no MNIST under $ANAMO_DATA
#   RUNS=7 BIN=build/anamo CONFIG=my.ini SET="--set train.epochs=1" sh bench/bench-live.sh
set -eu
cd "$(dirname "$0")/.."
BIN=${BIN:-build/anamo}
RUNS=${RUNS:-9}
[ "$RUNS" -ge 5 ] || { echo "bench-live.sh: RUNS must be 5 or more (medians of 5)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "bench-live.sh: no $BIN (make first)" >&2; exit 2; }
TMP=$(mktemp -d /tmp/anamo-bench-live.XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM
export ANAMO_DATA="${ANAMO_DATA:-../shared/data}"
if [ -z "${CONFIG:-}" ]; then
  CONFIG=$TMP/bench.ini
  if [ -e "$ANAMO_DATA/mnist" ]; then
    DATA="train = mnist:train
test = mnist:test@2000"
    MODEL="encoder = linear 128, relu, linear 64, relu
decoder = linear 128, relu, linear 784, sigmoid"
  else
    DATA="train = halves:20000:7
test = halves:test"
    MODEL="encoder = linear 10, sigmoid
decoder = linear 100, sigmoid"
  fi
  cat > "$CONFIG" <<INI
[data]
$DATA
[model]
$MODEL
[train]
epochs = 2
batch = 125
checkpoint_every = 0
[joint]
optimizer = adam
lr = 1e-3
INI
fi

# one run; prints its samples/s and wall seconds
one() { # $1 = live|plain, $2 = run number
  out=$TMP/$1-$2
  if [ "$1" = live ]; then flag="--live 0"; else flag=""; fi
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$BIN" train "$CONFIG" -o "$out" ${SET:-} $flag >"$out.stdout" 2>"$out.stderr" ||
    { echo "bench-live.sh: the $1 run failed:" >&2; cat "$out.stderr" >&2; exit 1; }
  end=$(date +%s.%N)
  sps=$(sed -n 's/.* \([0-9.]*\) samples\/s$/\1/p' "$out.stdout")
  echo "$sps $(echo "$end $start" | awk '{printf "%.2f", $1 - $2}')"
}

median() { sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }

: >"$TMP/live" && : >"$TMP/plain"
i=1
while [ "$i" -le "$RUNS" ]; do
  if [ $((i % 2)) -eq 1 ]; then order="live plain"; else order="plain live"; fi
  for side in $order; do
    r=$(one "$side" "$i")
    echo "$r" >>"$TMP/$side"
    echo "run $i $side: $(echo "$r" | cut -d' ' -f1) samples/s, $(echo "$r" | cut -d' ' -f2) s wall"
  done
  i=$((i + 1))
done
live=$(cut -d' ' -f1 "$TMP/live" | median)
plain=$(cut -d' ' -f1 "$TMP/plain" | median)
live_wall=$(cut -d' ' -f2 "$TMP/live" | median)
plain_wall=$(cut -d' ' -f2 "$TMP/plain" | median)
echo "config: $CONFIG ($(sed -n 's/^train = //p' "$CONFIG" | head -1)), $RUNS runs each"
echo "median samples/s without --live: $plain"
echo "median samples/s with --live:    $live"
echo "ratio (with / without):          $(echo "$live $plain" | awk '{printf "%.4f", $1 / $2}')"
# each pair ran back to back, so its ratio cancels what the machine did over minutes
paired=$(paste -d' ' "$TMP/live" "$TMP/plain" | awk '{print $1 / $3}' | median)
echo "median of the pairs' ratios:     $(echo "$paired" | awk '{printf "%.4f", $1}')"
echo "median wall s without / with:    $plain_wall / $live_wall (the wall time adds the server's start and the pictures)"
