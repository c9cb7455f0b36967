#!/usr/bin/env bash
# One GPU-machine call: build the engine without the server packages, run the GPU tests, then
# time `rag-bench` (= `rag bench`) and gpt-fast side by side on the same card, same shapes.
# Logs and JSON go to $OUT (when set) or the build folder.
#
# Usage, from the repository root:
#   bash bench/gpu_bench.sh [tests|bench|profile|gemv|attention|fp8gemm|issue8|all]   (default all)
#   gemv: our decode GEMV next to cuBLAS on the 8B projection shapes (bench/gemv_bench.cu).
#   attention: the prefill attention variants and the RoPE pass, 8B shape (bench/prefill_attention_bench.cu),
#     and decode attention's tensor-core kernels next to the SIMT one (bench/decode_attention_bench.cu).
#   fp8gemm: the FP8 GEMMs of the 70B projections on cuBLASLt's first candidates,
#     on the shapes of one GPU of $TP (2).
#   issue8: the 70B figures of issue 8 on dummy weights, on as many of TP=1, 2 and 4 as the
#     machine's GPUs allow: batch-1 decode and first token (bf16, prompt 2048), FP8 on one GPU,
#     and the RAG-shaped FP8 load over 2 GPUs through the bench's loop and through the Engine
#     (all at once, then a request every 500 ms with steps of 4096 and 2048 tokens).
#     Not part of `all` (several minutes).
#   steady: the RAG-shaped FP8 load as a full server meets it, through the Engine: STEADY_REQUESTS
#     (128) requests of 5000 + 500 tokens at once over $TP (2) GPUs, more than the STEADY_SEATS
#     (64) requests served at once, for each of STEADY_MIXED ("0 1024 512"), the tokens a step
#     may feed while answers are being written (0: the step's 4096). Not part of `all` (minutes).
#   profile: Nsight Compute's duration of every kernel of one prefill and a few decode steps,
#   summed per kernel (bench/ncu_summary.py); not part of `all`.
# Environment: BUILD (build-gpu), JOBS (16), CUDA_ARCH (90), SHAPE (8b), PROMPT (2048), TP (2),
#   NEW (200), BATCHES (1,8,32,64), GPTFAST_BATCHES ("1 64": gpt-fast compiles per batch size,
#   minutes each), GPTFAST_TIMEOUT (seconds per gpt-fast run, 300).
# gpt-fast's model.py, generate.py, tp.py, quantize.py (pytorch-labs/gpt-fast, commit 32971d3)
# and ../shared/peers/gptfast_bench.py must sit in the git-ignored bench/peers/; never commit them.
set -uo pipefail
cd "$(dirname "$0")/.."
# NVLink multicast (NVLS) stays off: the peer-memory all-reduce does not need it, and shared
# GPU hosts can be harmed by programs that use it.
export NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}
WHAT=${1:-all}
BUILD=${BUILD:-build-gpu}
JOBS=${JOBS:-16}
CUDA_ARCH=${CUDA_ARCH:-90}
SHAPE=${SHAPE:-8b}
PROMPT=${PROMPT:-2048}
NEW=${NEW:-200}
BATCHES=${BATCHES:-1,8,32,64}
GPTFAST_BATCHES=${GPTFAST_BATCHES:-1 64}
GPTFAST_TIMEOUT=${GPTFAST_TIMEOUT:-300}
LOGS=${OUT:-$BUILD}
mkdir -p "$LOGS"
status=0

step() {  # step NAME COMMAND...: runs COMMAND, tees its output to $LOGS/NAME.log
  local name=$1
  shift
  echo "=== $name: $*"
  local t0=$SECONDS
  "$@" 2>&1 | tee "$LOGS/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc after $((SECONDS - t0)) s"
  [ "$rc" -eq 0 ] || status=1
  return "$rc"
}

{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nvcc --version | tail -1; } \
  > "$LOGS/machine.log" 2>&1
cat "$LOGS/machine.log"

step configure cmake -S . -B "$BUILD" -DRAG_BUILD_SERVER=OFF -DRAG_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" -DCMAKE_BUILD_TYPE=Release > /dev/null || exit 1
step build cmake --build "$BUILD" -j"$JOBS" --target gpu_tests rag-bench gemv_bench \
  prefill_attention_bench decode_attention_bench fp8_gemm_bench || exit 1

if [ "$WHAT" = tests ] || [ "$WHAT" = all ]; then
  step gpu_tests bash -c "cd '$BUILD' && ctest -L gpu --output-on-failure --timeout 300"
fi
if [ "$WHAT" = bench ] || [ "$WHAT" = all ]; then
  step rag_bench "$BUILD/engine/cuda/rag-bench" --load-format dummy --shape "$SHAPE" \
    --prompt "$PROMPT" --new "$NEW" --batch "$BATCHES" --json "$LOGS/rag_bench.json"
  if [ -f bench/peers/gptfast_bench.py ] && [ -f bench/peers/gpt-fast/model.py ]; then
    for b in $GPTFAST_BATCHES; do
      step "gptfast_b$b" env PYTHONUNBUFFERED=1 timeout "$GPTFAST_TIMEOUT" \
        python3 bench/peers/gptfast_bench.py "llama-3.1-$SHAPE" "$PROMPT" "$NEW" "$b"
    done
  else
    echo "=== gpt-fast skipped: bench/peers/ lacks gptfast_bench.py or gpt-fast's files"
  fi
fi
if [ "$WHAT" = gemv ]; then
  step gemv_bench "$BUILD/kernels/gemv_bench" 200
fi
if [ "$WHAT" = attention ] || [ "$WHAT" = all ]; then
  step prefill_attention_bench "$BUILD/kernels/prefill_attention_bench" "$PROMPT" 50
  step decode_attention_bench "$BUILD/kernels/decode_attention_bench" 30
fi
if [ "$WHAT" = fp8gemm ]; then
  step fp8_gemm_bench "$BUILD/engine/cuda/fp8_gemm_bench" "${TP:-2}" 2 20
fi
if [ "$WHAT" = profile ]; then
  # Decode kernels only: skip the dummy-weight fills (195 launches for the 8B shape) and the
  # three prefills before the batch-1 decode (2 for the first-token timing with --runs 1, one
  # for the decode; 325 launches each; counts of the code before the decode fusions: set NCU_SKIP
  # and NCU_KERNELS for other code); ncu replays each kernel alone, at the card's own clocks
  # (--clock-control none: ncu's default locks them to base, far below what the benchmarks see).
  step ncu ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
    --launch-skip "${NCU_SKIP:-1170}" -c "${NCU_KERNELS:-800}" \
    "$BUILD/engine/cuda/rag-bench" --load-format dummy --shape "$SHAPE" --prompt "$PROMPT" --new 6 \
    --batch 1 --runs 1 > "$LOGS/ncu.csv"
  step ncu_summary python3 bench/ncu_summary.py "$LOGS/ncu.csv" 40
fi
if [ "$WHAT" = issue8 ]; then
  GPUS=$(nvidia-smi -L | wc -l)
  R="$BUILD/engine/cuda/rag-bench --load-format dummy --shape 70b"
  for tp in 2 4; do
    [ "$GPUS" -ge "$tp" ] || continue
    step "tp${tp}_bf16" timeout 300 $R --tp "$tp" --prompt 2048 --new 128 --batch 1 --runs 3 \
      --json "$LOGS/tp${tp}_bf16.json"
  done
  step fp8_1gpu timeout 300 $R --fp8 --prompt 2048 --new 128 --batch 1 --runs 3 --json "$LOGS/fp8_1gpu.json"
  if [ "$GPUS" -ge 2 ]; then
    step rag_load_loop timeout 400 $R --fp8 --tp 2 --prompt 5000 --new 500 --load 64 --batch 1 \
      --runs 1 --json "$LOGS/rag_load_loop.json"
    step rag_load_engine timeout 400 $R --fp8 --tp 2 --prompt 5000 --new 500 --load 64 --batch 1 \
      --runs 1 --load-engine 4096,4096 --json "$LOGS/rag_load_engine.json"
    # As a server meets it: a request every half second, steps of 4096 and of 2048 tokens
    # (first token and the pauses an answer sees while other prompts are read).
    for s in 4096 2048; do
      step "rag_load_arrivals_$s" timeout 400 $R --fp8 --tp 2 --prompt 5000 --new 500 --load 64 \
        --batch 1 --runs 1 --load-engine "$s,$s" --load-interval-ms 500 --json "$LOGS/rag_load_arrivals_$s.json"
    done
  fi
fi
if [ "$WHAT" = steady ]; then
  for m in ${STEADY_MIXED:-0 1024 512}; do
    step "steady_tp${TP:-2}_${STEADY_SEATS:-64}_$m" timeout 400 "$BUILD/engine/cuda/rag-bench" --load-format dummy \
      --shape 70b --fp8 --tp "${TP:-2}" --gpu-memory 0.95 --prompt 5000 --new 500 \
      --load "${STEADY_REQUESTS:-128}" --seats "${STEADY_SEATS:-64}" --load-only \
      --load-engine 4096,4096 --mixed-step-tokens "$m" --json "$LOGS/steady_tp${TP:-2}_${STEADY_SEATS:-64}_$m.json"
  done
fi
echo "=== done: $([ $status -eq 0 ] && echo all steps passed || echo SOME STEPS FAILED) (logs in $LOGS)"
exit $status
