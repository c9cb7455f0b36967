#!/usr/bin/env python3
"""Writes tests/data/bert-tiny: a BERT encoder with random weights (transformers' BertModel,
seed 0, weights drawn wider than the default init so every layer matters), its config.json and
model.safetensors (fp32), and golden.json with transformers' last hidden states for a few id
sequences: the reference the CPU encoder (engine/bert/bert_model.cc) and the GPU one
(engine/cuda/cuda_bert.cc) are held to on shapes the real model does not have (head size 32 with
2 heads, a sequence longer than 512 positions).

It also writes BIN_DIR (tests/data/bert-tiny-bin), the fixtures of tools/convert_bert_weights.py
(tests/integration/convert_bert_weights_test.py, tests/unit/engine_bert_convert_test.cc), all
made by torch.save itself:
  config.json              bert-tiny's
  pytorch_model.bin        the same weights as model.safetensors, as transformers' state_dict
                           saved by torch.save (zip format), some of them stored as views: layer 0's
                           query/key/value weights slices of one storage (offsets), its
                           intermediate weight transposed twice (strides (1, I)) and its output
                           LayerNorm bias every other element of a larger storage (stride 2)
  dtypes/pytorch_model.bin small tensors of every dtype the converter names, contiguous or not
                           (transposed, sliced, expanded with stride 0, permuted, 0-d, empty, an
                           nn.Parameter), and dtypes/expected.safetensors: the same tensors made
                           contiguous, written by the safetensors package
  legacy/pytorch_model.bin the pre-1.6 non-zip format, which the converter refuses
Usage: python3 tools/make_tiny_bert.py [OUT_DIR [BIN_DIR]]   (PyPI: torch, transformers,
safetensors; BIN_DIR defaults to OUT_DIR-bin)"""
import collections
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertModel

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data", "bert-tiny")
out = os.path.normpath(out)
bin_dir = sys.argv[2] if len(sys.argv) > 2 else out + "-bin"
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

# The same weights as pytorch_model.bin, some as non-contiguous or offset views (same values).
state = model.state_dict()
p = "encoder.layer.0."
qkv = torch.cat([state[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]).clone()
h = config.hidden_size
for i, n in enumerate(("query", "key", "value")):
    state[p + f"attention.self.{n}.weight"] = qkv[i * h:(i + 1) * h]
up = state[p + "intermediate.dense.weight"]
state[p + "intermediate.dense.weight"] = up.t().contiguous().t()
ln_b = state[p + "output.LayerNorm.bias"]  # random (dense biases start at 0)
wide = torch.zeros(2 * ln_b.numel() + 1)
wide[1::2] = ln_b
state[p + "output.LayerNorm.bias"] = wide[1::2]
assert not state[p + "intermediate.dense.weight"].is_contiguous()
assert state[p + "output.LayerNorm.bias"].stride() == (2,)
os.makedirs(bin_dir, exist_ok=True)
torch.save(state, os.path.join(bin_dir, "pytorch_model.bin"))
shutil.copyfile(os.path.join(out, "config.json"), os.path.join(bin_dir, "config.json"))

# Every dtype, contiguous or not, against what the safetensors package writes for them.
gen = torch.Generator().manual_seed(2)
base = torch.randn(4, 6, generator=gen)
dtypes = collections.OrderedDict()
dtypes["f32"] = base.clone()
dtypes["f32_transposed"] = base.t()
dtypes["f16_every_other_column"] = base.half()[:, ::2]
dtypes["bf16_transposed"] = base.bfloat16().t()
dtypes["f64_row_slice"] = base.double()[1:3]
dtypes["i64_positions"] = torch.arange(10, dtype=torch.int64).unsqueeze(0)
dtypes["i64_expanded"] = torch.arange(3, dtype=torch.int64).expand(2, 3)
dtypes["i32"] = torch.randint(-1000, 1000, (5,), generator=gen, dtype=torch.int32)
dtypes["i16"] = torch.randint(-1000, 1000, (5,), generator=gen, dtype=torch.int16)
dtypes["i8"] = torch.randint(-100, 100, (5,), generator=gen, dtype=torch.int8)
dtypes["u8"] = torch.randint(0, 255, (5,), generator=gen, dtype=torch.uint8)
dtypes["bool"] = base[0] > 0
dtypes["f32_permuted_3d"] = torch.randn(2, 3, 4, generator=gen).permute(2, 0, 1)
dtypes["f32_scalar"] = torch.tensor(3.5)
dtypes["f32_empty"] = torch.zeros(0, 3)
dtypes["f32_parameter"] = torch.nn.Parameter(torch.randn(3, generator=gen))
assert not dtypes["bf16_transposed"].is_contiguous()
os.makedirs(os.path.join(bin_dir, "dtypes"), exist_ok=True)
torch.save(dtypes, os.path.join(bin_dir, "dtypes", "pytorch_model.bin"))
save_file({k: v.detach().contiguous().clone() for k, v in dtypes.items()},
          os.path.join(bin_dir, "dtypes", "expected.safetensors"), metadata={"format": "pt"})

os.makedirs(os.path.join(bin_dir, "legacy"), exist_ok=True)
torch.save({"w": torch.ones(2)}, os.path.join(bin_dir, "legacy", "pytorch_model.bin"),
           _use_new_zipfile_serialization=False)
print("wrote", bin_dir)
