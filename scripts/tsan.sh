#!/usr/bin/env bash
# ThreadSanitizer over the tests that run models in several threads: builds
# build-tsan/ with clang-19 -fsanitize=thread and runs test_concurrent (two
# models trained at once in two threads, tests/test_concurrent.c) and
# test_gemm (the products on 1, 2 and 3 threads).  The runtime (thread
# pool, products, contexts) is instrumented; JIT-compiled code and OpenBLAS
# are not.  Exits non-zero on any report: halt_on_error makes a race fail
# its test.
#   usage: bash scripts/tsan.sh [ctest -R regex]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tests=${1:-'^(test_concurrent|test_gemm)$'}
cmake -S . -B build-tsan -DCMAKE_C_COMPILER=clang-19 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_C_FLAGS="-fsanitize=thread" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
      -DGRADC_WERROR=OFF -DGRADC_SANITIZE=OFF
cmake --build build-tsan -j2 --target test_concurrent test_gemm
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
    ctest --test-dir build-tsan -R "$tests" --output-on-failure --timeout 1200
