"""FP8 accuracy on a trained model, the reference half (bench/fp8_accuracy.sh drives it).

  python3 bench/fp8_accuracy_reference.py prepare FILE.gguf OUT_DIR DOC... [--windows N] [--window-tokens T]
      Writes OUT_DIR/orig (the GGUF model dequantised by transformers, saved as a bf16 Hugging
      Face directory that `rag quantize` and our CPU backend read) and OUT_DIR/windows.txt (N
      windows of T tokens cut evenly from the documents, tokenized by the model's tokenizer).
  python3 bench/fp8_accuracy_reference.py measure OUT_DIR [--threads N] [--greedy-prompt P] [--greedy-tokens G]
      The metrics of bench/fp8_accuracy.cc with transformers (fp32 arithmetic on the bf16
      weights) against two emulations of FP8, one JSON line each:
        fp8-weights: every decoder projection rounded to e4m3 with a scale per output row
          (s = max|w_row| / 448), what `rag quantize` stores and the CPU backend and the GPU's
          batch-1 decode GEMVs compute with;
        fp8-weights+activations: the same, and each projection's input rounded to e4m3 with a
          scale per token row, what the GPU's cuBLASLt FP8 GEMMs (prefill, batched decode) do;
        fp8-kv-cache: the original weights, every cached key (after RoPE) and value rounded to
          e4m3 with a scale per (token, KV head) row: the CUDA backend's FP8 KV cache alone;
        fp8-weights+activations+kv-cache: all three, what an FP8 model's prefill does on the GPU
          by default (`--kv-cache auto`).
"""
import argparse
import json
import math
import os
import sys

import torch

E4M3_MAX = 448.0
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def prepare(args):
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, LlamaForCausalLM

    gguf_dir, gguf_name = os.path.split(os.path.abspath(args.gguf))
    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)
    model = LlamaForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_name, dtype=torch.float32)
    orig = os.path.join(args.out, "orig")
    os.makedirs(orig, exist_ok=True)
    # save_pretrained refuses a model loaded from GGUF: write the tensors and config ourselves.
    tied = model.config.tie_word_embeddings
    tensors = {k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()
               if not (tied and k == "lm_head.weight")}
    save_file(tensors, os.path.join(orig, "model.safetensors"), metadata={"format": "pt"})
    config = model.config.to_dict()
    config.pop("quantization_config", None)  # the GGUF's; the directory holds plain bf16
    config["torch_dtype"] = "bfloat16"
    config["architectures"] = ["LlamaForCausalLM"]  # a model loaded from GGUF names none
    with open(os.path.join(orig, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    tok.save_pretrained(orig)

    ids = []
    for doc in args.docs:
        with open(doc, encoding="utf-8", errors="replace") as f:
            ids.append(tok(f.read(), add_special_tokens=False).input_ids)
    windows = []
    per_doc = [args.windows // len(ids) + (i < args.windows % len(ids)) for i in range(len(ids))]
    for doc_ids, n in zip(ids, per_doc):
        if n == 0:
            continue
        if len(doc_ids) < args.window_tokens:
            sys.exit(f"a document has {len(doc_ids)} tokens, fewer than a window ({args.window_tokens})")
        step = (len(doc_ids) - args.window_tokens) // max(n - 1, 1)
        for k in range(n):
            windows.append(doc_ids[k * step:k * step + args.window_tokens])
    with open(os.path.join(args.out, "windows.txt"), "w") as f:
        for w in windows:
            f.write(" ".join(map(str, w)) + "\n")
    print(f"prepared {orig} ({sum(v.numel() for v in tensors.values()) / 1e6:.1f} M parameters) and "
          f"{len(windows)} windows of {args.window_tokens} tokens", file=sys.stderr)


def e4m3_rows(x):
    """x rounded to e4m3 with one scale per row (the last dimension), back in x's dtype."""
    scale = x.abs().amax(dim=-1, keepdim=True).float() / E4M3_MAX
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return ((x.float() / scale).to(torch.float8_e4m3fn).float() * scale).to(x.dtype)


def fp8_kv_attention(module, query, key, value, *args, **kwargs):
    """SDPA over keys and values rounded as the FP8 KV cache stores them: key and value are
    (batch, kv_heads, positions, head_dim), so each last-dimension row is one (token, KV head)
    row of the cache. Rows cached at earlier steps come back unchanged (their largest element is
    exactly 448 times the same scale, the rest exact e4m3 values)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return sdpa_attention_forward(module, query, e4m3_rows(key), e4m3_rows(value), *args, **kwargs)


def load(orig, mode):
    from transformers import AttentionInterface, LlamaForCausalLM

    kv = mode.endswith("kv-cache")
    if kv:
        AttentionInterface.register("fp8_kv_cache", fp8_kv_attention)
    model = LlamaForCausalLM.from_pretrained(
        orig, dtype=torch.float32, attn_implementation="fp8_kv_cache" if kv else "sdpa").eval()
    if mode in ("orig", "fp8-kv-cache"):
        return model
    for name, module in model.named_modules():
        if name.split(".")[-1] in PROJECTIONS:
            with torch.no_grad():
                module.weight.copy_(e4m3_rows(module.weight))
            if "activations" in mode:
                module.register_forward_pre_hook(lambda _m, inputs: (e4m3_rows(inputs[0]),))
    return model


def greedy(model, prompt, n):
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                             pad_token_id=0)
    return out[0, len(prompt):].tolist()


def measure(args):
    torch.set_num_threads(args.threads)
    orig_dir = os.path.join(args.out, "orig")
    with open(os.path.join(args.out, "windows.txt")) as f:
        windows = [list(map(int, line.split())) for line in f if line.strip()]
    base = load(orig_dir, "orig")
    with torch.inference_mode():
        base_logits = [base(torch.tensor([w])).logits[0].double() for w in windows]
    base_greedy = [greedy(base, w[:args.greedy_prompt], args.greedy_tokens) for w in windows
                   if len(w) >= args.greedy_prompt]
    for mode in args.modes.split(","):
        model = load(orig_dir, mode)
        positions = top1 = 0
        nll_a = nll_b = kl_sum = kl_max = rel_sum = rel_max = 0.0
        for w, a in zip(windows, base_logits):
            with torch.inference_mode():
                b = model(torch.tensor([w])).logits[0].double()
            a, b = a[:-1], b[:-1]  # the last position has no next token to score
            target = torch.tensor(w[1:])
            top1 += int((a.argmax(-1) == b.argmax(-1)).sum())
            rel = (a - b).abs().amax(-1) / a.abs().amax(-1)
            rel_sum += float(rel.sum())
            rel_max = max(rel_max, float(rel.max()))
            la, lb = torch.log_softmax(a, -1), torch.log_softmax(b, -1)
            kl = (la.exp() * (la - lb)).sum(-1)
            kl_sum += float(kl.sum())
            kl_max = max(kl_max, float(kl.max()))
            nll_a -= float(la.gather(1, target[:, None]).sum())
            nll_b -= float(lb.gather(1, target[:, None]).sum())
            positions += len(target)
        same = total = prefix_sum = identical = 0
        prompts = [w[:args.greedy_prompt] for w in windows if len(w) >= args.greedy_prompt]
        for prompt, ga in zip(prompts, base_greedy):
            gb = greedy(model, prompt, args.greedy_tokens)
            prefix = next((i for i, (x, y) in enumerate(zip(ga, gb)) if x != y), len(ga))
            same += sum(x == y for x, y in zip(ga, gb))
            total += len(ga)
            prefix_sum += prefix
            identical += prefix == len(ga)
        print(json.dumps({
            "impl": "transformers", "emulates": mode, "torch": torch.__version__, "windows": len(windows),
            "positions": positions, "top1_agreement": round(top1 / positions, 4),
            "logit_rel_error_mean": round(rel_sum / positions, 4), "logit_rel_error_max": round(rel_max, 4),
            "kl_mean": round(kl_sum / positions, 5), "kl_max": round(kl_max, 4),
            "ppl_orig": round(math.exp(nll_a / positions), 3), "ppl_fp8": round(math.exp(nll_b / positions), 3),
            "greedy_runs": len(prompts), "greedy_tokens": args.greedy_tokens,
            "greedy_same_position": round(same / max(total, 1), 4),
            "greedy_mean_identical_prefix": round(prefix_sum / max(len(prompts), 1), 1),
            "greedy_identical_runs": identical}))
        sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("gguf")
    p.add_argument("out")
    p.add_argument("docs", nargs="+")
    p.add_argument("--windows", type=int, default=16)
    p.add_argument("--window-tokens", type=int, default=256)
    m = sub.add_parser("measure")
    m.add_argument("out")
    m.add_argument("--threads", type=int, default=2)
    m.add_argument("--greedy-prompt", type=int, default=128)
    m.add_argument("--greedy-tokens", type=int, default=64)
    m.add_argument("--modes", default="fp8-weights,fp8-weights+activations,fp8-kv-cache,"
                                     "fp8-weights+activations+kv-cache",
                   help="the emulations to measure, comma separated")
    args = parser.parse_args()
    prepare(args) if args.command == "prepare" else measure(args)


if __name__ == "__main__":
    main()
