#!/bin/sh
# check-install.sh — installs anamo into a temporary prefix and builds the examples against what
# was installed, as a user of the library would, never against the build tree:
#   1. cmake --install of the library (shared and static), the headers, anamo.pc, the CMake package
#      and the command, into $PREFIX (a temporary folder, never /usr/local);
#   2. examples/ through pkg-config (examples/Makefile: cc $(pkg-config --cflags --libs anamo)),
#      and again linked statically (pkg-config --static, libanamo.a);
#   3. examples/ through CMake (examples/CMakeLists.txt: find_package(anamo), anamo::anamo and
#      anamo::anamo_static) with CMAKE_PREFIX_PATH=$PREFIX;
#   4. every program runs, and ldd shows the shared ones load $PREFIX's libanamo.so.0 and the
#      static ones none; the installed command runs; nothing installed names the build tree;
#   5. all of libanamo.a (--whole-archive, not only what the examples call) links with what
#      pkg-config --static and anamo::anamo_static say it needs.
# Usage: sh scripts/check-install.sh [BUILD_DIR]   (an existing build to install from; else a
# fresh one in the temporary folder). KEEP=1 keeps the temporary folder.
set -eu
cd "$(dirname "$0")/.."
SRC=$(pwd)
sh scripts/install-deps.sh
TMP=$(mktemp -d "${TMPDIR:-/tmp}/anamo-check-install.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$TMP"' EXIT
BUILD=${1:-$TMP/build}
PREFIX=$TMP/prefix
JOBS=$(nproc)
unset LD_LIBRARY_PATH
fail() {
  echo "check-install: FAIL: $*" >&2
  exit 1
}
step() { echo "check-install: $*"; }

# 1. build what is installed, and install it
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DANAMO_TESTS=OFF >/dev/null ||
    fail "configure $BUILD"
fi
BUILD=$(cd "$BUILD" && pwd)
step "building $BUILD"
cmake --build "$BUILD" -j "$JOBS" --target anamo anamo_shared anamo_cli >/dev/null ||
  fail "build (cmake --build $BUILD)"
cmake --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" || fail "cmake --install"
# lib, or lib/x86_64-linux-gnu where the build was configured for the prefix /usr
LIB=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$BUILD/CMakeCache.txt")
LIB=${LIB:-lib}
for f in include/anamo.h include/anamo_program.h $LIB/libanamo.a $LIB/libanamo.so $LIB/libanamo.so.0 bin/anamo \
         $LIB/pkgconfig/anamo.pc $LIB/cmake/anamo/anamoConfig.cmake \
         $LIB/cmake/anamo/anamoConfigVersion.cmake $LIB/cmake/anamo/anamoTargets.cmake; do
  [ -e "$PREFIX/$f" ] || fail "not installed: $f"
done
step "installed into $PREFIX"
# the text files must not point back into the source or build tree, the binaries' run paths
# neither
if grep -rl -e "$BUILD" -e "$SRC" "$PREFIX/$LIB/pkgconfig" "$PREFIX/$LIB/cmake"; then
  fail "the files above name $BUILD or $SRC"
fi
for f in "$PREFIX/bin/anamo" "$PREFIX/$LIB/libanamo.so.0"; do
  if readelf -d "$f" | grep -i -E "r(un)?path" | grep -q -e "$BUILD" -e "$SRC"; then
    fail "$f: its run path names the build tree: $(readelf -d "$f" | grep -i path)"
  fi
done
"$PREFIX/bin/anamo" --version >"$TMP/version.txt" || fail "installed anamo --version"
step "installed command: $(head -n 1 "$TMP/version.txt")"

# The installed libanamo.so.0 is what a program loads (SHARED=1), or no libanamo.so at all.
check_loads() { # PROGRAM SHARED
  loaded=$(ldd "$1" | awk '$1 == "libanamo.so.0" { print $3 }')
  if [ "$2" = 1 ]; then
    [ -n "$loaded" ] || fail "$1 does not load libanamo.so.0: $(ldd "$1")"
    loaded=$(realpath "$loaded")
    [ "$loaded" = "$(realpath "$PREFIX/$LIB/libanamo.so.0")" ] ||
      fail "$1 loads $loaded, not the installed $PREFIX/$LIB/libanamo.so.0"
  elif [ -n "$loaded" ]; then
    fail "$1, linked statically, loads $loaded"
  fi
}
run_examples() { # DIR SHARED
  for p in dense_arrays nam_two_optimizers; do
    check_loads "$1/$p" "$2"
    (cd "$1" && "./$p" >"$p.out" 2>&1) || { cat "$1/$p.out"; fail "$1/$p exited with an error"; }
    step "  $p, ${loaded:-libanamo.a}: $(grep '^epoch' "$1/$p.out" | tail -n 1)"
  done
}

# 2. pkg-config: the examples copied out, as a user would, and built with their Makefile
PKG_CONFIG_PATH=$PREFIX/$LIB/pkgconfig
export PKG_CONFIG_PATH
VERSION=$(sed -n 's/^project(anamo VERSION \([^ ]*\).*/\1/p' CMakeLists.txt)
[ "$(pkg-config --modversion anamo)" = "$VERSION" ] ||
  fail "pkg-config --modversion anamo: $(pkg-config --modversion anamo), not $VERSION"
step "pkg-config --cflags --libs anamo: $(pkg-config --cflags --libs anamo)"
for kind in shared static; do
  dir=$TMP/pkg-config-$kind
  mkdir -p "$dir"
  cp examples/*.c examples/Makefile "$dir"
  static=""
  [ "$kind" = static ] && static=1
  make -s -C "$dir" STATIC="$static" CFLAGS="-O2 -Wall -Wextra -Werror" >"$dir/build.log" 2>&1 ||
    { cat "$dir/build.log"; fail "examples through pkg-config ($kind)"; }
  step "pkg-config, $kind:"
  run_examples "$dir" "$([ "$kind" = shared ] && echo 1 || echo 0)"
done

# every object of libanamo.a linked, not only those the examples call: what it needs is all there
WHOLE=$TMP/whole-archive
mkdir -p "$WHOLE"
echo 'int main(void) { return 0; }' >"$WHOLE/main.c"
# shellcheck disable=SC2046
cc "$WHOLE/main.c" -o "$WHOLE/pkg-config" -Wl,--whole-archive "$PREFIX/$LIB/libanamo.a" \
   -Wl,--no-whole-archive $(pkg-config --static --libs anamo) >"$WHOLE.log" 2>&1 ||
  { cat "$WHOLE.log"; fail "all of libanamo.a with pkg-config --static --libs anamo"; }
"$WHOLE/pkg-config" || fail "$WHOLE/pkg-config"
step "pkg-config --static: all of libanamo.a links"

# 3. CMake: find_package(anamo) from examples/CMakeLists.txt
unset PKG_CONFIG_PATH
for kind in shared static; do
  dir=$TMP/cmake-$kind
  static=OFF
  [ "$kind" = static ] && static=ON
  { cmake -S examples -B "$dir" -DCMAKE_PREFIX_PATH="$PREFIX" -DANAMO_EXAMPLES_STATIC=$static \
      -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" && cmake --build "$dir" -j "$JOBS"; } \
    >"$dir.log" 2>&1 || { cat "$dir.log"; fail "examples through find_package(anamo) ($kind)"; }
  step "find_package(anamo), $kind:"
  run_examples "$dir" "$([ "$kind" = shared ] && echo 1 || echo 0)"
done
# and every object of libanamo.a through anamo::anamo_static's link interface
cat >"$WHOLE/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.24)
project(whole_archive LANGUAGES C)
find_package(anamo REQUIRED)
add_executable(whole main.c)
target_link_libraries(whole PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,anamo::anamo_static>")
EOF
{ cmake -S "$WHOLE" -B "$WHOLE/build" -DCMAKE_PREFIX_PATH="$PREFIX" &&
    cmake --build "$WHOLE/build"; } >"$WHOLE-cmake.log" 2>&1 ||
  { cat "$WHOLE-cmake.log"; fail "all of libanamo.a through anamo::anamo_static"; }
"$WHOLE/build/whole" || fail "$WHOLE/build/whole"
step "anamo::anamo_static: all of libanamo.a links"
echo "check-install: the installed library, header, anamo.pc, CMake package and command work"
