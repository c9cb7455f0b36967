#!/usr/bin/env bash
# CPU decode tokens/s at batch 1: our CPU backend next to Hugging Face transformers, same
# random-weight model (SmolLM2-135M's shape: hidden 576, 30 layers, 9 heads, 3 KV heads,
# intermediate 1536, vocab 49152, tied), same CPU, same thread count, both fp32 arithmetic.
# The model is written to a temporary directory (not committed) by transformers itself.
#
#   bench/cpu_decode_bench.sh [BUILD_DIR] [THREADS] [TOKENS] [FILE.gguf]
# With FILE.gguf (e.g. the bundled models/SmolLM2-135M-Instruct.Q4_1.gguf) both sides run that
# real file instead: ours dequantises it to fp32 at load, transformers (gguf_file=, needs the
# gguf and accelerate packages) does the same.
# Needs: python3 with torch and transformers (pip install torch transformers safetensors), and
# the cpu_decode_bench target (cmake --build BUILD_DIR --target cpu_decode_bench).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
THREADS=${2:-2}
TOKENS=${3:-64}
PROMPT=16
BIN="$BUILD/engine/cpu_decode_bench"
[ -x "$BIN" ] || cmake --build "$BUILD" --target cpu_decode_bench -j"$THREADS" >/dev/null
GGUF=${4:-}
MODEL=$(mktemp -d)
trap 'rm -rf "$MODEL"' EXIT

if [ -n "$GGUF" ]; then
  rmdir "$MODEL"
  MODEL=$(cd "$(dirname "$GGUF")" && pwd)/$(basename "$GGUF")
  trap - EXIT
else
python3 - "$MODEL" <<'PY'
import sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                  num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                  rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True,
                  bos_token_id=0, eos_token_id=0)
LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(sys.argv[1])
PY
fi

OURS=$("$BIN" "$MODEL" --threads "$THREADS" --prompt-tokens "$PROMPT" --tokens "$TOKENS")
echo "$OURS"

THEIRS=$(python3 - "$MODEL" "$THREADS" "$PROMPT" "$TOKENS" <<'PY' 2>/dev/null
import json, sys, time, torch
from transformers import DynamicCache, LlamaForCausalLM
model_dir, threads, prompt, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
if model_dir.endswith(".gguf"):
    import os
    model = LlamaForCausalLM.from_pretrained(os.path.dirname(model_dir), gguf_file=os.path.basename(model_dir),
                                             dtype=torch.float32).eval()
else:
    model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
vocab = model.config.vocab_size
ids = torch.tensor([[(i * 7919 + 13) % vocab for i in range(prompt)]])
with torch.inference_mode():
    warm = model(input_ids=ids, past_key_values=DynamicCache(), use_cache=True)  # warm-up, untimed
    for _ in range(4):
        warm = model(input_ids=warm.logits[:, -1].argmax(-1, keepdim=True),
                     past_key_values=warm.past_key_values, use_cache=True)
    cache = DynamicCache()
    t0 = time.perf_counter()
    out = model(input_ids=ids, past_key_values=cache, use_cache=True)
    t1 = time.perf_counter()
    for _ in range(tokens):
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        out = model(input_ids=nxt, past_key_values=out.past_key_values, use_cache=True)
    t2 = time.perf_counter()
print(json.dumps({"impl": "transformers", "torch": torch.__version__, "threads": threads,
                  "prefill_s": round(t1 - t0, 4), "decode_tokens": tokens,
                  "decode_s": round(t2 - t1, 4), "decode_tok_per_s": round(tokens / (t2 - t1), 3)}))
PY
)
echo "$THEIRS"
python3 - "$OURS" "$THEIRS" <<'PY'
import json, sys
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"decode tokens/s at batch 1, {ours['threads']} threads, SmolLM2-135M shape, fp32 arithmetic: "
      f"rag-cpu {ours['decode_tok_per_s']:.1f}, transformers {theirs['decode_tok_per_s']:.1f}, "
      f"ratio {ours['decode_tok_per_s'] / theirs['decode_tok_per_s']:.2f}x")
PY
