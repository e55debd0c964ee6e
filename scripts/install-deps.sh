#!/bin/sh
# Installs the Debian 12 packages anamo builds, tests and plots with (see DESIGN.md's table),
# curl for scripts/get-mnist.sh, libmicrohttpd for `--live` and chromium for its test.
# Run as root (CI and the fresh-Debian check are root); uses sudo otherwise.
set -eu
PACKAGES="build-essential cmake pkg-config git ca-certificates curl
  libopenblas-openmp-dev liblapacke-dev libdnnl-dev zlib1g-dev
  libinih-dev libcjson-dev libstb-dev libcmocka-dev gnuplot-nox
  libmicrohttpd-dev chromium"
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
