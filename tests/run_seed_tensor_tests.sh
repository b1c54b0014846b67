#!/bin/bash
# run_seed_tensor_tests.sh GRADC - the examples of SEEDS.md section 2 (issue
# 24), one model file each in tests/seeds/tensor/, with the output of
# `gradc run` written beside them between "# >>>" and "# <<<" (QBE's
# habit): each file is run at -O3 (the graph passes, constant folding by
# the evaluator) and at -O0 (every op in the JIT's code), and both must
# print exactly the expected text.  A line "# run: ARGS" gives gradc run
# more arguments (--shapes).
gradc=${1:?usage: run_seed_tensor_tests.sh GRADC}
cd "$(dirname "$0")/.." || exit 1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gradc_seed_tensor.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
out=$tmp/out err=$tmp/err
. tests/tap.sh

files=0
for f in tests/seeds/tensor/*.nn; do
  files=$((files + 1))
  sed -n '/^# >>>$/,/^# <<<$/p' "$f" | sed '1d;$d' | sed 's/^# \{0,1\}//' >"$tmp/expected"
  args=$(sed -n 's/^# run: //p' "$f")
  for level in 3 0; do
    # shellcheck disable=SC2086
    "$gradc" run -O "$level" $args "$f" >"$out" 2>"$err"
    rc=$?
    check "$(basename "$f") at -O$level prints the expected block" \
      all 'status_is 0' '[ -s "$tmp/expected" ]' 'diff -u "$tmp/expected" "$out" >&2'
  done
done
check "the examples are there" test "$files" -ge 6
tap_done
