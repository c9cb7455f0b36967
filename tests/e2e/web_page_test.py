#!/usr/bin/env python3
"""End-to-end test of the web page in headless Chromium, against the real server.

Issue 7: the page is tested "in headless Chromium (Debian's chromium driven by Playwright for
Python from PyPI with its executable path set, started with --no-sandbox as root)". Playwright
(pinned in tests/e2e/requirements.txt, installed by `scripts/setup.sh --test` into the git-ignored
.venv-test) drives Debian's own /usr/bin/chromium; `playwright install` is never run, so no
browser is downloaded. Checked: playwright 1.65.2 against Debian's Chromium 156.0.8078.108.

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
the cited page of GET /v1/documents/{id}/file, which serves the uploaded bytes.

Then the page on a phone (390x844 CSS pixels, touch, mobile viewport): no horizontal scrolling,
before and after an answer; the upload control, the question box and the Ask button visible, on
screen and not covered; every form control, button and link with an accessible name from a
label, aria-label or its text (Chromium's own accessibility tree, read over CDP; a placeholder
or title alone does not count); citation markers tappable within 12 px of their centre; from the
top of the page Tab reaches the file input, the question box and Ask, Enter and Space on the file
input click it (which opens the file chooser), and Enter in the question box sends the question;
a tapped citation shows its source docked on screen.

Then a second server with API keys (`--keys`): the page must ask for a key, upload with it, and
open a PDF through a blob: URL fetched with the key.

Screenshots (web_page_popover.png, web_page_phone.png, web_page_test.png) and the server log are
always written to $RAG_E2E_ARTIFACTS, by default test-artifacts/web_page/ beside the `rag`
binary (ctest: <build>/test-artifacts/web_page/); kept on success too.

The server answers in model mode when it finds a model (`rag serve` looks for
models/SmolLM2-135M-Instruct.Q4_1.gguf relative to the working directory), else extractively;
RAG_SERVE_ARGS="--mode extractive" forces the fast, deterministic mode.

Environment:
  RAG_BINARY         the `rag` binary (default: build/rag of this repository; SKIP if neither)
  RAG_SERVE_ARGS     extra arguments for `rag serve`, e.g. "--mode extractive" (shell-split)
  RAG_TEST_PDF       the PDF to upload (default: corpora/sample/sqlite-how-to-corrupt.pdf)
  RAG_TEST_QUESTION  a question answered by that PDF (the default fits the default PDF)
  RAG_E2E_TIMEOUT    seconds allowed for each of: server start, ingestion, answer (default 300)
  RAG_E2E_ARTIFACTS  folder for the screenshots and the server log (see above)
  CHROMIUM           the browser, when not on PATH as chromium

Needs Debian's chromium and PyPI's playwright; it re-runs itself with .venv-test's Python when
the running one lacks playwright. Without them it prints "SKIP: ..." and exits 77 (ctest's
SKIP_RETURN_CODE, so a skip is reported as one). Runs headless, so it works in CI without a
display. Run: python3 tests/e2e/web_page_test.py (or through pytest, which collects
test_web_page).
"""
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
import urllib.request

# e2e_common sits beside this script: importable however it runs (as a script, after the
# re-exec with .venv-test's Python, collected by pytest in any import mode).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_common import (REPO, SKIP_EXIT_CODE, Skip, find_binary, free_port, print_log_tail,  # noqa: E402
                        reexec_in_venv, run_as_script, serve_command, spawn_server, stop_server,
                        wait_for_health)

DEFAULT_PDF = os.path.join(REPO, 'corpora', 'sample', 'sqlite-how-to-corrupt.pdf')
DEFAULT_QUESTION = 'What happens if a hot journal is deleted?'
DESKTOP = {'width': 1280, 'height': 1000}
PHONE = {'width': 390, 'height': 844}  # CSS pixels of a current phone in portrait


def import_playwright(reexec):
    """playwright.sync_api.sync_playwright; with `reexec`, re-executes this script with
    .venv-test's Python when that has it and the running Python does not."""
    try:
        from playwright.sync_api import sync_playwright
        return sync_playwright
    except ImportError:
        pass
    if reexec:
        reexec_in_venv(__file__, 'RAG_WEB_TEST_REEXEC')
    raise Skip('playwright is not installed (run scripts/setup.sh --test)')


def find_chromium():
    chromium = os.environ.get('CHROMIUM')
    if chromium:
        if not os.access(chromium, os.X_OK):
            raise AssertionError(f'CHROMIUM={chromium} is not an executable file')
        return chromium
    chromium = next((p for p in map(shutil.which, ('chromium', 'chromium-browser')) if p), None)
    if not chromium:
        raise Skip('chromium is not installed (apt-get install chromium)')
    return chromium


def artifacts_dir(binary):
    return os.path.abspath(os.environ.get('RAG_E2E_ARTIFACTS') or
                           os.path.join(os.path.dirname(binary), 'test-artifacts', 'web_page'))


def wait_until(what, timeout, poll, check):
    """Calls check() until it returns a truthy value (returned) or raises AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {timeout}s waiting for {what}')
        time.sleep(poll)


def launch(playwright, chromium):
    """Debian's chromium, headless. --no-sandbox: CI runs as root, where Chromium's sandbox
    refuses to start."""
    return playwright.chromium.launch(executable_path=chromium, headless=True,
                                      args=['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'])


def watch_console(page):
    """A list that collects the page's uncaught exceptions and console errors (failed resource
    loads excepted: a refused request is the server's answer, not a bug of the page)."""
    errors = []
    page.on('pageerror', lambda e: errors.append(f'uncaught: {e}'))
    page.on('console', lambda m: errors.append(m.text) if m.type == 'error'
            and not m.text.startswith('Failed to load resource') else None)
    return errors


# A stream like the server's, fed to the page's parser split at every pair of positions: the
# events must come out the same however the network cuts the bytes (CRLF and a comment included).
SSE_PARSER_CHECK = r"""() => {
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
}"""

# A synthetic answer through the page's renderer: a cited sentence, then one no passage supports
# (offsets in code points, after an astral character that takes two UTF-16 units).
RENDER_UNSUPPORTED_CHECK = r"""() => {
const answer = '\ud83d\ude00 Alpha beta gamma. Delta epsilon zeta.';
const byIndex = indexPassages([{ index: 0, title: 'T', text: 'Alpha beta gamma.' }]);
const box = document.createElement('div');
box.append(...renderAnswer(answer, [{ start: 2, end: 19, sources: [0], text: 'Alpha beta gamma.' }],
                           byIndex, [{ start: 20, end: 39, text: 'Delta epsilon zeta.' }]));
const u = box.querySelector('.unsupported');
return [box.querySelector('mark.cited').textContent, u && u.firstChild.textContent, u && u.title,
        box.querySelectorAll('.cite-marker').length];
}"""

# The row of the uploaded file in the document list, read in one go (the list is re-rendered
# while the page polls the server): null until it is there, else its status, title and pages,
# plus the state of the file's upload row.
DOCUMENT_ROW = r"""(name) => {
const upload = [...document.querySelectorAll('#upload-list .upload-item')]
  .find((item) => item.querySelector('.upload-name').textContent === name);
const row = [...document.querySelectorAll('#doc-rows tr')]
  .find((tr) => tr.querySelector('.doc-file').textContent.includes(name));
return {
  upload: upload ? [upload.dataset.state, upload.querySelector('.upload-status').textContent] : null,
  row: row ? [row.dataset.status, row.querySelector('.doc-title').textContent.trim(),
              row.querySelectorAll('td')[1].textContent.trim(), row.textContent] : null,
};
}"""

# The stream state of the answer and the number of token events so far.
STREAM_STATE = """() => [document.getElementById('result').dataset.streamState || '',
                        Number(document.getElementById('result').dataset.tokenEvents || 0)]"""


def post_json(base, path, body, timeout):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode('utf-8'),
                                     headers={'Content-Type': 'application/json'}, method='POST')
    with urllib.request.urlopen(request, timeout=timeout) as r:
        return json.loads(r.read().decode('utf-8'))


def wait_for_answer(page, timeout):
    """Waits until the answer has streamed in completely with a citation marker."""
    def answered():
        error = page.locator('#ask-error')
        if error.is_visible():
            raise AssertionError('the page shows an API error: ' + error.inner_text())
        if page.evaluate(STREAM_STATE)[0] != 'done':
            return False
        return page.locator('#answer .cite-marker').count() > 0 and page.inner_text('#answer').strip()
    wait_until('a streamed answer with a citation marker', timeout, 0.2, answered)


def run_browser_checks(page, base, pdf, question, timeout, health, log_path, artifacts):
    console_errors = watch_console(page)
    model_mode = health.get('mode') == 'model'
    page.goto(base + '/')
    assert 'Document Assistant' in page.inner_text('h1'), 'no product name in the header'
    wait_until('the health line to say the server is ready', 30, 0.2,
               lambda: page.get_attribute('#health', 'data-state') == 'ok')

    # Upload through the real file input (hidden visually inside the drop zone's label).
    page.set_input_files('#file-input', pdf)
    name = os.path.basename(pdf)

    def ready_row():
        state = page.evaluate(DOCUMENT_ROW, name)
        if state['upload'] and state['upload'][0] == 'failed':
            raise AssertionError('upload failed: ' + state['upload'][1])
        row = state['row']
        if row and row[0] == 'failed':
            raise AssertionError('ingestion failed: ' + row[3])
        return (row[1], row[2], state['upload']) if row and row[0] == 'ready' else None

    title, pages, upload = wait_until(f'{name} to be ready in the document list', timeout, 0.5, ready_row)
    assert title, 'the document row has no title'
    assert pages.isdigit() and int(pages) >= 1, f'the document row shows pages={pages!r}'
    print(f'ingested: title={title!r} pages={pages} upload row={upload[1] if upload else None!r}')

    # Ask with Enter (the page submits on Enter).
    page.fill('#question', question)
    page.press('#question', 'Enter')
    wait_for_answer(page, timeout)
    markers = page.locator('#answer .cite-marker')
    answer = page.inner_text('#answer')
    marker_text = markers.first.inner_text()
    assert re.fullmatch(r'\[\d+\]', marker_text), f'marker text {marker_text!r} is not like [1]'
    assert page.locator('#answer mark.cited').count(), 'no highlighted cited span'
    assert page.locator('#passages li.passage').count(), 'no retrieved passages listed'
    # The answer came through the event stream, not as one JSON body.
    tokens = page.evaluate(STREAM_STATE)[1]
    assert tokens >= 1, f'no token events were received (data-token-events={tokens})'
    meta = page.inner_text('#answer-meta')
    expected_mode = 'model mode' if model_mode else 'extractive'
    assert expected_mode in meta, f'the answer meta {meta!r} does not say {expected_mode!r}'
    if model_mode and health.get('model'):
        assert f'answered by {health["model"]}' in meta, f'the answer meta {meta!r} does not name the model'
    assert not page.is_visible('#stop-button'), 'Stop is still shown after the answer'
    assert page.is_enabled('#ask-button'), 'Ask is still disabled after the answer'
    unsupported = page.locator('#answer .unsupported').count()
    print(f'answer: {answer[:200]!r} ({markers.count()} markers, {tokens} token events, '
          f'{unsupported} unsupported sentences; {meta!r})')

    markers.first.click()
    popover = page.locator('#source-popover')
    popover.wait_for(state='visible', timeout=10000)
    shown_title = page.inner_text('#popover-title')
    shown_meta = page.inner_text('#popover-body .popover-meta')
    assert title in shown_title, f'popover title {shown_title!r} lacks the document title {title!r}'
    assert re.search(r'\bpage \d+', shown_meta), f'popover {shown_meta!r} shows no page number'
    # The citation's `support` span (code points in the passage text) is what is highlighted.
    hits = page.locator('#popover-body mark.source-hit[data-match="support"]')
    assert hits.count(), 'the popover does not highlight the supporting span of the citation'
    passage_text = page.text_content('#popover-body .popover-text')
    hit_text = hits.first.text_content()
    span = (int(hits.first.get_attribute('data-passage-start')), int(hits.first.get_attribute('data-passage-end')))
    # Python slices code points, as the server's offsets count them.
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
    page_number = re.search(r'\bpage (\d+)', shown_meta).group(1)
    links = page.locator('#popover-body a.popover-link')
    assert links.count(), 'the popover of a PDF citation has no link to the PDF'
    href = links.first.evaluate('a => a.href')  # resolved against the page, like a click
    text = links.first.inner_text()
    assert re.fullmatch(re.escape(base) + r'/v1/documents/\d+/file#page=' + page_number, href), \
        f'the PDF link {href!r} does not open page {page_number}'
    assert text == f'Open PDF at page {page_number}', f'the PDF link says {text!r}'
    with urllib.request.urlopen(href.split('#')[0], timeout=timeout) as r, open(pdf, 'rb') as f:
        assert r.headers.get('Content-Type') == 'application/pdf', r.headers.get('Content-Type')
        assert r.read() == f.read(), 'the PDF link does not serve the uploaded file'
    print(f'popover link: {text!r} -> {href}')
    page.screenshot(path=os.path.join(artifacts, 'web_page_popover.png'))

    # Escape closes the popover and returns focus to the marker.
    page.keyboard.press('Escape')
    popover.wait_for(state='hidden', timeout=5000)
    assert page.evaluate('() => document.activeElement.classList.contains("cite-marker")'), \
        'focus did not return to the citation marker after Escape'

    # The page's SSE parser gives the same events however the stream is cut into chunks.
    want, bad = page.evaluate(SSE_PARSER_CHECK)
    assert bad == 0 and len(json.loads(want)) == 4, f'the SSE parser depends on chunk boundaries ({bad} bad splits): {want}'
    # Unsupported sentences are marked (dotted underline via CSS, tooltip, no citation).
    cited, unsupported_text, tip, n_markers = page.evaluate(RENDER_UNSUPPORTED_CHECK)
    assert cited == 'Alpha beta gamma.' and unsupported_text == 'Delta epsilon zeta.', \
        f'code-point spans rendered wrongly: cited={cited!r} unsupported={unsupported_text!r}'
    assert tip == 'not supported by the retrieved passages' and n_markers == 1, f'tooltip {tip!r}, {n_markers} markers'

    if model_mode:
        # A model answers slowly enough to be stopped: Stop aborts the stream, the partial answer
        # stays, and the server notices the hang-up and cancels the answer.
        page.fill('#question', 'Why does SQLite flush writes to persistent storage?')
        page.press('#question', 'Enter')
        wait_until('the second answer to start streaming', timeout, 0.1,
                   lambda: page.evaluate(STREAM_STATE)[1] >= 1 and page.evaluate(STREAM_STATE)[0] == 'streaming')
        page.click('#stop-button')
        wait_until('the stream to stop', 10, 0.1, lambda: page.evaluate(STREAM_STATE)[0] == 'stopped')
        status = page.inner_text('#ask-status')
        assert 'Stopped' in status, f'the status after Stop is {status!r}'
        assert page.is_enabled('#ask-button'), 'Ask is disabled after Stop'

        def cancelled():
            with open(log_path, 'rb') as f:
                return b'client hung up' in f.read()
        wait_until('the server to log the cancelled answer', 60, 0.5, cancelled)
        print(f'stop: {status!r}; the server cancelled the answer')

    assert not console_errors, 'JavaScript errors in the console: ' + '; '.join(console_errors)


# Every control the user can operate must have an accessible name, given by a label, aria-label,
# aria-labelledby or (buttons, links) its text: read from Chromium's own accessibility tree (what
# a screen reader gets), not recomputed here. A name that only comes from a placeholder or a
# title (gone once the user types; a tooltip) does not count. Ignored (hidden) nodes are not in
# the tree.
CONTROL_ROLES = {'button', 'textbox', 'searchbox', 'combobox', 'listbox', 'spinbutton', 'checkbox',
                 'radio', 'slider', 'switch', 'menuitem', 'link', 'progressbar'}
WEAK_NAME_SOURCES = {'placeholder', 'title'}


def name_source(name):
    """How Chromium named a node: the first name source that gave a value and was not
    superseded, as 'placeholder', 'title', 'label', 'aria-label', 'contents', ...; None if none."""
    for source in name.get('sources', []):
        if source.get('superseded') or not ((source.get('value') or {}).get('value') or '').strip():
            continue
        if source.get('type') == 'placeholder' or source.get('attribute') == 'title':
            return source.get('type') if source.get('type') == 'placeholder' else 'title'
        return source.get('attribute') or source.get('nativeSource') or source.get('type')
    return None


def unnamed_controls(page):
    """([description of each operable node without a proper accessible name], number checked)."""
    cdp = page.context.new_cdp_session(page)
    try:
        checked, unnamed = 0, []
        for node in cdp.send('Accessibility.getFullAXTree')['nodes']:
            role = (node.get('role') or {}).get('value')
            if node.get('ignored') or role not in CONTROL_ROLES:
                continue
            checked += 1
            name = node.get('name') or {}
            source = name_source(name)
            if (name.get('value') or '').strip() and source not in WEAK_NAME_SOURCES:
                continue
            where = '?'
            if node.get('backendDOMNodeId'):
                described = cdp.send('DOM.describeNode', {'backendNodeId': node['backendDOMNodeId']})['node']
                attrs = described.get('attributes', [])
                attrs = dict(zip(attrs[::2], attrs[1::2]))
                where = f"<{described.get('localName')} id={attrs.get('id')!r} class={attrs.get('class')!r}>"
            unnamed.append(f'{role} {where} named {name.get("value")!r} by {source}')
        return unnamed, checked
    finally:
        cdp.detach()


# Horizontal overflow of the page (`wide`: the first elements reaching past `width`), and the
# boxes of the controls that must be usable on a phone (in CSS pixels of the layout viewport;
# `covered` names what sits on top of the control's centre).
LAYOUT_CHECK = r"""([ids, width]) => {
const root = document.documentElement;
const boxes = {};
for (const id of ids) {
  const node = document.getElementById(id);
  node.scrollIntoView({ block: 'center' });
  const r = node.getBoundingClientRect();
  const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  boxes[id] = { left: r.left, right: r.right, width: r.width, height: r.height,
                covered: top && top !== node && !node.contains(top) && !(top.control === node)
                  ? `${top.tagName.toLowerCase()}#${top.id}.${top.className}` : null };
}
window.scrollTo(0, 0);
const wide = [...document.querySelectorAll('body *')].filter((n) => n.getBoundingClientRect().right > width + 0.5
  && getComputedStyle(n).position !== 'fixed' && !n.closest('.visually-hidden, .skip-link'))
  .slice(0, 5).map((n) => `${n.tagName.toLowerCase()}#${n.id}.${n.className}`);
return { scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, innerWidth: window.innerWidth,
         boxes, wide };
}"""

# Each citation marker of the answer must take a tap anywhere within 12 px of its centre (a
# 24x24 px target, WCAG 2.5.8): the markers whose surroundings hit something else.
MARKER_TARGETS = r"""() => {
const small = [];
for (const m of document.querySelectorAll('#answer .cite-marker')) {
  m.scrollIntoView({ block: 'center' });
  const r = m.getBoundingClientRect();
  const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
  const misses = [[0, -12], [0, 12], [-12, 0], [12, 0]].filter(([dx, dy]) => {
    const hit = document.elementFromPoint(cx + dx, cy + dy);
    return !(hit === m || m.contains(hit));
  });
  if (misses.length) small.push(`${m.textContent} (${r.width.toFixed(0)}x${r.height.toFixed(0)} px)`);
}
window.scrollTo(0, 0);
return [document.querySelectorAll('#answer .cite-marker').length, small];
}"""

# Records the clicks on the file input (whether each was the browser's own, isTrusted) and
# keeps them from opening the file chooser.
FILE_INPUT_CLICKS = """() => {
window.fileInputClicks = [];
document.getElementById('file-input').addEventListener('click', (e) => {
  window.fileInputClicks.push(e.isTrusted);
  e.preventDefault();
});
}"""

# The visible controls a phone user needs: the drop zone (the file input's label), the question
# box and the Ask button.
PHONE_CONTROLS = ['dropzone', 'question', 'ask-button']


def check_phone_layout(page, when):
    layout = page.evaluate(LAYOUT_CHECK, [PHONE_CONTROLS, PHONE['width']])
    # A mobile browser widens the layout viewport to fit content that is too wide (and zooms
    # out), so there scrollWidth == clientWidth even when something overflows: the width of the
    # layout itself must be the phone's.
    assert layout['clientWidth'] == PHONE['width'] == layout['innerWidth'], \
        f'{when}: the page is laid out {layout["innerWidth"]} px wide on a {PHONE["width"]} px phone ' \
        f'(no viewport meta, or content too wide: {layout["wide"]})'
    assert layout['scrollWidth'] <= layout['clientWidth'], \
        f'{when}: the page scrolls sideways on a phone: scrollWidth {layout["scrollWidth"]} > ' \
        f'clientWidth {layout["clientWidth"]} (too wide: {layout["wide"]})'
    for control, box in layout['boxes'].items():
        assert box['width'] > 0 and box['height'] > 0, f'{when}: #{control} is not visible on a phone'
        assert box['left'] >= 0 and box['right'] <= layout['clientWidth'], \
            f'{when}: #{control} is cut off on a phone ({box["left"]:.0f}..{box["right"]:.0f} px)'
        assert box['height'] >= 24 and box['width'] >= 24, \
            f'{when}: #{control} is a {box["width"]:.0f}x{box["height"]:.0f} px target, under 24x24 (WCAG 2.5.8)'
        assert not box['covered'], f'{when}: #{control} is covered by {box["covered"]}'
    return layout


def tab_to(page, element_id, limit=60):
    """Presses Tab until #element_id has the focus; returns the number of presses."""
    for presses in range(1, limit + 1):
        page.keyboard.press('Tab')
        if page.evaluate('() => document.activeElement && document.activeElement.id') == element_id:
            return presses
    raise AssertionError(f'Tab does not reach #{element_id} within {limit} presses')


def run_phone_checks(page, question, timeout, artifacts):
    """The page on a phone: layout, reachability, accessible names and the keyboard path."""
    console_errors = watch_console(page)
    page.goto('/')  # the context's base_url: the server
    wait_until('the health line on the phone', 30, 0.2, lambda: page.get_attribute('#health', 'data-state') == 'ok')
    wait_until('the document list on the phone', 30, 0.2,
               lambda: page.locator('#doc-rows tr[data-status="ready"]').count() > 0)
    check_phone_layout(page, 'after loading')
    for locator, what in ((page.get_by_label('Your question'), 'the question box'),
                          (page.get_by_role('button', name='Ask', exact=True), 'the Ask button')):
        assert locator.is_visible(), f'{what} is not visible on a phone'

    # Keyboard only, from the top of the page: Tab reaches the file input (Enter or Space opens
    # the file chooser), then the question box; Enter there sends the question.
    page.evaluate('() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }')
    to_file = tab_to(page, 'file-input')
    outline = page.evaluate("() => getComputedStyle(document.getElementById('dropzone')).outlineStyle")
    assert outline != 'none', 'the drop zone shows no focus outline while its file input has the focus'
    # Enter and Space on the focused input activate it: the browser clicks it, which opens the
    # file chooser. The clicks are caught (and the chooser kept shut) rather than waiting for
    # Playwright's "filechooser" event: with Chromium 156 it never came for the first chooser
    # of a page, whether opened by a key or by a mouse click.
    page.evaluate(FILE_INPUT_CLICKS)
    for key in ('Enter', ' '):
        page.keyboard.press(key)
        wait_until(f'{key!r} on the file input to click it (opening the file chooser)', 10, 0.1,
                   lambda: page.evaluate('() => window.fileInputClicks.length') > 0)
        clicks = page.evaluate('() => window.fileInputClicks.splice(0)')
        assert clicks == [True], f'{key!r} on the file input gave the clicks {clicks} (trusted?), not one'
    assert page.evaluate('() => document.getElementById("file-input").multiple'), 'the file input takes one file only'
    to_question = to_file + tab_to(page, 'question')
    page.keyboard.type(question)
    page.keyboard.press('Enter')
    wait_for_answer(page, timeout)
    to_ask = tab_to(page, 'ask-button', limit=10)
    print(f'phone keyboard: Tab x{to_file} reaches the file input, x{to_question} the question box; '
          f'Enter sent the question; Ask is {to_ask} Tab(s) further')

    layout = check_phone_layout(page, 'with an answer')
    n_markers, small = page.evaluate(MARKER_TARGETS)
    assert not small, f'citation markers too small to tap (under 24x24 px): {small}'
    # A tapped citation shows its source docked inside the screen.
    page.locator('#answer .cite-marker').first.tap()
    popover = page.locator('#source-popover')
    popover.wait_for(state='visible', timeout=10000)
    box = popover.bounding_box()
    assert box and box['x'] >= 0 and box['x'] + box['width'] <= PHONE['width'] \
        and box['y'] >= 0 and box['y'] + box['height'] <= PHONE['height'], f'the source popover is off screen: {box}'
    unnamed, checked = unnamed_controls(page)
    assert not unnamed, f'controls without an accessible name: {unnamed}'
    page.screenshot(path=os.path.join(artifacts, 'web_page_phone.png'))
    page.keyboard.press('Escape')
    popover.wait_for(state='hidden', timeout=5000)
    page.screenshot(path=os.path.join(artifacts, 'web_page_phone_full.png'), full_page=True)
    assert not console_errors, 'JavaScript errors in the console on the phone: ' + '; '.join(console_errors)
    print(f'phone: {PHONE["width"]}x{PHONE["height"]}, scrollWidth {layout["scrollWidth"]} <= clientWidth '
          f'{layout["clientWidth"]}; {", ".join(PHONE_CONTROLS)} on screen; {n_markers} citation markers '
          f'with 24x24 px targets; {checked} controls, all named by labels or text')


TEST_KEY = 'e2e-web-page-key-0123456789'


def run_key_checks(page, base, pdf, timeout):
    """Against a server with API keys: the page asks for a key when the API answers 401, sends
    the key entered on uploads and reads, and opens a PDF through a blob: URL fetched with it."""
    page.goto(base + '/')
    wait_until('the page to ask for an API key', 30, 0.2,
               lambda: page.is_visible('#key-form') and 'needs an API key' in page.inner_text('#key-status'))
    error = page.inner_text('#doc-error')
    assert 'API key' in error, f'the document list shows {error!r} instead of asking for a key'
    unnamed, _ = unnamed_controls(page)
    assert not unnamed, f'controls without an accessible name with the key field shown: {unnamed}'
    page.fill('#api-key', TEST_KEY)
    page.click('#key-form button[type="submit"]')
    wait_until('the document list to load with the key', 30, 0.2,
               lambda: not page.is_visible('#doc-error') and page.is_visible('#doc-empty'))
    assert page.evaluate('() => sessionStorage.getItem("rag.apiKey")') == TEST_KEY

    page.set_input_files('#file-input', pdf)
    wait_until('the upload (with the key) to be ingested', timeout, 0.5,
               lambda: page.locator('#doc-rows tr[data-status="ready"]').count() > 0)
    doc_id = page.get_attribute('#doc-rows tr', 'data-id')
    # A link cannot send the key: the click fetches the file with it and opens a blob: URL.
    page.evaluate('(id) => document.body.append(originalLink({filename: "x.pdf", document_id: Number(id), page: 2}))',
                  doc_id)
    with page.expect_popup(timeout=30000) as popup:
        page.click('body > a.popover-link')
    window = popup.value

    def blob_url():
        # Read in the window, not from window.url: the frames of Chromium's PDF viewer can leave
        # Playwright's record of the URL behind.
        try:
            url = window.evaluate('() => location.href')
        except Exception:  # the window is between two documents
            return None
        return url if url.startswith('blob:') else None
    url = wait_until('the new window to show the blob', 30, 0.2, blob_url)
    window.close()
    assert url.endswith('#page=2'), f'the PDF opened at {url!r}, not at page 2'
    print(f'keys: the page asked for a key, uploaded with it and opened the PDF at {url}')


def start_server(binary, data, port, log_path, extra):
    cmd = serve_command(binary, data, port, extra + shlex.split(os.environ.get('RAG_SERVE_ARGS', '')))
    print('starting:', ' '.join(shlex.quote(c) for c in cmd))
    return spawn_server(cmd, log_path)


def main(reexec=True):
    try:
        sync_playwright = import_playwright(reexec)
        chromium = find_chromium()
        binary = find_binary()
    except Skip as e:
        print(f'SKIP: {e}')
        return SKIP_EXIT_CODE

    pdf = os.path.abspath(os.environ.get('RAG_TEST_PDF') or DEFAULT_PDF)
    if not os.path.isfile(pdf):
        raise AssertionError(f'test PDF {pdf} does not exist')
    question = os.environ.get('RAG_TEST_QUESTION') or DEFAULT_QUESTION
    timeout = float(os.environ.get('RAG_E2E_TIMEOUT') or 300)
    artifacts = artifacts_dir(binary)
    os.makedirs(artifacts, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix='rag-web-e2e-') as tmp, sync_playwright() as playwright:
        port = free_port()
        base = f'http://127.0.0.1:{port}'
        log_path = os.path.join(tmp, 'server.log')
        proc = start_server(binary, os.path.join(tmp, 'data'), port, log_path, [])
        browser = None
        page = None  # the page whose screenshot is kept as web_page_test.png
        ok = False
        try:
            health = wait_for_health(base, proc, timeout)
            browser = launch(playwright, chromium)
            print(f'browser: {chromium} (Chromium {browser.version}), playwright driving it headless')
            page = browser.new_context(viewport=DESKTOP).new_page()
            page.set_default_timeout(30000)
            run_browser_checks(page, base, pdf, question, timeout, health, log_path, artifacts)
            phone = browser.new_context(viewport=PHONE, device_scale_factor=3, is_mobile=True,
                                        has_touch=True, base_url=base)
            page = phone.new_page()
            page.set_default_timeout(30000)
            run_phone_checks(page, question, timeout, artifacts)
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
            page = browser.new_context(viewport=DESKTOP).new_page()
            page.set_default_timeout(30000)
            run_key_checks(page, base, pdf, timeout)
            ok = True
        finally:
            if page is not None:
                try:
                    page.screenshot(path=os.path.join(artifacts, 'web_page_test.png'))
                except Exception as e:  # the browser may be gone; the failure itself is reported
                    print(f'no final screenshot: {e}', file=sys.stderr)
            if browser is not None:
                browser.close()
            stop_server(proc)
            if not ok:
                print_log_tail(log_path, 4000)
            shutil.copy(log_path, os.path.join(artifacts, 'web_page_test.server.log'))
            print(f'artifacts (screenshots, server log): {artifacts}', file=sys.stderr)
    print('PASS: web page upload, streamed answer with citations, source popover with the support span '
          'and the PDF link; on a phone: no sideways scrolling, controls on screen and named, Tab and '
          'Enter; with API keys: key field, upload and PDF through the key')
    return 0


def test_web_page():
    """pytest entry point: the same test (in the running Python); a missing tool is a pytest skip."""
    import pytest
    try:
        import_playwright(reexec=False)
        find_chromium()
        find_binary()
    except Skip as e:
        pytest.skip(str(e))
    assert main(reexec=False) == 0


if __name__ == '__main__':
    run_as_script(main)
