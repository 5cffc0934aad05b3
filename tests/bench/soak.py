"""Load and soak: a steady request rate on loopback for minutes, then errors, latency and memory.

    .venv/bin/python -m tests.bench.soak --rate 50 --minutes 10            # starts gunicorn itself
    .venv/bin/python -m tests.bench.soak --url http://127.0.0.1:8080 --pid 1234 --rate 20 --minutes 2
    .venv/bin/python -m tests.bench.soak --postgres --rate 50 --minutes 5    # a throw-away PostgreSQL

Open loop: request i is sent at start + i/rate whatever the previous ones are doing, so a slow
server shows up as latency (and as "late" sends when every client thread is busy), not as a
politely lower rate. The mix is what an EHR sends: mecasermin order-select and order-sign with a
full prefetch, order-select for other drugs (most calls in real life), discovery and feedback.
Each mecasermin call carries a different patient (new ids, jittered values) unless
`--same-patient`, so caches keyed by content fill up and a leak cannot hide behind them.

Prints a line every `--every` seconds and a summary: requests, errors (non-2xx, timeouts,
connection failures), latency p50/p95/p99/max and the resident memory (RSS) of the server's
processes after warm-up and at the end. A script that prints figures, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.fixtures import order_select_request, order_sign_request

SELECT = "/cds-services/mecasermin-order-select"
SIGN = "/cds-services/mecasermin-order-sign"


# ----------------------------------------------------------------------------- the request mix

def _other_drug() -> dict:
    body = order_select_request(prefetch=None)
    body["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"] = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "308182",
                    "display": "amoxicillin 250 MG Oral Capsule"}],
        "text": "amoxicillin 250 MG Oral Capsule"}
    return body


# Cards the service issued on order-select: feedback is accepted only for them.
ISSUED: list[str] = []
ISSUED_LOCK = threading.Lock()


def _remember_cards(body: dict) -> None:
    with ISSUED_LOCK:
        ISSUED.extend(card["uuid"] for card in body.get("cards", []))
        del ISSUED[:-1000]


def _feedback() -> dict:
    with ISSUED_LOCK:
        card = random.choice(ISSUED)
    return {"feedback": [{"card": card, "outcome": "overridden",
                          "overrideReason": {"reason": {"system": "http://example.org/override-reasons",
                                                        "code": "patient-declined", "display": "Patient declined"}},
                          "outcomeTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]}


def _varied(body: dict) -> dict:
    """Another patient each time: new ids and slightly different values, so that no per-content
    cache can hide a leak (every resource hashes differently)."""
    suffix = uuid.uuid4().hex[:10]
    jitter = random.Random(suffix)
    text = json.dumps(body).replace('"p1"', f'"p-{suffix}"').replace("Patient/p1", f"Patient/p-{suffix}")
    body = json.loads(text)
    for value in (body.get("prefetch") or {}).values():
        for entry in (value or {}).get("entry", []) if isinstance(value, dict) else ():
            resource = entry.get("resource", {})
            resource["id"] = f"{resource.get('id', 'r')}-{suffix}"
            quantity = resource.get("valueQuantity")
            if isinstance(quantity, dict) and isinstance(quantity.get("value"), (int, float)):
                quantity["value"] = round(quantity["value"] * jitter.uniform(0.98, 1.02), 1)
    return body


VARY = True

MIX = [  # (weight, label, method, path, body factory)
    (35, "select-mecasermin", "POST", SELECT, lambda: _maybe_varied(order_select_request())),
    (15, "sign-mecasermin", "POST", SIGN, lambda: _maybe_varied(order_sign_request())),
    (35, "select-other-drug", "POST", SELECT, _other_drug),
    (10, "discovery", "GET", "/cds-services", None),
    (5, "feedback", "POST", SELECT + "/feedback", _feedback),
]


def _maybe_varied(body: dict) -> dict:
    return _varied(body) if VARY else body


def pick(rng: random.Random) -> tuple:
    total = sum(m[0] for m in MIX)
    x = rng.uniform(0, total)
    for entry in MIX:
        x -= entry[0]
        if x <= 0:
            return entry
    return MIX[-1]


# ----------------------------------------------------------------------------- measurements

@dataclass
class Stats:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    late: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, label: str, status: int | str, ms: float) -> None:
        with self.lock:
            self.latencies_ms.append(ms)
            self.statuses[status] += 1
            if not (isinstance(status, int) and 200 <= status < 300):
                self.errors[f"{label}:{status}"] += 1

    def snapshot(self) -> tuple[list[float], Counter, Counter]:
        with self.lock:
            return list(self.latencies_ms), Counter(self.statuses), Counter(self.errors)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def process_tree(root: int) -> list[int]:
    """`root` and its descendants (gunicorn master and workers), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return sorted(found)


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def memory(roots: list[int]) -> dict[int, int]:
    pids = sorted({pid for root in roots for pid in process_tree(root)})
    return {pid: kib for pid in pids if (kib := rss_kib(pid)) is not None}


def fmt_mem(m: dict[int, int]) -> str:
    return f"{sum(m.values()) / 1024:.1f} MiB over {len(m)} processes (" + \
        ", ".join(f"{pid}:{kib / 1024:.1f}" for pid, kib in sorted(m.items())) + ")"


# ----------------------------------------------------------------------------- server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(workers: int, database_url: str, log_path: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "CDS_DATABASE_URL": database_url, "CDS_LOG_LEVEL": "WARNING",
           "CDS_WORKERS": str(workers)}
    log = open(log_path, "ab")
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers)],
        env=env, stdout=log, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}; see {log_path}")
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return server, url
        except requests.RequestException:
            pass
        time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not become healthy within 60 s")


# ----------------------------------------------------------------------------- the run

def run(url: str, rate: float, seconds: float, every: float, roots: list[int], threads: int,
        timeout: float, seed: int) -> int:
    rng = random.Random(seed)
    stats = Stats()
    local = threading.local()
    # A fresh body per send: new hookInstance and feedback card ids, as a real EHR would send.
    templates = {label: (method, path, factory) for _, label, method, path, factory in MIX}

    def send(label: str) -> None:
        method, path, factory = templates[label]
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        data = None
        if factory is not None:
            data = json.dumps(factory())
        started = time.perf_counter()
        try:
            response = session.request(method, url + path, data=data, timeout=timeout,
                                       headers={"Content-Type": "application/json"} if data else None)
            status: int | str = response.status_code
            answer = response.json()              # every answer must be JSON
            if label == "select-mecasermin" and status == 200:
                _remember_cards(answer)
        except requests.Timeout:
            status = "timeout"
        except requests.ConnectionError:
            status = "connection-error"
        except ValueError:
            status = f"{status}-not-json"
        stats.add(label, status, (time.perf_counter() - started) * 1000)

    # Warm up (imports, pools, SQLite pages) before the memory baseline; the first call issues the
    # cards that feedback is about.
    send("select-mecasermin")
    with ThreadPoolExecutor(max_workers=4) as warm:
        list(warm.map(send, [label for _, label, *_ in MIX] * 4))
    stats = Stats()
    baseline = memory(roots) if roots else {}
    print(f"soak: {rate:g} req/s for {seconds / 60:g} min against {url}; {threads} client threads", flush=True)
    if baseline:
        print(f"  RSS after warm-up: {fmt_mem(baseline)}", flush=True)

    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="soak")
    in_flight = threading.BoundedSemaphore(threads)
    start = time.monotonic()
    total = int(rate * seconds)
    next_report = start + every
    last_count = 0

    def guarded(label: str) -> None:
        try:
            send(label)
        finally:
            in_flight.release()

    for i in range(total):
        target = start + i / rate
        now = time.monotonic()
        if target > now:
            time.sleep(target - now)
        elif now - target > 0.5:
            stats.late += 1
        in_flight.acquire()
        pool.submit(guarded, pick(rng)[1])
        if time.monotonic() >= next_report:
            latencies, statuses, errors = stats.snapshot()
            window = latencies[last_count:]
            last_count = len(latencies)
            mem = memory(roots) if roots else {}
            print(f"  t={time.monotonic() - start:6.0f}s sent={i + 1} done={len(latencies)} "
                  f"errors={sum(errors.values())} p50={percentile(window, 50):.1f} "
                  f"p95={percentile(window, 95):.1f} p99={percentile(window, 99):.1f} ms"
                  + (f" rss={sum(mem.values()) / 1024:.1f} MiB" if mem else ""), flush=True)
            next_report += every
    pool.shutdown(wait=True)
    elapsed = time.monotonic() - start
    latencies, statuses, errors = stats.snapshot()
    final = memory(roots) if roots else {}

    print("summary:")
    print(f"  requests     {len(latencies)} in {elapsed:.0f} s ({len(latencies) / elapsed:.1f} req/s achieved)")
    print(f"  errors       {sum(errors.values())}" + (f"  {dict(errors)}" if errors else ""))
    print(f"  statuses     {dict(sorted(statuses.items(), key=str))}")
    print(f"  late sends   {stats.late} (sent > 0.5 s after their slot: client saturated)")
    print(f"  latency ms   p50={percentile(latencies, 50):.1f}  p95={percentile(latencies, 95):.1f}  "
          f"p99={percentile(latencies, 99):.1f}  max={max(latencies, default=float('nan')):.1f}")
    if baseline and final:
        before, after = sum(baseline.values()), sum(final.values())
        print(f"  RSS start    {fmt_mem(baseline)}")
        print(f"  RSS end      {fmt_mem(final)}")
        print(f"  RSS growth   {(after - before) / 1024:+.1f} MiB ({(after - before) / before * 100:+.1f} %)")
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running service; default: start gunicorn on a free loopback port")
    parser.add_argument("--pid", type=int, action="append", default=[],
                        help="with --url: server process (its children count too) whose RSS to track")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second (default 50)")
    parser.add_argument("--minutes", type=float, default=10.0, help="duration (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers when started here (default 2)")
    parser.add_argument("--threads", type=int, default=32, help="client threads (default 32)")
    parser.add_argument("--timeout", type=float, default=10.0, help="client timeout per request, seconds")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between progress lines")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--postgres", action="store_true",
                        help="store in a throw-away PostgreSQL (Debian's package, fsync on) instead of SQLite")
    parser.add_argument("--same-patient", action="store_true",
                        help="send the same chart every time (default: a different patient per call)")
    args = parser.parse_args(argv)
    global VARY
    VARY = not args.same_patient

    if args.url:
        return run(args.url.rstrip("/"), args.rate, args.minutes * 60, args.every, args.pid, args.threads,
                   args.timeout, args.seed)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, ExitStack() as stack:
        log_path = f"{tmp}/server.log"
        database_url = f"sqlite:///{tmp}/soak.sqlite3"
        if args.postgres:
            from tests.integration.replicas import PostgresServer, require_packages

            postgres = PostgresServer(require_packages(), fsync=True)
            stack.callback(postgres.stop)
            database_url = postgres.url
        server, url = start_gunicorn(args.workers, database_url, log_path)
        try:
            return run(url, args.rate, args.minutes * 60, args.every, [server.pid], args.threads,
                       args.timeout, args.seed)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
            db = Path(f"{tmp}/soak.sqlite3")
            if db.exists():
                print(f"  database     {db.stat().st_size / 1024:.0f} KiB (+ WAL "
                      f"{Path(str(db) + '-wal').stat().st_size / 1024 if Path(str(db) + '-wal').exists() else 0:.0f} KiB)")
            errors_logged = sum(1 for line in open(log_path, errors="replace") if '"level":"ERROR"' in line)
            print(f"  server log   {errors_logged} ERROR lines")


if __name__ == "__main__":
    sys.exit(main())
