#!/usr/bin/env python3
"""Soak (docs/RELIABILITY.md): mixed uploads, queries and deletes against `rag serve` on loopback
at concurrency 32 for a while, then an account of every document.

  soak_test.py RAG_BINARY [--duration S] [--concurrency N] [--embedder bundled|tiny|none|DIR]
                          [--mode extractive|model] [--json OUT] [--seed S] [--keep]

ctest (integration.soak) runs 25 s; the documented run is 10 minutes (bench/soak.sh). Each of N
workers keeps one keep-alive connection and loops over: POST /v1/query (40%), POST
/v1/retrieve (15%), POST /v1/documents (15%; a few hundred words with a marker word of their
own; skipped while 2N uploads are still being ingested), DELETE /v1/documents/{id} of a ready
document it uploaded (8%), GET /v1/documents, /v1/documents/{id}, /v1/jobs/{id} and /healthz.
It counts every status by route and samples the server's VmRSS every 2 s.

Passes when:
  - no response is a 5xx, and every 4xx is a deliberate one: 429 (ingestion queue full) or 409
    (deleting a document whose ingestion is running); no connection fails;
  - the server's memory is steady: the median RSS of the last fifth of the run is at most 1.3x
    that of the second fifth (after warm-up) + 48 MiB (not judged for a sanitized binary);
  - at the end (after the queue drains): every document uploaded and not deleted is listed,
    ready, and found by its marker (POST /v1/retrieve with its document_id); no deleted one is
    listed; nothing else is listed; the server exits 0 on SIGTERM; the data folder passes
    check_store (SQLite, FTS5 and vector index in agreement).
The figures (requests by route and status, rates, latencies, RSS samples) go to stdout and, with
--json, to a file.
"""
import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reliability_common as rc  # noqa: E402

DELIBERATE = {429, 409}


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects after the server closed it."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                ctype = r.getheader("Content-Type", "")
                return r.status, json.loads(data) if ctype.startswith("application/json") else data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A keep-alive connection the server closed while idle: once more, afresh.
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")


class Soak:
    def __init__(self, args, port):
        self.args = args
        self.port = port
        self.lock = threading.Lock()
        self.counts = {}      # (route, status) -> n
        self.latency = {}     # route -> [seconds]
        self.errors = []      # unexpected answers and connection failures
        self.docs = {}        # id -> {"marker", "owner", "state": pending|ready|deleting|deleted|failed}
        self.pending = 0      # uploads not yet seen ready
        self.stop = threading.Event()
        self.rng = random.Random(args.seed)

    def record(self, route, status, seconds, body=None):
        with self.lock:
            self.counts[(route, status)] = self.counts.get((route, status), 0) + 1
            self.latency.setdefault(route, []).append(seconds)
            if status >= 500 or (400 <= status < 500 and status not in DELIBERATE):
                self.errors.append(f"{route} -> {status}: {str(body)[:300]}")

    def call(self, conn, route, method, path, body=None, headers=None):
        t0 = time.monotonic()
        try:
            status, reply = conn.request(method, path, body, headers)
        except (OSError, http.client.HTTPException) as e:
            with self.lock:
                self.errors.append(f"{route}: connection failed: {e!r}")
                self.counts[(route, "conn-error")] = self.counts.get((route, "conn-error"), 0) + 1
            return None, None
        self.record(route, status, time.monotonic() - t0, reply)
        return status, reply

    def post_json(self, conn, route, obj):
        return self.call(conn, route, "POST", route, json.dumps(obj).encode(),
                         {"Content-Type": "application/json"})

    def worker(self, n):
        rng = random.Random(self.args.seed * 1000 + n)
        conn = Connection(self.port)
        while not self.stop.is_set():
            op = rng.random()
            if op < 0.40:
                self.query(conn, rng, "/v1/query")
            elif op < 0.55:
                self.query(conn, rng, "/v1/retrieve")
            elif op < 0.70:
                if not self.upload(conn, rng, n):
                    self.query(conn, rng, "/v1/query")
            elif op < 0.78:
                self.delete(conn, rng, n)
            elif op < 0.86:
                self.call(conn, "GET /v1/documents", "GET", "/v1/documents")
            elif op < 0.94:
                self.check_one(conn, rng, n)
            else:
                self.call(conn, "GET /healthz", "GET", "/healthz")

    def question(self, rng):
        with self.lock:
            live = [d["marker"] for d in self.docs.values() if d["state"] == "ready"]
        words = rng.sample(rc._WORDS, 3)
        if live and rng.random() < 0.5:
            words.append(rng.choice(live))
        return "What does the ledger say about the " + " and the ".join(words) + "?"

    def query(self, conn, rng, route):
        status, body = self.post_json(conn, route, {"question": self.question(rng),
                                                    "top_k": rng.choice([3, 5, 8])})
        if status == 200 and not isinstance(body, dict):
            with self.lock:
                self.errors.append(f"{route}: 200 without JSON")

    def upload(self, conn, rng, n):
        with self.lock:
            if self.pending >= 2 * self.args.concurrency:
                return False
            self.pending += 1
        mark = rc.marker(rng)
        ext, data = rc.make_document(rng, mark, rng.choice(["md", "txt", "html", "txt", "pdf"]),
                                     rng.randint(60, 400))
        boundary = "----soak-" + uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"soak-{mark[2:8]}.{ext}\"\r\nContent-Type: application/octet-stream"
                f"\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        status, reply = self.call(conn, "POST /v1/documents", "POST", "/v1/documents", body,
                                  {"Content-Type": "multipart/form-data; boundary=" + boundary})
        with self.lock:
            if status == 202:
                self.docs[reply["document_id"]] = {"marker": mark, "owner": n, "state": "pending",
                                                   "job": reply["job_id"]}
            else:
                self.pending -= 1
        return True

    def delete(self, conn, rng, n):
        with self.lock:
            mine = [i for i, d in self.docs.items() if d["owner"] == n and d["state"] == "ready"]
            if not mine:
                return
            doc_id = rng.choice(mine)
            self.docs[doc_id]["state"] = "deleting"
        status, _ = self.call(conn, "DELETE /v1/documents/{id}", "DELETE", f"/v1/documents/{doc_id}")
        with self.lock:
            self.docs[doc_id]["state"] = "deleted" if status == 200 else "ready"
            if status is None:
                self.docs[doc_id]["state"] = "unknown"

    def check_one(self, conn, rng, n):
        """GET a pending document's job or one of this worker's documents (only its owner
        deletes a document, so no GET races a DELETE: a 404 is then an error); notes when
        uploads become ready."""
        with self.lock:
            pending = [(i, d["job"]) for i, d in self.docs.items() if d["state"] == "pending"]
            ready = [i for i, d in self.docs.items() if d["state"] == "ready" and d["owner"] == n]
        if pending and rng.random() < 0.7:
            doc_id, job = rng.choice(pending)
            status, body = self.call(conn, "GET /v1/jobs/{id}", "GET", f"/v1/jobs/{job}")
            if status == 200 and body["state"] in ("done", "failed"):
                with self.lock:
                    if self.docs[doc_id]["state"] == "pending":
                        self.docs[doc_id]["state"] = "ready" if body["state"] == "done" else "failed"
                        self.pending -= 1
                    if body["state"] == "failed":
                        self.errors.append(f"upload {doc_id} failed to ingest: {body.get('error')}")
        elif ready:
            doc_id = rng.choice(ready)
            status, body = self.call(conn, "GET /v1/documents/{id}", "GET", f"/v1/documents/{doc_id}")


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model})" if model else f"{os.cpu_count()} CPUs"


def percentile(values, q):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rag")
    parser.add_argument("--duration", type=float, default=25)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--embedder", default="bundled",
                        help="bundled (models/all-MiniLM-L6-v2, else none), tiny, none or a directory")
    parser.add_argument("--mode", default="extractive", choices=("extractive", "model"))
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    work = tempfile.mkdtemp(prefix="rag-soak-")
    t_start = time.monotonic()

    def log(msg):
        print(f"[{time.monotonic() - t_start:7.1f}s] {msg}", flush=True)

    if args.embedder == "bundled":
        bundled = os.path.join(rc.REPO, "models", "all-MiniLM-L6-v2")
        embedder = bundled if os.path.exists(os.path.join(bundled, "model.safetensors")) else "none"
    elif args.embedder == "tiny":
        embedder = rc.write_tiny_embedder(os.path.join(work, "tiny-bert"))
    else:
        embedder = args.embedder
    data = os.path.join(work, "data")
    log_path = os.path.join(work, "serve.log")
    server = rc.RagServer(os.path.abspath(args.rag), data, log_path,
                          ["--embedder", embedder, "--log-level", "warn"],
                          ["--mode", args.mode, "--threads", "4"])
    failures = []
    try:
        server.wait_ready()
        log(f"seed {args.seed}; rag serve pid {server.proc.pid} on port {server.port}, embedder "
            f"{os.path.basename(embedder)}, {args.concurrency} workers for {args.duration:.0f} s")
        soak = Soak(args, server.port)
        load_at_start = list(os.getloadavg())
        # AddressSanitizer's quarantine keeps freed memory for a while: its RSS is not judged.
        with open(f"/proc/{server.proc.pid}/maps") as f:
            sanitized = "asan" in f.read()
        rss = []  # (seconds, KiB)
        threads = [threading.Thread(target=soak.worker, args=(i,), daemon=True)
                   for i in range(args.concurrency)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        next_report = t0 + 60
        while time.monotonic() - t0 < args.duration:
            time.sleep(min(2.0, max(0.0, args.duration - (time.monotonic() - t0))))
            kib = server.rss_kib()
            if kib is None:
                failures.append("the server died during the soak: " + rc.tail(log_path))
                break
            rss.append((time.monotonic() - t0, kib))
            if time.monotonic() >= next_report:
                with soak.lock:
                    total = sum(soak.counts.values())
                    docs = sum(1 for d in soak.docs.values() if d["state"] in ("ready", "pending"))
                log(f"  {total} requests, {len(soak.errors)} errors, {docs} documents live, "
                    f"RSS {kib / 1024:.0f} MiB")
                next_report += 60
        soak.stop.set()
        for t in threads:
            t.join(120)
        elapsed = time.monotonic() - t0

        # The account: drain the queue, then every document.
        http_ = rc.Http(server.port, timeout=60)
        rc.wait_for_jobs(http_, timeout=600)
        listed = {d["id"]: d for d in rc.wait_until_settled(http_, timeout=120)}
        kept = {i: d for i, d in soak.docs.items() if d["state"] in ("ready", "pending")}
        deleted = {i for i, d in soak.docs.items() if d["state"] == "deleted"}
        uncertain = {i for i, d in soak.docs.items() if d["state"] == "unknown"}
        for doc_id, d in kept.items():
            doc = listed.get(doc_id)
            if doc is None or doc["status"] != "ready":
                failures.append(f"document {doc_id} (uploaded, not deleted) is {doc and doc['status']}")
                continue
            status, body = http_.post_json("/v1/retrieve", {"question": d["marker"],
                                                            "document_id": doc_id, "top_k": 10})
            if status != 200 or not any(d["marker"] in p["text"].lower() for p in body["passages"]):
                failures.append(f"document {doc_id}: its marker {d['marker']} is not retrieved")
        for doc_id in deleted:
            if doc_id in listed:
                failures.append(f"deleted document {doc_id} is still listed")
        extra = set(listed) - set(kept) - uncertain
        if extra:
            failures.append(f"documents nobody uploaded (or that were deleted) are listed: {sorted(extra)[:10]}")
        final_rss = server.rss_kib()
        code = server.stop()
        if code != 0:
            failures.append(f"rag serve exited {code} on SIGTERM")
        problems = rc.check_store(data, "none" if embedder == "none" else "exact")
        failures += [f"data folder: {p}" for p in problems]

        # Figures.
        requests = sum(v for (r, s), v in soak.counts.items())
        by_route = {}
        for (route, status), v in sorted(soak.counts.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
            by_route.setdefault(route, {})[str(status)] = v
        samples = [k for _, k in rss]
        fifth = max(1, len(samples) // 5)
        warm = statistics.median(samples[fifth:2 * fifth]) if len(samples) >= 5 else (samples[0] if samples else 0)
        last = statistics.median(samples[-fifth:]) if samples else 0
        steady = sanitized or last <= warm * 1.3 + 48 * 1024
        after = [(t, k / 1024) for t, k in rss[fifth:]]
        slope = 0.0  # MiB per minute after warm-up (least squares)
        if len(after) >= 2:
            mt = statistics.mean(t for t, _ in after)
            mk = statistics.mean(k for _, k in after)
            var = sum((t - mt) ** 2 for t, _ in after)
            slope = 60 * sum((t - mt) * (k - mk) for t, k in after) / var if var else 0.0
        if not steady:
            failures.append(f"memory grew: median RSS {warm / 1024:.0f} MiB after warm-up, "
                            f"{last / 1024:.0f} MiB at the end")
        failures += soak.errors[:20]
        report = {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine(), "load_average_at_start": load_at_start,
            "load_average_at_end": list(os.getloadavg()),
            "duration_s": round(elapsed, 1), "concurrency": args.concurrency, "seed": args.seed,
            "embedder": os.path.basename(embedder), "mode": args.mode, "sanitized": sanitized,
            "requests": requests, "requests_per_s": round(requests / elapsed, 1),
            "errors": len(soak.errors),
            "by_route": by_route,
            "latency_ms": {route: {"p50": round(percentile(v, 0.5) * 1000, 1),
                                   "p99": round(percentile(v, 0.99) * 1000, 1),
                                   "max": round(max(v) * 1000, 1)}
                           for route, v in sorted(soak.latency.items())},
            "documents": {"uploaded": len(soak.docs), "deleted": len(deleted),
                          "kept_and_verified": len(kept), "uncertain": len(uncertain)},
            "rss_mib": {"first": round(samples[0] / 1024, 1) if samples else None,
                        "after_warmup_median": round(warm / 1024, 1),
                        "last_fifth_median": round(last / 1024, 1),
                        "max": round(max(samples) / 1024, 1) if samples else None,
                        "at_end": round((final_rss or 0) / 1024, 1),
                        "slope_after_warmup_mib_per_min": round(slope, 2),
                        "samples": [[round(t, 1), round(k / 1024, 1)] for t, k in rss]},
            "passed": not failures,
        }
        log(f"{requests} requests in {elapsed:.0f} s ({requests / elapsed:.1f}/s), "
            f"{len(soak.errors)} unexpected answers; {report['machine']}, load average "
            f"{load_at_start[0]:.2f} at the start, {report['load_average_at_end'][0]:.2f} at the end")
        for route, statuses in by_route.items():
            lat = report["latency_ms"].get(route, {})
            log(f"  {route:28s} {json.dumps(statuses):40s} p50 {lat.get('p50')} ms, p99 {lat.get('p99')} ms")
        log(f"  documents: {len(soak.docs)} uploaded, {len(deleted)} deleted, {len(kept)} kept and "
            f"verified, {len(uncertain)} uncertain")
        log(f"  RSS: {report['rss_mib']['first']} MiB first sample, {report['rss_mib']['after_warmup_median']} "
            f"after warm-up, {report['rss_mib']['last_fifth_median']} in the last fifth, max "
            f"{report['rss_mib']['max']} MiB, {slope:+.2f} MiB/min after warm-up")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1)
    except AssertionError as e:
        failures.append(str(e))
    finally:
        if server.proc.poll() is None:
            server.kill()
    if failures:
        print("FAIL: " + "\n  ".join(failures[:30]))
        print(f"server log: {rc.tail(log_path, 3000)}")
        print(f"work folder kept: {work}")
        return 1
    if args.keep:
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
