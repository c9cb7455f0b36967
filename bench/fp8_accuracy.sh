#!/usr/bin/env bash
# FP8 weights against the original on a trained model: `rag quantize`'s e4m3 weights (a scale
# per output row) run by our CPU backend, next to transformers running the same weights rounded
# the same way (and also with each projection's input rounded to e4m3 per token row, as the
# GPU's FP8 GEMMs do). The trained model is the bundled SmolLM2-135M-Instruct (Q4_1 GGUF,
# dequantised by transformers into a bf16 directory: the "original"); the text is token windows
# of the sample corpus's plain-text and Markdown documents.
#
#   bench/fp8_accuracy.sh [BUILD_DIR] [THREADS] [FILE.gguf] [cpu|cuda]
# Needs python3 with torch, transformers and gguf (pip install torch transformers gguf
# safetensors) and the fp8_accuracy_bench target (built here if missing; it quantizes the model
# as `rag quantize` does). ~5 minutes on 2 cores. Prints one JSON line for ours and one for each
# transformers emulation. With cuda (a build with the CUDA backend) ours runs on GPU 0: the FP8
# model's windows then take the FP8 GEMMs, as the second emulation does; three lines for ours
# there: FP8 weights with the bf16 KV cache, with the FP8 KV cache, and the FP8 KV cache alone.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
THREADS=${2:-2}
GGUF=${3:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
DEVICE=${4:-cpu}
[ -f "$GGUF" ] || { echo "no $GGUF (make run or scripts/setup.sh fetches it)" >&2; exit 1; }
cmake --build "$BUILD" --target fp8_accuracy_bench -j"$THREADS" >/dev/null
BIN="$BUILD/engine/fp8_accuracy_bench"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

python3 bench/fp8_accuracy_reference.py prepare "$GGUF" "$WORK" \
  corpora/sample/gnu-coding-standards.txt corpora/sample/systemd-users-groups-uids-gids.md \
  corpora/sample/xxhash-spec.md 2>&1 | grep -v -i -E "warn|it/s" >&2 || true
[ -f "$WORK/windows.txt" ] || { echo "preparing the model failed" >&2; exit 1; }
if [ "$DEVICE" = cuda ]; then
  # FP8 weights with each KV cache, then the FP8 KV cache alone (the original's weights).
  "$BIN" "$WORK/orig" "$WORK/fp8" "$WORK/windows.txt" --threads "$THREADS" --device cuda --kv-cache bf16
  "$BIN" "$WORK/orig" "$WORK/fp8" "$WORK/windows.txt" --threads "$THREADS" --device cuda --kv-cache fp8
  "$BIN" "$WORK/orig" "$WORK/orig" "$WORK/windows.txt" --threads "$THREADS" --device cuda --kv-cache fp8
else
  "$BIN" "$WORK/orig" "$WORK/fp8" "$WORK/windows.txt" --threads "$THREADS" --device cpu
fi
python3 bench/fp8_accuracy_reference.py measure "$WORK" --threads "$THREADS" 2>/dev/null
