#!/usr/bin/env bash
# run_kernel_tests.sh - how a model becomes code, for compile time
# (issue 21): every kernel an LLVM function of its own, each distinct
# kernel once (forward's shared by the train step, repeated layers shared),
# the steps lists of calls; and the object cache's key from the optimized
# graph, so that a hit generates no IR, while a changed model or another
# gradc build misses.
#
#   bash tests/run_kernel_tests.sh path/to/gradc
#
# TAP-style lines, then "P passed, F failed".
set -u

gradc=${1:?usage: run_kernel_tests.sh path/to/gradc}
case $gradc in /*) ;; *) gradc=$PWD/$gradc ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gradc_kernels.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
out=$tmp/stdout err=$tmp/stderr
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/idx_data.sh"
idx_data "$tmp/data" 512 64

run() {
  "$gradc" "$@" >"$out" 2>"$err"
  rc=$?
}

# ---- one function per kernel, each distinct kernel once

# ir MODEL: the LLVM IR as generated (before LLVM's pipeline) in $tmp/MODEL.ll
ir() {
  GRADC_CACHE=off "$gradc" dump --stage llvm "models/$1.nn" 2>/dev/null |
    awk '/^; ---- after/ { exit } { print }' >"$tmp/$1.ll"
}
# body FILE FUNCTION: the lines of FUNCTION's definition
body() { awk -v f="$2" '$0 ~ "^define .*@" f "\\(" { on = 1 } on { print } on && /^}/ { exit }' "$1"; }
# calls FILE FUNCTION: the kernels FUNCTION calls, sorted, unique
calls() { body "$1" "$2" | grep -o 'call void @kernel[0-9]*(' | sed 's/call void @//; s/($//' | sort -u; }
# kernels FILE: how many kernels are defined, and how many distinct bodies
# they have once their names are taken out
kernels() { grep -c '^define internal void @kernel[0-9]*(' "$1"; }
distinct() {
  awk '/^define internal void @kernel[0-9.]*\(/ { on = 1; b = "" }
       on { line = $0; gsub(/@kernel[0-9]+/, "@K", line); b = b line "\n" }
       on && /^}/ { on = 0; print b "\x1e" }' "$1" | awk 'BEGIN { RS = "\x1e" } NF { seen[$0] = 1 } END { print length(seen) }'
}

ir mnist_mlp
ll=$tmp/mnist_mlp.ll
check "mnist_mlp: forward and the train step are lists of calls, no loop of their own" \
  all '[ -s "$ll" ]' '[ -n "$(calls "$ll" forward)" ]' '! body "$ll" forward | grep -q " phi "' \
      '! body "$ll" step_train | grep -q " phi "'
check "mnist_mlp: every kernel forward calls is the one the train step calls (compiled once)" \
  all '[ -n "$(calls "$ll" forward)" ]' \
      '[ -z "$(comm -23 <(calls "$ll" forward) <(calls "$ll" step_train))" ]'
check "mnist_mlp: no two kernels have the same code" \
  all '[ "$(kernels "$ll")" -gt 5 ]' '[ "$(kernels "$ll")" -eq "$(distinct "$ll")" ]'
# attrs FILE PATTERN: the attribute lists of the functions defined by the
# lines matching PATTERN, sorted, unique
attrs() {
  local g
  for g in $(grep "$2" "$1" | grep -o '#[0-9]* {$' | tr -d '# {' | sort -u); do
    grep "^attributes #$g = " "$1"
  done
}
check "kernels are internal and noinline, so that the steps do not become one function again" \
  all '[ -n "$(attrs "$ll" "^define internal void @kernel[0-9]*(")" ]' \
      '! attrs "$ll" "^define internal void @kernel[0-9]*(" | grep -vq noinline' \
      '! grep -q "^define void @kernel" "$ll"'
check "the steps, lists of calls, skip LLVM's pipeline (optnone)" \
  all '[ "$(attrs "$ll" "^define void @\(forward\|step_train\)(")" = "$(attrs "$ll" "^define void @forward(")" ]' \
      'attrs "$ll" "^define void @forward(" | grep -q "noinline optnone"'

# Small kernels (every buffer at most 4096 elements, no batch): optnone,
# compiled at -O0.  mnist_mlp's are the updates of b1 (512) and b2 (10)
# and such; W1's update (401,408) and everything over the batch are not.
nsmall() { grep '^define internal void @kernel[0-9]*(' "$1" | grep -o '#[0-9]* {$' | tr -d '# {' |
           while read -r g; do grep -q "^attributes #$g = .*optnone" "$1" && echo; done | wc -l; }
# updates FILE yes|no: how many of the kernels with a square root (the
# RMSprop updates, one per parameter) are optnone (yes) or not (no)
updates() {
  local k n=0
  for k in $(grep -o '^define internal void @kernel[0-9]*(' "$1" | grep -o 'kernel[0-9]*'); do
    body "$1" "$k" | grep -q 'llvm.sqrt' || continue
    g=$(body "$1" "$k" | head -1 | grep -o '#[0-9]* {$' | tr -d '# {')
    if grep -q "^attributes #$g = .*optnone" "$1"; then [ "$2" = yes ] && n=$((n + 1)); else [ "$2" = no ] && n=$((n + 1)); fi
  done
  echo $n
}
check "mnist_mlp: the small kernels are optnone ($(nsmall "$ll") of $(kernels "$ll")): b1's and b2's updates, not W1's and W2's" \
  all '[ "$(nsmall "$ll")" -ge 2 ]' '[ $(( 3 * $(nsmall "$ll") )) -lt "$(kernels "$ll")" ]' \
      '[ "$(updates "$ll" yes)" = 2 ]' '[ "$(updates "$ll" no)" = 2 ]'
GRADC_LLVM_CODEGEN=llvm GRADC_CACHE=off "$gradc" dump --stage llvm models/mnist_mlp.nn 2>/dev/null |
  awk '/^; ---- after/ { exit } { print }' >"$tmp/mlp_llvm.ll"
check "GRADC_LLVM_CODEGEN=llvm (LLVM's defaults, to compare) marks no kernel optnone" \
  all '[ "$(kernels "$tmp/mlp_llvm.ll")" -gt 5 ]' '[ "$(nsmall "$tmp/mlp_llvm.ll")" -eq 0 ]'

ir resnet_small
ll=$tmp/resnet_small.ll
ncalls=$(body "$ll" step_train | grep -c 'call void @kernel')
check "resnet_small: fewer kernels than kernel calls (repeated layers share code), none twice" \
  all '[ "$(kernels "$ll")" -gt 20 ]' '[ "$(kernels "$ll")" -lt "$ncalls" ]' \
      '[ "$(kernels "$ll")" -eq "$(distinct "$ll")" ]'

# ---- the cache's key, from the graph

export XDG_CACHE_HOME=$tmp/xdg
unset GRADC_CACHE GRADC_CACHE_MAX
cache=$XDG_CACHE_HOME/gradc
entries() { find "$cache" -name '*.gco' 2>/dev/null | wc -l; }
hit() { grep -qF "(object from the cache)" "$err"; }
# train MODEL CKPT [ARGS...]: four steps, the weights saved in CKPT
train() {
  local model=$1 ckpt=$2
  shift 2
  run train "$model" --data "$tmp/data" --epochs 1 --batch 128 --no-test --no-shuffle \
    --history "$tmp/h.csv" --save "$ckpt" --time-report "$@"
}

train models/cnn_bn.nn "$tmp/bn_miss.ckpt"
check "cnn_bn: a miss generates IR and stores one entry" \
  all 'status_is 0' '! hit' 'stderr_has "IR generation (codegen)"' '[ "$(entries)" -eq 1 ]'
train models/cnn_bn.nn "$tmp/bn_hit.ckpt"
check "cnn_bn: a hit generates no IR (the key is the graph's, not the IR's)" \
  all 'status_is 0' 'hit' '! stderr_has "IR generation"' 'stderr_has "key (hash of the graph)"'
check "cnn_bn: a hit trains to the bits of a miss" cmp -s "$tmp/bn_miss.ckpt" "$tmp/bn_hit.ckpt"

# The same model but for one constant (the learning rate): other code.
sed 's/rmsprop(lr=0.001/rmsprop(lr=0.002/' models/mnist_mlp.nn >"$tmp/mlp_lr.nn"
train models/mnist_mlp.nn "$tmp/mlp.ckpt"
train "$tmp/mlp_lr.nn" "$tmp/mlp_lr.ckpt"
check "a model that differs in one constant is a miss, its own entry" \
  all 'status_is 0' '! hit' '[ "$(entries)" -eq 3 ]'
train "$tmp/mlp_lr.nn" "$tmp/mlp_lr_nocache.ckpt" --no-cache
check "... and trains to the bits it trains to without the cache" \
  all '! cmp -s "$tmp/mlp.ckpt" "$tmp/mlp_lr.ckpt"' 'cmp -s "$tmp/mlp_lr.ckpt" "$tmp/mlp_lr_nocache.ckpt"'

# Another gradc (here: the same one elsewhere, as a rebuild would be) may
# generate other code from the same graph: it does not take the entries.
cp "$gradc" "$tmp/gradc_other"
run_other() { "$tmp/gradc_other" "$@" >"$out" 2>"$err"; rc=$?; }
run_other train models/mnist_mlp.nn --data "$tmp/data" --epochs 1 --batch 128 --no-test --no-shuffle \
  --history "$tmp/h.csv" --save "$tmp/mlp_other.ckpt" --time-report
check "another gradc build misses, and trains to the same bits" \
  all 'status_is 0' '! hit' 'cmp -s "$tmp/mlp.ckpt" "$tmp/mlp_other.ckpt"'

# ---- the kernels optimised and compiled on several threads, each part
# an object of its own that LLJIT links: the bits of one thread.
unset XDG_CACHE_HOME
for t in 1 2 3; do
  GRADC_COMPILE_THREADS=$t GRADC_CACHE=off "$gradc" train models/resnet_small.nn --data "$tmp/data" --epochs 1 \
    --batch 128 --no-test --no-shuffle --history "$tmp/h.csv" --save "$tmp/rs_$t.ckpt" --time-report >"$out" 2>"$err"
  rc=$?
  [ $t = 1 ] && check "resnet_small, compiled on one thread" all 'status_is 0' '! stderr_has "threads in parallel"'
  [ $t != 1 ] && check "resnet_small, compiled on $t threads: the same bits as on one" \
    all 'status_is 0' 'stderr_has "LLVM optimisation pipeline (threads in parallel)"' 'cmp -s "$tmp/rs_1.ckpt" "$tmp/rs_$t.ckpt"'
done
export XDG_CACHE_HOME=$tmp/xdg
GRADC_COMPILE_THREADS=2 train models/resnet_small.nn "$tmp/rs_miss.ckpt"
GRADC_COMPILE_THREADS=2 train models/resnet_small.nn "$tmp/rs_hit.ckpt"
check "the parts' objects as one cache entry: a hit links them all, the same bits" \
  all 'status_is 0' 'hit' 'cmp -s "$tmp/rs_1.ckpt" "$tmp/rs_hit.ckpt"' 'cmp -s "$tmp/rs_miss.ckpt" "$tmp/rs_hit.ckpt"'

tap_done
