#!/usr/bin/env bash
# Embedding texts/s: our BERT embedder (engine/bert/) next to Hugging Face transformers, same
# model directory, same 1000 passages of ~200 words (generated with a fixed seed, so both sides
# and every run see the same texts), batches of 32, same number of threads, fp32 on both sides.
# The transformers side pools and normalizes as sentence-transformers does. Each side embeds one
# batch untimed first.
#
#   bench/embed_bench.sh [BUILD_DIR] [THREADS] [MODEL_DIR] [DEVICE]
# DEVICE cuda: both sides on GPU 0 (ours: engine/cuda/cuda_bert.cc; transformers: torch on cuda,
# fp32), batches of 32 as on the CPU.
# Needs: scripts/setup.sh (the model), python3 with torch and transformers, and the embed_bench
# target (configured with RAG_BUILD_TESTS, built here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
THREADS=${2:-2}
MODEL=${3:-models/all-MiniLM-L6-v2}
DEVICE=${4:-cpu}
BIN="$BUILD/engine/embed_bench"
[ -d "$MODEL" ] || { echo "embed_bench: $MODEL is missing: run scripts/setup.sh" >&2; exit 1; }
[ -x "$BIN" ] || cmake --build "$BUILD" --target embed_bench -j"$THREADS" >/dev/null
TEXTS=$(mktemp)
trap 'rm -f "$TEXTS"' EXIT

python3 - "$TEXTS" <<'PY'
import random, sys
random.seed(0)
words = ("the of and to in is that for it as was with be by on not he this are or his from at which "
         "but have an they you were her she there been one all we their has would when if so no what "
         "retrieval index document passage vector embedding query answer citation model server "
         "database page chunk token latency throughput memory cache thread batch kernel tensor layer "
         "attention weight gradient sample corpus language system network protocol request response "
         "engineering compression storage analysis evaluation benchmark performance accuracy result "
         "research experiment hypothesis measurement temperature pressure velocity structure").split()
with open(sys.argv[1], "w") as f:
    for _ in range(1000):
        n = random.randint(180, 220)
        ws = [random.choice(words) for _ in range(n)]
        ws[0] = ws[0].capitalize()
        f.write(" ".join(ws) + ".\n")
PY

OURS=$("$BIN" "$MODEL" "$TEXTS" --threads "$THREADS" --batch 32 --device "$DEVICE")
echo "rag:          $OURS"

THEIRS=$(python3 - "$MODEL" "$TEXTS" "$THREADS" "$DEVICE" <<'PY' 2>/dev/null
import json, sys, time, torch
from transformers import AutoModel, AutoTokenizer
model_dir, path, threads, device = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(threads)
texts = open(path).read().splitlines()
max_len = json.load(open(model_dir + "/sentence_bert_config.json"))["max_seq_length"]
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModel.from_pretrained(model_dir, dtype=torch.float32).eval().to(device)
torch.backends.cuda.matmul.allow_tf32 = False  # fp32 products, as ours

def embed(batch):
    enc = tok(batch, padding=True, truncation=True, max_length=max_len, return_tensors="pt").to(device)
    hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)

with torch.inference_mode():
    embed(texts[:32])
    t0 = time.perf_counter()
    first = None
    for i in range(0, len(texts), 32):
        out = embed(texts[i:i + 32])
        if first is None:
            first = [round(v, 6) for v in out[0][:4].tolist()]
    if device == "cuda":
        torch.cuda.synchronize()
    s = time.perf_counter() - t0
print(json.dumps({"texts": len(texts), "seconds": round(s, 3), "texts_per_s": round(len(texts) / s, 2),
                  "first": first, "torch": torch.__version__}))
PY
)
echo "transformers: $THEIRS"
python3 - "$OURS" "$THEIRS" "$THREADS" "$DEVICE" <<'PY'
import json, sys
ours, theirs, threads, device = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
print(f"all-MiniLM-L6-v2, 1000 passages of ~200 words, batch 32, {device}, {threads} threads, fp32: "
      f"rag {ours['texts_per_s']:.1f} texts/s, transformers {theirs['texts_per_s']:.1f} texts/s, "
      f"ratio {ours['texts_per_s'] / theirs['texts_per_s']:.2f}x")
PY
