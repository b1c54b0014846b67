#!/usr/bin/env bash
# run_aot_tests.sh - gradc compile: shared objects that need no LLVM and no
# gradc, their headers, and that they compute what the JIT computes.
#
#   bash tests/run_aot_tests.sh path/to/gradc path/to/aot_jit_ref
#
# Run from the repository root (ctest does).  TAP-style "ok N - what" lines,
# then "P passed, F failed"; exits 1 when a check failed.  Builds the C
# programs of tests/aot/ and examples/ with the system's cc against the .so
# and its header only.  OpenBLAS runs single-threaded so that both sides sum
# in the same order.
set -u

gradc=${1:?usage: run_aot_tests.sh path/to/gradc path/to/aot_jit_ref}
ref=${2:?usage: run_aot_tests.sh path/to/gradc path/to/aot_jit_ref}
case $gradc in /*) ;; *) gradc=$PWD/$gradc ;; esac
case $ref in /*) ;; *) ref=$PWD/$ref ;; esac
src=$PWD
export OPENBLAS_NUM_THREADS=1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gradc_aot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 2

out=$tmp/stdout err=$tmp/stderr
. "$src/tests/tap.sh"

# run CMD...: runs a command, keeping stdout, stderr and the exit status.
run() {
  "$@" >"$out" 2>"$err"
  rc=$?
}

# Only these may be needed: libc, libm, OpenBLAS (and the dynamic loader,
# which libc's thread-local storage brings); a model without a matrix
# product needs no OpenBLAS (the linker drops unused libraries).
only_allowed_libs() {
  ! readelf -d "$1" | grep NEEDED |
    grep -vE '\[(libc\.so\.6|libm\.so\.6|libopenblas\.so\.0|ld-linux-x86-64\.so\.2)\]' | grep -q . &&
    readelf -d "$1" | grep -q 'NEEDED.*libc\.so' && ! ldd "$1" | grep -qi -e llvm -e libgradc
}
# Every dynamic symbol the .so defines carries the model's prefix.
only_prefixed() {
  local bad
  bad=$(nm -D --defined-only "$1" | awk '{print $3}' | grep -v "^$2_" || true)
  [ -z "$bad" ] && nm -D --defined-only "$1" | grep -q " $2_train_step$"
}

# compile_driver NAME UPPER: the driver of tests/aot against libNAME.so.
compile_driver() {
  cc -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -DMODEL="$1" -DUPPER="$2" -I"$tmp" -I"$src/tests/aot" \
    -include "$1.h" "$src/tests/aot/driver.c" -L"$tmp" -l"$1" -Wl,-rpath,"$tmp" -o "driver_$1"
}

# cnn_small (tests/aot/) adds convolution, pooling, batch norm's moving
# statistics and dropout's step counter to what must match; rnn_small
# (tests/aot/) loops, their gradients, an embedding and gradient clipping;
# vae_small (tests/aot/) the random ops inside the step; aug_small
# (tests/aot/) the augmentations of issue 22.
for model in mnist_mlp:MNIST_MLP:32 linear_regression:LINEAR_REGRESSION:100 cnn_small:CNN_SMALL:16 rnn_small:RNN_SMALL:16 vae_small:VAE_SMALL:16 aug_small:AUG_SMALL:16; do
  name=${model%%:*} rest=${model#*:}
  upper=${rest%%:*} batch=${rest#*:}
  nn=$src/models/$name.nn
  [ -f "$nn" ] || nn=$src/tests/aot/$name.nn

  # ---- bit for bit with the JIT: the same CPU and features (--cpu native)
  run "$gradc" compile "$nn" --cpu native -o "lib$name.so" --header "$name.h"
  check "$name: compile --cpu native writes the .so and the header" \
    all 'status_is 0' '[ -s "lib$name.so" ]' '[ -s "$name.h" ]' "stdout_has \"symbols ${name}_*\""
  check "$name: the .so needs only libc, libm and OpenBLAS (readelf -d, ldd)" only_allowed_libs "lib$name.so"
  check "$name: it exports only ${name}_* symbols (nm -D)" only_prefixed "lib$name.so" "$name"
  check "$name: the header documents every entry point and tensor, and the target" \
    all "grep -q 'int ${name}_train_step(gradc_aot_model \*m, double \*loss);' $name.h" \
        "grep -q 'size_t ${name}_workspace_size(int64_t batch);' $name.h" \
        "grep -q '#define ${upper}_STATE_SIZE ' $name.h" "grep -q '${upper}_CPU \"' $name.h" \
        "grep -q 'batch   128: [0-9]* bytes' $name.h"
  run compile_driver "$name" "$upper"
  check "$name: a C driver builds against the header and the .so alone" status_is 0
  run "$ref" train "$nn" 7 5 "$batch" jit.ckpt jit.out
  check "$name: the JIT trains 5 steps" all 'status_is 0' 'stdout_has "jit_ref: ok"'
  run "./driver_$name" 7 5 "$batch" so.ckpt so.out jit.ckpt
  check "$name: the .so trains the same 5 steps, and the JIT's checkpoint loads into it byte for byte" \
    all 'status_is 0' 'stdout_has "driver: ok"'
  check "$name: outputs, metrics and loss after 5 steps are identical (cmp)" cmp -s jit.out so.out
  check "$name: the JIT's and the .so's checkpoints of the same state are the same bytes (cmp)" cmp -s jit.ckpt so.ckpt
  run "$ref" train "$nn" 7 5 "$batch" jit2.ckpt jit2.out so.ckpt
  check "$name: the .so's checkpoint loads into the JIT with identical parameters and state" \
    all 'status_is 0' 'stdout_has "jit_ref: ok"'
  for level in 1 6 9; do
    "$ref" recompress jit.ckpt "jit_z$level.ckpt" $level >/dev/null
    run "./driver_$name" 7 5 "$batch" so.ckpt so.out "jit_z$level.ckpt"
    check "$name: the JIT's checkpoint compressed at zlib level $level (older gradc) loads into the .so byte for byte" \
      all 'status_is 0' 'stdout_has "driver: ok"'
  done
  # Damaged compressed data: refused with a message, never a crash.
  size=$(wc -c <jit_z6.ckpt)
  for at in 34 40 100 1000 $((size / 2)) $((size - 5)); do
    [ "$at" -lt $((size - 3)) ] || continue
    cp jit_z6.ckpt bad.ckpt
    printf '\x5a\xa5\x00' | dd of=bad.ckpt bs=1 seek="$at" conv=notrunc 2>/dev/null
    run "./driver_$name" 7 5 "$batch" so.ckpt so.out bad.ckpt
    check "$name: compressed checkpoint damaged at byte $at: refused with a message" \
      all 'status_is 1' "stderr_has \"driver: 'bad.ckpt'\""
  done
  head -c $((size - 100)) jit_z6.ckpt >bad.ckpt
  run "./driver_$name" 7 5 "$batch" so.ckpt so.out bad.ckpt
  check "$name: a cut-short compressed checkpoint is refused" all 'status_is 1' "stderr_has \"driver: 'bad.ckpt' is truncated\""
  run "$ref" train "$nn" 7 4 "$batch" jit4.ckpt jit4.out so.ckpt
  check "$name: one step less gives a different state (the comparison can fail)" \
    all 'status_is 1' 'stderr_has "differs"'
  # Two instances of the .so in two threads of one program: each its own
  # thread pool and scratch (a deadlock before they were per instance).
  cc -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -DMODEL="$name" -I"$tmp" -I"$src/tests/aot" \
    -include "$name.h" "$src/tests/aot/threads.c" -L"$tmp" -l"$name" -Wl,-rpath,"$tmp" -pthread \
    -o "threads_$name"
  for pool in 1 2; do
    run env OPENBLAS_NUM_THREADS=$pool timeout 300 "./threads_$name" 20 $((batch < 64 ? 64 : batch))
    check "$name: two instances training at once in two threads, $pool pool thread(s) each, end with the sequential state" \
      all 'status_is 0' 'stdout_has "threads: ok"'
  done

  # ---- the portable default (x86-64-v2): same numbers up to rounding
  run "$gradc" compile "$nn" -o "lib$name.so" --header "$name.h"
  check "$name: the default CPU is x86-64-v2 and the header says so" \
    all 'status_is 0' 'stdout_has "CPU x86-64-v2"' "grep -q '${upper}_CPU \"x86-64-v2\"' $name.h"
  run compile_driver "$name" "$upper"
  run "./driver_$name" 7 5 "$batch" so.ckpt so.out
  check "$name: the portable .so trains" all 'status_is 0' 'stdout_has "driver: ok"'
  run "$ref" close jit.out so.out 1e-5
  check "$name: its outputs after 5 steps are within 1e-5 of the JIT's" status_is 0

  # ---- -O0: no graph passes, every value stored, no memory reuse
  run "$gradc" compile "$nn" -O 0 --cpu native -o "lib$name.so" --header "$name.h"
  run compile_driver "$name" "$upper"
  run "./driver_$name" 7 5 "$batch" so0.ckpt so0.out
  check "$name: the -O0 .so trains" all 'status_is 0' 'stdout_has "driver: ok"'
  run "$ref" close jit.out so0.out 1e-5
  check "$name: its outputs after 5 steps are within 1e-5 of the optimized JIT's" status_is 0
done

# ---- outputs and metrics that are parameters, state, constants or views of
# them: the step's values after a step, at -O0 and -O3 (tests/aot/views.c)
for level in 0 3; do
  run "$gradc" compile "$src/tests/aot/views.nn" -O $level -o libviews.so --header views.h
  run cc -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$tmp" -include views.h "$src/tests/aot/views.c" \
    -L"$tmp" -lviews -Wl,-rpath,"$tmp" -o views_$level
  check "views.nn -O$level: the .so and its driver build" status_is 0
  run "./views_$level"
  check "views.nn -O$level: views of parameters, state and constants hold the step's values" \
    all 'status_is 0' 'stdout_has "views: ok"'
done

# ---- run-time hyperparameters (tests/aot/hyper.c): lr set through the .so
# before step 3 gives the JIT's losses and state bit for bit (--cpu native);
# the refusals say what the JIT says
run "$gradc" compile "$src/models/mnist_mlp.nn" --cpu native -o libmnist_mlp.so --header mnist_mlp.h
check "the header documents set_hyper, get_hyper and bind_dim, with the model's names" \
  all 'status_is 0' "grep -q 'int mnist_mlp_set_hyper(gradc_aot_model \*m, const char \*step, const char \*name, double value);' mnist_mlp.h" \
      "grep -q 'int mnist_mlp_get_hyper(gradc_aot_model \*m, const char \*step, const char \*name, double \*value);' mnist_mlp.h" \
      "grep -q 'int mnist_mlp_bind_dim(gradc_aot_model \*m, const char \*dim, int64_t value);' mnist_mlp.h" \
      "grep -q ' *   train (rmsprop): lr, rho, eps$' mnist_mlp.h"
run cc -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -DMODEL=mnist_mlp -I"$tmp" -I"$src/tests/aot" \
  -include mnist_mlp.h "$src/tests/aot/hyper.c" -L"$tmp" -lmnist_mlp -Wl,-rpath,"$tmp" -o hyper
check "hyper: a C driver builds against the header and the .so alone" status_is 0
run ./hyper 7 4 32 3 0.003 hyper_so.bin
check "hyper: the .so sets and gets lr (a round trip, and optimizer/lr holds it)" \
  all 'status_is 0' 'stdout_has "hyper: ok"'
cp "$out" hyper_so.out
run "$ref" hyper "$src/models/mnist_mlp.nn" 7 4 32 3 0.003 hyper_jit.bin
check "hyper: the JIT trains with the same lr change" all 'status_is 0' 'stdout_has "jit_ref: ok"'
cp "$out" hyper_jit.out
check "hyper: the losses after the lr change are the JIT's, bit for bit" \
  eval 'grep -q "^step 4: " hyper_so.out && diff <(grep "^step" hyper_so.out) <(grep "^step" hyper_jit.out) >"$err"'
check "hyper: parameters and state after the lr change are the JIT's, byte for byte (cmp)" \
  cmp -s hyper_so.bin hyper_jit.bin
run "$ref" hyper "$src/models/mnist_mlp.nn" 7 4 32 5 0.003 hyper_nochange.bin
check "hyper: without the lr change the state differs (the comparison can fail)" \
  all 'status_is 0' '! cmp -s hyper_so.bin hyper_nochange.bin'
check "hyper: the refusals' messages are the JIT's, the .so's names for gradc_'s" \
  eval 'grep -q "^error: mnist_mlp_set_hyper: the rmsprop optimizer of step .train. has no run-time hyperparameter .momentum.; it has: lr, rho, eps$" hyper_so.out &&
        diff <(grep "^error" hyper_so.out) <(grep "^error" hyper_jit.out | sed "s/gradc_/mnist_mlp_/") >"$err"'

# ---- two train statements (tests/models/two_steps.nn, tests/aot/steps.c):
# one entry point per step and one by name; alternating them, with a new
# learning rate for one, gives the JIT's losses and checkpoint bit for bit.
# gan_small (tests/aot/) adds what a GAN's steps hold: random draws, batch
# norm inside functions, grad() and a constraint.
for nn in "$src/tests/models/two_steps.nn" "$src/tests/aot/gan_small.nn"; do
name=$(basename "$nn" .nn)
run "$gradc" compile "$nn" --cpu native -o "lib$name.so" --header "$name.h"
check "$name: the header lists both steps' entry points" \
  all 'status_is 0' "grep -q 'int ${name}_step_first(gradc_aot_model \\*m, double \\*loss);' $name.h" \
      "grep -q 'int ${name}_step_second(gradc_aot_model \\*m, double \\*loss);' $name.h" \
      "grep -q 'int ${name}_step(gradc_aot_model \\*m, const char \\*step, double \\*loss);' $name.h" \
      "grep -q ' first (adam): lr, beta1, beta2, eps' $name.h"
run cc -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$tmp" -I"$src/tests/aot" -DMODEL="$name" \
  -include "$name.h" "$src/tests/aot/steps.c" -L"$tmp" -l"$name" -Wl,-rpath,"$tmp" -o steps
check "$name: a C driver builds against the header and the .so alone" status_is 0
run ./steps 5 16 fsffssfsf steps_so.ckpt
check "$name: the .so steps first and second alternately" all 'status_is 0' 'stdout_has "steps: ok"'
cp "$out" steps_so.out
run "$ref" steps "$nn" 5 16 fsffssfsf steps_jit.ckpt
check "$name: the JIT steps the same schedule through gradc_step" all 'status_is 0' 'stdout_has "jit_ref: ok"'
cp "$out" steps_jit.out
check "$name: the losses are the JIT's, bit for bit" \
  eval 'grep -q "^step 9 (f): " steps_so.out && diff <(grep "^step [0-9]" steps_so.out) <(grep "^step [0-9]" steps_jit.out) >"$err"'
check "$name: the checkpoints are byte-identical (cmp)" cmp -s steps_so.ckpt steps_jit.ckpt
check "$name: the refusals are the JIT's, the .so's names for gradc_'s" \
  eval 'grep -q "^error: ${name}_train_step: the model has 2 train steps; name one: first, second$" steps_so.out &&
        diff <(grep "^error" steps_so.out) <(grep "^error" steps_jit.out | sed "s/gradc_/${name}_/") >"$err"'
run "$ref" steps "$nn" 5 16 fsffsfsfs steps_other.ckpt
check "$name: another schedule ends elsewhere (the comparison can fail)" \
  all 'status_is 0' '! cmp -s steps_so.ckpt steps_other.ckpt'
done

# ---- symbolic dimensions bound one at a time (tests/aot/dims.c): the
# sums and messages of the JIT
run "$gradc" compile "$src/tests/aot/dims.nn" -o libdims.so --header dims.h
run cc -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$tmp" -include dims.h "$src/tests/aot/dims.c" \
  -L"$tmp" -ldims -Wl,-rpath,"$tmp" -o dims
check "dims: the .so of a [batch, n] model and its driver build; the header names both dims" \
  all 'status_is 0' "grep -q 'to the batch): batch, n\.' dims.h"
run ./dims
check "dims: bind_dim gives [2, 3] rows summing to 6 15, [2, 2] to 3 7; bind sets both" \
  all 'status_is 0' 'stdout_has "dims: ok"' "grep -qx '\[2, 2\]: 3 7' \"\$out\""
cp "$out" dims_so.out
run "$ref" dims "$src/tests/aot/dims.nn"
check "dims: the JIT's sums and messages are the .so's (gradc_ for dims_)" \
  all 'status_is 0' 'stdout_has "jit_ref: ok"' \
      'diff <(grep -v ": ok$" dims_so.out) <(grep -v ": ok$" "$out" | sed "s/gradc_/dims_/") >"$err"'

# The rest uses the default (portable, -O3) objects.
for name in mnist_mlp linear_regression; do
  "$gradc" compile "$src/models/$name.nn" -o "lib$name.so" --header "$name.h" >/dev/null
done
check "mnist_mlp's .so needs OpenBLAS for its matrix products" \
  eval 'readelf -d libmnist_mlp.so | grep -q "NEEDED.*libopenblas.so.0"'

# ---- an f64 model: the loss comes back with every bit (issue 15: it was a
# float, so the first step's 1 + 1e-10 read 1), from the .so as from the JIT
nn=$src/tests/aot/loss_f64.nn
run "$gradc" compile "$nn" --cpu native -o libloss_f64.so --header loss_f64.h
check "loss_f64: the header's train_step takes a double for the loss, of dtype f64; its example reads the input as double" \
  all 'status_is 0' "grep -q 'int loss_f64_train_step(gradc_aot_model \*m, double \*loss);' loss_f64.h" \
      "grep -q 'loss_f64_train_step(gradc_aot_model \\*m, double \\*loss);   /\\* loss: f64 \\*/' loss_f64.h" "grep -q 'double \\*x = loss_f64_data(m, \"x\", NULL);' loss_f64.h"
run compile_driver loss_f64 LOSS_F64
run ./driver_loss_f64 7 3 4 f64.ckpt f64.out
check "loss_f64: the .so's train_step returns the f64 loss exactly (1.0000000001, not 1)" \
  all 'status_is 0' 'stdout_has "driver: ok"' "grep -qx 'step 1: loss 1.0000000001' \"\$out\""
so_last=$(grep '^step 3:' "$out")
run "$ref" train "$nn" 7 3 4 jf64.ckpt jf64.out f64.ckpt
check "loss_f64: the JIT returns the same losses, bit for bit, and the same state" \
  all 'status_is 0' 'stdout_has "jit_ref: ok"' "grep -qx 'step 1: loss 1.0000000001' \"\$out\"" \
      '[ -n "$so_last" ]' 'grep -qxF "$so_last" "$out"'

# ---- tensor names that differ only in case or punctuation (W and w, W_rms
# and the slot W/rms) get distinct enum names: the header compiles
run "$gradc" compile "$src/tests/aot/case_names.nn" -o libcase_names.so --header case_names.h
printf '#include "case_names.h"\nint main(void) { return CASE_NAMES_T_W_2 == 2 && CASE_NAMES_T_W_RMS_3 == 8 ? 0 : 1; }\n' >case_names.c
check "case_names: the header's enum names are distinct, later ones numbered (W, W_2; W_RMS, W_RMS_2, W_RMS_3)" \
  all 'status_is 0' 'cc -std=c11 -Wall -Werror case_names.c -o case_names_test 2>"$err"' './case_names_test'

# ---- two models in one process that never saw LLVM
cc -std=c11 -Wall -Werror -D_GNU_SOURCE "$src/tests/aot/dlopen.c" -ldl -o dlopen_test 2>"$err"
run ./dlopen_test ./libmnist_mlp.so mnist_mlp ./liblinear_regression.so linear_regression
check "dlopen: both models load and train in one process without LLVM" \
  all 'status_is 0' 'stdout_has "no LLVM in the process"'

# ---- the example: one epoch on small synthetic IDX data (28x28, two
# classes: tests/idx_data.sh)
. "$src/tests/idx_data.sh"
idx_data data 1000 200
run cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$tmp" "$src/examples/train_mnist_so.c" -L"$tmp" \
  -lmnist_mlp -Wl,-rpath,"$tmp" -lz -o train_mnist_so
check "examples/train_mnist_so.c builds against the .so, its header and zlib, without LLVM" \
  all 'status_is 0' '! ldd train_mnist_so | grep -qi -e llvm -e libgradc'
run ./train_mnist_so data 1 50
check "the example trains one epoch and reports the test accuracy" \
  all 'status_is 0' 'stdout_has "1000 training and 200 test images"' 'stdout_has "epoch 1: loss"' \
      'grep -qE "test accuracy: (0\.9|1\.0)" "$out"'
run "$gradc" train "$src/models/mnist_mlp.nn" --data data --epochs 1 --batch 50 --save train.ckpt --history h.csv
acc=$(grep -o 'test_accuracy: [0-9.]*' "$out" | cut -d' ' -f2)
run ./train_mnist_so data 0 50 train.ckpt so_end.ckpt
check "a checkpoint of gradc train --save loads into the .so: the same test accuracy ($acc)" \
  all 'status_is 0' '[ -n "$acc" ]' "stdout_has \"test accuracy: $acc\""
run ./train_mnist_so data 1 50 - so_trained.ckpt
acc=$(grep -o 'test accuracy: [0-9.]*' "$out" | cut -d' ' -f3)
run "$gradc" eval "$src/models/mnist_mlp.nn" --load so_trained.ckpt --data data
check "a checkpoint the .so saved loads into gradc eval: the same test accuracy ($acc)" \
  all 'status_is 0' '[ -n "$acc" ]' "stdout_has \"test_accuracy: $acc\""
run ./train_mnist_so "$tmp/missing"
check "the example names a missing data directory" all 'status_is 1' 'stderr_has "$tmp/missing"'

# ---- the other forms and targets
run "$gradc" compile "$src/models/mnist_mlp.nn" --emit obj -o m.o
check "--emit obj writes an x86-64 ELF object" \
  all 'status_is 0' 'readelf -h m.o | grep -q "X86-64"' 'readelf -h m.o | grep -q "REL (Relocatable"'
run "$gradc" compile "$src/models/mnist_mlp.nn" --emit asm -o m.s
check "--emit asm writes assembly of the entry points" all 'status_is 0' 'grep -q "^mnist_mlp_train_step:" m.s'
run "$gradc" compile "$src/models/mnist_mlp.nn" --emit llvm -o m.ll
check "--emit llvm writes LLVM IR" all 'status_is 0' 'grep -q "define .*@mnist_mlp__step_train" m.ll'
run "$gradc" compile "$src/models/mnist_mlp.nn" --emit obj --target aarch64-linux-gnu -o arm.o --header arm.h
check "--target aarch64-linux-gnu --emit obj cross-compiles; the header names the target" \
  all 'status_is 0' 'readelf -h arm.o | grep -q AArch64' 'grep -q "aarch64-unknown-linux-gnu" arm.h'
run "$gradc" compile "$src/models/mnist_mlp.nn" --cpu x86-64-v3 --emit asm -o v3.s
check "--cpu x86-64-v3 uses AVX registers, the default does not" \
  all 'status_is 0' 'grep -q "%ymm" v3.s' '! grep -q "%ymm" m.s'
run "$gradc" compile "$src/models/mnist_mlp.nn" --name mlp_a -o libmlp_a.so
check "--name sets the symbol prefix" all 'status_is 0' 'only_prefixed libmlp_a.so mlp_a'

# ---- errors: a clear message and a status, never a crash
run "$gradc" compile "$src/models/mnist_mlp.nn" --emit exe
check "unknown --emit: exit 2 naming the forms" all 'status_is 2' "stderr_has \"unknown --emit 'exe'\""
run "$gradc" compile "$src/models/mnist_mlp.nn" --target bogus-triple-x --emit obj -o b.o
check "a bad target triple: exit 1 naming it" all 'status_is 1' "stderr_has \"no LLVM target for 'bogus-triple-x\""
run "$gradc" compile "$src/models/mnist_mlp.nn" --cpu bogus -o bogus.so
check "an unknown --cpu: exit 1 naming it (LLVM alone would abort)" \
  all 'status_is 1' "stderr_has \"unknown CPU 'bogus'\"" '[ ! -e bogus.so ]'
run "$gradc" compile "$src/models/mnist_mlp.nn" --target aarch64-linux-gnu -o arm.so
check "a .so for a foreign architecture: exit 1 saying to use --emit obj" \
  all 'status_is 1' 'stderr_has "use --emit obj"' '[ ! -e arm.so ]'
run env CC=/nonexistent/cc "$gradc" compile "$src/models/mnist_mlp.nn" -o nolink.so
check "a missing linker: exit 1 naming it" \
  all 'status_is 1' "stderr_has \"cannot run the linker '/nonexistent/cc'\"" '[ ! -e nolink.so ]'
run env GRADC_AOT_LIB=/nonexistent/libgradc_aot.a "$gradc" compile "$src/models/mnist_mlp.nn" -o nosupport.so
check "a missing support library: exit 1 naming it" all 'status_is 1' 'stderr_has "/nonexistent/libgradc_aot.a"'
run "$gradc" compile "$src/models/mnist_mlp.nn" -o "$tmp/no/such/dir/lib.so"
check "an unwritable output: exit 1 with the reason" all 'status_is 1' 'stderr_has "No such file or directory"'
run "$gradc" compile "$src/models/mnist_mlp.nn" --emit obj -o "$tmp/no/such/dir/m.o"
check "an unwritable object file: exit 1 with the reason" all 'status_is 1' "stderr_has \"cannot write\""
run "$gradc" compile "$src/models/mnist_mlp.nn" --header "$tmp/no/such/dir/m.h" -o libh.so
check "an unwritable header: exit 1 with the reason" all 'status_is 1' 'stderr_has "m.h"'
run "$gradc" compile "$src/models/mnist_mlp.nn" --name 9lives
check "--name that is not a C identifier: exit 1" all 'status_is 1' 'stderr_has "not a C identifier"'
run "$gradc" compile "$src/tests/errors/shape_error.nn"
check "a model with an error: exit 1 with the diagnostic" all 'status_is 1' 'stderr_has "error: shape mismatch"'
run "$gradc" compile
check "compile without a file: exit 2" all 'status_is 2' 'stderr_has "needs a model file"'

# ==== issue 23: where a .so's checkpoint may go (items 9, 10, 12) ==========
# The .so saves through the same code as the JIT (runtime/ckpt.c), checked
# here through the .so itself (tests/aot/save.c): what is in the way of the
# path is never replaced or written through, two processes may save one
# path at once, and a saver killed mid-write leaves nothing for good.
run cc -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -DMODEL=mnist_mlp -I"$tmp" -I"$src/tests/aot" \
  -include mnist_mlp.h "$src/tests/aot/save.c" -L"$tmp" -lmnist_mlp -Wl,-rpath,"$tmp" -o save
check "issue 23: the save driver builds against the .so" status_is 0
mkdir -p where && cd where || exit 2
run timeout 60 ../save save plain.ckpt 1
check "issue 23: the .so saves a checkpoint that loads back" \
  all 'status_is 0' '[ -f plain.ckpt ]' 'timeout 60 ../save load plain.ckpt >/dev/null'
mkfifo fifo.ckpt
run timeout 60 ../save save fifo.ckpt 1
check "issue 23: a FIFO at the path is refused and stays a FIFO (never opened, never renamed over)" \
  all 'status_is 1' "stderr_has \"cannot save the checkpoint to 'fifo.ckpt': it exists and is not a regular file\"" \
      '[ -p fifo.ckpt ]' '[ -z "$(ls -A | grep -F fifo.ckpt.tmp)" ]'
mkdir dir.ckpt
run timeout 60 ../save save dir.ckpt 1
check "issue 23: a directory at the path is refused and stays a directory" \
  all 'status_is 1' 'stderr_has "is not a regular file"' '[ -d dir.ckpt ]'
# A device node of our own (as /dev/null's numbers), where mknod is allowed
# (root with CAP_MKNOD): what saving to /dev/null as root would delete.
if mknod null.ckpt c 1 3 2>/dev/null; then
  run timeout 60 ../save save null.ckpt 1
  check "issue 23: a character device at the path (mknod c 1 3) is refused and stays a device" \
    all 'status_is 1' 'stderr_has "is not a regular file"' '[ -c null.ckpt ]'
else
  check "issue 23: a character device at the path: skipped, mknod is not allowed here" true
fi
printf precious >victim.txt
ln -s victim.txt linked.ckpt
run timeout 60 ../save save linked.ckpt 1
check "issue 23: a symlink at the path is replaced by a regular checkpoint; its target keeps its bytes" \
  all 'status_is 0' '[ -f linked.ckpt ] && [ ! -L linked.ckpt ]' '[ "$(cat victim.txt)" = precious ]' \
      'timeout 60 ../save load linked.ckpt >/dev/null'
# Two processes, one path, 300 saves each at once: with one shared
# <path>.tmp some failed with "No such file or directory".
( timeout 300 ../save save shared.ckpt 300 >a.out 2>a.err; echo $? >a.rc ) &
( timeout 300 ../save save shared.ckpt 300 >b.out 2>b.err; echo $? >b.rc ) &
wait
cat a.err b.err >"$err"
check "issue 23: two processes saving one path 300 times each at once: every save succeeds" \
  all '[ "$(cat a.rc) $(cat b.rc)" = "0 0" ]' 'grep -q "save: ok" a.out' 'grep -q "save: ok" b.out'
run timeout 60 ../save load shared.ckpt
check "issue 23: ... the file is whole, and no temporary is left" \
  all 'status_is 0' '[ -z "$(ls -A | grep -F shared.ckpt.tmp)" ]'
# Killed mid-write: a file-size limit's SIGXFSZ ends the process as SIGKILL
# would, in the middle of writing its temporary.
# (An inner shell, so that its report of the signal lands in $err.)
run bash -c 'timeout 60 ../save save killed.ckpt 1 4096; echo "exit $?"'
left=$(ls -A | grep -F killed.ckpt.tmp. || true)
check "issue 23: a .so killed mid-save (SIGXFSZ) leaves its temporary (and no checkpoint)" \
  all 'stdout_has "exit 153"' '[ -n "$left" ]' '[ ! -e killed.ckpt ]'
run timeout 60 ../save save killed.ckpt 1
check "issue 23: the next save of that path removes the dead saver's temporary" \
  all 'status_is 0' '[ -z "$(ls -A | grep -F killed.ckpt.tmp)" ]' 'timeout 60 ../save load killed.ckpt >/dev/null'
cd "$tmp" || exit 2
# ==== end of issue 23's .so checkpoint checks ==============================

# ==== issue 23, item 5: two different models' .so files in two threads =====
# Each .so has its own copy of the support library; each instance its own
# pool and scratch.  1 and 2 pool threads per instance (OpenBLAS's count).
run "$gradc" compile "$src/tests/aot/cnn_small.nn" -o libcnn_small.so --header cnn_small.h
run cc -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -DMODEL=mnist_mlp -DMODEL_B=cnn_small -I"$tmp" \
  -I"$src/tests/aot" -include mnist_mlp.h -include cnn_small.h "$src/tests/aot/threads.c" -L"$tmp" \
  -lmnist_mlp -lcnn_small -Wl,-rpath,"$tmp" -pthread -o threads_two
check "issue 23: a driver of two models' .so files builds" status_is 0
for pool in 1 2; do
  run env OPENBLAS_NUM_THREADS=$pool timeout 300 ./threads_two 20 64
  check "issue 23: mnist_mlp and cnn_small training at once in two threads, $pool pool thread(s) each, end with the sequential state" \
    all 'status_is 0' 'stdout_has "threads: ok"' 'stdout_has "(cnn_small)"'
done
# ==== end of issue 23, item 5 ==============================================

tap_done
