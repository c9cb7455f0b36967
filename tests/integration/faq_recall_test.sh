#!/usr/bin/env bash
# Retrieval quality gate: BM25 on the shared FAQ dev set must keep recall@5 >= 0.72
# (issue target; SQLite FTS5 over 200-word chunks is ~0.68). Skips (77) when the shared eval
# data is not beside the repository.
#   faq_recall_test.sh RAG_BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
eval_dir="$repo/../shared/eval"
if [[ ! -f "$eval_dir/faq/dev.jsonl" ]]; then
  echo "SKIP: $eval_dir/faq not found"
  exit 77
fi
python=$(command -v /usr/bin/python3 || command -v python3)
result=$(SCORER="$eval_dir/score_retrieval.py" bash "$repo/bench/eval_retrieval.sh" \
  "$eval_dir/faq/debian-faq.txt" "$eval_dir/faq/dev.jsonl" "$(dirname "$1")" 10 | tail -1)
echo "$result"
"$python" -c '
import json, sys
r = json.loads(sys.argv[1])
ok = r["recall@5"] >= 0.72 and r["mrr@10"] >= 0.45
print("recall@5 %.3f (>= 0.72), MRR@10 %.3f (>= 0.45): %s" % (r["recall@5"], r["mrr@10"], "ok" if ok else "FAILED"))
sys.exit(0 if ok else 1)' "$result"
