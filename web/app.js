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
// - With API keys (`rag serve --keys`), every API call carries `Authorization: Bearer <key>`
//   (authHeaders()); the key never goes into a URL, since URLs end up in logs and history.
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

// ---------------------------------------------------------------------------------------------
// The API key. Kept in sessionStorage: it lives as long as this tab and is not shared with other
// sites or written to disk for good; the key field appears when the server answers 401.

const KEY_STORAGE = 'rag.apiKey';

function apiKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || '';
  } catch (_) {
    return '';  // storage disabled: no key
  }
}

// Headers for an API call: `extra` plus the Bearer key when one is set.
function authHeaders(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

// Shows the key field with `message` (the server refused the call, or the key was just set).
function showKeyForm(message, needed) {
  show($('key-form'), true);
  $('key-status').textContent = message;
  $('key-status').dataset.state = needed ? 'needed' : 'ok';
  if (needed && document.activeElement !== $('api-key')) $('api-key').focus({ preventScroll: true });
}

const KEY_NEEDED = 'This server needs an API key: enter it in the “API key” field at the top.';
const KEY_REFUSED = 'The server does not accept this API key: enter another one in the “API key” field at the top.';

function setUpKeyForm() {
  if (apiKey()) showKeyForm('Using the API key saved in this tab.', false);
  $('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const key = $('api-key').value.trim();
    if (!key) {
      $('api-key').focus();
      return;
    }
    try {
      sessionStorage.setItem(KEY_STORAGE, key);
    } catch (_) { /* storage disabled: the key cannot be kept */ }
    $('api-key').value = '';
    showKeyForm('API key saved for this tab.', false);
    refreshDocuments();
  });
  $('key-forget').addEventListener('click', () => {
    try {
      sessionStorage.removeItem(KEY_STORAGE);
    } catch (_) { /* nothing stored */ }
    $('api-key').value = '';
    showKeyForm('API key forgotten.', false);
    refreshDocuments();
  });
}

// Builds an ApiError from a status and the raw response body (which may not be JSON at all,
// e.g. from a proxy). A 401 also brings up the key field.
function errorFromResponse(status, statusText, bodyText) {
  if (status === 401) {
    const message = apiKey() ? KEY_REFUSED : KEY_NEEDED;
    showKeyForm(message, true);
    return new ApiError(message, status, 'authentication_error', apiKey() ? 'invalid_api_key' : 'missing_api_key');
  }
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
      headers: authHeaders(body === undefined ? {} : { 'Content-Type': 'application/json' }),
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
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
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
// Asking a question. The question goes out with `"stream": true` and the answer comes back as
// server-sent events (docs/API.md): `passages` first (shown at once), then `token` pieces of the
// answer (appended live), then `citations` and `done` (the final answer, re-rendered with its
// citation markers and unsupported sentences), or `error` instead of those two. The Stop button
// aborts the request; the server notices the hang-up and cancels the answer in its engine.

let askController = null;

// Incremental parser of a text/event-stream. push() takes decoded text in chunks of any size
// (a chunk may end in the middle of a line or an event) and returns the events it completed, as
// { event, data }. Only what the server sends is needed: `event:` and `data:` lines (several
// data lines join with "\n"), comment lines (":") ignored, events ending at a blank line.
function createSseParser() {
  let buffer = '';
  const parseBlock = (block) => {
    let event = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    return data.length ? { event, data: data.join('\n') } : null;  // no data: nothing to dispatch
  };
  return {
    push(text) {
      // Line ends may be \r\n, \r or \n; a \r at the very end may be the first half of a \r\n
      // split between chunks, so it waits for the next chunk.
      buffer = (buffer + text).replace(/\r\n|\r(?!$)/g, '\n');
      const events = [];
      for (let end; (end = buffer.indexOf('\n\n')) >= 0;) {
        const parsed = parseBlock(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (parsed) events.push(parsed);
      }
      return events;
    },
  };
}

// Reads the event stream of `response` to its end, calling onEvent(name, data) for each event.
// An exception from onEvent (an `error` event) stops reading and closes the connection.
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder('utf-8');  // {stream: true} keeps split UTF-8 sequences whole
  const parser = createSseParser();
  try {
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (err.name === 'AbortError') throw err;
        throw new ApiError('The connection to the server was lost while the answer was being written.', 0);
      }
      if (chunk.done) break;
      for (const e of parser.push(decoder.decode(chunk.value, { stream: true }))) onEvent(e.event, e.data);
    }
    // An event not ended by a blank line when the stream closes is incomplete: dropped (as the
    // EventSource specification does).
    for (const e of parser.push(decoder.decode())) onEvent(e.event, e.data);
  } catch (err) {
    reader.cancel().catch(() => {});
    throw err;
  }
}

// The model's raw text carries <co:N> ... </co> citation tags; they are hidden from the live
// view (the final answer from `done` has none), including a tag still cut off at the end.
function visibleStreamText(raw) {
  return raw.replace(/<\/?co(?::[^<>]*)?>/g, '').replace(/<(?:\/?(?:c(?:o(?::[\d,\s]*)?)?)?)?$/, '');
}

// Sets the status line under the question; `busy` shows the spinner.
function setAskStatus(text, busy) {
  $('ask-status').textContent = text;
  $('ask-status').classList.toggle('loading', busy);
}

async function ask(event) {
  event.preventDefault();
  const question = $('question').value.trim();
  if (!question) {
    $('question').focus();
    return;
  }
  if (askController) askController.abort();  // a newer question replaces the pending one
  const controller = new AbortController();
  askController = controller;

  const body = { question, top_k: Math.max(1, Math.min(50, parseInt($('top-k').value, 10) || 5)), stream: true };
  const collection = $('ask-collection').value;
  if (collection) body.collection = collection;

  // What this answer's stream has delivered so far.
  const run = { passages: null, byIndex: new Map(), raw: '', tokens: 0, live: null, citations: null, unsupported: null, done: false };
  const result = $('result');
  const setStreamState = (state) => { result.dataset.streamState = state; };

  hidePopover();
  show($('ask-error'), false);
  setAskStatus('Searching the documents…', true);
  $('ask-button').disabled = true;
  show($('stop-button'), true);
  result.setAttribute('aria-busy', 'true');
  result.dataset.tokenEvents = '0';  // the e2e test reads this to know the answer was streamed
  setStreamState('waiting');

  const onEvent = (name, data) => {
    if (controller !== askController) return;  // a newer question took over
    let payload;
    try {
      payload = JSON.parse(data);
    } catch (_) {
      throw new ApiError(`The server sent a malformed "${name}" event.`, 200);
    }
    if (name === 'passages') {
      run.passages = Array.isArray(payload.passages) ? payload.passages : [];
      run.byIndex = indexPassages(run.passages);
      renderPassages(run.passages);
      run.live = document.createTextNode('');
      $('answer').replaceChildren(run.live);
      $('answer').classList.add('streaming');
      $('answer-meta').textContent = '';
      show($('answer-note'), false);
      show(result, true);
      setStreamState('streaming');
      setAskStatus(run.passages.length ? 'Writing the answer…' : 'Nothing relevant found; finishing…', true);
    } else if (name === 'token') {
      run.raw += typeof payload.text === 'string' ? payload.text : '';
      run.tokens += 1;
      result.dataset.tokenEvents = String(run.tokens);
      if (run.live) run.live.data = visibleStreamText(run.raw);  // text only, never markup
    } else if (name === 'citations') {
      run.citations = payload.citations;
      run.unsupported = payload.unsupported;
      setAskStatus('Checking the citations…', true);
    } else if (name === 'done') {
      const reply = { ...payload, passages: run.passages || [] };
      if (!Array.isArray(reply.citations) && Array.isArray(run.citations)) reply.citations = run.citations;
      if (!Array.isArray(reply.unsupported) && Array.isArray(run.unsupported)) reply.unsupported = run.unsupported;
      $('answer').classList.remove('streaming');
      renderAnswerPart(reply, run.byIndex);
      run.done = true;
      setStreamState('done');
    } else if (name === 'error') {
      const e = payload.error || {};
      throw new ApiError(e.message ? String(e.message) : 'The answer failed on the server.', 500, e.type, e.code);
    }
    // Other event names are for newer clients: ignored.
  };

  try {
    let response;
    try {
      response = await fetch('v1/query', {
        method: 'POST',
        signal: controller.signal,
        headers: authHeaders({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
        body: JSON.stringify(body),
      });
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      throw new ApiError('Cannot reach the server. Is `rag serve` running?', 0);
    }
    if (!response.ok) throw errorFromResponse(response.status, response.statusText, await response.text());
    if ((response.headers.get('Content-Type') || '').startsWith('text/event-stream')) {
      await readEvents(response, onEvent);
      if (!run.done) throw new ApiError('The answer stream ended before the answer was complete.', 0);
    } else {
      // A server that does not stream answers with the whole JSON answer at once.
      let reply;
      try {
        reply = JSON.parse(await response.text());
      } catch (_) {
        throw new ApiError('The server sent a response that is not JSON.', response.status);
      }
      renderResult(reply);
      setStreamState('done');
    }
    if (controller === askController) setAskStatus('Answer ready.', false);
  } catch (err) {
    if (controller !== askController) return;  // replaced by a newer question: nothing to show
    if (err.name === 'AbortError') {
      // Only the Stop button aborts the current question.
      markIncomplete(run);
      setStreamState('stopped');
      setAskStatus(run.passages ? 'Stopped. The answer above is incomplete.' : 'Stopped.', false);
      if (!run.passages) show(result, false);
      return;
    }
    setAskStatus('', false);
    $('ask-error').textContent = err.message;
    show($('ask-error'), true);
    setStreamState('error');
    // Passages and a partial answer of this question stay, marked incomplete; an older answer
    // next to the error would read as this one's, so without them the result is hidden.
    if (run.passages) markIncomplete(run);
    else show(result, false);
  } finally {
    if (controller === askController) {
      const stop = $('stop-button');
      const hadFocus = document.activeElement === stop;
      show(stop, false);
      $('ask-button').disabled = false;
      if (hadFocus) $('ask-button').focus();  // focus must not vanish with the hidden button
      result.removeAttribute('aria-busy');
      askController = null;
    }
  }
}

// After a stop or a failure mid-answer: the live text stays, flagged as incomplete.
function markIncomplete(run) {
  $('answer').classList.remove('streaming');
  if (!run.passages || run.done) return;
  if (!run.raw) {
    $('answer').replaceChildren(el('p', { class: 'empty' }, 'No answer was written.'));
  }
  $('answer-meta').textContent = 'Incomplete answer: citations are only checked when the answer is complete.';
}

function stopAsking() {
  if (askController) askController.abort();
}

// Passages by their "index" (the number the citations refer to), with the 1-based number shown
// to the user (their position in the list).
function indexPassages(passages) {
  const byIndex = new Map();
  passages.forEach((p, pos) => {
    const key = Number.isInteger(p.index) ? p.index : pos;
    byIndex.set(key, { passage: p, number: pos + 1, source: key });
  });
  return byIndex;
}

// A whole JSON answer (passages included), shown at once.
function renderResult(reply) {
  const passages = Array.isArray(reply.passages) ? reply.passages : [];
  renderPassages(passages);
  $('answer').classList.remove('streaming');
  renderAnswerPart(reply, indexPassages(passages));
  show($('result'), true);
}

function renderPassages(passages) {
  $('passages').replaceChildren(...passages.map((p, pos) => renderPassageItem(p, pos + 1)));
  show($('passages-title'), passages.length > 0);
}

// Says what produced the answer: "answered by <model>, model mode" or "extractive".
function describeMode(reply) {
  if (reply.mode === 'model') {
    return `answered by ${typeof reply.model === 'string' ? reply.model : 'the language model'}, model mode`;
  }
  if (reply.mode === 'extractive') return 'extractive (sentences of the passages, each cited)';
  return typeof reply.mode === 'string' ? `mode: ${reply.mode}` : '';
}

// The answer with its citation markers and unsupported sentences, its mode and its timings.
function renderAnswerPart(reply, byIndex) {
  const answer = typeof reply.answer === 'string' ? reply.answer : '';
  const citations = Array.isArray(reply.citations) ? reply.citations : [];
  const unsupported = Array.isArray(reply.unsupported) ? reply.unsupported : [];

  const answerNode = $('answer');
  if (answer) {
    answerNode.replaceChildren(...renderAnswer(answer, citations, byIndex, unsupported));
  } else {
    answerNode.replaceChildren(el('p', { class: 'empty' },
      byIndex.size ? 'No answer was produced.' : 'Nothing relevant was found in the documents.'));
  }

  const meta = [];
  const mode = describeMode(reply);
  if (mode) meta.push(mode);
  const t = reply.timings || {};
  if (typeof t.total_ms === 'number') meta.push(`${t.total_ms.toFixed(1)} ms`);
  if (typeof t.retrieve_ms === 'number') meta.push(`retrieval ${t.retrieve_ms.toFixed(1)} ms`);
  if (typeof t.answer_ms === 'number') meta.push(`answer ${t.answer_ms.toFixed(1)} ms`);
  $('answer-meta').textContent = meta.join(' · ');

  const shown = answerNode.querySelectorAll('.unsupported').length;
  $('answer-note').textContent = shown === 1
    ? 'The sentence with a dotted underline is not supported by the retrieved passages.'
    : `The ${shown} sentences with a dotted underline are not supported by the retrieved passages.`;
  show($('answer-note'), shown > 0);
}

const UNSUPPORTED_TIP = 'not supported by the retrieved passages';

// Splits the answer into plain text, highlighted cited spans with a marker button per source
// after each, and unsupported sentences (dotted underline, tooltip, and a hidden note for screen
// readers). Spans are sorted; an overlapping one is clipped to start where the previous ended,
// so every character is shown exactly once.
function renderAnswer(answer, citations, byIndex, unsupported = []) {
  const chars = Array.from(answer);  // code points, the unit of start/end
  const clamp = (n) => Math.max(0, Math.min(n, chars.length));
  const valid = (s) => s && Number.isInteger(s.start) && Number.isInteger(s.end);
  const spans = [
    ...citations.filter(valid).map((c) => ({ citation: c, start: clamp(c.start), end: clamp(c.end) })),
    ...unsupported.filter(valid).map((u) => ({ citation: null, start: clamp(u.start), end: clamp(u.end) })),
  ].sort((a, b) => a.start - b.start || a.end - b.end);

  const nodes = [];
  let pos = 0;
  for (const span of spans) {
    const start = Math.max(span.start, pos);
    const end = Math.max(span.end, start);
    if (start > pos) nodes.push(document.createTextNode(chars.slice(pos, start).join('')));
    const text = chars.slice(start, end).join('');
    const c = span.citation;
    if (!c) {
      if (end > start) {
        nodes.push(el('span', { class: 'unsupported', title: UNSUPPORTED_TIP }, text,
          el('span', { class: 'visually-hidden' }, ` (${UNSUPPORTED_TIP})`)));
      }
    } else {
      if (end > start) nodes.push(el('mark', { class: 'cited' }, text));
      const sources = [...new Set(Array.isArray(c.sources) ? c.sources : [])];
      for (const s of sources) {
        const entry = byIndex.get(s);
        if (entry) nodes.push(makeMarker(entry, c));
      }
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
    else showPopover(button, entry, citation, true);
  });
  button.addEventListener('mouseenter', () => {
    if (!popover.pinned) showPopover(button, entry, citation, false);
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

function showPopover(anchor, entry, citation, pinned) {
  const { passage, number, source } = entry;
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
  const text = passage.text || '';
  const mark = appendHighlighted(textNode, text, citation.text || '', supportIn(citation, source, text));
  $('popover-body').replaceChildren(el('p', { class: 'popover-meta' }, meta.join(' · ')),
    originalLink(passage), textNode);
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

// "Open PDF at page N" for a passage of a PDF (null otherwise): a link to the original file
// with the page in the fragment, which browsers' PDF viewers follow. A link cannot carry the
// Bearer header, so with a key the click fetches the file with it and opens a blob: URL of
// the bytes instead (same fragment).
function originalLink(passage) {
  if (!/\.pdf$/i.test(passage.filename || '') || passage.document_id === undefined) return null;
  const page = Number.isInteger(passage.page) && passage.page > 0 ? passage.page : 1;
  const path = `v1/documents/${encodeURIComponent(passage.document_id)}/file`;
  const link = el('a', {
    class: 'popover-link', href: `${path}#page=${page}`, target: '_blank', rel: 'noopener',
    'data-page': page,
  }, `Open PDF at page ${page}`);
  link.addEventListener('click', (e) => {
    if (!apiKey()) return;  // the plain link works on a server without keys
    e.preventDefault();
    openWithKey(path, page, link);
  });
  return link;
}

async function openWithKey(path, page, link) {
  // Opened now, while the click still counts as a user gesture (popup blockers), and filled in
  // once the file is here.
  const win = window.open('', '_blank');
  try {
    const response = await fetch(path, { headers: authHeaders() });
    if (!response.ok) throw errorFromResponse(response.status, response.statusText, await response.text());
    const url = URL.createObjectURL(await response.blob());
    if (win) win.location.href = `${url}#page=${page}`;
    else window.location.href = `${url}#page=${page}`;
    setTimeout(() => URL.revokeObjectURL(url), 5 * 60 * 1000);  // the viewer has loaded it by then
  } catch (err) {
    if (win) win.close();
    link.after(el('p', { class: 'error' }, `Could not open the PDF: ${err.message}`));
  }
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

// The server's own answer to "where in this passage is the cited sentence supported": the first
// (best) `support` entry of `citation` for the passage with index `source`, with its code-point
// span [passage_start, passage_end) checked against the passage text; null when there is none.
function supportIn(citation, source, text) {
  const list = Array.isArray(citation.support) ? citation.support : [];
  const length = Array.from(text).length;
  return list.find((s) => s && s.source === source &&
    Number.isInteger(s.passage_start) && Number.isInteger(s.passage_end) &&
    s.passage_start >= 0 && s.passage_start < s.passage_end && s.passage_end <= length) || null;
}

// Appends `text` to `parent` with the cited part wrapped in <mark>; returns the mark or null.
// The server's support span is exact and preferred; without one, the cited text is searched
// for (loosely, then by the most similar sentence). data-match says which way was used.
function appendHighlighted(parent, text, cited, support) {
  if (support) {
    const chars = Array.from(text);  // support offsets count code points
    const mark = el('mark', {
      class: 'source-hit', 'data-match': 'support',
      'data-passage-start': support.passage_start, 'data-passage-end': support.passage_end,
    }, chars.slice(support.passage_start, support.passage_end).join(''));
    if (typeof support.score === 'number') {
      mark.title = `Supports the cited sentence (${Math.round(support.score * 100)}% of its content words)`;
    }
    parent.append(chars.slice(0, support.passage_start).join(''), mark,
      chars.slice(support.passage_end).join(''));
    return mark;
  }
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
  const mark = el('mark', { class: approx ? 'source-hit approx' : 'source-hit', 'data-match': approx ? 'similar' : 'text' },
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
  setUpKeyForm();
  setUpDropzone();
  $('upload-form').addEventListener('submit', (e) => e.preventDefault());
  $('refresh-docs').addEventListener('click', refreshDocuments);
  $('ask-form').addEventListener('submit', ask);
  $('stop-button').addEventListener('click', stopAsking);
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
