#!/usr/bin/env bash
# Install what gradc needs to build and test, and nothing that is already there.
# Idempotent: when every package is present it only runs dpkg-query and exits.
set -euo pipefail

# LLVM is pinned to 19 (its C API drifts between versions); clang-19 and its
# runtime are for the sanitizer and fuzz builds.  Python, NumPy and pytest
# run the Python package's suite (python/; ctypes is in the standard library).
# protobuf-c reads and writes ONNX files, with the onnx.proto python3-onnx
# ships (also the checker of tests/run_onnx_tests.sh, whose PyTorch twins
# need python3-torch).
# Open MPI for data-parallel training (gradc builds without it too) and its
# tests.
# libpng and libjpeg-turbo read image folders (gradc train --data DIR).
# rsvg-convert and xmllint check that gradc plot's and eval --confusion's
# SVGs parse and render; Graphviz's dot draws gradc dump --format svg|png
# (gradc runs it when asked; without it that format says to install it).
PACKAGES=(
    build-essential cmake pkg-config
    llvm-19-dev libopenblas-dev zlib1g-dev libcmocka-dev libpng-dev libjpeg62-turbo-dev
    dataset-fashion-mnist
    clang-19 libclang-rt-19-dev
    python3 python3-numpy python3-pytest
    libprotobuf-c-dev protobuf-c-compiler python3-onnx
    python3-torch
    libopenmpi-dev openmpi-bin
    librsvg2-bin libxml2-utils graphviz
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all present"
    exit 0
fi

# Root needs no sudo; anyone else uses it only if it exists.
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "deps: missing ${missing[*]}, and not root without sudo" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { "${SUDO[@]}" apt-get update -q &&
       "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
           apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "deps: failed to install ${missing[*]}" >&2
    exit 1
fi
echo "deps: installed ${missing[*]}"
