#!/usr/bin/env python3
"""End-to-end test with OpenAI's official Python client against the real server.

Issue 7 asks that "an OpenAI client library pointed at the server gets streamed, grounded answers
with citations". This test does exactly that with the `openai` package from PyPI (pinned in
tests/e2e/requirements.txt, installed into the git-ignored .venv-test by
`scripts/setup.sh --test`, which `make test` runs):

- `rag ingest` puts a real PDF into a fresh data folder (collection "docs"), then
  `$RAG_BINARY serve --mode extractive` starts on a free loopback port;
- client.models.list() names the served model;
- client.chat.completions.create(..., extra_body={"rag": {...}}) gives the grounded answer,
  whose extra fields (passages, citations, unsupported; pydantic keeps them in model_extra) cite
  the PDF's page; streamed (stream=True) the deltas make the same text and the last chunk
  carries the citations, and include_usage adds the usage chunk;
- a request the server refuses raises openai.BadRequestError (400) with the server's message
  and code, an unknown model openai.NotFoundError;
- then the same against a server with API keys (`--keys`): the client's api_key is sent as the
  Bearer key, a wrong key raises openai.AuthenticationError, and a key limited to another
  collection gets no passages from "docs".

Run: python3 tests/e2e/openai_client_test.py (it re-runs itself with .venv-test's Python when
the running one lacks `openai`). Environment: RAG_BINARY (default build/rag), RAG_E2E_TIMEOUT
(seconds for server start, default 120). Without the package or the binary it prints
"SKIP: ..." and exits 77 (ctest's SKIP_RETURN_CODE).
"""
import json
import os
import subprocess
import sys
import tempfile

# e2e_common sits beside this script: importable however it runs (as a script, after the
# re-exec with .venv-test's Python, collected by pytest in any import mode).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_common import (REPO, SKIP_EXIT_CODE, Skip, find_binary, free_port, print_log_tail,  # noqa: E402
                        reexec_in_venv, run_as_script, serve_command, spawn_server, stop_server,
                        wait_for_health)

PDF = os.path.join(REPO, 'tests', 'data', 'ingest', 'report.pdf')
QUESTION = 'When was the harbour lighthouse built?'
ALICE_KEY = 'openai-e2e-alice-0123456789'
BOB_KEY = 'openai-e2e-bob-0123456789ab'


def import_openai():
    """The openai module; re-executes this script with .venv-test's Python when it has it."""
    try:
        import openai
        return openai
    except ImportError:
        pass
    reexec_in_venv(__file__, 'RAG_OPENAI_TEST_REEXEC')
    raise Skip('the openai package is not installed (run scripts/setup.sh --test)')


class Server:
    """`rag serve --mode extractive` on a free loopback port, stopped on exit."""

    def __init__(self, binary, data, log_path, extra, timeout):
        self.port = free_port()
        self.base = f'http://127.0.0.1:{self.port}'
        self.log_path = log_path
        self.proc = spawn_server(serve_command(binary, data, self.port, ['--mode', 'extractive'] + extra),
                                 log_path)
        wait_for_health(self.base, self.proc, timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        stop_server(self.proc)
        if exc[0] is not None:
            print_log_tail(self.log_path, 3000)


def messages():
    return [{'role': 'system', 'content': 'Answer from the documents.'},
            {'role': 'user', 'content': QUESTION}]


def check_grounded(openai, client, model):
    """The grounded answer, plain and streamed, through the official client."""
    listed = [m.id for m in client.models.list().data]
    assert listed == [model], f'models.list() gave {listed}'

    rag = {'top_k': 3, 'collection': 'docs'}
    reply = client.chat.completions.create(model=model, messages=messages(), extra_body={'rag': rag})
    text = reply.choices[0].message.content
    assert '1887' in text, f'the answer {text!r} lacks the year from the PDF'
    assert reply.choices[0].finish_reason == 'stop'
    extra = reply.model_extra or {}
    passages, citations = extra.get('passages') or [], extra.get('citations') or []
    assert passages and citations, f'no passages or citations beside the answer: {sorted(extra)}'
    cited_pages = {passages[s]['page'] for c in citations for s in c['sources']
                   if '1887' in c['text']}
    assert 2 in cited_pages, f'the year is not cited from page 2 (cited pages {cited_pages})'
    assert all(p['filename'] == 'report.pdf' for p in passages)

    stream = client.chat.completions.create(model=model, messages=messages(), stream=True,
                                            stream_options={'include_usage': True},
                                            extra_body={'rag': rag})
    pieces, finish, last_extra, usage = [], None, {}, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        if delta.content:
            pieces.append(delta.content)
        if chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
            last_extra = chunk.model_extra or {}
    streamed = ''.join(pieces)
    assert len(pieces) > 1, f'the answer came in {len(pieces)} piece(s), not streamed'
    assert streamed == text, f'the streamed text {streamed!r} differs from {text!r}'
    assert finish == 'stop', finish
    assert last_extra.get('citations') == citations, 'the last chunk lacks the same citations'
    assert last_extra.get('passages') == passages, 'the last chunk lacks the same passages'
    assert usage is not None and usage.total_tokens == 0, f'usage chunk: {usage}'

    try:
        client.chat.completions.create(model=model, messages=messages(), n=2, extra_body={'rag': True})
        raise AssertionError('n=2 was accepted')
    except openai.BadRequestError as e:
        assert e.status_code == 400 and e.code == 'invalid_argument', (e.status_code, e.code)
        assert 'n must be 1' in str(e), str(e)
    try:
        client.chat.completions.create(model='gpt-4o', messages=messages(), extra_body={'rag': True})
        raise AssertionError('an unknown model was accepted')
    except openai.NotFoundError as e:
        assert 'gpt-4o' in str(e), str(e)
    print(f'grounded answer: {text[:100]!r}; {len(pieces)} streamed pieces; '
          f'{len(citations)} citation(s) from pages {sorted(cited_pages)}')


def main():
    try:
        openai = import_openai()
        binary = find_binary()
    except Skip as e:
        print(f'SKIP: {e}')
        return SKIP_EXIT_CODE
    timeout = float(os.environ.get('RAG_E2E_TIMEOUT') or 120)
    print(f'openai {openai.__version__}, server {binary}')
    with tempfile.TemporaryDirectory(prefix='rag-openai-e2e-') as tmp:
        data = os.path.join(tmp, 'data')
        subprocess.run([binary, 'ingest', PDF, '--data', data, '--collection', 'docs'], check=True,
                       stdout=subprocess.DEVNULL)
        log = os.path.join(tmp, 'server.log')

        with Server(binary, data, log, [], timeout) as server:
            client = openai.OpenAI(base_url=server.base + '/v1', api_key='unused-without-keys',
                                   max_retries=0)
            check_grounded(openai, client, 'extractive')

        keys = os.path.join(tmp, 'keys.json')
        with open(keys, 'w') as f:
            json.dump({'keys': [{'name': 'alice', 'key': ALICE_KEY, 'collections': ['docs']},
                                {'name': 'bob', 'key': BOB_KEY, 'collections': ['other']}]}, f)
        os.chmod(keys, 0o600)
        with Server(binary, data, log, ['--keys', keys], timeout) as server:
            alice = openai.OpenAI(base_url=server.base + '/v1', api_key=ALICE_KEY, max_retries=0)
            check_grounded(openai, alice, 'extractive')
            wrong = openai.OpenAI(base_url=server.base + '/v1', api_key=ALICE_KEY + 'x', max_retries=0)
            try:
                wrong.models.list()
                raise AssertionError('a wrong key was accepted')
            except openai.AuthenticationError as e:
                assert e.status_code == 401 and e.code == 'invalid_api_key', (e.status_code, e.code)
            bob = openai.OpenAI(base_url=server.base + '/v1', api_key=BOB_KEY, max_retries=0)
            reply = bob.chat.completions.create(model='extractive', messages=messages(),
                                                extra_body={'rag': {'collection': 'docs'}})
            assert (reply.model_extra or {}).get('passages') == [], 'bob saw passages of "docs"'
            assert '1887' not in reply.choices[0].message.content
            print('keys: the api_key is the Bearer key; a wrong key raises AuthenticationError; '
                  'another collection\'s key gets no passages')
    print('PASS: OpenAI client: models, grounded answers with citations (plain and streamed), '
          'errors as exceptions, API keys')
    return 0


if __name__ == '__main__':
    run_as_script(main)
