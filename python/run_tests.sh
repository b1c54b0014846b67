#!/usr/bin/env bash
# run_tests.sh - the Python package's pytest suite, as ctest runs it:
#
#   bash python/run_tests.sh [SANITIZED]
#
# with GRADC_LIB (libgradc.so) and GRADC_BIN (gradc) of a build in the
# environment.  The interpreter is Debian's /usr/bin/python3 (python3-numpy,
# python3-pytest from scripts/deps.sh), or $GRADC_PYTHON.  Exits 77 (ctest:
# skipped) with the reason when it or a module is missing, or when
# SANITIZED is 1: a sanitized libgradc.so needs its sanitizer's run-time
# library preloaded into the interpreter, which the suite does not do.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
python=${GRADC_PYTHON:-/usr/bin/python3}

if [ "${1:-0}" = 1 ]; then
  echo "python: skipped: a sanitizer build's libgradc.so cannot be loaded into $python without preloading libasan"
  exit 77
fi
if [ ! -x "$python" ]; then
  echo "python: skipped: no $python (apt-get install python3, or set GRADC_PYTHON)"
  exit 77
fi
for module in numpy pytest; do
  if ! "$python" -c "import $module" 2>/dev/null; then
    echo "python: skipped: $python has no module $module (apt-get install python3-$module; scripts/deps.sh does)"
    exit 77
  fi
done
exec "$python" -m pytest -p no:cacheprovider -q -ra python/tests
