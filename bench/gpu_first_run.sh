#!/usr/bin/env bash
# First run of the CUDA kernels on a GPU machine, in one call: fresh build (engine + kernels, no
# server packages), the GPU kernel tests, the engine's unit tests, then the GEMV bandwidth bench.
# Logs go to $OUT (when set) or to the build folder. Usage, from anywhere in the repository:
#   bash bench/gpu_first_run.sh            (BUILD=build-gpu, JOBS=16, CUDA_ARCH=90 by default)
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-gpu}
JOBS=${JOBS:-16}
CUDA_ARCH=${CUDA_ARCH:-90}
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

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nvcc --version | tail -2; cmake --version | head -1; } \
  > "$LOGS/machine.log" 2>&1
cat "$LOGS/machine.log"

rm -rf "$BUILD"
step configure cmake -S . -B "$BUILD" -DRAG_BUILD_SERVER=OFF -DRAG_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" -DCMAKE_BUILD_TYPE=RelWithDebInfo || exit 1
# Only what this run needs: the whole tree also builds engine benches that may need packages
# this machine lacks (cpu_decode_bench needs the tokenizer, i.e. PCRE2).
step build cmake --build "$BUILD" -j"$JOBS" --target gpu_tests engine_tests gemv_bench || exit 1
step gpu_tests bash -c "cd '$BUILD' && ctest -L gpu --output-on-failure --timeout 300"
step gpu_tests_verbose "$BUILD/tests/gpu_tests" --gtest_brief=0
step engine_tests "$BUILD/tests/engine_tests" --gtest_brief=1
step gemv_bench "$BUILD/kernels/gemv_bench" 200
echo "=== done: $([ $status -eq 0 ] && echo all steps passed || echo SOME STEPS FAILED) (logs in $LOGS)"
exit $status
