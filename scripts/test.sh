#!/usr/bin/env bash
# The one test command: install what is missing, then build and run every test
# twice: in build/ (Release, -O2 -g, -Werror) and in build-asan/ (Debug, -O1,
# AddressSanitizer + UndefinedBehaviorSanitizer); then the tests that run
# models in several threads under ThreadSanitizer in build-tsan/ (clang-19,
# the runtime instrumented; see scripts/tsan.sh); in CI (CI=true) or when
# GRADC_FUZZ_SECONDS is set, also run each fuzz target for a bounded time
# (scripts/fuzz.sh). Ends with "N passed, N failed" summed over all runs, and
# exits non-zero if any build, test or fuzz target failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/deps.sh

# CI's results never depend on an object cache (ctest sets this too).
export GRADC_CACHE=off

JOBS=2
# Files the tests leave in the source tree (outside the ignored build trees)
# are a bug of the test: they end up committed.  Listed before and after.
untracked() { git ls-files --others --exclude-standard 2>/dev/null | sort; }
untracked_before=$(untracked)
TEST_TIMEOUT=900   # seconds per test; a hung test must not eat CI's time
passed=0
failed=0
skipped=0
status=0

# run_suite LABEL BUILD_DIR CMAKE_ARGS...
# $SUITE_TARGETS (build only these) and $SUITE_TESTS (a ctest -R regex)
# narrow a suite.
run_suite() {
    local label=$1 dir=$2 targets=() tests=()
    shift 2
    [ -n "${SUITE_TARGETS:-}" ] && targets=(--target ${SUITE_TARGETS})
    [ -n "${SUITE_TESTS:-}" ] && tests=(-R "$SUITE_TESTS")
    echo "==> $label: configure and build $dir"
    if ! cmake -S . -B "$dir" "$@" || ! cmake --build "$dir" -j"$JOBS" "${targets[@]}"; then
        echo "==> $label: BUILD FAILED"
        failed=$((failed + 1))   # counted so the summary never reads as all-green
        status=1
        return 0
    fi

    echo "==> $label: ctest"
    local log="$dir/ctest-output.log" rc
    set +e
    # -j: the suites are independent (each uses its own scratch directory), and
    # most spend their time in one thread compiling, so two at once halve the wait.
    ctest --test-dir "$dir" "${tests[@]}" -j"$JOBS" --output-on-failure --timeout "$TEST_TIMEOUT" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e

    # ctest's closing line: "NN% tests passed, F tests failed out of T".
    # T includes tests that skipped themselves (SKIP_RETURN_CODE) but not
    # DISABLED ones; both are listed under "The following tests did not run:".
    local line total=0 nfail=0 nskip ndisabled
    line=$(sed 's/\x1b\[[0-9;]*m//g' "$log" |
           grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' | tail -n 1 || true)
    if [ -n "$line" ]; then
        nfail=$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$line")
        total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
    elif [ "$rc" -ne 0 ]; then
        nfail=1   # ctest itself failed before summarizing
    fi
    nskip=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -cE '^[[:space:]]*[0-9]+ - .*\(Skipped\)[[:space:]]*$' || true)
    ndisabled=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -cE '^[[:space:]]*[0-9]+ - .*\(Disabled\)[[:space:]]*$' || true)
    passed=$((passed + total - nfail - nskip))
    failed=$((failed + nfail))
    skipped=$((skipped + nskip + ndisabled))
    if [ "$rc" -ne 0 ]; then
        status=1
    fi
}

run_suite "release" build \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE="-O2 -g" \
    -DGRADC_WERROR=ON -DGRADC_SANITIZE=OFF

# -Werror is enforced by the release build; the sanitizer build leaves it off
# because GCC's instrumentation causes false -Wmaybe-uninitialized and friends.
# allocator_may_return_null: the out-of-memory paths are tested, and must see NULL
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_suite "asan+ubsan" build-asan \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O1 -g" \
    -DGRADC_WERROR=OFF -DGRADC_SANITIZE=ON

# ThreadSanitizer: two models trained at once in two threads, and the
# products on 1, 2 and 3 threads (halt_on_error: a race fails the test).
# Two compiler threads, whatever the load: the module split among threads
# is what runs LLVM in several threads of one compilation.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
GRADC_COMPILE_THREADS=2 SUITE_TARGETS="test_concurrent test_gemm" SUITE_TESTS='^(test_concurrent|test_gemm)$' \
run_suite "tsan" build-tsan \
    -DCMAKE_C_COMPILER=clang-19 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS="-fsanitize=thread" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
    -DGRADC_WERROR=OFF -DGRADC_SANITIZE=OFF

# Fuzzing (scripts/fuzz.sh): in CI, or when GRADC_FUZZ_SECONDS is set, each
# target for that many seconds (30 in CI) from the fixed seed corpus; each
# target counts as one test.  A build failure counts as one failed test.
if [ "${CI:-}" = true ] || [ -n "${GRADC_FUZZ_SECONDS:-}" ]; then
    fuzz_secs=${GRADC_FUZZ_SECONDS:-30}
    fuzz_log=$(mktemp)
    echo "==> fuzz: each target for $fuzz_secs s"
    set +e
    bash scripts/fuzz.sh "$fuzz_secs" 2>&1 | tee "$fuzz_log"
    rc=${PIPESTATUS[0]}
    set -e
    nok=$(grep -cE '^fuzz_[a-z]+: ok:' "$fuzz_log" || true)
    nfail=$(grep -cE '^fuzz_[a-z]+: FAILED:' "$fuzz_log" || true)
    rm -f "$fuzz_log"
    if [ "$rc" -ne 0 ]; then
        status=1
        if [ "$nfail" -eq 0 ]; then
            echo "==> fuzz: FAILED before running a target"
            nfail=1
        fi
    fi
    passed=$((passed + nok))
    failed=$((failed + nfail))
fi

left=$(comm -13 <(echo "$untracked_before") <(untracked) | sed '/^$/d')
if [ -n "$left" ]; then
    echo "==> the tests left files in the source tree:"
    echo "$left"
    failed=$((failed + 1))
    status=1
fi

summary="$passed passed, $failed failed"
if [ "$skipped" -gt 0 ]; then
    summary="$summary, $skipped skipped"
fi
echo "$summary"
exit "$status"
