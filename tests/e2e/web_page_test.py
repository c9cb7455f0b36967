#!/usr/bin/env python3
"""End-to-end test of the web page in headless Chromium, against the real server.

Starts `$RAG_BINARY serve --data <tmpdir> --port <free port>` on loopback, waits for /healthz,
opens the page, uploads a real PDF through the page's file input, waits until the document list
shows it as ready, asks a question whose answer is in that PDF (pressing Enter), and checks that
the answer arrived as a stream of server-sent events (the page counts the `token` events in
#result's data-token-events), that it shows at least one citation marker and its mode, and that
clicking the marker shows the document's title, a page number and, highlighted, exactly the
passage span that the citation's `support` names. It also runs the page's SSE parser on every
way of splitting a sample stream into chunks, renders a synthetic answer with an unsupported
sentence, and, when a model answers (slow enough to interrupt), checks that Stop aborts the
stream and the server cancels the answer. The popover's "Open PDF at page N" link must point at
the cited page of GET /v1/documents/{id}/file, which serves the uploaded bytes. Then a second
server with API keys (`--keys`): the page must ask for a key, upload with it, and open a PDF
through a blob: URL fetched with the key.

The server answers in model mode when it finds a model (`rag serve` looks for
models/SmolLM2-135M-Instruct.Q4_1.gguf relative to the working directory), else extractively;
RAG_SERVE_ARGS="--mode extractive" forces the fast, deterministic mode.

Environment:
  RAG_BINARY         the `rag` binary (default: build/rag of this repository; SKIP if neither)
  RAG_SERVE_ARGS     extra arguments for `rag serve`, e.g. "--mode extractive" (shell-split)
  RAG_TEST_PDF       the PDF to upload (default: corpora/sample/sqlite-how-to-corrupt.pdf)
  RAG_TEST_QUESTION  a question answered by that PDF (the default fits the default PDF)
  RAG_E2E_TIMEOUT    seconds allowed for each of: server start, ingestion, answer (default 300)
  RAG_E2E_ARTIFACTS  folder for a screenshot and the server log (always written on failure)
  CHROMIUM, CHROMEDRIVER  paths, when not on PATH as chromium / chromedriver

Needs Debian's chromium and chromium-driver and PyPI's selenium; without them it prints
"SKIP: ..." and exits 77 (ctest's SKIP_RETURN_CODE, so a skip is reported as one). Runs headless, so it works in CI without a display.
Run: python3 tests/e2e/web_page_test.py  (or through pytest, which collects test_web_page).
"""
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
DEFAULT_PDF = os.path.join(REPO, 'corpora', 'sample', 'sqlite-how-to-corrupt.pdf')
DEFAULT_QUESTION = 'What happens if a hot journal is deleted?'


SKIP_EXIT_CODE = 77


class Skip(Exception):
    """The test cannot run here (missing browser, driver, selenium or binary)."""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for_health(base, proc, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f'the server exited with status {proc.returncode} before /healthz answered')
        try:
            with urllib.request.urlopen(base + '/healthz', timeout=2) as r:
                body = json.loads(r.read().decode('utf-8'))
                if body.get('status') == 'ok':
                    return body
                last = body
        except (urllib.error.URLError, OSError, ValueError) as e:
            last = e
        time.sleep(0.25)
    raise AssertionError(f'/healthz did not answer "ok" within {timeout}s (last: {last})')


def find_tools():
    """Returns (selenium modules, chromium path, chromedriver path) or raises Skip."""
    try:
        from selenium import webdriver  # noqa: F401
    except ImportError:
        raise Skip('selenium is not installed (pip install selenium)')
    chromium = os.environ.get('CHROMIUM') or next(
        (p for p in map(shutil.which, ('chromium', 'chromium-browser', 'google-chrome')) if p), None)
    if not chromium:
        raise Skip('chromium is not installed (apt-get install chromium)')
    driver = os.environ.get('CHROMEDRIVER') or shutil.which('chromedriver')
    if not driver:
        raise Skip('chromedriver is not installed (apt-get install chromium-driver)')
    return chromium, driver


def find_binary():
    binary = os.environ.get('RAG_BINARY')
    if binary:
        if not os.access(binary, os.X_OK):
            raise AssertionError(f'RAG_BINARY={binary} is not an executable file')
        return binary
    default = os.path.join(REPO, 'build', 'rag')
    if os.access(default, os.X_OK):
        return default
    raise Skip('no server binary: set RAG_BINARY or build build/rag')


def make_driver(chromium, chromedriver):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                '--window-size=1280,1000', '--no-first-run', '--disable-extensions'):
        options.add_argument(arg)
    options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    # An explicit driver path keeps Selenium Manager from trying to download one.
    return webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)


def wait_until(what, timeout, poll, check):
    """Calls check() until it returns a truthy value (returned) or raises AssertionError.
    The page re-renders lists while it polls the server: an element that went stale between
    finding and reading it just means "look again"."""
    from selenium.common.exceptions import StaleElementReferenceException
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except StaleElementReferenceException:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {timeout}s waiting for {what}')
        time.sleep(poll)


# A stream like the server's, fed to the page's parser split at every pair of positions: the
# events must come out the same however the network cuts the bytes (CRLF and a comment included).
SSE_PARSER_CHECK = r"""
const stream = 'event: passages\r\ndata: {"passages":[]}\r\n\r\n: keep-alive\n' +
  'event: token\ndata: {"text":"h\u00e9 \ud83d\ude00"}\n\nevent: token\ndata: a\ndata: b\n\n' +
  'event: done\ndata:{}\n\n';
const want = JSON.stringify(createSseParser().push(stream));
let bad = 0;
for (let i = 0; i <= stream.length; i++) {
  for (let j = i; j <= stream.length; j++) {
    const p = createSseParser();
    const got = [...p.push(stream.slice(0, i)), ...p.push(stream.slice(i, j)), ...p.push(stream.slice(j))];
    if (JSON.stringify(got) !== want) bad++;
  }
}
return [want, bad];
"""

# A synthetic answer through the page's renderer: a cited sentence, then one no passage supports
# (offsets in code points, after an astral character that takes two UTF-16 units).
RENDER_UNSUPPORTED_CHECK = r"""
const answer = '\ud83d\ude00 Alpha beta gamma. Delta epsilon zeta.';
const byIndex = indexPassages([{ index: 0, title: 'T', text: 'Alpha beta gamma.' }]);
const box = document.createElement('div');
box.append(...renderAnswer(answer, [{ start: 2, end: 19, sources: [0], text: 'Alpha beta gamma.' }],
                           byIndex, [{ start: 20, end: 39, text: 'Delta epsilon zeta.' }]));
const u = box.querySelector('.unsupported');
return [box.querySelector('mark.cited').textContent, u && u.firstChild.textContent, u && u.title,
        box.querySelectorAll('.cite-marker').length];
"""


def post_json(base, path, body, timeout):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode('utf-8'),
                                     headers={'Content-Type': 'application/json'}, method='POST')
    with urllib.request.urlopen(request, timeout=timeout) as r:
        return json.loads(r.read().decode('utf-8'))


def run_browser_checks(driver, base, pdf, question, timeout, health, log_path, artifacts):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    model_mode = health.get('mode') == 'model'
    driver.get(base + '/')
    assert 'Document Assistant' in driver.find_element(By.TAG_NAME, 'h1').text, 'no product name in the header'
    wait_until('the health line to say the server is ready', 30, 0.2,
               lambda: driver.find_element(By.ID, 'health').get_attribute('data-state') == 'ok')

    # Upload through the real file input (hidden visually, but file inputs accept keys anyway).
    driver.find_element(By.ID, 'file-input').send_keys(pdf)
    name = os.path.basename(pdf)

    def document_row():
        for row in driver.find_elements(By.CSS_SELECTOR, '#doc-rows tr'):
            if name in row.find_element(By.CSS_SELECTOR, '.doc-file').text:
                return row
        return None

    def ready_row():
        for item in driver.find_elements(By.CSS_SELECTOR, '#upload-list .upload-item'):
            if item.get_attribute('data-state') == 'failed':
                raise AssertionError('upload failed: ' + item.find_element(By.CSS_SELECTOR, '.upload-status').text)
        row = document_row()
        if row is not None and row.get_attribute('data-status') == 'failed':
            raise AssertionError('ingestion failed: ' + row.text)
        if row is None or row.get_attribute('data-status') != 'ready':
            return None
        # Read everything now, in one go: the row element may be replaced by the next refresh.
        return (row.find_element(By.CSS_SELECTOR, '.doc-title').text.strip(),
                row.find_elements(By.TAG_NAME, 'td')[1].text.strip())

    title, pages = wait_until(f'{name} to be ready in the document list', timeout, 0.5, ready_row)
    assert title, 'the document row has no title'
    assert pages.isdigit() and int(pages) >= 1, f'the document row shows pages={pages!r}'
    upload_status = driver.find_element(By.CSS_SELECTOR, '#upload-list .upload-item .upload-status').text
    print(f'ingested: title={title!r} pages={pages} upload row={upload_status!r}')

    # Ask with Enter (the page submits on Enter).
    box = driver.find_element(By.ID, 'question')
    box.send_keys(question)
    box.send_keys(Keys.ENTER)

    result = driver.find_element(By.ID, 'result')

    def answered():
        error = driver.find_element(By.ID, 'ask-error')
        if error.is_displayed():
            raise AssertionError('the page shows an API error: ' + error.text)
        if result.get_attribute('data-stream-state') != 'done':
            return None
        markers = driver.find_elements(By.CSS_SELECTOR, '#answer .cite-marker')
        return markers if markers and driver.find_element(By.ID, 'answer').text.strip() else None

    markers = wait_until('a streamed answer with a citation marker', timeout, 0.2, answered)
    answer = driver.find_element(By.ID, 'answer').text
    assert re.fullmatch(r'\[\d+\]', markers[0].text), f'marker text {markers[0].text!r} is not like [1]'
    assert driver.find_elements(By.CSS_SELECTOR, '#answer mark.cited'), 'no highlighted cited span'
    assert driver.find_elements(By.CSS_SELECTOR, '#passages li.passage'), 'no retrieved passages listed'
    # The answer came through the event stream, not as one JSON body.
    tokens = int(result.get_attribute('data-token-events') or 0)
    assert tokens >= 1, f'no token events were received (data-token-events={tokens})'
    meta = driver.find_element(By.ID, 'answer-meta').text
    expected_mode = 'model mode' if model_mode else 'extractive'
    assert expected_mode in meta, f'the answer meta {meta!r} does not say {expected_mode!r}'
    if model_mode and health.get('model'):
        assert f'answered by {health["model"]}' in meta, f'the answer meta {meta!r} does not name the model'
    assert not driver.find_element(By.ID, 'stop-button').is_displayed(), 'Stop is still shown after the answer'
    assert driver.find_element(By.ID, 'ask-button').is_enabled(), 'Ask is still disabled after the answer'
    unsupported = driver.find_elements(By.CSS_SELECTOR, '#answer .unsupported')
    print(f'answer: {answer[:200]!r} ({len(markers)} markers, {tokens} token events, '
          f'{len(unsupported)} unsupported sentences; {meta!r})')

    markers[0].click()
    popover = driver.find_element(By.ID, 'source-popover')
    wait_until('the source popover', 10, 0.1, popover.is_displayed)
    shown_title = driver.find_element(By.ID, 'popover-title').text
    shown_meta = driver.find_element(By.CSS_SELECTOR, '#popover-body .popover-meta').text
    assert title in shown_title, f'popover title {shown_title!r} lacks the document title {title!r}'
    assert re.search(r'\bpage \d+', shown_meta), f'popover {shown_meta!r} shows no page number'
    # The citation's `support` span (code points in the passage text) is what is highlighted.
    hits = driver.find_elements(By.CSS_SELECTOR, '#popover-body mark.source-hit[data-match="support"]')
    assert hits, 'the popover does not highlight the supporting span of the citation'
    passage_text = driver.find_element(By.CSS_SELECTOR, '#popover-body .popover-text').get_attribute('textContent')
    hit_text = hits[0].get_attribute('textContent')
    span = (int(hits[0].get_attribute('data-passage-start')), int(hits[0].get_attribute('data-passage-end')))
    assert hit_text and passage_text[span[0]:span[1]] == hit_text, \
        f'the highlight {hit_text!r} is not the passage text at code points {span}'
    if not model_mode:
        # Extractive answers are deterministic: the same question over the JSON API must name
        # this very span as the support of one of its citations.
        reply = post_json(base, '/v1/query', {'question': question, 'top_k': 5}, timeout)
        texts = {p['index']: p['text'] for p in reply['passages']}
        supported = {texts[s['source']][s['passage_start']:s['passage_end']]
                     for c in reply['citations'] for s in c.get('support', []) if s['source'] in texts}
        assert hit_text in supported, f'the highlight {hit_text!r} is no support span of the JSON answer'
    print(f'popover: {shown_title!r} / {shown_meta!r}; supporting span {span} highlighted: {hit_text[:80]!r}')
    # The PDF's citation links to the original file at the cited page, and that link serves the
    # very bytes that were uploaded.
    page = re.search(r'\bpage (\d+)', shown_meta).group(1)
    links = driver.find_elements(By.CSS_SELECTOR, '#popover-body a.popover-link')
    assert links, 'the popover of a PDF citation has no link to the PDF'
    href, text = links[0].get_attribute('href'), links[0].text
    assert re.fullmatch(re.escape(base) + r'/v1/documents/\d+/file#page=' + page, href), \
        f'the PDF link {href!r} does not open page {page}'
    assert text == f'Open PDF at page {page}', f'the PDF link says {text!r}'
    with urllib.request.urlopen(href.split('#')[0], timeout=timeout) as r, open(pdf, 'rb') as f:
        assert r.headers.get('Content-Type') == 'application/pdf', r.headers.get('Content-Type')
        assert r.read() == f.read(), 'the PDF link does not serve the uploaded file'
    print(f'popover link: {text!r} -> {href}')
    if artifacts:
        os.makedirs(artifacts, exist_ok=True)
        driver.save_screenshot(os.path.join(artifacts, 'web_page_popover.png'))

    # Escape closes the popover and returns focus to the marker.
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait_until('the popover to close on Escape', 5, 0.1, lambda: not popover.is_displayed())

    # The page's SSE parser gives the same events however the stream is cut into chunks.
    want, bad = driver.execute_script(SSE_PARSER_CHECK)
    assert bad == 0 and len(json.loads(want)) == 4, f'the SSE parser depends on chunk boundaries ({bad} bad splits): {want}'
    # Unsupported sentences are marked (dotted underline via CSS, tooltip, no citation).
    cited, unsupported_text, tip, n_markers = driver.execute_script(RENDER_UNSUPPORTED_CHECK)
    assert cited == 'Alpha beta gamma.' and unsupported_text == 'Delta epsilon zeta.', \
        f'code-point spans rendered wrongly: cited={cited!r} unsupported={unsupported_text!r}'
    assert tip == 'not supported by the retrieved passages' and n_markers == 1, f'tooltip {tip!r}, {n_markers} markers'

    if model_mode:
        # A model answers slowly enough to be stopped: Stop aborts the stream, the partial answer
        # stays, and the server notices the hang-up and cancels the answer.
        box = driver.find_element(By.ID, 'question')
        box.clear()
        box.send_keys('Why does SQLite flush writes to persistent storage?')
        box.send_keys(Keys.ENTER)
        wait_until('the second answer to start streaming', timeout, 0.1,
                   lambda: int(result.get_attribute('data-token-events') or 0) >= 1
                   and result.get_attribute('data-stream-state') == 'streaming')
        driver.find_element(By.ID, 'stop-button').click()
        wait_until('the stream to stop', 10, 0.1, lambda: result.get_attribute('data-stream-state') == 'stopped')
        status = driver.find_element(By.ID, 'ask-status').text
        assert 'Stopped' in status, f'the status after Stop is {status!r}'
        assert driver.find_element(By.ID, 'ask-button').is_enabled(), 'Ask is disabled after Stop'

        def cancelled():
            with open(log_path, 'rb') as f:
                return b'client hung up' in f.read()
        wait_until('the server to log the cancelled answer', 60, 0.5, cancelled)
        print(f'stop: {status!r}; the server cancelled the answer')

    # No JavaScript errors on the page.
    try:
        logs = driver.get_log('browser')
    except Exception:  # not every driver offers logs
        logs = []
    severe = [entry['message'] for entry in logs
              if entry.get('level') == 'SEVERE' and entry.get('source') != 'network']
    assert not severe, 'JavaScript errors in the console: ' + '; '.join(severe)


TEST_KEY = 'e2e-web-page-key-0123456789'


def run_key_checks(driver, base, pdf, timeout):
    """Against a server with API keys: the page asks for a key when the API answers 401, sends
    the key entered on uploads and reads, and opens a PDF through a blob: URL fetched with it."""
    from selenium.webdriver.common.by import By

    driver.get(base + '/')
    wait_until('the page to ask for an API key', 30, 0.2,
               lambda: driver.find_element(By.ID, 'key-form').is_displayed()
               and 'needs an API key' in driver.find_element(By.ID, 'key-status').text)
    error = driver.find_element(By.ID, 'doc-error').text
    assert 'API key' in error, f'the document list shows {error!r} instead of asking for a key'
    driver.find_element(By.ID, 'api-key').send_keys(TEST_KEY)
    driver.find_element(By.CSS_SELECTOR, '#key-form button[type="submit"]').click()
    wait_until('the document list to load with the key', 30, 0.2,
               lambda: not driver.find_element(By.ID, 'doc-error').is_displayed()
               and driver.find_element(By.ID, 'doc-empty').is_displayed())
    assert driver.execute_script('return sessionStorage.getItem("rag.apiKey")') == TEST_KEY

    driver.find_element(By.ID, 'file-input').send_keys(pdf)
    wait_until('the upload (with the key) to be ingested', timeout, 0.5,
               lambda: driver.find_elements(By.CSS_SELECTOR, '#doc-rows tr[data-status="ready"]'))
    doc_id = driver.find_element(By.CSS_SELECTOR, '#doc-rows tr').get_attribute('data-id')
    # A link cannot send the key: the click fetches the file with it and opens a blob: URL.
    before = set(driver.window_handles)
    driver.execute_script(
        'document.body.append(originalLink({filename: "x.pdf", document_id: Number(arguments[0]), page: 2}));'
        'document.querySelector("body > a.popover-link").click();', doc_id)
    new = wait_until('the PDF to open in a new window', 30, 0.2, lambda: set(driver.window_handles) - before)
    main_window = driver.current_window_handle
    driver.switch_to.window(new.pop())
    url = wait_until('the new window to show the blob', 30, 0.2,
                     lambda: driver.current_url if driver.current_url.startswith('blob:') else None)
    driver.close()
    driver.switch_to.window(main_window)
    assert url.endswith('#page=2'), f'the PDF opened at {url!r}, not at page 2'
    print(f'keys: the page asked for a key, uploaded with it and opened the PDF at {url}')


def start_server(binary, data, port, log_path, extra):
    cmd = [binary, 'serve', '--data', data, '--host', '127.0.0.1', '--port', str(port)] + extra + \
        shlex.split(os.environ.get('RAG_SERVE_ARGS', ''))
    print('starting:', ' '.join(shlex.quote(c) for c in cmd))
    with open(log_path, 'wb') as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main():
    try:
        chromium, chromedriver = find_tools()
        binary = find_binary()
    except Skip as e:
        print(f'SKIP: {e}')
        return SKIP_EXIT_CODE

    pdf = os.path.abspath(os.environ.get('RAG_TEST_PDF') or DEFAULT_PDF)
    if not os.path.isfile(pdf):
        raise AssertionError(f'test PDF {pdf} does not exist')
    question = os.environ.get('RAG_TEST_QUESTION') or DEFAULT_QUESTION
    timeout = float(os.environ.get('RAG_E2E_TIMEOUT') or 300)
    artifacts = os.environ.get('RAG_E2E_ARTIFACTS')

    with tempfile.TemporaryDirectory(prefix='rag-web-e2e-') as tmp:
        port = free_port()
        base = f'http://127.0.0.1:{port}'
        log_path = os.path.join(tmp, 'server.log')
        proc = start_server(binary, os.path.join(tmp, 'data'), port, log_path, [])
        driver = None
        ok = False
        try:
            health = wait_for_health(base, proc, timeout)
            driver = make_driver(chromium, chromedriver)
            run_browser_checks(driver, base, pdf, question, timeout, health, log_path, artifacts)
            stop_server(proc)
            # The same page against a server with API keys (a fresh data folder and port).
            keys_path = os.path.join(tmp, 'keys.json')
            with open(keys_path, 'w') as f:
                json.dump({'keys': [{'name': 'e2e', 'key': TEST_KEY, 'collections': ['default']}]}, f)
            os.chmod(keys_path, 0o600)
            port = free_port()
            base = f'http://127.0.0.1:{port}'
            proc = start_server(binary, os.path.join(tmp, 'data-keys'), port, log_path,
                                ['--keys', keys_path])
            wait_for_health(base, proc, timeout)
            run_key_checks(driver, base, pdf, timeout)
            ok = True
        finally:
            if artifacts or not ok:
                # On failure the screenshot goes to a folder that outlives the temporary one.
                out_dir = artifacts or tempfile.mkdtemp(prefix='rag-web-e2e-failure-')
                os.makedirs(out_dir, exist_ok=True)
                if driver is not None:
                    try:
                        driver.save_screenshot(os.path.join(out_dir, 'web_page_test.png'))
                        print(f'screenshot: {os.path.join(out_dir, "web_page_test.png")}', file=sys.stderr)
                    except Exception:
                        pass
            if driver is not None:
                driver.quit()
            stop_server(proc)
            if not ok:
                with open(log_path, 'rb') as f:
                    tail = f.read()[-4000:].decode('utf-8', 'replace')
                print('--- server log (tail) ---\n' + tail + '\n---', file=sys.stderr)
            if artifacts:
                shutil.copy(log_path, os.path.join(artifacts, 'web_page_test.server.log'))
    print('PASS: web page upload, streamed answer with citations, source popover with the support span '
          'and the PDF link; with API keys: key field, upload and PDF through the key')
    return 0


def test_web_page():
    """pytest entry point: the same test; a missing tool is a pytest skip."""
    import pytest
    try:
        find_tools()
        find_binary()
    except Skip as e:
        pytest.skip(str(e))
    assert main() == 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except AssertionError as e:
        print(f'FAIL: {e}', file=sys.stderr)
        sys.exit(1)
