#!/usr/bin/env bash
# Vector index (retrieval/vector_index.h): build time, memory and one-query-at-a-time top-10
# latency of Flat and HNSW32 on synthetic embedding-like 384-dim unit vectors, 10k and 100k vectors.
#   bench/vector_index_bench.sh [BUILD_DIR] [--1m] [more vector_index_bench flags]
# --1m adds the 1,000,000-vector case: several GB of memory and minutes of HNSW build.
# Builds the vector_index_bench target (retrieval/CMakeLists.txt, needs RAG_BUILD_TESTS and
# RAG_BUILD_SERVER) in Release first. OMP_NUM_THREADS limits FAISS's threads (HNSW build).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
if [[ $# -gt 0 && $1 != --* ]]; then build=$1; shift; fi
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target vector_index_bench >/dev/null
echo "$(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
"$build/retrieval/vector_index_bench" "$@"
