#!/usr/bin/env bash
# The soak of docs/RELIABILITY.md: `rag serve` (extractive answers, the bundled embedder when
# scripts/setup.sh fetched it) under mixed uploads, queries and deletes at concurrency 32 for
# 10 minutes, then every document accounted for (tests/integration/soak_test.py; ctest runs the
# same script for 25 s as integration.soak).
#
# usage: bench/soak.sh [RAG_BINARY [SECONDS]] [soak_test.py options...]
#        (defaults: build/rag, 600; e.g. bench/soak.sh build/rag 600 --embedder none)
# The figures are printed and written as JSON to $SOAK_JSON (default
# build/test-artifacts/soak.json beside the binary's build folder).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
rag=${1:-$repo/build/rag}
secs=${2:-600}
shift $(( $# < 2 ? $# : 2 ))
out=${SOAK_JSON:-$(cd "$(dirname "$rag")" && pwd)/test-artifacts/soak.json}
mkdir -p "$(dirname "$out")"
python=$(command -v /usr/bin/python3 || command -v python3)
exec "$python" "$repo/tests/integration/soak_test.py" "$rag" --duration "$secs" --json "$out" "$@"
