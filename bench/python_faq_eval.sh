#!/usr/bin/env bash
# The second question set of docs/BENCHMARKS.md (issue 6): the Python FAQ from Debian's
# python3.11-doc (fetched with apt-get download, unpacked here, not installed), turned into a
# corpus and questions by bench/python_faq_eval.py, then scored like the shared FAQ set.
#   bench/python_faq_eval.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download python3.11-doc > /dev/null 2>&1) ||
  { echo "apt-get download python3.11-doc failed (no Debian archive reachable?)" >&2; exit 1; }
dpkg-deb -x "$work"/python3.11-doc_*.deb "$work/pkg"
dpkg-deb -f "$work"/python3.11-doc_*.deb Version | sed 's/^/python3.11-doc /'
python3 bench/python_faq_eval.py "$work/pkg/usr/share/doc/python3.11/html/_sources/faq" "$work/set"
bash bench/eval_retrieval.sh "$work/set/python-faq.txt" "$work/set/dev.jsonl" "$build" 10
