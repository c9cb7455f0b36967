#!/usr/bin/env bash
# Retrieval quality on a question set in the format of ../shared/eval (QA.jsonl + corpus):
#   bench/eval_retrieval.sh CORPUS QA.jsonl [BUILD_DIR] [TOP_K]
# Ingests CORPUS into a fresh data folder, runs `rag retrieve` on the questions and scores the
# run with the shared scorer (recall@1, recall@5, MRR@10).
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=$1
qa=$2
build=${3:-build}
top_k=${4:-10}
scorer=${SCORER:-../shared/eval/score_retrieval.py}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/rag" ingest "$corpus" --data "$work/data" --log-level warn
python3 -c 'import json,sys; [print(json.loads(l)["question"]) for l in open(sys.argv[1]) if l.strip()]' "$qa" |
  "$build/rag" retrieve --data "$work/data" --top-k "$top_k" > "$work/run.jsonl"
python3 "$scorer" "$qa" "$work/run.jsonl" 5
