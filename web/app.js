// The web page of the document assistant: upload documents, watch them being ingested, list and
// delete them, ask questions and read the answer with its citations.
//
// Rules this file keeps:
// - Everything that comes from the server (titles, file names, passages, answers, error messages)
//   is untrusted and reaches the page only as text nodes (textContent / el() below), never through
//   innerHTML.
// - API paths are relative ("v1/...") so the page also works behind a path prefix.
// - Citation offsets from the server count Unicode code points; JavaScript strings count UTF-16
//   units, so the answer is split with Array.from() before slicing.
'use strict';

// ---------------------------------------------------------------------------------------------
// Small DOM helpers

const $ = (id) => document.getElementById(id);

// Creates an element. attrs: properties or attributes ("class", "data-*", "aria-*" become
// attributes, functions under "on*" become listeners). children: nodes or strings (as text).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value);
    } else if (key === 'class' || key.startsWith('data-') || key.startsWith('aria-') || key === 'role') {
      node.setAttribute(key, value === true ? '' : String(value));
    } else {
      node[key] = value;
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const show = (node, visible) => { node.hidden = !visible; };
const dash = (value) => (value === undefined || value === null || value === '' ? '—' : String(value));

function formatBytes(n) {
  if (typeof n !== 'number' || !isFinite(n)) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

// ---------------------------------------------------------------------------------------------
// API access. Every failure becomes an ApiError whose message is what the user should read: the
// server's error.message when it sent the documented error JSON, otherwise the HTTP status.

class ApiError extends Error {
  constructor(message, status, type, code) {
    super(message);
    this.status = status;
    this.type = type;
    this.code = code;
  }
}

// Builds an ApiError from a status and the raw response body (which may not be JSON at all,
// e.g. from a proxy).
function errorFromResponse(status, statusText, bodyText) {
  try {
    const body = JSON.parse(bodyText);
    if (body && body.error && body.error.message) {
      return new ApiError(String(body.error.message), status, body.error.type, body.error.code);
    }
  } catch (_) { /* not JSON: fall through */ }
  if (status === 0) return new ApiError('Cannot reach the server. Is `rag serve` running?', 0);
  return new ApiError(`The server answered HTTP ${status}${statusText ? ' ' + statusText : ''}.`, status);
}

async function api(method, path, body, signal) {
  let response;
  try {
    response = await fetch(path, {
      method,
      signal,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError('Cannot reach the server. Is `rag serve` running?', 0);
  }
  const text = await response.text();
  if (!response.ok) throw errorFromResponse(response.status, response.statusText, text);
  try {
    return JSON.parse(text);
  } catch (_) {
    throw new ApiError('The server sent a response that is not JSON.', response.status);
  }
}

// ---------------------------------------------------------------------------------------------
// Server health, shown in the header.

async function checkHealth() {
  const node = $('health');
  try {
    const health = await api('GET', 'healthz');
    const ok = health.status === 'ok';
    node.dataset.state = ok ? 'ok' : 'degraded';
    const model = typeof health.model === 'string' ? ` · ${health.model}` : '';
    node.textContent = ok ? `Server ready${model}` : `Server status: ${dash(health.status)}`;
  } catch (err) {
    node.dataset.state = 'down';
    node.textContent = err.status ? `Server problem: ${err.message}` : 'Server unreachable';
  }
}

// ---------------------------------------------------------------------------------------------
// Uploads. Files go up one at a time (progress is clearer and the server parses them in its own
// job queue anyway); the ingestion job of each is then polled independently.

let uploadChain = Promise.resolve();
const JOB_POLL_MS = 700;

function queueFiles(fileList) {
  const collection = $('upload-collection').value.trim();
  for (const file of Array.from(fileList)) {
    const row = makeUploadRow(file);
    uploadChain = uploadChain.then(() => uploadOne(file, collection, row));
  }
}

// One <li> per file: name, a progress bar and a status line. state drives the styling.
function makeUploadRow(file) {
  const bar = el('progress', { max: 100, value: 0, 'aria-label': `Progress of ${file.name}` });
  const status = el('span', { class: 'upload-status' }, 'Waiting to upload…');
  const li = el('li', { class: 'upload-item', 'data-state': 'waiting' },
    el('span', { class: 'upload-name', title: file.name }, file.name),
    el('span', { class: 'upload-size' }, formatBytes(file.size)),
    bar, status);
  $('upload-list').prepend(li);
  return {
    set(state, text, percent) {
      li.dataset.state = state;
      status.textContent = text;
      if (percent === null) bar.removeAttribute('value');  // indeterminate
      else if (percent !== undefined) bar.value = Math.max(0, Math.min(100, percent));
    },
  };
}

// Sends one file with XMLHttpRequest (fetch cannot report upload progress), then follows its job.
function uploadOne(file, collection, row) {
  return new Promise((resolve) => {
    const form = new FormData();
    form.append('file', file, file.name);
    if (collection) form.append('collection', collection);

    const xhr = new XMLHttpRequest();
    xhr.open('POST', 'v1/documents');
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) {
        const pct = Math.round((e.loaded / e.total) * 100);
        row.set('uploading', pct < 100 ? `Uploading ${pct}%` : 'Uploaded; waiting for the server…', pct);
      }
    };
    xhr.onerror = () => {
      row.set('failed', 'Upload failed: cannot reach the server.', 0);
      resolve();
    };
    xhr.onload = () => {
      if (xhr.status < 200 || xhr.status >= 300) {
        const err = errorFromResponse(xhr.status, xhr.statusText, xhr.responseText);
        row.set('failed', `Failed: ${err.message}`, 0);
        resolve();
        return;
      }
      let reply;
      try {
        reply = JSON.parse(xhr.responseText);
      } catch (_) {
        row.set('failed', 'Failed: the server sent a response that is not JSON.', 0);
        resolve();
        return;
      }
      if (reply.duplicate) {
        row.set('done', 'Already in the library (same content).', 100);
        refreshDocuments();
      } else if (reply.job_id !== undefined && reply.job_id !== null) {
        row.set('queued', 'Queued for processing…', null);
        refreshDocuments();
        pollJob(String(reply.job_id), row);
      } else {
        row.set('done', 'Uploaded.', 100);
        refreshDocuments();
      }
      resolve();  // the next file may start uploading while this one is processed
    };
    row.set('uploading', 'Uploading 0%', 0);
    xhr.send(form);
  });
}

// Follows GET /v1/jobs/{id} until the job is done or failed. Transient network errors are
// retried a few times before the row shows an error.
function pollJob(jobId, row) {
  let failures = 0;
  const tick = async () => {
    let job;
    try {
      job = await api('GET', `v1/jobs/${encodeURIComponent(jobId)}`);
      failures = 0;
    } catch (err) {
      if ((err.status === 0 || err.status >= 500) && ++failures < 5) {
        setTimeout(tick, JOB_POLL_MS * 2);
        return;
      }
      row.set('failed', `Failed: ${err.message}`, 0);
      return;
    }
    const p = job.progress || {};
    if (job.state === 'done') {
      const pages = p.pages_total ? `${p.pages_total} pages, ` : '';
      row.set('done', `Ready: ${pages}${dash(p.chunks_total ?? p.chunks_done)} chunks.`, 100);
      refreshDocuments();
      return;
    }
    if (job.state === 'failed') {
      row.set('failed', `Failed: ${job.error || 'ingestion failed'}`, 0);
      refreshDocuments();
      return;
    }
    if (job.state === 'running') {
      const parts = [];
      if (p.pages_total) parts.push(`page ${p.pages_done || 0} of ${p.pages_total}`);
      if (p.chunks_total) parts.push(`${p.chunks_done || 0} of ${p.chunks_total} chunks`);
      // The bar follows the chunks (embedding is the long part) once their total is known.
      let pct = null;
      if (p.chunks_total) pct = (100 * (p.chunks_done || 0)) / p.chunks_total;
      else if (p.pages_total) pct = (100 * (p.pages_done || 0)) / p.pages_total;
      row.set('running', `Processing${parts.length ? ': ' + parts.join(', ') : '…'}`, pct);
    } else {
      row.set('queued', 'Queued for processing…', null);
    }
    setTimeout(tick, JOB_POLL_MS);
  };
  tick();
}

// ---------------------------------------------------------------------------------------------
// The document list. Refreshed after uploads and deletions, and every few seconds while some
// document is still being processed (it may have been added by `rag ingest` or another tab).

let refreshTimer = null;
let refreshInFlight = false;
let refreshAgain = false;

async function refreshDocuments() {
  if (refreshInFlight) { refreshAgain = true; return; }
  refreshInFlight = true;
  clearTimeout(refreshTimer);
  try {
    const reply = await api('GET', 'v1/documents');
    const docs = Array.isArray(reply.documents) ? reply.documents : [];
    show($('doc-error'), false);
    renderDocuments(docs);
    updateCollections(docs);
    if (docs.some((d) => d.status === 'queued' || d.status === 'processing')) {
      refreshTimer = setTimeout(refreshDocuments, 2000);
    }
  } catch (err) {
    $('doc-error').textContent = `Could not load the documents: ${err.message}`;
    show($('doc-error'), true);
  } finally {
    refreshInFlight = false;
    if (refreshAgain) { refreshAgain = false; refreshDocuments(); }
  }
}

function renderDocuments(docs) {
  const rows = docs.map((doc) => {
    const title = doc.title || doc.filename || `Document ${doc.id}`;
    const statusCell = el('td', { 'data-label': 'Status' },
      el('span', { class: 'badge', 'data-status': doc.status }, dash(doc.status)));
    if (doc.status === 'failed' && doc.error) {
      statusCell.append(el('span', { class: 'doc-error-text' }, doc.error));
    }
    const del = el('button', {
      type: 'button', class: 'button-danger',
      'aria-label': `Delete ${title}`,
      onclick: () => deleteDocument(doc, title, del),
    }, 'Delete');
    // The file name sits under the title (one column for both keeps the table narrow).
    const file = [doc.filename, formatBytes(doc.bytes)].filter((x) => x).join(' · ');
    return el('tr', { 'data-id': doc.id, 'data-status': doc.status },
      el('td', { class: 'doc-title-cell' },
        el('span', { class: 'doc-title' }, title),
        doc.collection ? el('span', { class: 'tag' }, doc.collection) : null,
        el('span', { class: 'doc-file' }, file)),
      el('td', { 'data-label': 'Pages', class: 'num' }, dash(doc.pages)),
      el('td', { 'data-label': 'Chunks', class: 'num' }, dash(doc.chunks)),
      statusCell,
      el('td', { class: 'actions' }, del));
  });
  $('doc-rows').replaceChildren(...rows);
  show($('doc-empty'), docs.length === 0);
  show($('doc-table'), docs.length > 0);
}

async function deleteDocument(doc, title, button) {
  if (!window.confirm(`Delete “${title}”?\nIts passages will no longer be used for answers.`)) return;
  button.disabled = true;
  try {
    await api('DELETE', `v1/documents/${encodeURIComponent(doc.id)}`);
  } catch (err) {
    $('doc-error').textContent = `Could not delete “${title}”: ${err.message}`;
    show($('doc-error'), true);
    button.disabled = false;
    return;
  }
  refreshDocuments();
}

// Offers the collections present in the library in the "Search in" selector.
function updateCollections(docs) {
  const select = $('ask-collection');
  const current = select.value;
  const names = [...new Set(docs.map((d) => d.collection).filter((c) => c))].sort();
  select.replaceChildren(el('option', { value: '' }, 'all documents'),
    ...names.map((name) => el('option', { value: name }, name)));
  select.value = names.includes(current) ? current : '';
}

// ---------------------------------------------------------------------------------------------
// Asking a question.

let askController = null;

async function ask(event) {
  event.preventDefault();
  const question = $('question').value.trim();
  if (!question) {
    $('question').focus();
    return;
  }
  if (askController) askController.abort();  // a newer question replaces the pending one
  askController = new AbortController();
  const controller = askController;

  const body = { question, top_k: Math.max(1, Math.min(50, parseInt($('top-k').value, 10) || 5)) };
  const collection = $('ask-collection').value;
  if (collection) body.collection = collection;

  hidePopover();
  show($('ask-error'), false);
  $('ask-status').textContent = 'Searching the documents and writing the answer…';
  $('ask-status').classList.add('loading');
  $('ask-button').disabled = true;
  $('result').setAttribute('aria-busy', 'true');
  try {
    const reply = await api('POST', 'v1/query', body, controller.signal);
    renderResult(reply);
    $('ask-status').textContent = 'Answer ready.';
  } catch (err) {
    if (err.name === 'AbortError') return;
    $('ask-status').textContent = '';
    $('ask-error').textContent = err.message;
    show($('ask-error'), true);
    show($('result'), false);  // an older answer next to the error would read as this one's
  } finally {
    if (controller === askController) {
      $('ask-status').classList.remove('loading');
      $('ask-button').disabled = false;
      $('result').removeAttribute('aria-busy');
      askController = null;
    }
  }
}

// Passages by their "index" (the number the citations refer to), with the 1-based number shown
// to the user (their position in the list).
function indexPassages(passages) {
  const byIndex = new Map();
  passages.forEach((p, pos) => {
    const key = Number.isInteger(p.index) ? p.index : pos;
    byIndex.set(key, { passage: p, number: pos + 1 });
  });
  return byIndex;
}

function renderResult(reply) {
  const answer = typeof reply.answer === 'string' ? reply.answer : '';
  const passages = Array.isArray(reply.passages) ? reply.passages : [];
  const citations = Array.isArray(reply.citations) ? reply.citations : [];
  const byIndex = indexPassages(passages);

  const answerNode = $('answer');
  if (answer) {
    answerNode.replaceChildren(...renderAnswer(answer, citations, byIndex));
  } else {
    answerNode.replaceChildren(el('p', { class: 'empty' },
      passages.length ? 'No answer was produced.' : 'Nothing relevant was found in the documents.'));
  }

  const meta = [];
  if (typeof reply.mode === 'string') meta.push(`mode: ${reply.mode}`);
  if (typeof reply.model === 'string') meta.push(`model: ${reply.model}`);
  const t = reply.timings || {};
  if (typeof t.total_ms === 'number') meta.push(`${t.total_ms.toFixed(1)} ms`);
  if (typeof t.retrieve_ms === 'number') meta.push(`retrieval ${t.retrieve_ms.toFixed(1)} ms`);
  if (typeof t.answer_ms === 'number') meta.push(`answer ${t.answer_ms.toFixed(1)} ms`);
  $('answer-meta').textContent = meta.join(' · ');

  $('passages').replaceChildren(...passages.map((p, pos) => renderPassageItem(p, pos + 1)));
  show($('passages-title'), passages.length > 0);
  show($('result'), true);
}

// Splits the answer into plain text, highlighted cited spans and a marker button per source
// after each span. Citations are sorted; an overlapping one is clipped to start where the
// previous ended, so every character is shown exactly once.
function renderAnswer(answer, citations, byIndex) {
  const chars = Array.from(answer);  // code points, the unit of start/end
  const valid = citations
    .filter((c) => Number.isInteger(c.start) && Number.isInteger(c.end))
    .map((c) => ({ ...c, start: Math.max(0, Math.min(c.start, chars.length)),
                   end: Math.max(0, Math.min(c.end, chars.length)) }))
    .sort((a, b) => a.start - b.start || a.end - b.end);

  const nodes = [];
  let pos = 0;
  for (const c of valid) {
    const start = Math.max(c.start, pos);
    const end = Math.max(c.end, start);
    if (start > pos) nodes.push(document.createTextNode(chars.slice(pos, start).join('')));
    if (end > start) nodes.push(el('mark', { class: 'cited' }, chars.slice(start, end).join('')));
    const sources = [...new Set(Array.isArray(c.sources) ? c.sources : [])];
    for (const s of sources) {
      const entry = byIndex.get(s);
      if (entry) nodes.push(makeMarker(entry, c));
    }
    pos = end;
  }
  if (pos < chars.length) nodes.push(document.createTextNode(chars.slice(pos).join('')));
  return nodes;
}

function makeMarker(entry, citation) {
  const { passage, number } = entry;
  const where = passage.page ? `, page ${passage.page}` : '';
  const button = el('button', {
    type: 'button', class: 'cite-marker',
    'aria-label': `Source ${number}: ${passage.title || passage.filename || 'document'}${where}`,
    'aria-haspopup': 'dialog', 'aria-expanded': 'false', 'aria-controls': 'source-popover',
    'data-source': number,
  }, `[${number}]`);
  button.addEventListener('click', (e) => {
    e.stopPropagation();
    if (popover.anchor === button && popover.pinned) hidePopover(true);
    else showPopover(button, passage, number, citation, true);
  });
  button.addEventListener('mouseenter', () => {
    if (!popover.pinned) showPopover(button, passage, number, citation, false);
  });
  button.addEventListener('mouseleave', scheduleHide);
  return button;
}

// One entry of the retrieved-passages list: number, title, page, section, score, and the text,
// clamped to a few lines until expanded.
function renderPassageItem(p, number) {
  const text = el('p', { class: 'passage-text clamped', id: `passage-text-${number}` }, p.text || '');
  const toggle = el('button', {
    type: 'button', class: 'button-quiet', 'aria-expanded': 'false',
    'aria-controls': `passage-text-${number}`,
  }, 'Show full passage');
  toggle.addEventListener('click', () => {
    const expanded = text.classList.toggle('clamped') === false;
    toggle.setAttribute('aria-expanded', String(expanded));
    toggle.textContent = expanded ? 'Show less' : 'Show full passage';
  });
  const details = [];
  if (p.filename && p.filename !== p.title) details.push(p.filename);
  if (p.page) details.push(`page ${p.page}`);
  if (p.section) details.push(p.section);
  if (typeof p.score === 'number') details.push(`score ${p.score.toFixed(3)}`);
  return el('li', { class: 'passage', id: `passage-${number}`, value: number },
    el('div', { class: 'passage-head' },
      el('span', { class: 'passage-num' }, `[${number}]`),
      el('span', { class: 'passage-title' }, p.title || p.filename || `Document ${p.document_id}`)),
    el('div', { class: 'passage-meta' }, details.join(' · ')),
    text, toggle);
}

// ---------------------------------------------------------------------------------------------
// The source popover: one shared element, shown on hover (transient) or click (pinned, focus
// moves into it; Escape or a click outside closes it and focus returns to the marker).

const popover = { anchor: null, pinned: false, hideTimer: null };

function showPopover(anchor, passage, number, citation, pinned) {
  clearTimeout(popover.hideTimer);
  if (popover.anchor && popover.anchor !== anchor) popover.anchor.setAttribute('aria-expanded', 'false');
  popover.anchor = anchor;
  popover.pinned = pinned;
  anchor.setAttribute('aria-expanded', 'true');

  const node = $('source-popover');
  $('popover-title').textContent = `[${number}] ${passage.title || passage.filename || 'Source'}`;
  const meta = [];
  if (passage.filename) meta.push(passage.filename);
  meta.push(passage.page ? `page ${passage.page}` : 'page —');
  if (passage.section) meta.push(passage.section);
  const textNode = el('p', { class: 'popover-text' });
  const mark = appendHighlighted(textNode, passage.text || '', citation.text || '');
  $('popover-body').replaceChildren(el('p', { class: 'popover-meta' }, meta.join(' · ')), textNode);
  if (!mark) {
    $('popover-body').append(el('p', { class: 'hint' }, 'The cited text was not found in this passage.'));
  }
  show(node, true);
  positionPopover(anchor, node);
  // Bring the highlighted sentence into view inside the scrollable popover.
  const body = $('popover-body');
  body.scrollTop = mark ? Math.max(0, mark.offsetTop - body.offsetTop - 24) : 0;
  if (pinned) node.focus({ preventScroll: true });
}

function positionPopover(anchor, node) {
  if (window.matchMedia('(max-width: 640px)').matches) {
    node.style.top = node.style.left = '';  // CSS docks it at the bottom of the screen
    return;
  }
  const host = node.offsetParent || document.body;
  const hostRect = host.getBoundingClientRect();
  const a = anchor.getBoundingClientRect();
  const width = node.offsetWidth;
  let left = a.left - hostRect.left - 16;
  left = Math.max(8, Math.min(left, hostRect.width - width - 8));
  node.style.left = `${left}px`;
  node.style.top = `${a.bottom - hostRect.top + 6}px`;
}

function hidePopover(returnFocus = false) {
  clearTimeout(popover.hideTimer);
  const node = $('source-popover');
  if (node.hidden) return;
  show(node, false);
  if (popover.anchor) {
    popover.anchor.setAttribute('aria-expanded', 'false');
    if (returnFocus) popover.anchor.focus();
  }
  popover.anchor = null;
  popover.pinned = false;
}

function scheduleHide() {
  if (popover.pinned) return;
  clearTimeout(popover.hideTimer);
  popover.hideTimer = setTimeout(() => { if (!popover.pinned) hidePopover(); }, 250);
}

// ---------------------------------------------------------------------------------------------
// Finding the cited sentence inside a passage. The answer and the passage may differ in
// whitespace (line breaks of a PDF page), letter case and typographic quotes or dashes, so both
// are folded before matching, with a map back to positions in the original passage. When the
// cited text is not in the passage verbatim (a paraphrasing model), the passage sentence sharing
// the most words with it is highlighted instead, if it shares at least half of them.

const FOLD = { '‘': "'", '’': "'", '“': '"', '”': '"', '–': '-', '—': '-', '\u00a0': ' ' };

// Returns { text, start, end }: text folded (no whitespace at all, lower case), and for each of
// its UTF-16 units the [start, end) of the original character it came from.
function fold(s) {
  let text = '';
  const start = [];
  const end = [];
  for (let i = 0; i < s.length;) {
    const ch = String.fromCodePoint(s.codePointAt(i));
    const mapped = (FOLD[ch] || ch).toLowerCase();
    if (!/\s/u.test(mapped)) {
      for (let k = 0; k < mapped.length; k++) {
        text += mapped[k];
        start.push(i);
        end.push(i + ch.length);
      }
    }
    i += ch.length;
  }
  return { text, start, end };
}

// [start, end) in `haystack` (UTF-16 indices) of `needle`, or null.
function findLoose(haystack, needle) {
  const n = fold(needle).text;
  if (!n) return null;
  const h = fold(haystack);
  const at = h.text.indexOf(n);
  if (at < 0) return null;
  return [h.start[at], h.end[at + n.length - 1]];
}

function words(s) {
  return (s.toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) || []);
}

// The best-overlapping sentence of `haystack` for `needle`, as [start, end), or null.
function findSimilarSentence(haystack, needle) {
  const want = new Set(words(needle));
  if (want.size === 0) return null;
  let best = null;
  let bestScore = 0;
  const re = /[^.!?。！？]+[.!?。！？]*/gu;
  for (let m; (m = re.exec(haystack));) {
    const have = new Set(words(m[0]));
    let shared = 0;
    for (const w of want) if (have.has(w)) shared++;
    const score = shared / want.size;
    if (score > bestScore) {
      bestScore = score;
      const lead = m[0].length - m[0].trimStart().length;
      best = [m.index + lead, m.index + m[0].trimEnd().length];
    }
  }
  return bestScore >= 0.5 ? best : null;
}

// Appends `text` to `parent` with the cited part wrapped in <mark>; returns the mark or null.
function appendHighlighted(parent, text, cited) {
  let span = cited ? findLoose(text, cited) : null;
  let approx = false;
  if (!span && cited) {
    span = findSimilarSentence(text, cited);
    approx = span !== null;
  }
  if (!span) {
    parent.append(text);
    return null;
  }
  const mark = el('mark', { class: approx ? 'source-hit approx' : 'source-hit' },
    text.slice(span[0], span[1]));
  if (approx) mark.title = 'Closest sentence to the cited text';
  parent.append(text.slice(0, span[0]), mark, text.slice(span[1]));
  return mark;
}

// ---------------------------------------------------------------------------------------------
// Wiring.

function setUpDropzone() {
  const zone = $('dropzone');
  const input = $('file-input');
  input.addEventListener('change', () => {
    if (input.files.length) queueFiles(input.files);
    input.value = '';  // choosing the same file again still fires "change"
  });
  // dragenter/dragleave fire for every child; a counter tells when the pointer really left.
  let depth = 0;
  zone.addEventListener('dragenter', (e) => { e.preventDefault(); depth++; zone.classList.add('dragover'); });
  zone.addEventListener('dragover', (e) => { e.preventDefault(); e.dataTransfer.dropEffect = 'copy'; });
  zone.addEventListener('dragleave', () => { if (--depth <= 0) { depth = 0; zone.classList.remove('dragover'); } });
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    zone.classList.remove('dragover');
    if (e.dataTransfer && e.dataTransfer.files.length) queueFiles(e.dataTransfer.files);
  });
  // A file dropped next to the zone must not make the browser navigate away from the page.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());
}

function setUp() {
  setUpDropzone();
  $('upload-form').addEventListener('submit', (e) => e.preventDefault());
  $('refresh-docs').addEventListener('click', refreshDocuments);
  $('ask-form').addEventListener('submit', ask);
  $('question').addEventListener('keydown', (e) => {
    // Enter asks; Shift+Enter is a new line; Enter while an input method composes is not ours.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $('ask-form').requestSubmit();
    }
  });

  const node = $('source-popover');
  node.tabIndex = -1;
  node.addEventListener('mouseenter', () => clearTimeout(popover.hideTimer));
  node.addEventListener('mouseleave', scheduleHide);
  node.addEventListener('click', (e) => e.stopPropagation());
  $('popover-close').addEventListener('click', () => hidePopover(true));
  document.addEventListener('click', () => { if (popover.pinned) hidePopover(); });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !node.hidden) hidePopover(true);
  });
  window.addEventListener('resize', () => {
    if (popover.anchor && !node.hidden) positionPopover(popover.anchor, node);
  });

  checkHealth();
  setInterval(checkHealth, 20000);
  refreshDocuments();
}

document.addEventListener('DOMContentLoaded', setUp);
