#!/usr/bin/env python3
"""Golden data for `rag generate --raw`: text prompts tokenized by Hugging Face `tokenizers`
(the Llama 3 tokenizer of tests/data/llama3-tokenizer) and continued greedily by Hugging Face
transformers on the random-weight golden model with the real 128256-token vocabulary
(tests/data/golden/llama3_vocab_bf16, made by tools/make_golden_llama.py), in fp32.

Usage: python3 tools/make_generate_golden.py   (needs torch, transformers, tokenizers)
Writes tests/data/golden/llama3_vocab_bf16/generate_golden.json:
  [{"text", "prompt_ids", "ids", "min_margin"}]  (ids as transformers' generate returns them,
  stopping at the model's eos ids, at most MAX_NEW tokens). Prompts whose greedy path has a
  top-1/top-2 margin below 3e-4 of max|logit| are refused: a near-tie would make parity luck.
"""
import json
import os

import torch
from tokenizers import Tokenizer
from transformers import LlamaForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL = os.path.join(ROOT, "tests", "data", "golden", "llama3_vocab_bf16")
TOKENIZER = os.path.join(ROOT, "tests", "data", "llama3-tokenizer", "tokenizer.json")
MAX_NEW = 16
PROMPTS = [
    "The quick brown fox",
    "Debian packages are built with dpkg-buildpackage.",
    "def add(a, b):\n    return a + b\n",
    "Ünïcödé and 日本語 text, with emoji 😀.",
]

tok = Tokenizer.from_file(TOKENIZER)
model = LlamaForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
out = []
for text in PROMPTS:
    prompt = tok.encode(text, add_special_tokens=False).ids
    with torch.no_grad():
        gen = model.generate(torch.tensor([prompt]), max_new_tokens=MAX_NEW, do_sample=False,
                             output_scores=True, return_dict_in_generate=True)
    ids = gen.sequences[0, len(prompt):].tolist()
    margin = min(float((s[0].topk(2).values[0] - s[0].topk(2).values[1]) / s[0].abs().max())
                 for s in gen.scores)
    if margin < 3e-4:
        raise SystemExit(f"prompt {text!r}: greedy margin {margin:.2e} is a near-tie; pick another")
    out.append({"text": text, "prompt_ids": prompt, "ids": ids, "min_margin": margin})
with open(os.path.join(MODEL, "generate_golden.json"), "w") as f:
    json.dump(out, f, indent=1, ensure_ascii=False)
    f.write("\n")
print(f"wrote {len(out)} prompts")
