#!/usr/bin/env bash
# The HTTP server under load on loopback, with wrk (Debian package `wrk`): requests/s and latency
# (p50, p99) of POST /v1/query with extractive answers and of POST /v1/retrieve (retrieval
# alone), each with hybrid retrieval (the bundled embedder) and then BM25 alone (--embedder
# none), and of GET /healthz, at concurrency 1, 16 and 64; then a soak of /v1/query at
# concurrency 16 with the server's resident memory sampled every 30 s.
# The sample corpus (corpora/sample) is ingested into a temporary data folder first.
#
#   bench/http_bench.sh [BUILD_DIR] [SECONDS_PER_RUN] [SOAK_SECONDS]   (defaults: build 20 300)
# Needs: wrk, the `rag` binary of BUILD_DIR, scripts/setup.sh's embedder in models/.
#
# wrk and the server share the machine's cores, so a compiler or a test run beside them lowers
# every figure. Each run therefore waits until no such process runs (compilers, linkers, ctest,
# *_tests binaries) and is repeated, up to 5 times, when one ran during it; a row that never got
# a quiet run is marked "(machine busy)". HTTP_BENCH_QUIET=0 turns the waiting off.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SECONDS_PER_RUN=${2:-20}
SOAK=${3:-300}
RAG="$BUILD/rag"
command -v wrk >/dev/null || { echo "http_bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
[ -x "$RAG" ] || { echo "http_bench: $RAG is missing: build first" >&2; exit 1; }
WORK=$(mktemp -d)
SERVER=""
WATCHER=""
QUIET=${HTTP_BENCH_QUIET:-1}
trap '[ -n "$WATCHER" ] && kill "$WATCHER" 2>/dev/null; [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
PORT=18089

"$RAG" ingest corpora/sample --data "$WORK/data" >/dev/null 2>&1

# POST /v1/query and /v1/retrieve with a rotation of questions about the sample corpus.
for route in query retrieve; do
  sed "s|@PATH@|/v1/$route|" > "$WORK/$route.lua" <<'LUA'
local questions = {"What does the report conclude?", "How is the index kept consistent?",
                   "Which formats can be uploaded?", "When does the ferry depart?",
                   "What limits the decode speed?", "How are citations verified?"}
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  return wrk.format(nil, "@PATH@", nil,
                    '{"question": "' .. questions[n % #questions + 1] .. '", "top_k": 5}')
end
LUA
done

start_server() {  # start_server [extra rag serve flags]
  "$RAG" serve --data "$WORK/data" --host 127.0.0.1 --port "$PORT" --mode extractive \
    --threads 4 "$@" >"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "http_bench: the server did not start" >&2
  cat "$WORK/server.log" >&2
  exit 1
}
# Both routes must find passages, or the figures would time empty answers.
check_passages() {
  local route
  for route in query retrieve; do
    curl -sf "http://127.0.0.1:$PORT/v1/$route" -H 'Content-Type: application/json' \
      -d '{"question": "When does the ferry depart?", "top_k": 5}' | grep -q '"passages":\[{' ||
      { echo "http_bench: /v1/$route found no passages" >&2; exit 1; }
  done
}
stop_server() { kill "$SERVER"; wait "$SERVER" || true; SERVER=""; }
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$SERVER/status"; }

# Processes of other work that compete for the cores (builds and tests).
others_busy() {
  ps -eo comm= | grep -cE '^(cc1plus|cc1|ld|collect2|nvcc|cicc|ptxas|ctest|[A-Za-z0-9_]+_tests)$' || true
}
wait_quiet() {
  [ "$QUIET" = 1 ] || return 0
  local waited=0
  until [ "$(others_busy)" = 0 ]; do sleep 5; waited=$((waited + 5)); done
  [ "$waited" = 0 ] || echo "http_bench: waited ${waited} s for other work to finish" >&2
}
# Samples other work every 2 s into $WORK/busy until stopped (stop_watch).
start_watch() {
  : >"$WORK/busy"
  [ "$QUIET" = 1 ] || return 0
  (while :; do [ "$(others_busy)" = 0 ] || echo busy >>"$WORK/busy"; sleep 2; done) &
  WATCHER=$!
}
stop_watch() {
  if [ -n "$WATCHER" ]; then kill "$WATCHER" 2>/dev/null; wait "$WATCHER" 2>/dev/null || true; fi
  WATCHER=""
}

# One wrk run: prints "| what | c | req/s | p50 ms | p99 ms | errors |".
run() {  # run WHAT CONNECTIONS PATH [wrk args...]
  local what=$1 c=$2 path=$3
  shift 3
  local threads=$((c < 2 ? c : 2))
  local out tries=0
  while :; do
    wait_quiet
    start_watch
    out=$(wrk -t"$threads" -c"$c" -d"${SECONDS_PER_RUN}s" --latency "$@" "http://127.0.0.1:$PORT$path" 2>&1)
    stop_watch
    tries=$((tries + 1))
    [ -s "$WORK/busy" ] && [ "$tries" -lt 5 ] || break
    echo "http_bench: other work ran during \"$what\" at $c connections: again" >&2
  done
  [ -s "$WORK/busy" ] && what="$what (machine busy)"
  python3 - "$what" "$c" "$out" <<'PY'
import re, sys
what, c, out = sys.argv[1], sys.argv[2], sys.argv[3]
def ms(label):
    m = re.search(r"^\s*" + label + r"\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if not m:
        return float("nan")
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
socket = re.search(r"Socket errors: (.*)", out)
err = (errors.group(1) if errors else "0") + ((" (" + socket.group(1) + ")") if socket else "")
print(f"| {what} | {c} | {rps:.0f} | {ms('50%'):.2f} | {ms('99%'):.2f} | {err} |")
PY
}

echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(date -u +%F)"
echo "| request | connections | requests/s | p50 ms | p99 ms | non-2xx |"
echo "|---|---|---|---|---|---|"
start_server
check_passages
for c in 1 16 64; do run "POST /v1/query, extractive, hybrid" "$c" /v1/query -s "$WORK/query.lua"; done
for c in 1 16 64; do run "POST /v1/retrieve, hybrid" "$c" /v1/retrieve -s "$WORK/retrieve.lua"; done
for c in 1 16 64; do run "GET /healthz" "$c" /healthz; done
stop_server
start_server --embedder none
check_passages
for c in 1 16 64; do run "POST /v1/query, extractive, BM25 only" "$c" /v1/query -s "$WORK/query.lua"; done
for c in 1 16 64; do run "POST /v1/retrieve, BM25 only" "$c" /v1/retrieve -s "$WORK/retrieve.lua"; done
stop_server

# Soak: memory of the hybrid server under steady load.
start_server
wait_quiet
echo "soak: POST /v1/query at 16 connections for ${SOAK} s; resident MiB every 30 s:"
start_watch
wrk -t2 -c16 -d"${SOAK}s" -s "$WORK/query.lua" "http://127.0.0.1:$PORT/v1/query" >"$WORK/soak.txt" 2>&1 &
LOAD=$!
samples="$(rss_mib)"
for _ in $(seq 1 $((SOAK / 30))); do
  sleep 30
  samples="$samples $(rss_mib)"
done
wait "$LOAD"
stop_watch
echo "rss MiB: $samples"
echo "2-s samples with other work running during the soak: $(wc -l <"$WORK/busy")"
grep -E "Requests/sec|Non-2xx|Socket errors" "$WORK/soak.txt" || true
stop_server
