#!/usr/bin/env bash
# The main job: install what is missing, build build/ (Release), then train
# the default model (DLwP's 784-512-10 MLP, RMSprop) on Fashion-MNIST from the
# Debian package dataset-fashion-mnist for 5 epochs and print test accuracy.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/deps.sh

# Same build type and flags as scripts/test.sh, so the two share build/
# without rebuilding everything (GRADC_WERROR keeps whatever build/ has).
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE="-O2 -g" \
    -DGRADC_SANITIZE=OFF
cmake --build build -j2

./build/gradc train models/mnist_mlp.nn --epochs 5 --batch 128 "$@"
