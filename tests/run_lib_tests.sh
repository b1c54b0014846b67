#!/usr/bin/env bash
# run_lib_tests.sh - the libraries as built: libgradc_runtime (no LLVM, no
# compiler), libgradc (the API of include/gradc.h and nothing else), their
# sonames and symlinks, and that neither holds command-line code.
#
#   bash tests/run_lib_tests.sh BUILD_DIR VERSION SOVERSION
#
# Run from the repository root (ctest does).  TAP-style "ok N - what" lines,
# then "P passed, F failed"; exits 1 when a check failed.
set -u

build=${1:?usage: run_lib_tests.sh BUILD_DIR VERSION SOVERSION}
version=${2:?usage: run_lib_tests.sh BUILD_DIR VERSION SOVERSION}
soversion=${3:?usage: run_lib_tests.sh BUILD_DIR VERSION SOVERSION}
src=$PWD
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gradc_lib.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
out=$tmp/stdout err=$tmp/stderr
. "$src/tests/tap.sh"

cd "$build" || exit 2

# defined FILE / undefined FILE: the global symbols an archive or a shared
# library defines (dynamic ones for a .so) or needs, one a line, sorted.
defined() {
  case $1 in
    *.so*) nm -D --defined-only "$1" ;;
    *) nm -g --defined-only "$1" 2>/dev/null ;;
  esac | awk 'NF == 3 { print $3 }' | sort -u
}
undefined() { nm -D --undefined-only "$1" | awk '{ print $2 }' | sed 's/@.*//' | sort -u; }
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
soname() { readelf -d "$1" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p'; }

# Stops here without the shared libraries: nothing else is checked then.
for lib in gradc_runtime gradc; do
  check "lib$lib.so -> lib$lib.so.$soversion -> lib$lib.so.$version, soname lib$lib.so.$soversion" \
    all "[ \"\$(readlink lib$lib.so)\" = lib$lib.so.$soversion ]" \
        "[ \"\$(readlink lib$lib.so.$soversion)\" = lib$lib.so.$version ]" \
        "[ -f lib$lib.so.$version ] && [ ! -L lib$lib.so.$version ]" \
        "[ \"\$(soname lib$lib.so.$version)\" = lib$lib.so.$soversion ]"
done
[ -f libgradc.so ] && [ -f libgradc_runtime.so ] || { tap_done; exit; }

defined libgradc.a >"$tmp/compiler_syms"
defined libgradc_runtime.a >"$tmp/runtime_syms"
defined libgradc_cli.a >"$tmp/cli_syms"

needed libgradc_runtime.so >"$out"
check "libgradc_runtime.so needs neither LLVM nor libgradc (readelf -d): $(tr '\n' ' ' <"$out")" \
  all '! grep -qi -e llvm -e gradc "$out"' 'grep -q "^libc\.so" "$out"'
undefined libgradc_runtime.so | comm -12 - "$tmp/compiler_syms" >"$out"
check "libgradc_runtime.so needs no symbol of libgradc (nm -D -u)" stdout_empty
comm -12 "$tmp/runtime_syms" "$tmp/compiler_syms" >"$out"
check "libgradc_runtime.a and libgradc.a define no symbol twice" stdout_empty

needed libgradc.so >"$out"
check "libgradc.so needs libgradc_runtime.so.$soversion and LLVM (readelf -d)" \
  all "grep -qx libgradc_runtime.so.$soversion \"\$out\"" 'grep -qi llvm "$out"'

# Exactly the functions include/gradc.h declares (a declaration starts a
# line with its return type) are exported by one of the two libraries.
grep -E '^[a-z].*[^a-z_]gradc_[a-z0-9_]+\(' "$src/include/gradc.h" |
  sed -E 's/^[^(]*[^a-z0-9_](gradc_[a-z0-9_]+)\(.*/\1/' | sort -u >"$tmp/api"
defined libgradc.so >"$tmp/exported"
grep -v '^gradc_' "$tmp/exported" >"$out"
check "libgradc.so exports only gradc_* symbols (nm -D)" stdout_empty
defined libgradc_runtime.so | comm -12 - "$tmp/api" | sort -u - "$tmp/exported" >"$tmp/both"
comm -23 "$tmp/api" "$tmp/both" >"$out"
check "every function of include/gradc.h ($(wc -l <"$tmp/api")) is exported by libgradc.so or libgradc_runtime.so" \
  all '[ -s "$tmp/api" ]' stdout_empty
comm -13 "$tmp/api" "$tmp/exported" >"$out"
check "libgradc.so exports no gradc_* symbol that include/gradc.h does not declare" stdout_empty
defined libgradc_runtime.so >"$tmp/rt_exported"
grep -v '^gradc_' "$tmp/rt_exported" >"$out"
check "libgradc_runtime.so exports only gradc_* symbols (nm -D): no pool_new, data_free" stdout_empty
grep '^gradc__' "$tmp/rt_exported" | comm -23 - <(undefined libgradc.so) >"$out"
check "each runtime function it exports as gradc__NAME (RT_SHARED) is one libgradc.so calls" \
  all 'grep -qx gradc__inst_new "$tmp/rt_exported"' stdout_empty

sort -u "$tmp/compiler_syms" "$tmp/runtime_syms" | comm -12 - "$tmp/cli_syms" >"$out"
check "no command-line code in the libraries: nothing of libgradc_cli.a (cli_train, cli_compile) in them" \
  all 'grep -qx cli_train "$tmp/cli_syms"' stdout_empty
needed gradc >"$out"
check "the gradc binary links the libraries statically (no libgradc*.so needed)" \
  all '! grep -q gradc "$out"' 'grep -q "^libc\.so" "$out"'

tap_done
