#!/bin/sh
# dist-cli.sh ANAMO MPIEXEC — the anamo command across 2 ranks (CTest test dist_cli):
#   1. A NAM run stopped after 2 of 4 epochs on 2 ranks resumes on 1 rank and, from a copy, on
#      2 ranks; both end with the weights of an unbroken 4-epoch run on one process (1e-5).
#   2. A rank killed mid-run (SIGKILL, after the first checkpoint): the job ends with an error,
#      the checkpoint loads (anamo eval), and --resume on 2 ranks finishes the run with the
#      weights of an unbroken run on 2 ranks.
#   3. anamo compare --spread on 2 ranks (whole runs to the ranks) gives the main job's
#      results.json (--quick, one thread per run) of a serial compare, every number but the
#      clock's (seconds_per_epoch) bit for bit.
# Only rank 0 writes: the logs of a 2-rank run hold one row per epoch.
set -eu
ANAMO=${1:?usage: dist-cli.sh ANAMO MPIEXEC}
MPIEXEC=${2:?usage: dist-cli.sh ANAMO MPIEXEC}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# MNIST for part 3: $ANAMO_DATA as the user set it, else ../shared/data beside the checkout
export ANAMO_DATA="${ANAMO_DATA:-$ROOT/../shared/data}"
COMPARE="python3 $ROOT/scripts/compare-checkpoints.py"
MPI="$MPIEXEC --allow-run-as-root --oversubscribe -n 2"
if ! "$ANAMO" --version | grep -q '^mpi: .*(built in)'; then
    echo "skipped: this anamo is built without MPI"
    exit 77
fi
WORK=$(mktemp -d /tmp/anamo-dist-cli.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
fail() { echo "dist-cli: $*" >&2; exit 1; }

cat >nam.ini <<'EOF'
[data]
train = halves:train
test = halves:test
[model]
encoder = linear 10, relu
decoder = linear 100, sigmoid
[loss]
lambda = 0.01
[train]
scheme = nam
epochs = 4
batch = 33
threads = 1
[nam]
optimizer = adam
decoder_lr = 1e-2
encoder_lr = 1e-3
EOF

# ---- 1. stopped on 2 ranks, resumed on 1 and on 2 ------------------------------------------
"$ANAMO" train nam.ini -o whole >whole.log 2>&1 || fail "the one-process run failed: $(tail -3 whole.log)"
$MPI "$ANAMO" train nam.ini -o half --set train.epochs=2 >half.log 2>&1 ||
    fail "the 2-rank run failed: $(tail -3 half.log)"
[ "$(wc -l <half/epochs.csv)" -eq 3 ] || fail "half/epochs.csv: want a header and 2 rows, got $(wc -l <half/epochs.csv) lines"
cp -r half half2
"$ANAMO" train --resume half --set train.epochs=4 >resume1.log 2>&1 ||
    fail "resuming on 1 rank failed: $(tail -3 resume1.log)"
$MPI "$ANAMO" train --resume half2 --set train.epochs=4 >resume2.log 2>&1 ||
    fail "resuming on 2 ranks failed: $(tail -3 resume2.log)"
$COMPARE whole/model.safetensors half/model.safetensors || fail "resumed on 1 rank: other weights"
$COMPARE whole/model.safetensors half2/model.safetensors || fail "resumed on 2 ranks: other weights"
grep -q "data-parallel on 2 ranks" resume2.log || fail "resume2.log does not say it ran on 2 ranks"
[ "$(wc -l <half2/epochs.csv)" -eq 5 ] || fail "half2/epochs.csv: want a header and 4 rows"

# ---- 2. a rank killed mid-run ---------------------------------------------------------------
cat >long.ini <<'EOF'
[data]
train = halves:2000:1
test = halves:test
[model]
encoder = linear 10, relu
decoder = linear 100, sigmoid
[train]
scheme = joint
epochs = 400
batch = 10
threads = 1
checkpoint_iterations = 100
[joint]
optimizer = adam
lr = 1e-3
EOF
$MPI "$ANAMO" train long.ini -o killed >killed.log 2>&1 &
job=$!
tries=0
until [ -f killed/model.safetensors ]; do
    tries=$((tries + 1))
    [ $tries -lt 600 ] || { kill $job 2>/dev/null; fail "no checkpoint after 60 s"; }
    sleep 0.1
done
# the rank-1 process: the younger of the two anamo processes of this run
victim=$(pgrep -n -f "anamo train long.ini -o killed") || fail "no anamo process to kill"
kill -9 "$victim"
if wait $job; then fail "the job ended well after a rank was killed"; fi
"$ANAMO" eval killed --data halves:test >eval.json 2>eval.log || fail "the checkpoint left does not load: $(cat eval.log)"
grep -q '"mse"' eval.json || fail "anamo eval printed no mse"
# two epochs past the checkpoint's, however far the run got before the kill
epochs=$(python3 -c '
import json, struct, sys
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", data[:8])[0]
progress = json.loads(json.loads(data[8:8 + n])["__metadata__"]["anamo.progress"])
print(progress["pass"] + 2)' killed/model.safetensors) || fail "cannot read the checkpoint's progress"
$MPI "$ANAMO" train --resume killed --set train.epochs="$epochs" >resumed.log 2>&1 ||
    fail "--resume after the kill failed: $(tail -3 resumed.log)"
grep -q "(resumed)" resumed.log || fail "resumed.log does not say it resumed"
$MPI "$ANAMO" train long.ini -o unbroken --set train.epochs="$epochs" \
    --set train.checkpoint_iterations=0 >unbroken.log 2>&1 ||
    fail "the unbroken 2-rank run failed: $(tail -3 unbroken.log)"
$COMPARE unbroken/model.safetensors killed/model.safetensors ||
    fail "resumed after the kill: other weights than the unbroken run's"
# ---- 3. --spread against a serial compare ----------------------------------------------------
MAIN="$ROOT/experiments/mnist-nam-vs-joint.ini --quick --set train.threads=1"
"$ANAMO" compare $MAIN -o serial >serial.log 2>&1 || fail "the serial compare failed: $(tail -3 serial.log)"
$MPI "$ANAMO" compare $MAIN -o spread --spread >spread.log 2>&1 ||
    fail "compare --spread failed: $(tail -3 spread.log)"
[ ! -e spread/.claims ] || fail "compare --spread left its claims behind"
python3 - serial/results.json spread/results.json <<'PY' || fail "--spread: other results than serial"
import json, sys
CLOCK = ("seconds_per_epoch", "samples_per_s")
def same(a, b, path):
    if isinstance(a, dict) and isinstance(b, dict):
        keys = set(a) | set(b)
        return all(k in CLOCK or (k in a and k in b and same(a[k], b[k], path + "/" + k))
                   for k in keys)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, path) for x, y in zip(a, b))
    if a != b:
        print("%s: %r (serial) vs %r (--spread)" % (path, a, b))
    return a == b
sys.exit(0 if same(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), "") else 1)
PY
echo "dist-cli: resume on 1 and 2 ranks, a killed rank's run resumed, --spread as serial: OK"
