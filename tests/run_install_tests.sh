#!/usr/bin/env bash
# run_install_tests.sh - cmake --install into a temporary prefix, then use
# the installed tree the ways a user would: docs/example_train.c built with
# pkg-config (shared, and static with --static) and with find_package(gradc)
# (gradc::gradc, gradc::gradc_static), each trained on small synthetic
# data; and the installed gradc compile, which must find its support
# archive in the prefix.
#
#   bash tests/run_install_tests.sh BUILD_DIR LIBDIR VERSION SOVERSION
#
# LIBDIR is CMAKE_INSTALL_LIBDIR (lib, or lib/<multiarch>).  Run from the
# repository root (ctest does).  $GRADC_TEST_CFLAGS goes to every compile
# and link (the sanitizer build's -fsanitize flags).  TAP-style
# "ok N - what" lines, then "P passed, F failed"; exits 1 when a check
# failed.
set -u

usage="usage: run_install_tests.sh BUILD_DIR LIBDIR VERSION SOVERSION"
build=${1:?$usage} libdir=${2:?$usage} version=${3:?$usage} soversion=${4:?$usage}
case $build in /*) ;; *) build=$PWD/$build ;; esac
src=$PWD
cflags=${GRADC_TEST_CFLAGS:-}
# One thread: the builds below must print the same numbers to the bit.
export OPENBLAS_NUM_THREADS=1
unset GRADC_AOT_LIB

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gradc_install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 2
out=$tmp/stdout err=$tmp/stderr
. "$src/tests/tap.sh"
. "$src/tests/idx_data.sh"

run() {
  "$@" >"$out" 2>"$err"
  rc=$?
}
same_output() { cmp -s "$1" "$2"; }

prefix=$tmp/prefix
lib=$prefix/$libdir
run cmake --install "$build" --prefix "$prefix"
check "cmake --install --prefix puts the binary, libraries, header, pkg-config and CMake files there" \
  all 'status_is 0' '[ -x "$prefix/bin/gradc" ]' '[ -f "$prefix/include/gradc.h" ]' \
      '[ -f "$lib/libgradc.a" ]' '[ -f "$lib/libgradc_runtime.a" ]' \
      '[ -f "$lib/pkgconfig/gradc.pc" ]' '[ -f "$lib/cmake/gradc/gradcConfig.cmake" ]' \
      '[ -f "$lib/cmake/gradc/gradcConfigVersion.cmake" ]' '[ -f "$lib/gradc/libgradc_aot.a" ]' \
      '[ -f "$prefix/share/gradc/models/mnist_mlp.nn" ]'
# Only the public header: nothing of the compiler's or the runtime's.
check "include/ holds gradc.h alone" all '[ "$(ls "$prefix/include")" = gradc.h ]'
for name in gradc gradc_runtime; do
  so=$lib/lib$name.so
  check "installed lib$name.so -> .so.$soversion -> .so.$version, soname lib$name.so.$soversion" \
    all "[ \"\$(readlink $so)\" = lib$name.so.$soversion ]" \
        "[ \"\$(readlink $so.$soversion)\" = lib$name.so.$version ]" \
        "readelf -d $so.$version | grep -q 'SONAME.*\\[lib$name.so.$soversion\\]'"
done
run readelf -d "$lib/libgradc.so"
check "the installed libgradc.so finds libgradc_runtime.so beside it (RUNPATH \$ORIGIN)" \
  all 'stdout_has "(RUNPATH)"' 'stdout_has "[\$ORIGIN]"'
run "$prefix/bin/gradc" version
check "the installed gradc prints its version" all 'status_is 0' "stdout_has \"gradc $version\""

idx_data data 1000 200
model=$prefix/share/gradc/models/mnist_mlp.nn
example=$src/docs/example_train.c
export PKG_CONFIG_PATH=$lib/pkgconfig

# ---- pkg-config, shared: what the README shows
run pkg-config --modversion gradc
check "pkg-config finds gradc $version in the prefix" all 'status_is 0' "stdout_has $version"
run cc -std=c11 -Wall -Wextra -Werror $cflags "$example" $(pkg-config --cflags --libs gradc) \
  -Wl,-rpath,"$lib" -o ex_pc
check "docs/example_train.c builds with pkg-config --cflags --libs gradc" status_is 0
run ldd ./ex_pc
check "it loads libgradc.so.$soversion and libgradc_runtime.so.$soversion from the prefix" \
  all 'status_is 0' "stdout_has \"libgradc.so.$soversion => $lib/\"" \
      "stdout_has \"libgradc_runtime.so.$soversion => $lib/\""
run ./ex_pc "$model" data 3
cp "$out" pc.out
check "it trains on synthetic data: 3 epochs, all 200 test images right" \
  all 'status_is 0' 'stdout_has "epoch 3: loss"' 'stdout_has "test accuracy: 1.0000"'

# ---- pkg-config --static: a directory with only the archives comes first,
# so -lgradc -lgradc_runtime take them and Libs.private the rest.
mkdir static
cp "$lib/libgradc.a" "$lib/libgradc_runtime.a" static/
run cc -std=c11 -Wall -Wextra -Werror $cflags "$example" -Lstatic $(pkg-config --static --cflags --libs gradc) \
  -o ex_static
check "it builds with pkg-config --static against libgradc.a and libgradc_runtime.a" status_is 0
run readelf -d ex_static
check "the static build needs no libgradc*.so, and LLVM's and OpenBLAS's shared libraries" \
  all 'status_is 0' '! stdout_has libgradc' 'grep -qi "NEEDED.*llvm" "$out"' 'stdout_has libopenblas'
run ./ex_static "$model" data 3
check "the static build prints what the shared one does" all 'status_is 0' 'same_output "$out" pc.out'

# ---- find_package(gradc): tests/install/CMakeLists.txt
run cmake -S "$src/tests/install" -B consumer -DCMAKE_PREFIX_PATH="$prefix" -DGRADC_EXAMPLE="$example" \
  -DGRADC_VERSION="$version" -DCMAKE_C_FLAGS="$cflags" -DCMAKE_BUILD_TYPE=Release
check "a CMake project finds the package (find_package(gradc $version REQUIRED))" status_is 0
run cmake --build consumer -j2
check "it builds the example against gradc::gradc and gradc::gradc_static" \
  all 'status_is 0' '[ -x consumer/example_shared ]' '[ -x consumer/example_static ]'
run ldd consumer/example_shared
check "example_shared loads libgradc.so.$soversion from the prefix; example_static none" \
  all "stdout_has \"libgradc.so.$soversion => $lib/\"" '! ldd consumer/example_static | grep -q libgradc'
for kind in shared static; do
  run "consumer/example_$kind" "$model" data 3
  check "example_$kind prints what the pkg-config build does" all 'status_is 0' 'same_output "$out" pc.out'
done

# ---- the installed gradc compile: its support archive is in the prefix
run "$prefix/bin/gradc" compile "$model" -o libmnist_mlp.so --header mnist_mlp.h
check "the installed gradc compile makes a .so and its header" \
  all 'status_is 0' '[ -s libmnist_mlp.so ]' '[ -s mnist_mlp.h ]' 'stdout_has "symbols mnist_mlp_*"'
run readelf -d libmnist_mlp.so
check "the .so needs neither LLVM nor gradc, and exports the model's entry points" \
  all '! grep -qi -e llvm -e gradc "$out"' 'nm -D --defined-only libmnist_mlp.so | grep -q " mnist_mlp_train_step$"'
run cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -I. "$src/examples/train_mnist_so.c" -L. -lmnist_mlp \
  -Wl,-rpath,"$tmp" -lz -o train_mnist_so
check "examples/train_mnist_so.c builds against it" status_is 0
run ./train_mnist_so data 1 50
check "and trains one epoch through it" all 'status_is 0' 'stdout_has "epoch 1: loss"'
mv "$lib/gradc/libgradc_aot.a" aot.a
run "$prefix/bin/gradc" compile "$model" -o libnone.so
mv aot.a "$lib/gradc/libgradc_aot.a"
check "without the archive it exits 1 naming where it looked: <bindir>/../$libdir/gradc" \
  all 'status_is 1' "stderr_has \"$prefix/bin/../$libdir/gradc/libgradc_aot.a\"" '[ ! -e libnone.so ]'

tap_done
