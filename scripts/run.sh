#!/usr/bin/env bash
# The main job: install what is missing, build build/ (Release), and run gradc
# on the MNIST MLP model. (Later this becomes training on Fashion-MNIST.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/deps.sh

# Same build type and flags as scripts/test.sh, so the two share build/
# without rebuilding everything (GRADC_WERROR keeps whatever build/ has).
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE="-O2 -g" \
    -DGRADC_SANITIZE=OFF
cmake --build build -j2

./build/gradc dump models/mnist_mlp.nn
./build/gradc summary models/mnist_mlp.nn
