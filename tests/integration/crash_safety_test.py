#!/usr/bin/env python3
"""Crash safety of the data folder (docs/RELIABILITY.md): `rag ingest` and `rag serve` killed with
SIGKILL at random points, and a full disk.

  crash_safety_test.py RAG_BINARY [--part kill|disk|all] [--trials N] [--seed S]
                       [--embedder tiny|none|DIR] [--keep]

--part kill (ctest: integration.crash_safety) runs N trials (default 24), alternating:
  - `rag ingest` of a folder of generated documents (markdown, text, HTML, PDF, each with a
    marker word of its own), killed after a random delay within the time a whole run takes.
    Every other trial reuses the previous folder after changing some files, adding one and
    dropping one, so that kills also land in the replacement of changed files. Right after the
    kill: the database passes SQLite's and FTS5's integrity checks, vectors.faiss (when there)
    is a complete index file, and every document the killed run logged as stored ("ingest:
    stored document id=N") is ready. Then `rag ingest` runs again to the end, and: every file
    of the folder is one ready document with the file's hash, versions replaced by a change
    are gone, every marker retrieves its document (BM25, `rag retrieve`), old markers nothing,
    and the vector index holds exactly the windows of the ready chunks (check_store "exact").
  - `rag serve` with uploads from 3 threads and deletes from a 4th, killed at a random moment
    (sometimes killed again during the restart's resumed ingestion). After the restart has
    resumed every pending document: every upload answered 202/200 is listed, ready, serves
    back its exact bytes and is found by its marker (POST /v1/retrieve with its document_id);
    every document whose DELETE answered 200 is gone (404, marker finds nothing); the server
    exits 0 on SIGTERM; the folder passes check_store "exact".
--part disk (ctest: integration.full_disk) puts the data folder on a 2 MiB tmpfs (when this runs
  as root and may mount), else under RLIMIT_FSIZE (writes past the limit fail with EFBIG),
  else skips (77). `rag ingest` of a file too large for the room left must exit non-zero with
  one clear line (disk full / no space / file too large), leave the folder sound and keep the
  earlier documents; `rag serve` must answer uploads that do not fit with a JSON error (507),
  keep answering, never report a document stored that it then loses, and after the room is
  given back (remount larger / no limit) ingest every document it accepted.

--embedder tiny (default) uses a tiny random BERT (reliability_common.write_tiny_embedder) so
that embedding and index saves happen in every trial at little cost; DIR uses a real embedder
(e.g. models/all-MiniLM-L6-v2: slower, same checks); none is BM25 only.
"""
import argparse
import hashlib
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reliability_common as rc  # noqa: E402

STORED_LINE = re.compile(r"ingest: stored document id=(\d+) file=(\S+)")
KINDS = ("md", "txt", "html", "md", "txt", "pdf")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Failure(AssertionError):
    pass


def expect(cond, message):
    if not cond:
        raise Failure(message)


class Context:
    def __init__(self, args, work):
        self.rag = os.path.abspath(args.rag)
        self.work = work
        self.rng = random.Random(args.seed)
        if args.embedder == "tiny":
            self.embedder_args = ["--embedder", rc.write_tiny_embedder(os.path.join(work, "tiny-bert"))]
            self.vectors = "exact"
        elif args.embedder == "none":
            self.embedder_args, self.vectors = ["--embedder", "none"], "none"
        else:
            self.embedder_args, self.vectors = ["--embedder", os.path.abspath(args.embedder)], "exact"
        self.counter = 0

    def fresh_dir(self, name):
        self.counter += 1
        path = os.path.join(self.work, f"{name}-{self.counter}")
        os.makedirs(path)
        return path

    def rag_cmd(self, data, *args, embedder=True):
        return [self.rag, "--data", data, *(self.embedder_args if embedder else
                                            ["--embedder", "none"]), *args]

    def check_store(self, data, vectors=None):
        problems = rc.check_store(data, vectors or self.vectors)
        expect(not problems, f"{data}: " + "; ".join(problems))

    def retrieve(self, data, questions):
        """{question: [document ids of the top passages]} by BM25 (`rag retrieve`)."""
        if not questions:
            return {}
        r = subprocess.run(self.rag_cmd(data, "--log-level", "error", "retrieve", "--top-k", "3",
                                        embedder=False),
                           input="\n".join(questions) + "\n", capture_output=True, text=True,
                           timeout=120)
        expect(r.returncode == 0, f"rag retrieve failed: {r.stderr[-1000:]}")
        out = {}
        for line in r.stdout.splitlines():
            j = json.loads(line)
            out[j["question"]] = [p["document_id"] for p in j["passages"]]
        return out


# ---- rag ingest, killed. ----

class Corpus:
    """A folder of documents, each with a marker word; tracks what each path holds now."""

    def __init__(self, ctx, path):
        self.ctx, self.path = ctx, path
        os.makedirs(path, exist_ok=True)
        self.files = {}  # absolute path -> (sha256, marker)
        self.old_markers = set()

    def write(self, name=None):
        rng = self.ctx.rng
        mark = rc.marker(rng)
        ext, data = rc.make_document(rng, mark, rng.choice(KINDS))
        if name is None:
            name = f"doc-{mark[2:8]}.{ext}"
        else:  # keep the name (and so the path): a changed file
            data = rc.make_document(rng, mark, {"md": "md", "txt": "txt", "html": "html",
                                                "pdf": "pdf"}[name.rsplit(".", 1)[1]])[1]
        path = os.path.join(self.path, name)
        if path in self.files and self.files[path][1]:
            self.old_markers.add(self.files[path][1])
        with open(path, "wb") as f:
            f.write(data)
        self.files[path] = (sha256(data), mark)

    def mutate(self):
        rng = self.ctx.rng
        paths = sorted(p for p in self.files if os.path.exists(p))
        changed = rng.sample(paths, min(3, len(paths)))
        for path in changed:
            self.write(os.path.basename(path))
        self.write()
        # A file that leaves the folder stays stored (rag ingest never deletes): it must stay.
        gone = rng.choice([p for p in paths if p not in changed])
        os.rename(gone, os.path.join(self.ctx.work, "removed-" + os.path.basename(gone) +
                                     f"-{self.ctx.counter}"))
        self.ctx.counter += 1
        return gone


def ingest_run(ctx, data, corpus_dir, log_path, kill_after=None):
    """Runs `rag ingest` (killed after kill_after s when given); returns (exit code, {id: file})
    of the documents it logged as stored, and the seconds it ran."""
    with open(log_path, "wb") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(ctx.rag_cmd(data, "--log-level", "info", "ingest", corpus_dir,
                                            "--jobs", "2"), stdout=log, stderr=subprocess.STDOUT)
        if kill_after is None:
            code = proc.wait(300)
        else:
            try:
                code = proc.wait(kill_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                code = proc.wait()
        took = time.monotonic() - t0
    with open(log_path, errors="replace") as f:
        stored = {int(m.group(1)): m.group(2) for m in STORED_LINE.finditer(f.read())}
    return code, stored, took


def check_ingested(ctx, data, corpus, stored_ids):
    """After a complete `rag ingest`: every file one ready document with its current bytes, the
    documents logged as stored still there (or replaced by a newer version of their file), the
    markers retrieve their documents and the old markers nothing."""
    import sqlite3
    db = sqlite3.connect(os.path.join(data, "rag.db"))
    try:
        rows = db.execute("SELECT id, source_path, content_hash, status FROM documents").fetchall()
    finally:
        db.close()
    by_path = {}
    for doc_id, source, content_hash, status in rows:
        by_path.setdefault(source, []).append((doc_id, content_hash, status))
    ids = {r[0] for r in rows}
    expected = {}
    for path, (digest, mark) in corpus.files.items():
        docs = by_path.get(path, [])
        expect(len(docs) == 1, f"{path}: {len(docs)} documents {docs}, expected one")
        doc_id, content_hash, status = docs[0]
        expect(status == "ready" and content_hash == digest,
               f"{path}: document {doc_id} is {status} with hash {content_hash[:12]}, "
               f"file has {digest[:12]}")
        if mark:
            expected[mark] = doc_id
    for doc_id, filename in stored_ids.items():
        if doc_id in ids:
            continue
        # Only a newer version of the same file may have replaced it.
        newer = [r for r in rows if os.path.basename(r[1]) == filename and r[0] > doc_id]
        expect(newer, f"document {doc_id} ({filename}) was logged as stored and is gone")
    found = ctx.retrieve(data, sorted(expected) + sorted(corpus.old_markers))
    for mark, doc_id in expected.items():
        expect(found.get(mark, [None])[:1] == [doc_id],
               f"marker {mark} of document {doc_id} retrieved {found.get(mark)}")
    for mark in corpus.old_markers:
        expect(not found.get(mark), f"marker {mark} of a replaced version still retrieves "
                                    f"{found.get(mark)}")


def ingest_trials(ctx, count, log):
    corpus = data = None
    for trial in range(count):
        reuse = trial % 2 == 1
        if not reuse:
            data = ctx.fresh_dir("ingest-data")
            corpus = Corpus(ctx, ctx.fresh_dir("corpus"))
            for _ in range(10):
                corpus.write()
            for name in ("report.pdf", "two_columns.pdf"):
                src = os.path.join(rc.REPO, "tests", "data", "ingest", name)
                dst = os.path.join(corpus.path, name)
                shutil.copyfile(src, dst)
                with open(dst, "rb") as f:
                    corpus.files[dst] = (sha256(f.read()), None)
        else:
            corpus.mutate()
        # Calibrate: how long this run takes uninterrupted on this machine (on a copy).
        probe = ctx.fresh_dir("calibrate")
        shutil.rmtree(probe)
        shutil.copytree(data, probe)
        code, _, duration = ingest_run(ctx, probe, corpus.path, os.path.join(ctx.work, "calibrate.log"))
        expect(code == 0, f"uninterrupted rag ingest failed: {rc.tail(os.path.join(ctx.work, 'calibrate.log'))}")
        shutil.rmtree(probe)
        delay = ctx.rng.uniform(0.02, duration * 1.1)
        log_path = os.path.join(ctx.work, f"ingest-{trial}.log")
        code, stored, _ = ingest_run(ctx, data, corpus.path, log_path, kill_after=delay)
        # Right after the kill, before anything repairs it.
        import sqlite3
        db_path = os.path.join(data, "rag.db")
        has_schema = False
        if os.path.exists(db_path):
            ctx.check_store(data, vectors="valid" if ctx.vectors == "exact" else "none")
            db = sqlite3.connect(db_path)
            has_schema = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                                    "AND name = 'documents'").fetchone()[0] == 1
            status = dict(db.execute("SELECT id, status FROM documents").fetchall()) if has_schema else {}
            db.close()
        if not has_schema:
            # Killed before a fresh folder got its database, or while it created the schema:
            # nothing may have been reported stored.
            expect(not stored, f"trial {trial}: documents logged as stored but there is no schema: {stored}")
            status = {}
        for doc_id, filename in stored.items():
            replaced = doc_id not in status
            expect(replaced or status[doc_id] == "ready",
                   f"trial {trial}: document {doc_id} ({filename}) logged as stored is "
                   f"{status.get(doc_id)} after the kill")
        temps = rc.leftover_temp_files(data)
        # Restart: the same folder ingested again, to the end.
        code2, stored2, _ = ingest_run(ctx, data, corpus.path, log_path + ".restart")
        expect(code2 == 0, f"trial {trial}: rag ingest after the kill exited {code2}: "
                           f"{rc.tail(log_path + '.restart')}")
        ctx.check_store(data)
        check_ingested(ctx, data, corpus, {**stored, **stored2})
        expect(not rc.leftover_temp_files(data),
               f"trial {trial}: temporary files left after the restart: {rc.leftover_temp_files(data)}")
        log(f"  ingest trial {trial + 1:2d}: killed after {delay:.2f} s of {duration:.2f} "
            f"({'finished first' if code == 0 else 'SIGKILL'}; {len(stored)} documents logged "
            f"stored; {len(temps)} temp files) -> restart ok, {len(corpus.files)} files checked")


# ---- rag serve, killed. ----

class ServeLoad:
    """Uploads from 3 threads and deletes from a 4th until stopped; records what the server
    answered."""

    def __init__(self, ctx, http, collection):
        self.ctx, self.http, self.collection = ctx, http, collection
        self.lock = threading.Lock()
        self.stored = {}      # id -> (bytes, marker) of uploads answered 202/200
        self.deleted = set()  # ids whose DELETE answered 200
        self.uncertain = set()  # ids whose DELETE got no answer
        self.stop = threading.Event()
        self.seed = ctx.rng.getrandbits(32)

    def uploader(self, n):
        rng = random.Random(self.seed + n)
        while not self.stop.is_set():
            mark = rc.marker(rng)
            ext, data = rc.make_document(rng, mark, rng.choice(KINDS), rng.randint(30, 500))
            try:
                status, body = self.http.upload(f"up-{mark[2:8]}.{ext}", data, self.collection)
            except OSError:
                return  # the server is gone: the outcome of this upload is unknown
            if status in (200, 202):
                with self.lock:
                    self.stored[body["document_id"]] = (data, mark)
            elif status != 429:
                raise Failure(f"upload answered {status}: {body}")
            # About as fast as ingestion goes, so that kills find work in every stage.
            time.sleep(rng.uniform(0.0, 0.3))

    def deleter(self):
        rng = random.Random(self.seed)
        while not self.stop.wait(0.05):
            with self.lock:
                candidates = sorted(set(self.stored) - self.deleted - self.uncertain)
            if len(candidates) < 4 or rng.random() < 0.5:
                continue
            doc_id = rng.choice(candidates)
            with self.lock:
                self.uncertain.add(doc_id)
            try:
                status, body = self.http.delete(f"/v1/documents/{doc_id}")
            except OSError:
                return
            with self.lock:
                if status == 200:
                    self.deleted.add(doc_id)
                if status in (200, 409):
                    self.uncertain.discard(doc_id)
                if status not in (200, 409):
                    raise Failure(f"DELETE {doc_id} answered {status}: {body}")


def serve_trials(ctx, count, log):
    data = None
    for trial in range(count):
        if trial % 3 == 0:
            data = ctx.fresh_dir("serve-data")
        collection = f"trial{trial}"
        log_path = os.path.join(ctx.work, f"serve-{trial}.log")
        server = rc.RagServer(ctx.rag, data, log_path, [*ctx.embedder_args, "--log-level", "info"],
                              ["--mode", "extractive"])
        server.wait_ready()
        load = ServeLoad(ctx, server.http, collection)
        errors = []

        def run(fn, *a):
            try:
                fn(*a)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=run, args=(load.uploader, i)) for i in range(3)]
        threads.append(threading.Thread(target=run, args=(load.deleter,)))
        for t in threads:
            t.start()
        delay = ctx.rng.uniform(0.3, 3.0)
        time.sleep(delay)
        server.kill()
        load.stop.set()
        for t in threads:
            t.join()
        expect(not errors, f"serve trial {trial}: {errors[0] if errors else ''}")
        ctx.check_store(data, vectors="valid" if ctx.vectors == "exact" else "none")
        crashes = 1
        # Sometimes the restart itself is killed while it resumes the pending documents.
        if ctx.rng.random() < 0.35:
            again = rc.RagServer(ctx.rag, data, log_path, [*ctx.embedder_args], ["--mode", "extractive"])
            again.wait_ready()
            time.sleep(ctx.rng.uniform(0.05, 1.0))
            again.kill()
            crashes += 1
        server = rc.RagServer(ctx.rag, data, log_path, [*ctx.embedder_args], ["--mode", "extractive"])
        server.wait_ready()
        http = server.http
        docs = {d["id"]: d for d in rc.wait_until_settled(http, collection=collection)}
        kept = set(load.stored) - load.deleted - load.uncertain
        for doc_id in sorted(kept):
            data_bytes, mark = load.stored[doc_id]
            doc = docs.get(doc_id)
            expect(doc is not None, f"serve trial {trial}: document {doc_id} was accepted and is "
                                    "not listed after the restart")
            expect(doc["status"] == "ready", f"serve trial {trial}: document {doc_id} is {doc}")
            status, body = http.get(f"/v1/documents/{doc_id}/file")
            expect(status == 200 and body == data_bytes,
                   f"serve trial {trial}: document {doc_id} file answered {status}, "
                   f"{len(body)} bytes, expected {len(data_bytes)}")
            status, body = http.post_json("/v1/retrieve", {"question": mark, "document_id": doc_id,
                                                           "top_k": 1})
            expect(status == 200 and body["passages"],
                   f"serve trial {trial}: marker {mark} finds nothing in document {doc_id}")
        for doc_id in sorted(load.deleted):
            status, _ = http.get(f"/v1/documents/{doc_id}")
            expect(status == 404, f"serve trial {trial}: deleted document {doc_id} answers {status}")
            status, body = http.post_json("/v1/retrieve", {"question": load.stored[doc_id][1],
                                                           "collection": collection, "top_k": 50})
            expect(status == 200 and doc_id not in [p["document_id"] for p in body["passages"]],
                   f"serve trial {trial}: deleted document {doc_id} is still retrieved")
        extra = set(docs) - set(load.stored)
        code = server.stop()
        expect(code == 0, f"serve trial {trial}: rag serve exited {code} on SIGTERM: "
                          f"{rc.tail(log_path)}")
        ctx.check_store(data)
        expect(not rc.leftover_temp_files(data),
               f"serve trial {trial}: temporary files left: {rc.leftover_temp_files(data)}")
        # BM25 alone: each marker finds its own document first, deleted ones find nothing.
        markers = {load.stored[i][1]: i for i in kept | load.deleted}
        found = ctx.retrieve(data, sorted(markers))
        for mark, doc_id in markers.items():
            want = [] if doc_id in load.deleted else [doc_id]
            expect(found.get(mark, [])[:1] == want,
                   f"serve trial {trial}: marker of document {doc_id} retrieves {found.get(mark)}, "
                   f"expected {want}")
        log(f"  serve trial {trial + 1:2d}: killed after {delay:.2f} s ({crashes} crash"
            f"{'es' if crashes > 1 else ''}): {len(kept)} accepted documents ready and intact, "
            f"{len(load.deleted)} deleted stay deleted, {len(extra)} unanswered uploads stored")


# ---- Full disk. ----

DISK_MIB = 2  # the size of the small file system
DISK_ERROR = re.compile(r"disk full|no space|file too large|database or disk is full|"
                        r"not enough space", re.I)


def disk_limit(ctx, how):
    """('tmpfs', mount point) when a DISK_MIB tmpfs can be mounted here, ('fsize', bytes) when
    RLIMIT_FSIZE can be lowered, else None. how: auto (tmpfs, else fsize), tmpfs or fsize."""
    mnt = os.path.join(ctx.work, "small-fs")
    os.makedirs(mnt)
    if how != "fsize" and os.geteuid() == 0 and shutil.which("mount"):
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % DISK_MIB, "tmpfs", mnt],
                           capture_output=True)
        if r.returncode == 0:
            return "tmpfs", mnt
    if how == "tmpfs":
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if hard == resource.RLIM_INFINITY or hard >= DISK_MIB << 20:
        return "fsize", DISK_MIB << 20
    return None


def fsize_limit(limit):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    return apply


def full_disk(ctx, log, how):
    limit = disk_limit(ctx, how)
    if limit is None:
        print("SKIP: cannot mount a tmpfs (not root) nor lower RLIMIT_FSIZE here")
        return rc.SKIP_EXIT_CODE
    kind, value = limit
    mnt = value if kind == "tmpfs" else None
    preexec = fsize_limit(value) if kind == "fsize" else None
    log(f"  limited by {f'a {DISK_MIB} MiB tmpfs' if mnt else f'RLIMIT_FSIZE {value >> 20} MiB'}")
    try:
        data = os.path.join(mnt, "data") if mnt else ctx.fresh_dir("disk-data")
        corpus = Corpus(ctx, ctx.fresh_dir("disk-corpus"))
        for _ in range(5):
            corpus.write()
        r = subprocess.run(ctx.rag_cmd(data, "ingest", corpus.path), capture_output=True,
                           text=True, preexec_fn=preexec, timeout=300)
        expect(r.returncode == 0, f"ingest of the first documents failed: {r.stderr[-2000:]}")
        # A file that cannot fit: ~3 MB of text (the database alone needs more room than that).
        big_dir = ctx.fresh_dir("big")
        rng = ctx.rng
        big = os.path.join(big_dir, "big.txt")
        with open(big, "w") as f:
            for _ in range(3000):
                f.write(" ".join(rc.marker(rng) for _ in range(80)) + "\n")
        r = subprocess.run(ctx.rag_cmd(data, "ingest", big), capture_output=True, text=True,
                           preexec_fn=preexec, timeout=600)
        expect(r.returncode != 0, "rag ingest of a file larger than the disk reported success")
        errors = [line for line in r.stderr.splitlines() if line.startswith("rag ingest:")]
        expect(errors and DISK_ERROR.search(errors[0]),
               f"rag ingest on a full disk: expected one clear line, got {r.stderr[-1500:]}")
        log(f"  rag ingest on a full disk exits {r.returncode}: {errors[0][:160]}")
        ctx.check_store(data, vectors="valid" if ctx.vectors == "exact" else "none")
        r = subprocess.run(ctx.rag_cmd(data, "ingest", corpus.path), capture_output=True,
                           text=True, preexec_fn=preexec, timeout=300)
        expect(r.returncode == 0 and "0 new" in r.stdout,
               f"the earlier documents are not intact after the full disk: {r.stdout} {r.stderr[-1000:]}")
        check_ingested(ctx, data, corpus, {})

        # rag serve on the full disk.
        log_path = os.path.join(ctx.work, "disk-serve.log")
        server = rc.RagServer(ctx.rag, data, log_path, [*ctx.embedder_args, "--log-level", "warn"],
                              ["--mode", "extractive"], preexec_fn=preexec)
        server.wait_ready()
        http = server.http
        with open(big, "rb") as f:
            big_bytes = f.read()
        status, body = http.upload("big.txt", big_bytes)
        expect(status == 507 and isinstance(body, dict) and DISK_ERROR.search(body["error"]["message"]),
               f"an upload larger than the room left answered {status}: {str(body)[:300]}")
        log(f"  upload of {len(big_bytes) >> 20} MB on the full disk: {status} "
            f"{body['error']['message'][:120]}")
        accepted, refused = {}, 0
        # Until the disk is full: 100 KB PDFs of few words (they fill a small file system and
        # are quick to ingest) and, under RLIMIT_FSIZE, text that grows the database past it.
        for i in range(200 if mnt else 60):
            mark = rc.marker(rng)
            if mnt:
                words = " ".join(rc.marker(rng) for _ in range(11))
                name, data_bytes = f"fill-{i}.pdf", rc.make_pdf([[f"Filler {mark} " + words] * 5],
                                                                padding=100 << 10)
            else:
                name, data_bytes = f"fill-{i}.txt", rc.make_document(rng, mark, "txt", 1500)[1]
            status, body = http.upload(name, data_bytes)
            if status == 202:
                accepted[body["document_id"]] = (data_bytes, mark, body["job_id"])
            else:
                expect(status == 507, f"upload on a full disk answered {status}: {str(body)[:300]}")
                refused += 1
                if refused >= 3:
                    break
        health_status, health = http.get("/healthz")
        expect(health_status == 200, f"/healthz answers {health_status} on a full disk")
        # Every job ends: done, or failed for lack of room (its document then says so, or stays
        # queued when even that could not be written: the next start resumes it).
        jobs = {}
        deadline = time.monotonic() + 120
        for doc_id, (_, _, job_id) in accepted.items():
            while True:
                status, job = http.get(f"/v1/jobs/{job_id}")
                expect(status == 200, f"job {job_id}: {status} {job}")
                if job["state"] in ("done", "failed") or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            expect(job["state"] == "done" or DISK_ERROR.search(job.get("error", "")),
                   f"job {job_id} of document {doc_id}: {job}")
            jobs[doc_id] = job["state"]
        docs = {d["id"]: d for d in http.get("/v1/documents")[1]["documents"]}
        states = {}
        for doc_id in accepted:
            d = docs[doc_id]
            states[d["status"]] = states.get(d["status"], 0) + 1
            expect(d["status"] in ("ready", "failed", "queued", "processing"), f"{d}")
            expect(d["status"] != "ready" or jobs[doc_id] == "done", f"{d}: job {jobs[doc_id]}")
            if d["status"] == "failed":
                expect(DISK_ERROR.search(d.get("error", "")),
                       f"document {doc_id} failed for another reason: {d.get('error')}")
        expect(refused or states.get("failed") or states.get("queued"), "the disk never filled up")
        log(f"  {len(accepted)} uploads accepted, {refused} refused with 507; documents: "
            + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
        server.kill()
        ctx.check_store(data, vectors="valid" if ctx.vectors == "exact" else "none")

        # Room again: every accepted upload must make it (failed ones by uploading them again).
        if mnt:
            subprocess.run(["mount", "-o", "remount,size=256m", mnt], check=True)
        server = rc.RagServer(ctx.rag, data, log_path, [*ctx.embedder_args, "--log-level", "warn"],
                              ["--mode", "extractive"])
        server.wait_ready()
        http = server.http
        rc.wait_for_jobs(http)
        for doc_id, (data_bytes, mark, _) in accepted.items():
            status, doc = http.get(f"/v1/documents/{doc_id}")
            expect(status == 200, f"accepted document {doc_id} is gone: {status}")
            if doc["status"] == "failed":
                status, body = http.upload(doc["filename"], data_bytes)
                expect(status == 202 and body["document_id"] == doc_id,
                       f"uploading failed document {doc_id} again answered {status}: {body}")
        rc.wait_for_jobs(http)
        docs = {d["id"]: d for d in rc.wait_until_settled(http)}
        for doc_id, (data_bytes, mark, _) in accepted.items():
            expect(docs[doc_id]["status"] == "ready", f"document {doc_id}: {docs[doc_id]}")
            status, body = http.get(f"/v1/documents/{doc_id}/file")
            expect(status == 200 and body == data_bytes, f"document {doc_id}: file changed")
        mark = rc.marker(rng)
        status, body = http.upload("after.txt", rc.make_document(rng, mark, "txt", 3000)[1])
        expect(status == 202, f"an upload after the disk has room again answered {status}")
        rc.wait_for_jobs(http)
        code = server.stop()
        expect(code == 0, f"rag serve exited {code}")
        ctx.check_store(data)
        log(f"  with room again: all {len(accepted)} accepted uploads ready with their bytes")
    finally:
        if mnt:
            subprocess.run(["umount", "-l", mnt], capture_output=True)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rag")
    parser.add_argument("--part", choices=("kill", "disk", "all"), default="all")
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--embedder", default="tiny")
    parser.add_argument("--disk", choices=("auto", "tmpfs", "fsize"), default="auto",
                        help="how --part disk limits the room: a small tmpfs, RLIMIT_FSIZE, or "
                             "the first that works here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    if not os.access(args.rag, os.X_OK):
        print(f"FAIL: {args.rag} is not an executable")
        return 1
    work = tempfile.mkdtemp(prefix="rag-crash-")
    t0 = time.monotonic()

    def log(msg):
        print(f"[{time.monotonic() - t0:6.1f}s] {msg}", flush=True)

    log(f"seed {args.seed} (rerun with --seed {args.seed}), work folder {work}")
    ctx = Context(args, work)
    code = 0
    try:
        if args.part in ("kill", "all"):
            ingest_trials(ctx, (args.trials + 1) // 2, log)
            serve_trials(ctx, args.trials // 2, log)
            log(f"kill: {args.trials} trials passed")
        if args.part in ("disk", "all"):
            code = full_disk(ctx, log, args.disk)
            if code == 0:
                log("full disk: passed")
    except AssertionError as e:
        print(f"FAIL (seed {args.seed}): {e}", flush=True)
        args.keep = True
        code = 1
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
