#!/usr/bin/env bash
# Tokenizer encode speed, ours next to Hugging Face tokenizers, same text, same machine, one run.
#   bench/tokenizer_bench.sh [BUILD_DIR]      (PYTHON=... to pick an interpreter with tokenizers)
# Needs `pip install tokenizers` and the tokenizer_bench target (engine/CMakeLists.txt).
# Text: the sample corpus (corpora/sample; PDFs through pdftotext, HTML with tags stripped) plus
# the multilingual golden strings, repeated to about 4 MB and cut into ~4 KB chunks at line ends
# (the size of a few RAG passages). Ours encodes chunk by chunk on one thread; HF runs
# encode() per chunk (one thread) and encode_batch() over all chunks (its thread pool, all cores).
# Prints MB/s for each and the ratios; also checks that both produce the same number of tokens.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
python=${PYTHON:-python3}
tokenizer=tests/data/llama3-tokenizer/tokenizer.json
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for f in corpora/sample/*; do
  case "$f" in
    *.pdf) pdftotext -q "$f" - ;;
    *.html) sed -e 's/<[^>]*>//g' "$f" ;;
    *) cat "$f" ;;
  esac
done > "$work/corpus.txt"

"$python" - "$work/corpus.txt" tests/data/tokenizer/llama3_golden.jsonl "$work/chunks.bin" <<'PY'
import json, sys
corpus = open(sys.argv[1], encoding="utf-8", errors="replace").read()
golden = "\n".join(json.loads(l)["text"] for l in open(sys.argv[2], encoding="utf-8"))
base = (corpus + "\n" + golden).replace("\x00", "")
text = base * max(1, (4_000_000 // len(base.encode())) + 1)
chunks, cur, size = [], [], 0
for line in text.splitlines(keepends=True):
    cur.append(line); size += len(line.encode())
    if size >= 4096:
        chunks.append("".join(cur)); cur, size = [], 0
if cur: chunks.append("".join(cur))
open(sys.argv[3], "wb").write("\x00".join(chunks).encode())
PY

ours=$("$build/engine/tokenizer_bench" "$tokenizer" "$work/chunks.bin" 3)
echo "$ours"
hf=$("$python" - "$tokenizer" "$work/chunks.bin" <<'PY'
import os, sys, time
from tokenizers import Tokenizer
data = open(sys.argv[2], "rb").read()
chunks = [c.decode() for c in data.split(b"\x00") if c]
nbytes = sum(len(c.encode()) for c in chunks)
def best(fn, repeats=3):
    b, n = 1e30, 0
    for _ in range(repeats):
        tok = Tokenizer.from_file(sys.argv[1])   # fresh, so the word cache starts empty
        t0 = time.perf_counter(); n = fn(tok); b = min(b, time.perf_counter() - t0)
    return b, n
t1, n1 = best(lambda tok: sum(len(tok.encode(c, add_special_tokens=False).ids) for c in chunks))
tb, nb = best(lambda tok: sum(len(e.ids) for e in tok.encode_batch(chunks, add_special_tokens=False)))
print("hf_encode: %d bytes, %d tokens, %.2f MB/s" % (nbytes, n1, nbytes / t1 / 1e6))
print("hf_encode_batch: %d bytes, %d tokens, %.2f MB/s (%d threads)" % (nbytes, nb, nbytes / tb / 1e6, os.cpu_count()))
PY
)
echo "$hf"
mbs() { sed -n "s/^$1: .* \([0-9.]*\) MB\/s.*/\1/p"; }
toks() { sed -n "s/^$1: [0-9]* bytes, \([0-9]*\) tokens.*/\1/p"; }
o=$(echo "$ours" | mbs ours); h1=$(echo "$hf" | mbs hf_encode); hb=$(echo "$hf" | mbs hf_encode_batch)
to=$(echo "$ours" | toks ours); th=$(echo "$hf" | toks hf_encode)
[[ "$to" == "$th" ]] && echo "token counts agree: $to" || echo "TOKEN COUNTS DIFFER: ours $to, hf $th"
awk -v o="$o" -v a="$h1" -v b="$hb" 'BEGIN {
  printf "| tokenizer | MB/s | ours / it |\n|---|---|---|\n"
  printf "| ours (1 thread) | %.2f | 1.00 |\n", o
  printf "| HF tokenizers encode (1 thread) | %.2f | %.2f |\n", a, o / a
  printf "| HF tokenizers encode_batch (all cores) | %.2f | %.2f |\n", b, o / b }'
