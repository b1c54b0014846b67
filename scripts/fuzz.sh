#!/usr/bin/env bash
# Build the libFuzzer targets of tests/fuzz/ and run each for a bounded time.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 60); TARGETs among parse idx csv ckpt api onnx npy (or
# fuzz_parse ...), all by default, run one after the other.  The build is
# build-fuzz/ (clang-19, -DGRADC_FUZZ=ON: ASan + UBSan + coverage).  Each run
# starts from the fixed seed corpus - tests/fuzz/corpus/<target>/, models/
# and tests/errors/ for parse, the seeds make_seeds.c writes for idx, ckpt
# and api, and tests/fuzz/regressions/<target>/ - copied to
# build-fuzz/work/<target>/corpus, so the repository is never written; a
# crash's reproducer lands in build-fuzz/work/<target>/artifacts/.
#
# GRADC_FUZZ_FLAGS adds libFuzzer flags (e.g. -runs=N).
# Prints one line per target, "fuzz_T: ok: N executions ..." or
# "fuzz_T: FAILED: ...", and exits non-zero if a build or any target failed
# (a crash, a sanitizer report, a leak, a timeout over 10 s, 2 GiB RSS).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ALL=(parse idx csv ckpt api onnx npy)
secs=${1:-60}
[ $# -gt 0 ] && shift
# 0 would mean "forever" to libFuzzer.
case $secs in
    '' | *[!0-9]* | 0 | 0*)
        echo "usage: fuzz.sh [SECONDS] [TARGET...]  (targets: ${ALL[*]})" >&2
        exit 2 ;;
esac
[ $# -eq 0 ] && set -- "${ALL[@]}"
targets=()
for t in "$@"; do
    t=${t#fuzz_}
    case " ${ALL[*]} " in
        *" $t "*) targets+=("$t") ;;
        *) echo "fuzz.sh: unknown target '$t' (targets: ${ALL[*]})" >&2; exit 2 ;;
    esac
done

bash scripts/deps.sh

dir=build-fuzz
# -O2 without NDEBUG (Debug type, our flags): fast, with every assert.
# No -Werror here: clang's warnings differ from GCC's, and the release build
# is the one that enforces them.
echo "==> fuzz: configure and build $dir"
cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang-19 -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_FLAGS_DEBUG="-O2 -g" -DGRADC_FUZZ=ON -DGRADC_WERROR=OFF -DGRADC_SANITIZE=OFF >/dev/null
build_targets=(fuzz_seeds)
for t in "${targets[@]}"; do build_targets+=("fuzz_$t"); done
cmake --build "$dir" -j2 --target "${build_targets[@]}"

work=$PWD/$dir/work
rm -rf "$work/seeds"
mkdir -p "$work"
"$dir/fuzz/fuzz_seeds" "$work/seeds"

# seed_dirs T: the directories whose files seed target T.
seed_dirs() {
    case $1 in
        parse) echo models tests/errors tests/fuzz/corpus/parse ;;
        idx | ckpt | api) echo "$work/seeds/$1" tests/fuzz/corpus/$1 ;;
        csv) echo tests/fuzz/corpus/csv ;;
        onnx) echo tests/fuzz/corpus/onnx ;;
        npy) echo tests/fuzz/corpus/npy ;;
    esac
    echo tests/fuzz/regressions/$1
}

# Set, not inherited: scripts/test.sh exports abort_on_error for ctest.
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
total=0
for t in "${targets[@]}"; do
    tw=$work/$t
    rm -rf "$tw"
    mkdir -p "$tw/corpus" "$tw/artifacts"
    for d in $(seed_dirs "$t"); do
        [ -d "$d" ] || continue
        find "$d" -maxdepth 1 -type f ! -name '.*' ! -name '*.md' -exec cp {} "$tw/corpus/" \;
    done
    nseeds=$(find "$tw/corpus" -type f | wc -l)
    args=(-max_total_time="$secs" -seed=1 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
          -artifact_prefix="$tw/artifacts/")
    [ "$t" = parse ] && args+=(-dict=tests/fuzz/nn.dict)
    [ "$t" = csv ] && args+=(-dict=tests/fuzz/csv.dict)
    # Extra libFuzzer flags, e.g. GRADC_FUZZ_FLAGS=-runs=10000000 to stop
    # after that many inputs (then the time is an upper bound).
    read -r -a extra <<<"${GRADC_FUZZ_FLAGS:-}"
    args+=(${extra[@]+"${extra[@]}"})
    echo "==> fuzz_$t: $secs s from $nseeds seeds (log: $tw/log)"
    set +e
    "$dir/fuzz/fuzz_$t" "${args[@]}" "$tw/corpus" >"$tw/log" 2>&1
    rc=$?
    set -e

    # libFuzzer's closing statistics and its last status line
    # ("#N<tab>DONE   cov: C ft: F corp: K/S lim: L exec/s: E rss: R").
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tw/log" | tail -n 1)
    execs=${execs:-0}
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$tw/log" | tail -n 1)
    last=$(grep -E '^#[0-9]+[[:space:]]' "$tw/log" | tail -n 1 || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.* corp: ([0-9]+)\/.*/\1/p' <<<"$last")
    took=$(sed -nE 's/^Done [0-9]+ runs in ([0-9]+) second.*/\1/p' "$tw/log" | tail -n 1)
    total=$((total + execs))
    stats="$execs executions in ${took:-?} s (${rate:-?}/s), cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}"
    if [ "$rc" -eq 0 ]; then
        echo "fuzz_$t: ok: $stats"
    else
        status=1
        # What happened: our own assert (gradc_die), a sanitizer's report,
        # libFuzzer's verdict (deadly signal, leak, timeout, out-of-memory).
        what=$(grep -m1 -oE 'gradc: internal error at .*|runtime error: .*|ERROR: (AddressSanitizer|LeakSanitizer): [^ ]+( [^ ]+)?|ERROR: libFuzzer: .*' "$tw/log" || true)
        repro=$(sed -nE 's/.*Test unit written to (.*)$/\1/p' "$tw/log" | tail -n 1)
        # The report itself, so that a CI log shows it without the work dir.
        grep -E -A40 'gradc: internal error|runtime error|==[0-9]+== ?ERROR|ALARM' "$tw/log" | head -n 60 >&2 || true
        echo "fuzz_$t: FAILED: exit $rc, ${what:-see the log}; reproducer: ${repro:-none}; log: $tw/log; $stats"
    fi
done
echo "fuzz: $total executions in all"
exit "$status"
