#!/usr/bin/env bash
# check-bit-identical.sh REV — does the working tree train exactly as REV does?
#
# Builds REV (in a git worktree) and the working tree, both Release with the same options, runs
# the same jobs with each on one thread and the same seeds, and compares what they leave:
#   - every *.safetensors (final models and checkpoints): the tensor list, every tensor's bytes,
#     and the progress record but for its clock readings (elapsed, epoch_seconds);
#   - every epochs.csv and metrics.csv: every column but the clock's (seconds, elapsed_s,
#     samples_per_s).
# Prints OK, or the first difference (file, tensor or column, element) and exits 1.
#
# The jobs: the main job's four arms (experiments/mnist-nam-vs-joint.ini --quick), ANAMO
# (anamo-vs-adam.ini --quick), ANAMO and free codes on binary codes (binary-codes.ini --quick),
# and short configs written below for what those leave out: backtracking, function and gradient
# restarts, the decoder-weighted penalty, unit-norm decoders, [phase NAME] cycles with the
# accelerated methods, no code cache, resampling, the bce fit of free codes. The experiment
# configs are REV's, so that both builds read the same files.
#
# Environment:
#   ANAMO_DATA             datasets (default ../shared/data beside the checkout)
#   ANAMO_BITCHECK_DIR     where the worktrees, builds and runs go, kept for the next call
#                          (default: a new /tmp/anamo-bitcheck.*, removed after a pass)
#   ANAMO_BITCHECK_ONLY    paths (e.g. "src/train src/optim") to take from the working tree onto
#                          a second worktree of REV instead of building the working tree as it
#                          is: compares one change alone while others edit other files
#   ANAMO_BITCHECK_JOBS    a subset of the job names below, space-separated (default: all)
#
# scripts/check-bit-identical.sh --ctest BUILD_DIR — the CTest test `bit_identical`: REV is the
# commit tests/bit-identical.ref names, the candidate is BUILD_DIR's anamo as it stands (the
# reference is configured with BUILD_DIR's build type, compiler and options), and the jobs are
# the main job's arms, ANAMO and free codes. Exits 77 (skipped) outside a git clone, or where
# the clone lacks that commit (a shallow one).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CANDIDATE_BUILD=
if [ "${1:-}" = "--ctest" ]; then
    CANDIDATE_BUILD=$(cd "${2:?usage: scripts/check-bit-identical.sh --ctest BUILD_DIR}" && pwd)
    REV=$(sed -n 's/^\([0-9a-f]\{40\}\).*/\1/p' "$ROOT/tests/bit-identical.ref" | head -1)
    if ! git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
        echo "skipped: $ROOT is not a git clone, so there is no reference commit to build"
        exit 77
    fi
    if ! git -C "$ROOT" cat-file -e "$REV^{commit}" 2>/dev/null; then
        echo "skipped: this clone lacks the reference commit $REV (a shallow clone?)"
        exit 77
    fi
    export ANAMO_BITCHECK_JOBS=${ANAMO_BITCHECK_JOBS:-mnist-nam-vs-joint anamo-vs-adam binary-codes}
else
    REV=${1:?usage: scripts/check-bit-identical.sh REV | --ctest BUILD_DIR}
fi
export ANAMO_DATA=${ANAMO_DATA:-$ROOT/../shared/data}
export OMP_NUM_THREADS=1
# The worktrees go with the folder after a pass; a failure leaves both for a look.
clean_up() {
    local status=$? w
    if [ $status -ne 0 ]; then
        echo "kept $WORK"
        return
    fi
    for w in "$WORK/ref" "$WORK/new"; do
        if [ -d "$w" ]; then git -C "$ROOT" worktree remove --force "$w"; fi
    done
    rm -rf "$WORK"
}
if [ -n "${ANAMO_BITCHECK_DIR:-}" ]; then
    WORK=$ANAMO_BITCHECK_DIR # kept, so that a second call rebuilds only what changed
else
    WORK=$(mktemp -d /tmp/anamo-bitcheck.XXXXXX)
    trap clean_up EXIT
fi
mkdir -p "$WORK"
# one set of options for both builds: what changes the code generated is named here
CMAKE_OPTS=(-DCMAKE_BUILD_TYPE=Release -DANAMO_NATIVE=OFF -DANAMO_SANITIZE=OFF -DANAMO_TESTS=OFF)
if [ -n "$CANDIDATE_BUILD" ]; then # the reference is built as the candidate was
    cached() { sed -n "s/^$1:[A-Z]*=//p" "$CANDIDATE_BUILD/CMakeCache.txt"; }
    CMAKE_OPTS=(-DCMAKE_BUILD_TYPE="$(cached CMAKE_BUILD_TYPE)" -DANAMO_NATIVE="$(cached ANAMO_NATIVE)"
                -DANAMO_SANITIZE="$(cached ANAMO_SANITIZE)" -DCMAKE_C_COMPILER="$(cached CMAKE_C_COMPILER)"
                -DANAMO_TESTS=OFF)
fi

worktree_at() { # DIR: a worktree of REV (made once)
    [ -d "$1" ] || git -C "$ROOT" worktree add --detach "$1" "$REV" >/dev/null
}

build() { # SOURCE BUILD_DIR LOG
    if ! { cmake -S "$1" -B "$2" "${CMAKE_OPTS[@]}" >"$3" 2>&1 &&
        cmake --build "$2" -j2 --target anamo_cli >>"$3" 2>&1; }; then
        echo "build of $1 failed (see $3)"
        tail -5 "$3"
        exit 1
    fi
}

REF_SRC=$WORK/ref
worktree_at "$REF_SRC"
if [ -n "${ANAMO_BITCHECK_ONLY:-}" ]; then
    NEW_SRC=$WORK/new
    worktree_at "$NEW_SRC"
    for p in $ANAMO_BITCHECK_ONLY; do # the working tree's version of p, files removed included
        rm -rf "${NEW_SRC:?}/$p"
        cp -a "$ROOT/$p" "$NEW_SRC/$p"
    done
else
    NEW_SRC=$ROOT
fi
echo "reference: $REV ($(git -C "$ROOT" rev-parse --short "$REV")) in $REF_SRC"
if [ -n "$CANDIDATE_BUILD" ]; then
    echo "candidate: $CANDIDATE_BUILD/anamo, as built"
    build "$REF_SRC" "$WORK/ref-build" "$WORK/ref-build.log"
    NEW_BIN=$CANDIDATE_BUILD/anamo
else
    echo "candidate: $NEW_SRC${ANAMO_BITCHECK_ONLY:+ (REV with these paths from the working tree:}"
    [ -z "${ANAMO_BITCHECK_ONLY:-}" ] || echo "           $ANAMO_BITCHECK_ONLY)"
    build "$REF_SRC" "$WORK/ref-build" "$WORK/ref-build.log" &
    ref_build=$!
    build "$NEW_SRC" "$WORK/new-build" "$WORK/new-build.log"
    wait $ref_build
    NEW_BIN=$WORK/new-build/anamo
fi

# ---- the short configs --------------------------------------------------------------------
CFG=$WORK/configs
mkdir -p "$CFG"
HALVES='[data]
train = halves:train
validation = halves:100:3
test = halves:test
'
cat >"$CFG/anamo-backtrack-function.ini" <<EOF
$HALVES
[model]
encoder = linear 10, sigmoid
decoder = linear 100, sigmoid
[loss]
type = mse_sum
lambda = 0.1
penalty = decoder_l1
[train]
scheme = anamo
epochs = 6
batch = 30
decoder_norm = sphere
checkpoint_every = 2
[anamo]
enc_iters = 4
dec_iters = 6
enc_lr = 0.5
dec_lr = 0.5
step = backtrack
restart = function
EOF
cat >"$CFG/anamo-gradient-resample.ini" <<EOF
$HALVES
[model]
encoder = linear 10, relu
decoder = linear 100, sigmoid
[loss]
type = mse_sum
lambda = 0.2
[train]
scheme = anamo
epochs = 6
batch = 40
decoder_norm = ball
resample_every = 2
[anamo]
enc_iters = 3
dec_iters = 5
enc_lr = 0.2
dec_lr = 0.5
restart = gradient
EOF
cat >"$CFG/anamo-no-encoder-iterations.ini" <<EOF
$HALVES
[model]
encoder = linear 10, sigmoid
decoder = linear 100, sigmoid
[loss]
type = bce
lambda = 0.05
[train]
scheme = anamo
epochs = 3
batch = 50
[anamo]
enc_iters = 0
dec_iters = 4
EOF
cat >"$CFG/freecodes-bce.ini" <<EOF
$HALVES
[model]
encoder = linear 8, sigmoid
decoder = linear 100, sigmoid
binary_codes = true
[loss]
type = mse_sum
lambda = 0.1
penalty = decoder_l1
[train]
scheme = freecodes
epochs = 5
batch = 30
[freecodes]
code_iters = 3
dec_iters = 4
restart = gradient
fit = bce
fit_epochs = 2
refit_epochs = 1
EOF
cat >"$CFG/nam-accelerated-backtrack.ini" <<EOF
$HALVES
[model]
encoder = linear 10, relu
decoder = linear 100, sigmoid
[loss]
type = mse_sum
lambda = 0.05
[train]
scheme = nam
epochs = 4
batch = 30
decoder_norm = sphere
checkpoint_iterations = 5
[nam]
phases = dec, enc
[phase dec]
block = decoder
optimizer = fista
prox = l1
prox_lambda = 0.01
step = backtrack
lr = 0.5
[phase enc]
block = encoder
optimizer = accelerated
restart = gradient
step = backtrack
lr = 0.5
EOF
cat >"$CFG/nam-no-cache-resample.ini" <<EOF
$HALVES
[model]
encoder = linear 10, relu
decoder = linear 100, sigmoid
[loss]
type = mse_sum
lambda = 0.05
penalty = decoder_l1
[train]
scheme = nam
epochs = 4
batch = 25
cache_codes = false
decoder_norm = ball
resample_every = 3
[nam]
phases = dec, enc, both
[phase dec]
block = decoder
optimizer = sgd
step = backtrack
lr = 1
iterations = 3
[phase enc]
block = encoder
optimizer = momentum
lr = 0.05
iterations = 3
[phase both]
block = both
optimizer = adam
lr = 0.01
iterations = 2
EOF
cat >"$CFG/joint-accelerated.ini" <<EOF
$HALVES
[model]
encoder = linear 10, sigmoid
decoder = linear 100, sigmoid
[loss]
type = mse_sum
lambda = 0.1
[train]
scheme = joint
epochs = 3.5
batch = 30
[joint]
optimizer = accelerated
lr = 0.1
restart = gradient
EOF

# ---- the jobs ------------------------------------------------------------------------------
EXP=$REF_SRC/experiments
ALL_JOBS="mnist-nam-vs-joint anamo-vs-adam binary-codes"
for f in "$CFG"/*.ini; do
    f=${f##*/}
    ALL_JOBS="$ALL_JOBS ${f%.ini}"
done
JOBS=${ANAMO_BITCHECK_JOBS:-$ALL_JOBS}

run_jobs() { # BINARY OUT_DIR
    local bin=$1 out=$2 job
    rm -rf "$out"
    mkdir -p "$out"
    for job in $JOBS; do
        if [ -f "$EXP/$job.ini" ]; then
            "$bin" compare "$EXP/$job.ini" --quick -o "$out/$job" >"$out/$job.log" 2>&1
        else
            "$bin" train "$CFG/$job.ini" -o "$out/$job" >"$out/$job.log" 2>&1
        fi || { echo "$job failed with $bin (see $out/$job.log)"; return 1; }
    done
}

echo "running on one thread: $JOBS"
start=$(date +%s)
run_jobs "$WORK/ref-build/anamo" "$WORK/ref-out" &
ref_runs=$!
run_jobs "$NEW_BIN" "$WORK/new-out" || { wait $ref_runs || true; exit 1; }
wait $ref_runs
echo "runs done in $(($(date +%s) - start)) s"

# ---- the comparison ------------------------------------------------------------------------
python3 - "$WORK/ref-out" "$WORK/new-out" <<'PY'
import csv, json, os, struct, sys

ref_root, new_root = sys.argv[1], sys.argv[2]
CLOCK_COLUMNS = {"seconds", "elapsed_s", "samples_per_s"}
CLOCK_PROGRESS = {"elapsed", "epoch_seconds"}
SIZES = {"F32": 4, "F64": 8, "I64": 8, "I32": 4, "U8": 1}


def fail(msg):
    print("DIFFERENT: " + msg)
    sys.exit(1)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    return header, data[8 + n:]


def first_element(a, b, dtype):
    size = SIZES.get(dtype, 1)
    for i in range(0, min(len(a), len(b)), size):
        if a[i:i + size] != b[i:i + size]:
            if dtype == "F32":
                return "element %d: %r (REV) vs %r" % (
                    i // 4, struct.unpack("<f", a[i:i + 4])[0], struct.unpack("<f", b[i:i + 4])[0])
            return "element %d" % (i // size)
    return "lengths %d vs %d" % (len(a), len(b))


def compare_safetensors(rel, ref, new):
    (h_ref, d_ref), (h_new, d_new) = read_safetensors(ref), read_safetensors(new)
    names_ref = [k for k in h_ref if k != "__metadata__"]
    names_new = [k for k in h_new if k != "__metadata__"]
    if sorted(names_ref) != sorted(names_new):
        fail("%s: tensors %s vs %s" % (rel, sorted(names_ref), sorted(names_new)))
    for name in sorted(names_ref, key=lambda k: h_ref[k]["data_offsets"][0]):
        t_ref, t_new = h_ref[name], h_new[name]
        if (t_ref["dtype"], t_ref["shape"]) != (t_new["dtype"], t_new["shape"]):
            fail("%s: tensor %s: %s%s vs %s%s" % (rel, name, t_ref["dtype"], t_ref["shape"],
                                                  t_new["dtype"], t_new["shape"]))
        a = d_ref[t_ref["data_offsets"][0]:t_ref["data_offsets"][1]]
        b = d_new[t_new["data_offsets"][0]:t_new["data_offsets"][1]]
        if a != b:
            fail("%s: tensor %s, first at %s" % (rel, name, first_element(a, b, t_ref["dtype"])))
    p_ref = json.loads(h_ref.get("__metadata__", {}).get("anamo.progress", "{}"))
    p_new = json.loads(h_new.get("__metadata__", {}).get("anamo.progress", "{}"))
    for key in sorted(set(p_ref) | set(p_new)):
        if key not in CLOCK_PROGRESS and p_ref.get(key) != p_new.get(key):
            fail("%s: progress %s: %r (REV) vs %r" % (rel, key, p_ref.get(key), p_new.get(key)))
    return len(names_ref)


def compare_csv(rel, ref, new):
    with open(ref) as f:
        rows_ref = list(csv.DictReader(f))
    with open(new) as f:
        rows_new = list(csv.DictReader(f))
    if len(rows_ref) != len(rows_new):
        fail("%s: %d rows (REV) vs %d" % (rel, len(rows_ref), len(rows_new)))
    for i, (r, n) in enumerate(zip(rows_ref, rows_new)):
        if set(r) != set(n):
            fail("%s: columns %s vs %s" % (rel, sorted(r), sorted(n)))
        for col in r:
            if col not in CLOCK_COLUMNS and r[col] != n[col]:
                fail("%s: row %d, column %s: %s (REV) vs %s" % (rel, i + 1, col, r[col], n[col]))


def files(root):
    out = set()
    for d, _, names in os.walk(root):
        for name in names:
            if name.endswith(".safetensors") or name in ("epochs.csv", "metrics.csv"):
                out.add(os.path.relpath(os.path.join(d, name), root))
    return out


ref_files, new_files = files(ref_root), files(new_root)
if ref_files != new_files:
    fail("files only in REV's runs: %s; only in the working tree's: %s" % (
        sorted(ref_files - new_files)[:5], sorted(new_files - ref_files)[:5]))
tensors = checkpoints = tables = 0
# the tensors first: a difference shows there before it reaches a loss column
for rel in sorted(ref_files, key=lambda r: (not r.endswith(".safetensors"), r)):
    ref, new = os.path.join(ref_root, rel), os.path.join(new_root, rel)
    if rel.endswith(".safetensors"):
        tensors += compare_safetensors(rel, ref, new)
        checkpoints += 1
    else:
        compare_csv(rel, ref, new)
        tables += 1
if checkpoints == 0:
    fail("no checkpoints were written")
print("OK: %d safetensors files (%d tensors) and %d csv tables bit-identical" % (
    checkpoints, tensors, tables))
PY
