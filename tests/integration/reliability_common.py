"""Helpers of the reliability scripts (crash_safety_test.py, soak_test.py; docs/RELIABILITY.md).

Standard library only (Debian's python3, as CI runs it). Contract:
  - RagServer starts `rag serve` on a free loopback port with its output in a log file;
    kill() ends it with SIGKILL (a crash), stop() with SIGTERM (a graceful shutdown).
  - Http is a tiny JSON/multipart client over urllib with a per-request timeout; it returns
    (status, parsed body or raw bytes) and never raises for an HTTP status; a connection that
    fails raises OSError (callers treat that as "no answer").
  - check_store(data_dir) reads rag.db and vectors.faiss directly (not through `rag`) and
    returns a list of problems (empty when the folder is sound): SQLite and FTS5 integrity,
    every ready document with exactly its chunk count, chunks only on ready documents, every
    upload's saved file present with its content hash, and, with vectors="exact", a vector
    index that holds exactly the windows of every ready chunk (retrieval/passage_windows.h:
    vector id = chunk id * 64 + window) and nothing else.
  - write_tiny_embedder(dir) makes a sentence-embedder directory from tests/data/bert-tiny (a
    2-layer, 64-wide random BERT) with a 500-token WordPiece vocabulary: the real embedding and
    vector-index code paths at a fraction of all-MiniLM-L6-v2's cost. Its vectors mean nothing;
    the scripts check retrieval by BM25 (unique marker words) and the index by its ids.
"""
import atexit
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import string
import struct
import subprocess
import time
import urllib.error
import urllib.request
import uuid

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SKIP_EXIT_CODE = 77
WINDOW_WORDS, WINDOW_STRIDE, WINDOW_SLOTS = 60, 30, 64  # retrieval/passage_windows.h


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http:
    def __init__(self, port, timeout=30):
        self.base = f"http://127.0.0.1:{port}"
        self.timeout = timeout

    def request(self, method, path, body=None, headers=None):
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                status, raw, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            status, raw, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
        if ctype.startswith("application/json"):
            try:
                return status, json.loads(raw)
            except ValueError:
                pass
        return status, raw

    def get(self, path):
        return self.request("GET", path)

    def delete(self, path):
        return self.request("DELETE", path)

    def post_json(self, path, obj):
        return self.request("POST", path, json.dumps(obj).encode(),
                            {"Content-Type": "application/json"})

    def upload(self, filename, data, collection=None):
        boundary = "----rag-reliability-" + uuid.uuid4().hex
        parts = [(b'Content-Disposition: form-data; name="file"; filename="%s"\r\n'
                  b"Content-Type: application/octet-stream\r\n\r\n" % filename.encode()) + data]
        if collection:
            parts.append(b'Content-Disposition: form-data; name="collection"\r\n\r\n' +
                         collection.encode())
        body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
        body += b"--" + boundary.encode() + b"--\r\n"
        return self.request("POST", "/v1/documents", body,
                            {"Content-Type": "multipart/form-data; boundary=" + boundary})


_SERVERS = []


def _kill_leftover_servers():
    for server in _SERVERS:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


atexit.register(_kill_leftover_servers)  # a failed check must not leave a server running


class RagServer:
    """`rag serve` on a free loopback port; its stdout and stderr go to `log_path`. Every server
    still running when the script exits is killed."""

    def __init__(self, binary, data_dir, log_path, global_args=(), serve_args=(),
                 preexec_fn=None):
        self.port = free_port()
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [binary, "--data", data_dir, *global_args, "serve", "--host", "127.0.0.1", "--port",
             str(self.port), *serve_args], stdout=self.log, stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn)
        _SERVERS.append(self)
        self.http = Http(self.port)

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"rag serve exited with {self.proc.returncode}: "
                                     f"{tail(self.log_path)}")
            try:
                status, body = Http(self.port, timeout=2).get("/healthz")
                if status == 200:
                    return body
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"rag serve did not answer /healthz in {timeout} s: "
                             f"{tail(self.log_path)}")

    def rss_kib(self):
        """Resident memory of the server (VmRSS of /proc/PID/status), None once it is gone."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit code (SIGKILL after `timeout` s gives -9)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def tail(path, n=2000):
    try:
        with open(path, "rb") as f:
            data = f.read()
        return data[-n:].decode("utf-8", "replace")
    except OSError:
        return ""


def wait_until_settled(http, timeout=120, collection=None):
    """Polls GET /v1/documents until no document is queued or processing; returns the list."""
    deadline = time.monotonic() + timeout
    path = "/v1/documents" + (f"?collection={collection}" if collection else "")
    while True:
        status, body = http.get(path)
        assert status == 200, (status, body)
        docs = body["documents"]
        if all(d["status"] in ("ready", "failed") for d in docs):
            return docs
        if time.monotonic() > deadline:
            pending = [(d["id"], d["status"]) for d in docs if d["status"] not in ("ready", "failed")]
            raise AssertionError(f"documents still pending after {timeout} s: {pending[:10]}")
        time.sleep(0.1)


def wait_for_jobs(http, timeout=180):
    """Polls /healthz (a server without API keys shows the job counts) until no ingestion job
    is queued or running: documents are "ready" once stored, before their vectors are added."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = http.get("/healthz")
        assert status == 200, (status, body)
        if body.get("jobs_queued", 0) == 0 and body.get("jobs_running", 0) == 0:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"ingestion jobs still pending after {timeout} s: {body}")
        time.sleep(0.1)


def write_tiny_embedder(directory):
    os.makedirs(directory, exist_ok=True)
    src = os.path.join(REPO, "tests", "data", "bert-tiny")
    for name in ("config.json", "model.safetensors"):
        shutil.copyfile(os.path.join(src, name), os.path.join(directory, name))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = string.ascii_lowercase + string.digits
    tokens += list(chars) + ["##" + c for c in chars] + list(".,;:!?'\"()-/")
    for w in ("the of and to in a is that for it as with was on be by this are or from at an "
              "not which have has but can").split():
        if w not in tokens:
            tokens.append(w)
    tokens += [f"[unused{i}]" for i in range(500 - len(tokens))]
    tokenizer = {
        "version": "1.0",
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": {t: i for i, t in enumerate(tokens)}},
    }
    with open(os.path.join(directory, "tokenizer.json"), "w") as f:
        json.dump(tokenizer, f)
    return directory


# ---- The data folder, read directly. ----

_SPACE = re.compile(rb"[ \t\n\v\f\r]+")  # what C++'s `istream >> word` splits on


def window_count(text):
    """How many windows (vectors) retrieval/passage_windows.cc makes of a chunk's text."""
    n = len([w for w in _SPACE.split(text.encode("utf-8")) if w])
    if n == 0:
        return 1  # dense_index.cc: a chunk without words still gets one vector
    if n <= WINDOW_WORDS:
        return 1
    stride = WINDOW_STRIDE

    def count(s):
        return (n - WINDOW_WORDS + s - 1) // s + 1

    if count(stride) > WINDOW_SLOTS:
        stride = (n - WINDOW_WORDS + WINDOW_SLOTS - 2) // (WINDOW_SLOTS - 1)
    width = max(WINDOW_WORDS, stride)
    windows, start = 0, 0
    while True:
        windows += 1
        if min(n, start + width) == n:
            return windows
        start += stride


def _checksum64(data):
    """retrieval/vector_index.cc's Checksum64."""
    mask = (1 << 64) - 1
    m1, m2 = 0x87c37b91114253d5, 0x4cf5ad432745937f
    h = 0x9e3779b97f4a7c15 ^ len(data)
    full = len(data) // 8 * 8
    for (w,) in struct.iter_unpack("<Q", data[:full]):
        h ^= (w * m1) & mask
        h = ((((h << 31) | (h >> 33)) & mask) * m2) & mask
    tail_bytes = data[full:] + b"\0" * (8 - (len(data) - full))
    (t,) = struct.unpack("<Q", tail_bytes)
    h ^= (t * m1) & mask
    h ^= h >> 33
    h = (h * 0xff51afd7ed558ccd) & mask
    h ^= h >> 33
    h = (h * 0xc4ceb9fe1a85ec53) & mask
    h ^= h >> 33
    return h


def read_vector_ids(path):
    """The live vector ids of vectors.faiss (tombstones, -2, left out); raises ValueError when
    the file is truncated, corrupt or not in the expected layout."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 40 or data[:8] != b"RAGVECX1":
        raise ValueError(f"{path}: not a vector index file ({len(data)} bytes)")
    (stored,) = struct.unpack("<Q", data[-8:])
    if stored != _checksum64(data[:-8]):
        raise ValueError(f"{path}: checksum mismatch")
    factory_len, = struct.unpack("<I", data[16:20])
    payload_len, = struct.unpack("<Q", data[24:32])
    payload = data[32 + factory_len:-8]
    if len(payload) != payload_len or payload[:4] != b"IxM2":
        raise ValueError(f"{path}: bad header or not an IndexIDMap2 payload")
    # faiss::write_index of an IndexIDMap2: fourcc, d (i32), ntotal (i64), ..., then the
    # sub-index, then the id map as a u64 count and that many i64 ids at the very end.
    ntotal, = struct.unpack("<q", payload[8:16])
    count, = struct.unpack("<Q", payload[len(payload) - 8 * ntotal - 8:len(payload) - 8 * ntotal])
    if count != ntotal:
        raise ValueError(f"{path}: id map of {count} ids for {ntotal} vectors")
    ids = struct.unpack(f"<{ntotal}q", payload[len(payload) - 8 * ntotal:])
    return [i for i in ids if i != -2]


def check_store(data_dir, vectors="exact"):
    """Problems of a data folder (an empty list when it is sound). vectors: "exact" (the index
    must hold exactly the windows of the ready chunks), "valid" (the file, when present, must
    be a complete index; it may lag behind the database, which the next start repairs) or
    "none" (BM25 only: there must be no index)."""
    problems = []
    db_path = os.path.join(data_dir, "rag.db")
    if not os.path.exists(db_path):
        return [f"{db_path} is missing"]
    db = sqlite3.connect(db_path, timeout=30)
    try:
        result = db.execute("PRAGMA integrity_check").fetchall()
        if result != [("ok",)]:
            problems.append(f"integrity_check: {result[:5]}")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"documents", "chunks", "chunks_fts"} <= tables:
            # A process killed while it created the schema: the next open completes it. Nothing
            # can have been stored yet.
            return problems
        try:
            db.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES('integrity-check', 1)")
        except sqlite3.DatabaseError as e:
            problems.append(f"FTS5 index disagrees with the chunks: {e}")
        docs = db.execute("SELECT id, status, chunks, content_hash, source_path, filename "
                          "FROM documents").fetchall()
        counts = dict(db.execute("SELECT document_id, count(*) FROM chunks GROUP BY document_id"))
        for doc_id, status, n_chunks, content_hash, source_path, filename in docs:
            if status not in ("queued", "processing", "ready", "failed"):
                problems.append(f"document {doc_id}: unknown status {status!r}")
            have = counts.get(doc_id, 0)
            if status == "ready" and (have != n_chunks or have == 0):
                problems.append(f"document {doc_id} ({filename}): ready with {have} chunks, "
                                f"recorded {n_chunks}")
            if status != "ready" and have:
                problems.append(f"document {doc_id} ({filename}): {status} but has {have} chunks")
            if not source_path:
                saved = os.path.join(data_dir, "files", content_hash)
                try:
                    with open(saved, "rb") as f:
                        if hashlib.sha256(f.read()).hexdigest() != content_hash:
                            problems.append(f"document {doc_id}: files/{content_hash[:12]}... "
                                            "does not match its hash")
                except OSError:
                    problems.append(f"document {doc_id} ({filename}, {status}): its saved upload "
                                    "is missing")
        ready_chunks = {cid: text for cid, text in db.execute(
            "SELECT c.id, c.text FROM chunks c JOIN documents d ON d.id = c.document_id "
            "WHERE d.status = 'ready'")}
    finally:
        db.close()

    index_path = os.path.join(data_dir, "vectors.faiss")
    if vectors == "none":
        if os.path.exists(index_path):
            problems.append("vectors.faiss exists in a BM25-only folder")
        return problems
    if not os.path.exists(index_path):
        if vectors == "exact":
            problems.append("vectors.faiss is missing")
        return problems
    try:
        ids = read_vector_ids(index_path)
    except (ValueError, struct.error) as e:
        problems.append(f"vectors.faiss unreadable: {e}")
        return problems
    if vectors == "exact":
        by_chunk = {}
        for vid in ids:
            by_chunk.setdefault(vid // WINDOW_SLOTS, []).append(vid % WINDOW_SLOTS)
        stale = sorted(set(by_chunk) - set(ready_chunks))
        missing = sorted(set(ready_chunks) - set(by_chunk))
        if stale:
            problems.append(f"vectors of {len(stale)} chunks that are not ready/stored: {stale[:10]}")
        if missing:
            problems.append(f"{len(missing)} ready chunks without vectors: {missing[:10]}")
        wrong = [c for c, w in by_chunk.items()
                 if c in ready_chunks and sorted(w) != list(range(window_count(ready_chunks[c])))]
        if wrong:
            problems.append(f"{len(wrong)} chunks with the wrong windows: {wrong[:10]}")
    return problems


def leftover_temp_files(data_dir):
    """Temporary files of interrupted atomic writes (`NAME.tmp.PID.N`) under the data folder."""
    found = []
    for root, _, files in os.walk(data_dir):
        found += [os.path.join(root, f) for f in files if ".tmp." in f]
    return found


# ---- Documents. ----

def make_pdf(pages, compress=False, mediabox=(0, 0, 612, 792), padding=0):
    """A minimal valid PDF: one page per item of `pages` (each a list of text lines, ASCII
    without parentheses or backslashes), Helvetica 10 pt, FlateDecode contents if `compress`,
    `padding` bytes of comment lines after the header (a large file that is quick to ingest)."""
    import zlib
    objects = []

    def add(body):
        objects.append(body)
        return len(objects)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    pages_id = add(b"")
    kids = []
    box = " ".join(str(v) for v in mediabox).encode()
    for lines in pages:
        content = b"BT /F1 10 Tf 40 760 Td 12 TL\n" + b"".join(
            b"(" + line.encode("ascii") + b") '\n" for line in lines) + b"ET\n"
        extra = b""
        if compress:
            content, extra = zlib.compress(content, 9), b" /Filter /FlateDecode"
        stream = add(b"<< /Length %d%s >>\nstream\n" % (len(content), extra) + content +
                     b"\nendstream")
        kids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [%s] /Resources << /Font "
                        b"<< /F1 %d 0 R >> >> /Contents %d 0 R >>" % (pages_id, box, font, stream)))
    objects[pages_id - 1] = (b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % k for k in kids) +
                             b"] /Count %d >>" % len(kids))
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    out = bytearray(b"%PDF-1.4\n")
    line = b"%" + b"x" * 98 + b"\n"
    out += line * (padding // len(line))
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, catalog, xref)
    return bytes(out)


_WORDS = ("harbour ship cargo pier lighthouse ferry tide anchor crane berth channel dock quay "
          "vessel captain crew sail rope mast deck hull keel rudder compass chart buoy beacon "
          "storm wave wind current island coast bay reef shore sand gull net fish market "
          "warehouse ledger invoice manifest customs tariff season voyage route schedule").split()


def marker(rng):
    """A word found in no other document: 'mk' + 10 random letters + 'q' (no suffix that the
    porter stemmer would cut)."""
    return "mk" + "".join(rng.choice(string.ascii_lowercase) for _ in range(10)) + "q"


def make_document(rng, mark, kind, words=None):
    """(file extension, bytes) of a document of about `words` words that contains `mark`."""
    words = words or rng.randint(40, 700)
    sentences, n = [], 0
    while n < words:
        length = rng.randint(6, 16)
        s = [rng.choice(_WORDS) for _ in range(length)]
        if rng.random() < 0.15 or not sentences:
            s.insert(rng.randrange(len(s) + 1), mark)
        sentences.append(" ".join(s).capitalize() + ".")
        n += length
    if kind == "md":
        paras = [" ".join(sentences[i:i + 5]) for i in range(0, len(sentences), 5)]
        return "md", ("# Notes on " + mark + "\n\n" + "\n\n".join(paras) + "\n").encode()
    if kind == "html":
        paras = "".join(f"<p>{' '.join(sentences[i:i + 5])}</p>\n" for i in range(0, len(sentences), 5))
        return "html", (f"<!doctype html><html><head><title>Page {mark}</title></head><body>"
                        f"<h1>About {mark}</h1>\n{paras}</body></html>\n").encode()
    if kind == "pdf":
        lines, line = [], []
        for word in " ".join(sentences).split():
            line.append(word)
            if len(line) == 12:
                lines.append(" ".join(line))
                line = []
        if line:
            lines.append(" ".join(line))
        pages = [lines[i:i + 55] for i in range(0, len(lines), 55)]
        return "pdf", make_pdf(pages, compress=rng.random() < 0.5)
    return "txt", (" ".join(sentences) + "\n").encode()
