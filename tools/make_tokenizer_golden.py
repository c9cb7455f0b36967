#!/usr/bin/env python3
"""Writes the tokenizer golden data of the engine (run once, output committed).

    pip install tokenizers==0.23.3
    python3 tools/make_tokenizer_golden.py

Reference: Hugging Face `tokenizers` (the Rust implementation behind transformers), loading
tests/data/llama3-tokenizer/tokenizer.json and encoding with add_special_tokens=False (no BOS;
added tokens written in the text are still recognized, as our Tokenizer::Encode does).

Outputs under tests/data/tokenizer/:
  llama3_golden.jsonl   {"text": ..., "ids": [...]} per line, >= 300 varied strings.
  hermes_prompt.json    the grounded RAG prompt of DESIGN.md section 4 rendered for two passages,
                        encoded by a Hermes-3-like tokenizer: the Llama 3 tokenizer with two
                        reserved special tokens renamed <|im_start|>/<|im_end|> (HERMES_RENAMES;
                        Hermes 3 does the same on slots of its own). The C++ test applies the
                        same renaming, so no id is hard-coded in the engine.
"""

import json
import os
import random

from tokenizers import Tokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TOKENIZER = os.path.join(ROOT, "tests", "data", "llama3-tokenizer", "tokenizer.json")
OUT = os.path.join(ROOT, "tests", "data", "tokenizer")

# Renamed in the tokenizer.json text (and in the C++ test): old content -> new content.
HERMES_RENAMES = {
    "<|reserved_special_token_34|>": "<|im_start|>",
    "<|reserved_special_token_35|>": "<|im_end|>",
}

GROUNDED_SYSTEM = (
    "You are a conversational AI assistant that is provided a list of documents and a user query to "
    "answer based on information from the documents. You should always use grounded information in "
    "your responses, only answering from what you can cite in the documents. Cite all facts from the "
    "documents using <co: doc_id></co> tags.")


def grounded_prompt(question, passages):
    """DESIGN.md section 4, Hermes 3 grounded prompt (the system text on one line)."""
    docs = "\n\n".join("Document:%d\nTitle: %s\nText: %s" % (i, t, p) for i, (t, p) in enumerate(passages))
    return ("<|begin_of_text|><|im_start|>system\n" + GROUNDED_SYSTEM + "<|im_end|>\n"
            "<|im_start|>user\n" + question + "\n\nCONTEXT:\n" + docs + "<|im_end|>\n"
            "<|im_start|>assistant\n")


PROMPT_QUESTION = "How does SQLite's write-ahead log handle checkpoints?"
PROMPT_PASSAGES = [
    ("SQLite Write-Ahead Logging",
     "The WAL file grows until a checkpoint copies its pages back into the database; by default "
     "a checkpoint runs when the WAL reaches 1000 pages."),
    ("Appropriate Uses For SQLite",
     "SQLite does not compete with client/server databases. It competes with fopen()."),
]


def fixed_strings():
    s = []
    # Empty and whitespace runs.
    s += ["", " ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", "\r\n", "\r\n\r\n", " \n", "\n ",
          "  \n  ", "a  b", "a   b", "a \t b", "a\tb", "a\n\nb", "a \n\n b", "trailing   ", "trailing\n",
          "trailing \t\n ", "   leading", "\t\tindented", "x\r\ny\rz", " \r\n \r\n ", "a\u00a0b",
          "a\u3000b", "a\u2003\u2003b", "a\u0085b", "a\x1cb\x1dc\x1ed\x1ff", "a\u2028b\u2029c",
          "\u00a0\u00a0x", "     \n     x", "line1\n    line2\n        line3"]
    # Numbers: Llama 3 splits digits in groups of 1-3.
    s += ["0", "1", "12", "123", "1234", "12345", "123456", "1234567", "12345678901234567890",
          "3.14159", "-42", "+7", "1,000,000", "1e-10", "0x1F", "2024-01-15", "12:30:45", "$1,234.56",
          "v1.2.3", "a1b22c333d4444", " 99 bottles", "\u0663\u0664\u0665", "\uff11\uff12\uff13\uff14",
          "\u00bd\u00bc", "\u2460\u2461\u2462", "x\u00b2 + y\u00b3", "ID: 007", "1234 5678 9012"]
    # Contractions, upper case, curly apostrophes.
    s += ["it's", "don't", "they're", "we've", "I'm", "you'll", "he'd", "IT'S", "DON'T", "THEY'RE",
          "WE'VE", "I'M", "YOU'LL", "HE'D", "It'S", "don\u2019t", "it\u2019s", "rock 'n' roll", "'s",
          "'", "''", "'''", "'ll've", "O'Neil's", "a'b'c", "'S'T'RE", "\u017f'\u017f", "x'\u017f",
          "'\u212a", "l'homme d'\u00e9tat", "\"quoted\" 'single'", "can't won't shan't", "'tis"]
    # Code in several languages.
    s += [
        "def add(a, b):\n    return a + b\n",
        "int main(int argc, char** argv) {\n  std::printf(\"%d\\n\", argc);\n  return 0;\n}\n",
        "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}",
        "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hello\")\n}\n",
        "const f = async (x) => { await fetch(`/api/${x}`); };",
        "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;",
        "#!/bin/bash\nset -euo pipefail\nfor f in *.txt; do wc -l \"$f\"; done\n",
        "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
        "public static void main(String[] args) { System.out.println(\"Hi\"); }",
        "x += 1; y -= 2; z *= 3; w /= 4; a <<= 1; b >>= 2; c &&= d || e;",
        "if (a != b && c == d) { return !e; }",
        "    if x:\n        pass\n    else:\n        raise ValueError('bad')\n",
        "template <typename T>\nT max(T a, T b) { return a > b ? a : b; }",
        "#include <stdio.h>\n#define N 100\n",
        "let x = [1, 2, 3].iter().sum::<i32>();",
        "lambda x: x**2 if x > 0 else -x",
        "a_b_c = snake_case_name; camelCaseName; PascalCaseName; SCREAMING_CASE",
        "// comment\n/* block\n   comment */\n# python comment",
        "\t\tindented_with_tabs();\n\t\t\tdeeper();",
        "<?php echo $var; ?>",
        "(defun fact (n) (if (<= n 1) 1 (* n (fact (- n 1)))))",
        "x = {'a': 1, \"b\": [2, 3]}",
        "regex = r'^(?:[a-z0-9!#$%&*+/=?^_`{|}~-]+)@example\\.com$'",
    ]
    # Emoji, ZWJ sequences, flags, skin tones, keycaps.
    s += ["\U0001F600", "\U0001F44D\U0001F3FD", "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466",
          "\U0001F3F3\uFE0F\u200D\U0001F308", "\U0001F1FA\U0001F1F8\U0001F1EF\U0001F1F5\U0001F1E9\U0001F1EA",
          "1\uFE0F\u20E3", "\u2764\uFE0F", "I \u2764\uFE0F NY", "Hello \U0001F30D!", "\U0001F680\U0001F680\U0001F680",
          "\U0001F9D1\u200D\U0001F4BB coding", "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F",
          "emoji\U0001F600in\U0001F601words", "\u263A", "\U0001FAE0\U0001FAE1"]
    # Combining marks.
    s += ["e\u0301", "cafe\u0301", "caf\u00e9", "n\u0303", "a\u0308o\u0308u\u0308", "Z\u0351\u0352\u0353\u0354a\u0355\u0356l\u0357g\u0358o",
          "\u1e9b\u0323", "\u0915\u094d\u0937", "\u0928\u092e\u0938\u094d\u0924\u0947", "\u0e01\u0e34\u0e19"]
    # CJK, Thai, RTL, Cyrillic, Greek and more scripts.
    s += ["\u4f60\u597d\uff0c\u4e16\u754c\uff01", "\u6211\u7684\u6587\u6863\u52a9\u624b\u4f7f\u7528\u68c0\u7d22\u589e\u5f3a\u751f\u6210\u3002",
          "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002", "\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a",
          "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8\uc785\ub2c8\ub2e4.", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a \u0e42\u0e25\u0e01",
          "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 123 English",
          "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd", "\u05e2\u05d1\u05e8\u05d9\u05ea (Hebrew) \u05d5\u05e2\u05d5\u05d3",
          "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!", "\u0421\u044a\u0435\u0448\u044c \u0436\u0435 \u0435\u0449\u0451 \u044d\u0442\u0438\u0445 \u043c\u044f\u0433\u043a\u0438\u0445",
          "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5", "\u03b1\u03b2\u03b3\u03b4\u03b5 \u0391\u0392\u0393",
          "\u0939\u093f\u0928\u094d\u0926\u0940 \u092d\u093e\u0937\u093e", "\u10e5\u10d0\u10e0\u10d7\u10e3\u10da\u10d8",
          "\u0540\u0561\u0575\u0565\u0580\u0565\u0576", "\u1290\u1308\u1229", "T\u00fcrk\u00e7e \u0130stanbul \u0131\u015f\u0131k",
          "Stra\u00dfe \u1e9e", "\u00c6sir \u00f8 \u00e5", "Vi\u1ec7t Nam", "\U00010000\U00010001",
          "\U00020000\U0002A6D6", "\u2603\u2605\u2192\u221e\u2211", "\u00a9\u00ae\u2122", "\u20ac100 \u00a350 \u00a5"]
    # Control characters.
    s += ["\x00", "a\x00b", "\x01\x02\x03", "\x07bell", "\x08\x0b\x0c", "\x1b[31mred\x1b[0m", "\x7f", "\u200b",
          "zero\u200bwidth", "\ufeffBOM", "soft\u00adhyphen", "\u202eRTL override", "\ufffd"]
    # Long words, URLs, JSON, markdown.
    s += ["supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
          "Donaudampfschifffahrtselektrizit\u00e4tenhauptbetriebswerkbauunterbeamtengesellschaft",
          "a" * 200, "ab" * 150, "x" * 1000, "\u00e9" * 300, "\u4e00" * 100, "!" * 50, "=" * 80, "-" * 40,
          "https://www.example.com/path/to/page?query=value&other=123#fragment",
          "http://localhost:8080/v1/chat/completions", "mailto:someone@example.org", "ftp://ftp.debian.org/debian/",
          "user@example.com", "C:\\Users\\Name\\Documents\\file.txt", "/usr/local/bin/rag --data ./data",
          '{"key": "value", "num": 42, "arr": [1, 2, 3], "nested": {"a": null, "b": true}}',
          '[{"id":1,"name":"x"},{"id":2,"name":"y"}]', '{"text":"line\\nbreak","ids":[128000]}',
          "# Heading\n\nSome **bold** and _italic_ text.\n\n- item 1\n- item 2\n",
          "```python\nprint('hi')\n```", "| a | b |\n|---|---|\n| 1 | 2 |", "> quote\n>> nested",
          "[link](https://example.com) ![img](a.png)", "1. first\n2. second\n   - sub", "***\n___\n---",
          "<co:2>The framework uses a pipeline.</co> Cited Documents: 2", "<co: 0, 1>fact</co: 0>"]
    # Special tokens inside text.
    s += ["<|begin_of_text|>", "<|begin_of_text|>Hello", "Hello<|end_of_text|>",
          "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", "a<|eot_id|>b<|eot_id|>c",
          "<|begin_of_text|><|begin_of_text|>", " <|eot_id|> ", "<|eot_id", "<|not_a_token|>", "<|reserved_special_token_0|>x",
          "<|reserved_special_token_250|>", "<|reserved_special_token_25|>0", "text <|eot_id|>\n\n", "<<|eot_id|>>",
          "<|im_start|>user\nhi<|im_end|>"]
    # Paragraphs.
    s += [
        "SQLite is not directly comparable to client/server SQL database engines such as MySQL, Oracle, "
        "PostgreSQL, or SQL Server since SQLite is trying to solve a different problem. Client/server SQL "
        "database engines strive to implement a shared repository of enterprise data.",
        "The default method by which SQLite implements atomic commit and rollback is a rollback journal. "
        "Beginning with version 3.7.0 (2010-07-21), a new \"Write-Ahead Log\" option (hereafter referred "
        "to as \"WAL\") is available.\n\nThere are advantages and disadvantages to using WAL instead of a "
        "rollback journal.",
        "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
        "foolishness, it was the epoch of belief, it was the epoch of incredulity...",
        "Der schnelle braune Fuchs springt \u00fcber den faulen Hund. \u00c4rger, \u00d6l und \u00dcbel.",
        "Le c\u0153ur a ses raisons que la raison ne conna\u00eet point. \u00ab Bonjour \u00bb, dit-il.",
        "El ni\u00f1o comi\u00f3 una manzana. \u00bfD\u00f3nde est\u00e1? \u00a1Aqu\u00ed!",
        "Mixed: English, \u4e2d\u6587, \u0440\u0443\u0441\u0441\u043a\u0438\u0439, \u0627\u0644\u0639\u0631\u0628\u064a\u0629, and \U0001F600 in one line.",
        "Q: What is 2+2?\nA: 4.\n\nQ: What's the capital of France?\nA: Paris.",
        "Title: Release notes\nText: Version 2.3.1 fixes CVE-2024-12345 (CVSS 9.8) and adds --json.",
    ]
    return s


def random_strings(rng, n):
    ranges = [(0x20, 0x7E), (0x00, 0x1F), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF),
              (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F), (0x2190, 0x23FF),
              (0x3000, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xFE00, 0xFE0F), (0xFF00, 0xFFEF),
              (0x1F300, 0x1FAFF), (0x10000, 0x1007F), (0x20000, 0x2A6DF), (0xE0000, 0xE007F), (0x300, 0x36F)]
    out = []
    for _ in range(n):
        length = rng.randint(1, 40)
        chars = []
        for _ in range(length):
            lo, hi = rng.choice(ranges)
            chars.append(chr(rng.randint(lo, hi)))
            if rng.random() < 0.15:
                chars.append(rng.choice([" ", "  ", "\n", "\t", "'s", "'LL", "123", "\r\n"]))
        out.append("".join(chars))
    return out


def random_ascii(rng, n):
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \t\n\r.,;:'\"!?()[]{}<>-_=+*/\\|@#$%^&~`"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(n)]


def main():
    tok = Tokenizer.from_file(TOKENIZER)
    rng = random.Random(20240531)
    strings = fixed_strings() + random_strings(rng, 70) + random_ascii(rng, 40)
    seen = set()
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "llama3_golden.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for text in strings:
            if text in seen:
                continue
            seen.add(text)
            ids = tok.encode(text, add_special_tokens=False).ids
            f.write(json.dumps({"text": text, "ids": ids}, ensure_ascii=True) + "\n")
    print("llama3_golden.jsonl: %d strings" % len(seen))

    with open(TOKENIZER, encoding="utf-8") as f:
        text = f.read()
    for old, new in HERMES_RENAMES.items():
        assert text.count('"%s"' % old) == 1, old
        text = text.replace('"%s"' % old, '"%s"' % new)
    hermes = Tokenizer.from_str(text)
    prompt = grounded_prompt(PROMPT_QUESTION, PROMPT_PASSAGES)
    out = {
        "renames": HERMES_RENAMES,
        "question": PROMPT_QUESTION,
        "passages": [{"title": t, "text": p} for t, p in PROMPT_PASSAGES],
        "prompt": prompt,
        "ids": hermes.encode(prompt, add_special_tokens=False).ids,
        "im_start": hermes.token_to_id("<|im_start|>"),
        "im_end": hermes.token_to_id("<|im_end|>"),
    }
    with open(os.path.join(OUT, "hermes_prompt.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(out, f, ensure_ascii=True, indent=1)
        f.write("\n")
    print("hermes_prompt.json: %d ids" % len(out["ids"]))


if __name__ == "__main__":
    main()
