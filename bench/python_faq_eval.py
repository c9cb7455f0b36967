#!/usr/bin/env python3
"""Builds a second retrieval question set, in the format of ../shared/eval/faq, from the Python
FAQ of Debian's python3.11-doc package (reStructuredText sources under
/usr/share/doc/python3.11/html/_sources/faq/, PSF licence): every section heading that is a
question ("How do I ...?") becomes a question, the body of its section the gold answer, and the
corpus is all FAQ pages with every section heading removed, so that a question can only be
matched through the content of its answer (as ../shared/eval/faq is made from the Debian FAQ).

It exists to check that retrieval changes tuned nowhere still help on questions written by other
people about another subject. Sections with fewer than 20 words are skipped (the scorer's hit rule
needs 8 consecutive words of the gold).

usage: python_faq_eval.py FAQ_SOURCE_DIR OUT_DIR   -> OUT_DIR/python-faq.txt, OUT_DIR/dev.jsonl
"""
import glob
import json
import os
import re
import sys

UNDERLINE = re.compile(r'^([=\-~^"*#+])\1{2,}\s*$')


def plain(text):
    """Sphinx roles, literals and directives to plain text."""
    text = re.sub(r':[a-z:]+:`~?([^`<]*?)(\s*<[^>]*>)?`', r'\1', text)
    text = re.sub(r'``([^`]*)``', r'\1', text)
    text = re.sub(r'`([^`<]*?)(\s*<[^>]*>)?`_*', r'\1', text)
    return re.sub(r'^\.\. [^\n]*$', '', text, flags=re.M)


def split_page(lines):
    """(body lines without headings, [(question, gold)])"""
    heads = {i for i in range(len(lines) - 1)
             if lines[i].strip() and UNDERLINE.match(lines[i + 1]) and not UNDERLINE.match(lines[i])}
    body, qa, question, section = [], [], None, []

    def flush():
        if question is not None:
            gold = plain('\n'.join(section)).strip()
            if len(re.findall(r'[a-z0-9]+', gold.lower())) >= 20:
                qa.append({'question': plain(question).strip(), 'gold': gold})

    i = 0
    while i < len(lines):
        if i in heads:
            flush()
            title = lines[i].strip()
            question, section = (title if title.endswith('?') else None), []
            i += 2
            continue
        if (UNDERLINE.match(lines[i]) and i + 2 < len(lines) and lines[i + 1].strip()
                and UNDERLINE.match(lines[i + 2])):  # an over- and underlined page title
            i += 3
            continue
        body.append(lines[i])
        section.append(lines[i])
        i += 1
    flush()
    return body, qa


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    pages, questions = [], []
    for path in sorted(glob.glob(os.path.join(src, '*.rst.txt'))):
        if os.path.basename(path) == 'index.rst.txt':
            continue
        body, qa = split_page(open(path, encoding='utf-8').read().split('\n'))
        pages.append(plain('\n'.join(body)))
        questions.extend(qa)
    with open(os.path.join(out, 'python-faq.txt'), 'w', encoding='utf-8') as f:
        f.write('\n\n'.join(pages))
    with open(os.path.join(out, 'dev.jsonl'), 'w', encoding='utf-8') as f:
        for q in questions:
            f.write(json.dumps(q) + '\n')
    print(f'{len(questions)} questions, {sum(len(p.split()) for p in pages)} words of corpus in {out}')


if __name__ == '__main__':
    main()
