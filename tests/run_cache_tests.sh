#!/usr/bin/env bash
# run_cache_tests.sh - the object cache (compiler/cache.c) through gradc:
# a hit computes the bits a miss computes, a corrupt or foreign entry is
# rebuilt without a word to the user, two processes compiling the same model
# at once both succeed, eviction keeps the cap, --no-cache and GRADC_CACHE=off
# write nothing, and gradc cache stats|clear; and --time-report, whose
# rows say whether LLVM ran.
#
#   bash tests/run_cache_tests.sh path/to/gradc
#
# Every run has XDG_CACHE_HOME in a temporary directory: the user's own
# cache is never touched.  TAP-style lines, then "P passed, F failed".
set -u

gradc=${1:?usage: run_cache_tests.sh path/to/gradc}
case $gradc in /*) ;; *) gradc=$PWD/$gradc ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gradc_cache.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
out=$tmp/stdout err=$tmp/stderr
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/idx_data.sh"
idx_data "$tmp/data" 256 64

export XDG_CACHE_HOME=$tmp/xdg
unset GRADC_CACHE GRADC_CACHE_MAX
# An entry holds one object per compiler thread, and the number of threads
# follows what else runs at that moment: one thread, so that a rebuilt
# entry can be compared with the first by size (run_kernel_tests.sh
# checks entries of several threads).
export GRADC_COMPILE_THREADS=1
cache=$XDG_CACHE_HOME/gradc
model=models/mnist_mlp.nn

run() {
  "$gradc" "$@" >"$out" 2>"$err"
  rc=$?
}
# train CKPT [ARGS...]: two steps of the MLP, its weights saved in CKPT
train() {
  local ckpt=$1
  shift
  run train "$model" --data "$tmp/data" --epochs 1 --batch 128 --no-test --history "$tmp/h.csv" \
    --save "$ckpt" --time-report "$@"
}
entries() { find "$cache" -name '*.gco' 2>/dev/null | wc -l; }
no_temp_files() { [ -z "$(find "$cache" -name '*.tmp.*' 2>/dev/null)" ]; }
hit() { grep -qF "(object from the cache)" "$err"; }
miss() { grep -qF "gradc compile time report" "$err" && ! hit; }
no_error() { ! grep -qi "error" "$err"; }
same_bits() { cmp -s "$1" "$2"; }

# ---- a miss stores, a hit loads, the same bits
train "$tmp/miss.ckpt"
check "first compile: a miss that stores one entry" all 'status_is 0' 'miss' '[ "$(entries)" -eq 1 ]' 'no_temp_files'
entry=$(find "$cache" -name '*.gco')
train "$tmp/hit.ckpt"
check "second compile: a hit" all 'status_is 0' 'hit' 'no_error'
check "a hit trains to the bits of a miss" same_bits "$tmp/miss.ckpt" "$tmp/hit.ckpt"
train "$tmp/nocache.ckpt" --no-cache
check "--no-cache compiles and trains to the same bits" all 'status_is 0' 'miss' 'same_bits "$tmp/miss.ckpt" "$tmp/nocache.ckpt"'
train "$tmp/o2.ckpt" -O 2
check "another opt level is another entry" all 'status_is 0' 'miss' '[ "$(entries)" -eq 2 ]'

# ---- corrupt and foreign entries are rebuilt, silently
size=$(stat -c %s "$entry")
flip_byte() {   # flip_byte FILE OFFSET
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "\\x$(printf %02x $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
flip_byte "$entry" $((size - 100))
train "$tmp/flip.ckpt"
check "a flipped byte in the object: rebuilt, no error, same bits" \
  all 'status_is 0' 'miss' 'no_error' 'same_bits "$tmp/miss.ckpt" "$tmp/flip.ckpt"' '[ -f "$entry" ]'
train "$tmp/after_flip.ckpt"
check "the rebuilt entry is a hit again" all 'status_is 0' 'hit' 'same_bits "$tmp/miss.ckpt" "$tmp/after_flip.ckpt"'
flip_byte "$entry" 3
train "$tmp/magic.ckpt"
check "a flipped byte in the header: rebuilt" all 'status_is 0' 'miss' 'no_error' 'same_bits "$tmp/miss.ckpt" "$tmp/magic.ckpt"'
truncate -s $((size / 2)) "$entry"
train "$tmp/trunc.ckpt"
check "a truncated entry: rebuilt, no error, same bits" \
  all 'status_is 0' 'miss' 'no_error' 'same_bits "$tmp/miss.ckpt" "$tmp/trunc.ckpt"' '[ "$(stat -c %s "$entry")" -eq "$size" ]'
: >"$entry"
train "$tmp/empty.ckpt"
check "an empty entry: rebuilt" all 'status_is 0' 'miss' 'no_error' 'same_bits "$tmp/miss.ckpt" "$tmp/empty.ckpt"'
other=$(find "$cache" -name '*.gco' ! -path "$entry" | head -n 1)
cp "$other" "$entry"
train "$tmp/foreign.ckpt"
check "another key's entry under this key: rebuilt" all 'status_is 0' 'miss' 'no_error' 'same_bits "$tmp/miss.ckpt" "$tmp/foreign.ckpt"'

# ---- two processes compiling the same model into an empty cache
"$gradc" cache clear >/dev/null
for k in 1 2; do
  "$gradc" train "$model" --data "$tmp/data" --epochs 1 --batch 128 --no-test --history "$tmp/h$k.csv" \
    --save "$tmp/conc$k.ckpt" >"$tmp/conc$k.out" 2>"$tmp/conc$k.err" &
done
wait %1; rc1=$?
wait %2; rc2=$?
rc=$((rc1 + rc2))
check "two concurrent compiles both succeed with the same bits" \
  all '[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]' 'same_bits "$tmp/miss.ckpt" "$tmp/conc1.ckpt"' 'same_bits "$tmp/miss.ckpt" "$tmp/conc2.ckpt"'
check "... and leave one whole entry, no temporary files" all '[ "$(entries)" -eq 1 ]' 'no_temp_files'
train "$tmp/conc3.ckpt"
check "... which is a hit" all 'status_is 0' 'hit' 'same_bits "$tmp/miss.ckpt" "$tmp/conc3.ckpt"'

# ---- eviction: least recently used first, the total within the cap
"$gradc" cache clear >/dev/null
train "$tmp/e3.ckpt" -O 3
e3=$(find "$cache" -name '*.gco')
train "$tmp/e2.ckpt" -O 2
e2=$(find "$cache" -name '*.gco' ! -path "$e3")
cap=$(($(stat -c %s "$e3") + $(stat -c %s "$e2") + 100))
sleep 0.05
train "$tmp/e3b.ckpt" -O 3          # a hit: e3 is now the most recently used
check "a hit before eviction" all 'status_is 0' 'hit'
sleep 0.05
GRADC_CACHE_MAX=$cap train "$tmp/e1.ckpt" -O 1
total=$(find "$cache" -name '*.gco' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
check "over the cap: the least recently used entry goes, the total fits" \
  all 'status_is 0' '[ ! -e "$e2" ]' '[ -e "$e3" ]' '[ "$(entries)" -eq 2 ]' '[ "$total" -le "$cap" ]'
GRADC_CACHE_MAX=1 train "$tmp/e0.ckpt" -O 0
check "a cap smaller than one entry keeps only the newest" all 'status_is 0' '[ "$(entries)" -eq 1 ]' '[ ! -e "$e3" ]'

# ---- off: nothing written
rm -rf "$cache"
train "$tmp/off1.ckpt" --no-cache
check "--no-cache writes nothing" all 'status_is 0' '[ ! -e "$cache" ]'
GRADC_CACHE=off train "$tmp/off2.ckpt"
check "GRADC_CACHE=off writes nothing" all 'status_is 0' '[ ! -e "$cache" ]' 'same_bits "$tmp/miss.ckpt" "$tmp/off2.ckpt"'

# ---- gradc cache stats|clear
train "$tmp/s.ckpt"
run cache stats
check "cache stats: the directory, one entry, its size and the cap" \
  all 'status_is 0' 'stdout_has "cache: $cache"' 'stdout_has "entries: 1"' 'stdout_has "cap: 536870912 bytes"'
run cache clear
check "cache clear removes it" all 'status_is 0' 'stdout_has "removed 1 entry"' '[ "$(entries)" -eq 0 ]'
run cache frob
check "cache with another word: usage, exit 2" all 'status_is 2' 'stderr_has "gradc cache stats|clear"'
GRADC_CACHE=off run cache stats
check "cache stats when off says so" all 'status_is 0' 'stdout_has "cache: off"'

# ---- --time-report: a row per stage, LLVM's only on a miss
rm -rf "$cache"
train "$tmp/tr.ckpt"
check "train --time-report: the front end's stages, each pass, LLVM's steps, linking, a total" \
  all 'status_is 0' 'stderr_has "   parse"' 'stderr_has "   autodiff"' 'stderr_has "   cse"' 'stderr_has "   fuse"' \
      'stderr_has "   IR generation (codegen)"' 'stderr_has "   LLVM optimisation pipeline"' \
      'stderr_has "   LLVM machine code generation"' 'stderr_has "   JIT linking"' 'stderr_has "   initial values"' \
      'stderr_has "  100.0%   total"'
train "$tmp/tr2.ckpt"
check "on a hit neither LLVM's pipeline nor its code generator runs" \
  all 'status_is 0' 'hit' '! stderr_has "LLVM optimisation pipeline"' '! stderr_has "machine code"'
run compile --emit obj --cpu native "$model" -o "$tmp/m.o" --time-report
check "compile --time-report: the same table for the object file" \
  all 'status_is 0' 'stderr_has "   parse"' 'stderr_has "   LLVM optimisation pipeline"' \
      'stderr_has "   LLVM machine code generation (to the file)"' 'stderr_has "  100.0%   total"'
run compile --emit obj "$model" -o "$tmp/m.o"
check "compile without --time-report prints no table" all 'status_is 0' '! stderr_has "time report"'

tap_done
