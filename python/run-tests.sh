#!/bin/sh
# The Python package's tests, as CI runs them, from the checkout root:
#   sh python/run-tests.sh
# Installs ./python into a fresh virtual environment under a temporary folder (Debian's
# python3 with its system site packages: NumPy, pytest, torch; nothing is downloaded), then runs
# python/tests. Needs what scripts/install-deps.sh installs and the anamo command built in
# build/ (make), or $ANAMO_BIN naming one; MNIST under $ANAMO_DATA (default ../shared/data).
# PYTHON may name another interpreter (default /usr/bin/python3); extra arguments go to pytest.
set -eu
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/usr/bin/python3}
: "${ANAMO_DATA:=../shared/data}"
ANAMO_DATA=$(cd "$ANAMO_DATA" 2>/dev/null && pwd || echo "$ANAMO_DATA")
export ANAMO_DATA
# the same thread count here and in the anamo command the tests run (bit-for-bit comparisons)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
venv=$(mktemp -d "${TMPDIR:-/tmp}/anamo-python.XXXXXX")
trap 'rm -rf "$venv"' EXIT
trap 'exit 130' INT TERM
"$PYTHON" -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install --no-build-isolation --no-index --disable-pip-version-check \
  ./python
# from the checkout root, but not importing the package from python/ (its extension is only in
# the venv): pytest's rootdir is python/tests
"$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests "$@"
