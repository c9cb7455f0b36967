#!/usr/bin/env python3
"""Golden data for the CPU backend: small random-weight LlamaForCausalLM models built with
Hugging Face transformers (the independent reference), saved with save_pretrained, plus
golden.json per model with the reference logits and greedy continuations.

Usage: python3 tools/make_golden_llama.py [OUT_DIR]   (default tests/data/golden)
Needs: pip install torch transformers safetensors (the CPU works with PyPI's torch wheel).

Each model is saved in its storage dtype, then reloaded from disk in fp32 and run in fp32:
the reference is fp32 arithmetic on exactly the weights in the files, which is what our CPU
backend computes. golden.json holds, per prompt: the token ids, the logits of the last
position (and of every position for the first prompt of some models), 32 greedy tokens from
model.generate(do_sample=False) (no eos stop), and the smallest top-1/top-2 logit margin seen
along the greedy path (a tie would make greedy parity meaningless; the script refuses margins
below 3e-4 of max|logit|, three times the test tolerance).
"""
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
import transformers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

GREEDY_STEPS = 32


def f32_list(values):
    # Shortest repr that round-trips through float32.
    return "[" + ",".join(str(np.float32(v)) for v in values) + "]"


class UnusablePrompt(Exception):
    """The greedy path of a prompt passes a near tie (greedy parity along it would be
    meaningless) or reaches an eos id before GREEDY_STEPS tokens."""


def build(name, out_root, seed, storage_dtype, config_kwargs, prompts, all_logits_first=False,
          max_shard_size=None, init_std=0.1, rope_check=False, min_margin=3e-4):
    torch.manual_seed(seed)
    config = LlamaConfig(**config_kwargs, initializer_range=init_std)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # norms random around 1 so that they matter
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    out = os.path.join(out_root, name)
    shutil.rmtree(out, ignore_errors=True)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.to(storage_dtype).save_pretrained(out, **kwargs)

    ref = LlamaForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    gen_config = GenerationConfig(do_sample=False, max_new_tokens=GREEDY_STEPS,
                                  min_new_tokens=0, eos_token_id=None, pad_token_id=0)
    golden = {"model": name, "storage_dtype": str(storage_dtype).replace("torch.", ""),
              "transformers": transformers.__version__, "torch": torch.__version__,
              "inv_freq": [float(v) for v in ref.model.rotary_emb.inv_freq.tolist()]}
    entries = []
    worst_margin = float("inf")
    for i, ids in enumerate(prompts):
        x = torch.tensor([ids])
        with torch.no_grad():
            logits = ref(x).logits[0].float()
            out_ids = ref.generate(x, generation_config=gen_config,
                                   attention_mask=torch.ones_like(x))[0, len(ids):].tolist()
            if len(out_ids) != GREEDY_STEPS:
                raise UnusablePrompt(f"{name}: prompt {i}: greedy stops after {len(out_ids)} "
                                     "tokens (an eos id); change seed")
            # Independent check of generate's path, and the margins along it.
            seq = list(ids)
            margin = float("inf")
            for t in range(GREEDY_STEPS):
                row = ref(torch.tensor([seq])).logits[0, -1].float()
                top2 = torch.topk(row, 2).values
                margin = min(margin, float((top2[0] - top2[1]) / row.abs().max()))
                seq.append(int(row.argmax()))
            assert seq[len(ids):] == out_ids, (name, i, "generate differs from argmax loop")
        if margin < min_margin:
            raise UnusablePrompt(f"{name}: prompt {i}: greedy margin {margin:.2e} too small; "
                                 "change seed")
        worst_margin = min(worst_margin, margin)
        entry = {"ids": ids, "greedy": out_ids, "min_greedy_margin": margin,
                 "last_logits": logits[-1].tolist()}
        if all_logits_first and i == 0:
            entry["all_logits"] = [r.tolist() for r in logits]
        entries.append(entry)

    if rope_check:
        check_rope_forms(out, ref, prompts[-1], entries[-1]["last_logits"])

    with open(os.path.join(out, "golden.json"), "w") as f:
        f.write("{\n")
        for k, v in golden.items():
            f.write(f"  {json.dumps(k)}: {json.dumps(v)},\n")
        f.write('  "prompts": [\n')
        for j, e in enumerate(entries):
            f.write("    {")
            f.write(f'"ids": {json.dumps(e["ids"])}, "greedy": {json.dumps(e["greedy"])}, ')
            f.write(f'"min_greedy_margin": {e["min_greedy_margin"]:.6g},\n')
            f.write(f'     "last_logits": {f32_list(e["last_logits"])}')
            if "all_logits" in e:
                f.write(',\n     "all_logits": [' +
                        ",\n       ".join(f32_list(r) for r in e["all_logits"]) + "]")
            f.write("}" + ("," if j + 1 < len(entries) else "") + "\n")
        f.write("  ]\n}\n")
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"{name}: {size / 1e6:.2f} MB, files {sorted(os.listdir(out))}, "
          f"min greedy margin {worst_margin:.3g}")


def check_rope_forms(model_dir, ref, prompt, want_last):
    """Writes legacy_config.json (rope_theta + rope_scaling) beside the saved config (which
    transformers 5 writes in the rope_parameters form), checks that transformers loads both to
    the same logits, and that the llama3 scaling changes the logits of this prompt."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    params = cfg.get("rope_parameters")
    assert params and params.get("rope_type") == "llama3", "expected the rope_parameters form"
    legacy = {k: v for k, v in cfg.items() if k != "rope_parameters"}
    legacy["rope_theta"] = params["rope_theta"]
    legacy["rope_scaling"] = {k: v for k, v in params.items() if k != "rope_theta"}
    with open(os.path.join(model_dir, "legacy_config.json"), "w") as f:
        json.dump(legacy, f, indent=2)
    x = torch.tensor([prompt])
    with tempfile.TemporaryDirectory() as tmp:
        for fn in os.listdir(model_dir):
            if fn.endswith(".safetensors") or fn.endswith(".index.json"):
                os.symlink(os.path.join(model_dir, fn), os.path.join(tmp, fn))
        shutil.copy(os.path.join(model_dir, "legacy_config.json"), os.path.join(tmp, "config.json"))
        with torch.no_grad():
            got = LlamaForCausalLM.from_pretrained(tmp, dtype=torch.float32).eval()(x).logits[0, -1]
        assert torch.equal(got, torch.tensor(want_last)), "legacy rope form loads differently"
        unscaled = dict(legacy)
        unscaled["rope_scaling"] = None
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(unscaled, f)
        with torch.no_grad():
            plain = LlamaForCausalLM.from_pretrained(tmp, dtype=torch.float32).eval()(x).logits[0, -1]
    rel = float((plain - torch.tensor(want_last)).abs().max() / plain.abs().max())
    assert rel > 1e-2, f"rope scaling hardly matters for this prompt ({rel:.2e})"
    print(f"  both rope config forms agree; llama3 scaling moves the logits by {rel:.3f} (relative)")


def main():
    out_root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "golden")
    os.makedirs(out_root, exist_ok=True)
    torch.set_num_threads(2)
    rng = np.random.default_rng(1234)

    def prompts(vocab, lengths):
        return [rng.integers(0, vocab, n).tolist() for n in lengths]

    llama3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
              "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}

    # (a) GQA, untied, fp32, sharded.
    build("gqa_untied_f32", out_root, 1, torch.float32,
          dict(vocab_size=512, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
               rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
               bos_token_id=1, eos_token_id=2),
          prompts(512, [7, 1, 23]), all_logits_first=True, max_shard_size="100KB")
    # (b) MHA, tied embeddings, fp16 storage, head_dim given explicitly (16 = 48 / 3).
    build("mha_tied_f16", out_root, 2, torch.float16,
          dict(vocab_size=384, hidden_size=48, intermediate_size=96, num_hidden_layers=3,
               num_attention_heads=3, num_key_value_heads=3, head_dim=16,
               max_position_embeddings=256, rms_norm_eps=1e-6, rope_theta=10000.0,
               tie_word_embeddings=True, bos_token_id=1, eos_token_id=[2, 3]),
          prompts(384, [5, 17, 40]), all_logits_first=True)
    # (c) Llama 3.1 rope scaling, bf16, a prompt long enough that scaling matters.
    build("llama31_rope_bf16", out_root, 3, torch.bfloat16,
          dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=131072,
               rms_norm_eps=1e-5, rope_theta=500000.0, rope_parameters={"rope_theta": 500000.0, **llama3},
               tie_word_embeddings=False, bos_token_id=0, eos_token_id=1),
          prompts(256, [9, 300]), rope_check=True)
    # (d) the real Llama 3 vocabulary, tiny hidden size, bf16, Llama 3.1 rope.
    build("llama3_vocab_bf16", out_root, 4, torch.bfloat16,
          dict(vocab_size=128256, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=131072,
               rms_norm_eps=1e-5, rope_parameters={"rope_theta": 500000.0, **llama3},
               tie_word_embeddings=True, bos_token_id=128000,
               eos_token_id=[128001, 128008, 128009]),
          [[128000] + rng.integers(0, 128000, 11).tolist(),
           [128000, 9906, 11, 1917, 0, 128009, 128006]],
          init_std=0.3)


if __name__ == "__main__":
    main()
