# tap.sh - the numbered checks of the shell test scripts (TAP-style lines),
# sourced by run_cli_tests.sh and run_aot_tests.sh.  The sourcing script
# sets $out and $err (files) and defines run(), which fills them and $rc.

n=0 passed=0 failed=0 rc=0

# check DESCRIPTION COMMAND...: one numbered check; on failure shows what the
# last run printed.
check() {
  local desc=$1
  shift
  n=$((n + 1))
  if "$@"; then
    echo "ok $n - $desc"
    passed=$((passed + 1))
  else
    echo "not ok $n - $desc"
    echo "#   exit status $rc"
    sed 's/^/#   stdout: /' "$out" | head -n 15
    sed 's/^/#   stderr: /' "$err" | head -n 15
    failed=$((failed + 1))
  fi
}

status_is() { [ "$rc" -eq "$1" ]; }
stdout_has() { grep -qF -- "$1" "$out"; }
stderr_has() { grep -qF -- "$1" "$err"; }
stdout_empty() { [ ! -s "$out" ]; }
stderr_empty() { [ ! -s "$err" ]; }
all() { local c; for c in "$@"; do eval "$c" || return 1; done; }

# The closing line and the exit status of the script.
tap_done() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
