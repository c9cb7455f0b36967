#!/usr/bin/env python3
"""Golden data for the GGUF tests (tests/unit/engine_gguf_test.cc), from independent references.

1. tests/data/gguf/dequant_blocks.json: for each ggml type we dequantise, two blocks of random
   bytes (scale fields set to finite fp16 values) and gguf-py's dequantize of them (fp32 bits).
2. tests/data/gguf/smollm2_golden.json: from models/SmolLM2-135M-Instruct.Q4_1.gguf (fetched by
   scripts/setup.sh), Hugging Face transformers' tokenizer ids for a few texts, and for a few
   prompts the last position's top logits and 16 greedy tokens of the dequantised model in fp32.

usage: python3 tools/make_gguf_golden.py   (needs: pip install gguf torch transformers)
"""
import importlib.metadata
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "gguf")
MODEL_DIR = os.path.join(ROOT, "models")
MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"


def dequant_blocks():
    import gguf
    from gguf.quants import dequantize
    rng = np.random.default_rng(1234)
    out = []
    # type -> byte offsets of the fp16 scale fields in one block
    scale_fields = {"Q4_0": [0], "Q4_1": [0, 2], "Q8_0": [0], "Q4_K": [0, 2], "Q6_K": [208],
                    "F16": None, "BF16": None, "F32": None}
    for name, fields in scale_fields.items():
        qtype = gguf.GGMLQuantizationType[name]
        block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
        n_blocks = 2 if block_elems > 1 else 64
        if fields is None:  # plain floats: random finite values
            vals = rng.standard_normal(n_blocks).astype({"F16": np.float16, "F32": np.float32,
                                                         "BF16": np.float32}[name])
            raw = vals.tobytes() if name != "BF16" else (vals.view(np.uint32) >> 16).astype(np.uint16).tobytes()
        else:
            buf = bytearray(rng.integers(0, 256, n_blocks * block_bytes, dtype=np.uint8).tobytes())
            for b in range(n_blocks):
                for off in fields:
                    v = np.float16(rng.uniform(0.001, 0.05) * (1 if off == 0 or name != "Q4_1" else -10))
                    buf[b * block_bytes + off:b * block_bytes + off + 2] = v.tobytes()
            raw = bytes(buf)
        data = np.frombuffer(raw, dtype=np.uint8).reshape(n_blocks, block_bytes)
        expected = dequantize(data, qtype).astype(np.float32).reshape(-1)
        out.append({"type": name, "n": int(expected.size), "hex": raw.hex(),
                    "expected_bits": [int(x) for x in expected.view(np.uint32)]})
    with open(os.path.join(OUT, "dequant_blocks.json"), "w") as f:
        json.dump({"generator": "tools/make_gguf_golden.py, gguf " + importlib.metadata.version("gguf"), "blocks": out}, f)


TEXTS = [
    "Hello world",
    "The year 2024 had 366 days;  3.14159 is pi.",
    "a  1\n\n  spaces\tand tabs   end ",
    "Unicode: café, naïve, 日本語, emoji 🎉!",
    "<|im_start|>user\nHi<|im_end|>\n",
    "def f(x):\n    return x**2 + 10\n",
]
PROMPTS = [
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nName three primary colors.<|im_end|>\n<|im_start|>assistant\n",
    "The Eiffel Tower is located in the city of",
]
TOP = 40  # logits kept per prompt (largest first)


def model_golden():
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(MODEL_DIR, gguf_file=MODEL)
    model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, gguf_file=MODEL, dtype=torch.float32)
    model.eval()
    # transformers' GGUF tokenizer converter ignores tokenizer.ggml.pre and splits with plain
    # GPT-2 ByteLevel; SmolLM2's own tokenizer.json (and llama.cpp's "smollm") first isolate every
    # digit: Sequence[Digits(individual_digits), ByteLevel]. The reference ids use that
    # pre-tokenizer on transformers' GGUF vocabulary and merges; the converter's ids are kept
    # beside them where they differ (whitespace before a digit).
    from tokenizers import pre_tokenizers
    plain = [tok.encode(t, add_special_tokens=False) for t in TEXTS]
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    texts = []
    for t, p in zip(TEXTS, plain):
        ids = tok.encode(t, add_special_tokens=False)
        texts.append({"text": t, "ids": ids, **({} if ids == p else {"transformers_gguf_ids": p})})
    prompts = []
    min_margin = 1e9
    for p in PROMPTS:
        ids = tok.encode(p, add_special_tokens=False)
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1].float()
            top = torch.topk(logits, TOP)
            gen = model.generate(torch.tensor([ids]), max_new_tokens=16, do_sample=False,
                                 output_scores=True, return_dict_in_generate=True)
        for s in gen.scores:
            t2 = torch.topk(s[0].float(), 2).values
            min_margin = min(min_margin, float(t2[0] - t2[1]))
        prompts.append({"text": p, "ids": ids,
                        "top_ids": [int(i) for i in top.indices],
                        "top_logits": [round(float(v), 4) for v in top.values],
                        "greedy": [int(i) for i in gen.sequences[0, len(ids):]]})
    print(f"smallest top-1/top-2 margin over the greedy steps: {min_margin:.4f}")
    if min_margin < 1e-2:
        sys.exit("a greedy step is a near-tie; pick other prompts")
    with open(os.path.join(OUT, "smollm2_golden.json"), "w") as f:
        json.dump({"generator": f"tools/make_gguf_golden.py, transformers {transformers.__version__}, "
                                f"torch {torch.__version__}, fp32",
                   "model": MODEL, "min_greedy_margin": round(min_margin, 4),
                   "texts": texts, "prompts": prompts}, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    dequant_blocks()
    model_golden()
