#!/usr/bin/env bash
# Model answers made at once: `rag serve` (the bundled SmolLM2-135M on the CPU backend, 2 HTTP
# threads) answering POST /v1/chat/completions with "rag": true from C clients at once, each
# asking R questions in turn (max_tokens T, greedy), for C = 1, 2 and 8: output tokens/s over
# all clients and the median time of an answer. Answers are made on answer threads, so C above
# the HTTP threads batches more sequences in the engine; before (answers made on the HTTP
# threads) at most 2 were made at once whatever C was, as C = 2 shows.
# The sample corpus is ingested (BM25 only) into a temporary data folder first.
#
#   bench/answer_concurrency.sh [BUILD_DIR] [REQUESTS_PER_CLIENT] [MAX_TOKENS]   (defaults: build 3 96)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PER_CLIENT=${2:-3}
MAX_TOKENS=${3:-96}
RAG="$BUILD/rag"
[ -x "$RAG" ] || { echo "answer_concurrency: $RAG is missing: build first" >&2; exit 1; }
WORK=$(mktemp -d)
SERVER=""
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
PORT=18091
"$RAG" --embedder none --data "$WORK/data" ingest corpora/sample >/dev/null 2>&1
"$RAG" --embedder none --data "$WORK/data" --log-level warn serve --port "$PORT" --threads 2 &
SERVER=$!
python3 - "$PORT" "$PER_CLIENT" "$MAX_TOKENS" <<'PY'
import http.client, json, statistics, sys, threading, time
port, per_client, max_tokens = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for _ in range(600):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2); c.request("GET", "/healthz")
        if c.getresponse().status == 200: break
    except OSError: time.sleep(0.1)
questions = ["How does SQLite's write-ahead log let readers and a writer work at once?",
             "What should a GNU program do with --help and --version?",
             "How are xxHash's 64-bit values computed from stripes?",
             "Which user and group ids does systemd reserve for the system?"]
def ask(q):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    body = {"messages": [{"role": "user", "content": q}], "rag": True, "max_tokens": max_tokens,
            "temperature": 0}
    t0 = time.perf_counter()
    c.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse(); data = json.loads(r.read())
    if r.status != 200: raise SystemExit(f"HTTP {r.status}: {data}")
    return time.perf_counter() - t0, data["usage"]["completion_tokens"]
# Warm-up: each question once, so that every level finds the prompt prefix of its passages in
# the engine's prefix cache alike (each request below is still a question of its own).
for q in questions: ask(q)
serial = 0
for clients in (1, 2, 8):
    results, lock = [], threading.Lock()
    def client(i):
        global serial
        for k in range(per_client):
            with lock:
                serial += 1
                tag = serial
            got = ask(f"{questions[(i + k) % len(questions)]} (request {tag})")
            with lock: results.append(got)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads: t.start()
    for t in threads: t.join()
    wall = time.perf_counter() - t0
    tokens = sum(n for _, n in results)
    print(json.dumps({"clients": clients, "answers": len(results), "completion_tokens": tokens,
                      "wall_s": round(wall, 2), "output_tok_per_s": round(tokens / wall, 1),
                      "answer_p50_s": round(statistics.median(s for s, _ in results), 2)}), flush=True)
PY
