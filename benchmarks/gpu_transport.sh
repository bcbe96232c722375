#!/usr/bin/env bash
# Carry the onnxruntime-gpu wheel to a GPU machine that cannot download it, for benchmarks/gpu.py.
#
# The wheel (about 255 MB) is larger than what one call to the lent machine carries (64 MiB), so it
# travels in 60 MB parts in an ignored folder (build/ort-parts/), one part per call, each copied to a
# scratch folder outside the checkout in that call; the last call reassembles the parts, checks the
# SHA-256 and installs the wheel with `pip install --no-deps --target` for `gpu.py --ort-path`.
#
#   bash benchmarks/gpu_transport.sh split [WHEEL]  # here: download (or take WHEEL), split, write SHA256SUMS
#   bash benchmarks/gpu_transport.sh receive        # there, once per call: copy the carried parts to $ORT_PARTS
#   bash benchmarks/gpu_transport.sh install        # there: cat, sha256sum -c, pip install --target $ORT_TARGET
#
# On the lent machine each call carries one part and SHA256SUMS (run's carry:
# ["build/ort-parts/part-00", "build/ort-parts/SHA256SUMS"]); the scratch folder lasts while the
# same machine is held (given back after about 30 s idle), so make the calls back to back. The last:
#
#   bash benchmarks/gpu_transport.sh receive && bash benchmarks/gpu_transport.sh install \
#     && pip install --no-deps -e . && python benchmarks/gpu.py --ort-path /tmp/ort-gpu
#
# Settings (environment): ORT_VERSION (1.31.1), ORT_PYTHON (3.12, the GPU machine's Python),
# ORT_PLATFORM (manylinux_2_28_x86_64), ORT_PART_SIZE (60M), ORT_PARTS (/tmp/ort-parts),
# ORT_TARGET (/tmp/ort-gpu).
set -euo pipefail

VERSION=${ORT_VERSION:-1.31.1}
PYTHON_VERSION=${ORT_PYTHON:-3.12}
PLATFORM=${ORT_PLATFORM:-manylinux_2_28_x86_64}
CARRIED=build/ort-parts
PARTS=${ORT_PARTS:-/tmp/ort-parts}
TARGET=${ORT_TARGET:-/tmp/ort-gpu}
PART_SIZE=${ORT_PART_SIZE:-60M}

usage() {
    sed -n '2,22p' "$0" >&2
    exit 2
}

case "${1:-}" in
split)
    rm -rf "$CARRIED"
    mkdir -p "$CARRIED/wheel"
    if [ -n "${2:-}" ]; then
        cp "$2" "$CARRIED/wheel/"
    else
        pip download --no-deps --only-binary=:all: --python-version "$PYTHON_VERSION" --platform "$PLATFORM" \
            -d "$CARRIED/wheel" "onnxruntime-gpu==$VERSION"
    fi
    wheel=$(find "$CARRIED/wheel" -name '*.whl' | head -n 1)
    (cd "$CARRIED/wheel" && sha256sum "$(basename "$wheel")") >"$CARRIED/SHA256SUMS"
    split -b "$PART_SIZE" -d "$wheel" "$CARRIED/part-"
    rm -rf "$CARRIED/wheel"
    ls -l "$CARRIED"
    ;;
receive)
    mkdir -p "$PARTS"
    cp -v "$CARRIED"/part-* "$CARRIED/SHA256SUMS" "$PARTS/"
    ;;
install)
    wheel=$(awk '{print $2}' "$PARTS/SHA256SUMS")
    cat "$PARTS"/part-* >"$PARTS/$wheel"
    (cd "$PARTS" && sha256sum -c SHA256SUMS)
    pip install --no-deps --target "$TARGET" "$PARTS/$wheel"
    echo "installed into $TARGET: python benchmarks/gpu.py --ort-path $TARGET"
    ;;
*)
    usage
    ;;
esac
