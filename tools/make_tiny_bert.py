#!/usr/bin/env python3
"""Writes tests/data/bert-tiny: a BERT encoder with random weights (transformers' BertModel,
seed 0, weights drawn wider than the default init so every layer matters), its config.json and
model.safetensors (fp32), and golden.json with transformers' last hidden states for a few id
sequences: the reference the CPU encoder (engine/bert/bert_model.cc) and the GPU one
(engine/cuda/cuda_bert.cc) are held to on shapes the real model does not have (head size 32 with
2 heads, a sequence longer than 512 positions).
Usage: python3 tools/make_tiny_bert.py [OUT_DIR]   (PyPI: torch, transformers, safetensors)"""
import json
import os
import sys

import torch
from transformers import BertConfig, BertModel

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "bert-tiny")
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
config = BertConfig(vocab_size=500, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=128, max_position_embeddings=640, type_vocab_size=2,
                    hidden_act="gelu", layer_norm_eps=1e-12, initializer_range=0.2)
model = BertModel(config, add_pooling_layer=False).eval()
with torch.no_grad():  # LayerNorm weights and biases away from 1 and 0 too
    for name, p in model.named_parameters():
        if "LayerNorm" in name:
            p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.3 * torch.randn_like(p))
model.save_pretrained(out, safe_serialization=True)

gen = torch.Generator().manual_seed(1)
lengths = [1, 5, 31, 64, 130, 600]
seqs = [torch.randint(0, config.vocab_size, (n,), generator=gen).tolist() for n in lengths]
golden = {"sequences": []}
with torch.no_grad():
    for ids in seqs:
        h = model(input_ids=torch.tensor([ids]), token_type_ids=torch.zeros(1, len(ids), dtype=torch.long)).last_hidden_state[0]
        golden["sequences"].append({"ids": ids, "hidden": [[round(float(v), 7) for v in row] for row in h]})
with open(os.path.join(out, "golden.json"), "w") as f:
    json.dump(golden, f)
print("wrote", out, [len(s) for s in seqs])
