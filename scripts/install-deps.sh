#!/bin/sh
# Installs the Debian 12 packages anamo builds, tests and plots with (see DESIGN.md's table),
# curl for scripts/get-mnist.sh, libmicrohttpd for `--live` and chromium for its test,
# clang-format for scripts/check-format.sh, Open MPI (libopenmpi-dev, and openmpi-bin's mpiexec
# for test_comm_mpi2) for data-parallel training (src/dist/, docs/SCALING.md), and
# what the Python package (python/) builds and is tested with: python3-dev, NumPy, pytest, and
# PyTorch for the test that loads a model into torch.nn (OpenBLAS as its libblas.so.3).
# Run as root (CI and the fresh-Debian check are root); uses sudo otherwise.
set -eu
PACKAGES="build-essential cmake pkg-config git ca-certificates curl
  libopenblas-openmp-dev libdnnl-dev zlib1g-dev
  libinih-dev libcjson-dev libstb-dev libcmocka-dev gnuplot-nox
  libmicrohttpd-dev chromium clang-format libopenmpi-dev openmpi-bin
  python3-dev python3-numpy python3-pytest python3-setuptools python3-pip python3-venv
  libopenblas0-pthread python3-torch"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "installing:$missing"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
