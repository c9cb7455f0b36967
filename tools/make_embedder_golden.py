#!/usr/bin/env python3
"""Writes the embedder golden data (run once, output committed).

    pip install torch transformers   # torch CPU wheels are enough
    scripts/setup.sh                 # puts all-MiniLM-L6-v2 in models/
    python3 tools/make_embedder_golden.py

Reference: Hugging Face transformers (AutoTokenizer, AutoModel) on models/all-MiniLM-L6-v2 in
fp32, pooled exactly as sentence-transformers' encode() does for this directory: the tokenizer
called with padding and truncation to max_seq_length (sentence_bert_config.json), the last hidden
state averaged over the attention mask (1_Pooling: mean tokens), then
torch.nn.functional.normalize (modules.json lists Normalize). Texts are embedded in batches of 8
mixed lengths, so the padding and attention mask are exercised.

Output: tests/data/embedder/minilm_golden.json
  {"model", "max_seq_length", "cases": [{"text", "ids", "embedding"}]}, embeddings rounded to
  7 significant digits.
"""

import json
import os

import torch
from transformers import AutoModel, AutoTokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
OUT = os.path.join(ROOT, "tests", "data", "embedder", "minilm_golden.json")

LONG = " ".join(
    "Retrieval augmented generation grounds a language model's answer in passages fetched from "
    "the user's own documents, number %d of many." % i for i in range(20))

TEXTS = [
    "",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "How does SQLite's write-ahead log handle checkpoints?",
    "Café au lait, naïve résumé, São Paulo, Zürich, façade, coöperate.",
    "ÀÉÎÕÜ ÅÆØ ß ĳ ﬁ Ǆ İstanbul ΣΊΣΥΦΟΣ Ωμέγα",
    "Ünïcödé ùñíçøđé àccents everywhere!!!",
    "北京是中国的首都。",
    "日本語のテキストとカタカナ、ひらがな。",
    "한국어 문장도 있습니다.",
    "Mixed 中文 and English words together",
    "Emoji: 😀🎉👍🏽 and 🥲 and a family 👨‍👩‍👧‍👦.",
    "Numbers 3.14159, 1,000,000 and -42e10; version v2.0.1-rc3.",
    "Visit https://example.com/path?query=1&x=y#frag or mail someone@example.org",
    "def embed(texts: list[str]) -> np.ndarray:\n    return model.encode(texts)",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    "\t  Leading and trailing whitespace \n\n",
    "Control\u0000chars\u0007and\u200bzero\u200dwidth\ufeffmarks\u00adsoft",
    "Punctuation: «quotes» “curly” ‘single’ — dashes – … ¿¡ §¶ †‡ •",
    "[CLS] special tokens [SEP] written in the text [MASK] [UNK] [PAD]",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "a" * 150,
    "x" * 99 + " " + "y" * 100 + " " + "z" * 101,
    "Привет, мир! Это тест на русском языке.",
    "مرحبا بالعالم، هذا اختبار.",
    "שלום עולם",
    "नमस्ते दुनिया, यह एक परीक्षण है।",
    "สวัสดีชาวโลก",
    "Ελληνικά: Καλημέρα κόσμε",
    "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ　１２３",
    "Math: ∑ x² ≤ ∞, α→β, √2 ≈ 1.414, ½ + ¼",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "The cat sat on the mat.",
    "A man is playing a guitar on stage.",
    "e-mail, co-operate, state-of-the-art, U.S.A., Ph.D., don't, it's",
    "ALL CAPS SENTENCE WITH SHOUTING",
    "x",
    "!!!",
    "CJK extensions: 𫠺𫡮 𣬖 㐀 﨑 and a variation selector ︎ with jamo 가",
    LONG,
]


def main():
    with open(os.path.join(MODEL, "sentence_bert_config.json")) as f:
        max_len = json.load(f)["max_seq_length"]
    tok = AutoTokenizer.from_pretrained(MODEL)
    model = AutoModel.from_pretrained(MODEL, dtype=torch.float32).eval()
    cases = []
    for b in range(0, len(TEXTS), 8):
        batch = TEXTS[b:b + 8]
        enc = tok(batch, padding=True, truncation="longest_first", max_length=max_len, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        emb = torch.nn.functional.normalize(pooled, p=2, dim=1)
        for i, text in enumerate(batch):
            n = int(enc["attention_mask"][i].sum())
            cases.append({"text": text, "ids": enc["input_ids"][i][:n].tolist(),
                          "embedding": [float("%.7g" % v) for v in emb[i].tolist()]})
    assert any(len(c["ids"]) == max_len for c in cases), "no text reaches max_seq_length"
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"model": "all-MiniLM-L6-v2", "max_seq_length": max_len, "cases": cases}, f,
                  ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print("wrote", OUT, len(cases), "cases")


if __name__ == "__main__":
    main()
