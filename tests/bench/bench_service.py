"""`make bench`: the service against a floor, measured interleaved in one run.

The floor is the least any Flask service can do with the same call: a Flask app in the same
process that parses the same body with `json.loads` and answers `{"cards": []}`. Each figure is
printed as the service's time, the floor's and their ratio, so that a loaded machine slows both
alike (the ratio is the figure to compare with the goals in docs/architecture.md). The chart is the
Laron patient padded to ~300 resources (~170 kB) and sent as prefetch:

- repeated: the same chart on every call (order-select resends it on every edit of an order);
- first-seen: new resource ids on every call, so no per-content cache helps;
- another drug: amoxicillin with the same prefetch (most calls in real life);
- 5,000 Observations: a long chart, first-seen;
- HTTP: gunicorn with 2 workers on loopback, the repeated chart: the most requests per second
  with 4 connections, the workers' CPU time per request meanwhile (user + system, from /proc: far
  steadier than wall time on a shared machine), and the p99 latency at a steady 200 requests per
  second (open loop);
- cold start: the first hook call's time after the server starts listening.

A script that prints figures, not a timed test: shared machines are noisy.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta

from flask import Flask, request

from service.app import create_app
from service.cli import tune_interpreter
from service.policy import load_policies
from service.settings import Settings
from service.warm import warm_up
from tests.fixtures import (fhir_bundle, height_observation, laron_prefetch, order_select_request,
                            weight_observation)

RUNS = int(os.environ.get("BENCH_RUNS", "300"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))     # each HTTP load phase
SELECT = "/cds-services/mecasermin-order-select"
TODAY = date(2026, 11, 21)


def padded_prefetch(total: int = 300, observations: int | None = None) -> dict:
    """The Laron patient's record padded with heights, weights and blood pressures, to `total`
    resources in all or to `observations` Observations."""
    prefetch = laron_prefetch()
    entries = prefetch["observations"]["entry"]

    def count() -> int:
        if observations is not None:
            return len(entries)
        return sum(len(v.get("entry", [])) for v in prefetch.values() if isinstance(v, dict) and "entry" in v) + 1

    start, n = date(2016, 1, 1), 0
    while count() < (observations if observations is not None else total):
        day = (start + timedelta(days=(14 * n) % 3650)).isoformat()
        kind = n % 3
        if kind == 0:
            resource = height_observation(f"hx{n}", day, 80.0 + (n % 400) * 0.1)
        elif kind == 1:
            resource = weight_observation(f"wx{n}", day, 10.0 + (n % 400) * 0.02)
        else:
            resource = height_observation(f"bp{n}", day, 100.0 + n % 20)
            resource["code"] = {"coding": [{"system": "http://loinc.org", "code": "8480-6",
                                            "display": "Systolic blood pressure"}]}
            resource["valueQuantity"] = {"value": 100 + n % 20, "unit": "mm[Hg]",
                                         "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
        entries.append(fhir_bundle([resource])["entry"][0])
        n += 1
    prefetch["observations"]["total"] = len(entries)
    return prefetch


def other_drug(body: dict) -> dict:
    other = json.loads(json.dumps(body))
    other["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"] = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "308182",
                    "display": "amoxicillin 250 MG Oral Capsule"}],
        "text": "amoxicillin 250 MG Oral Capsule"}
    return other


def with_fresh_ids(payload: bytes, run: int) -> bytes:
    """The same chart with new resource ids, so that nothing is recognised (a first-seen call)."""
    fresh = json.loads(payload)
    for value in fresh.get("prefetch", {}).values():
        for entry in value.get("entry", []) if isinstance(value, dict) else ():
            entry["resource"]["id"] = f"{entry['resource']['id']}-r{run}"
    return json.dumps(fresh).encode()


def floor_app() -> Flask:
    app = Flask("floor")

    @app.post("/cds-services/<service_id>")
    def answer(service_id: str):
        json.loads(request.get_data())
        return {"cards": []}

    return app


# ----------------------------------------------------------------------------- figures

def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def figure(label: str, service: float, floor: float, unit: str = "ms") -> None:
    print(f"{label:<40} service= {service:9.2f} {unit:<5} floor= {floor:9.2f} {unit:<5} ratio= {service / floor:6.2f}x")


def p50_line(label: str, service: list[float], floor: list[float]) -> None:
    figure(f"{label} p50", statistics.median(service), statistics.median(floor))


# ----------------------------------------------------------------------------- in process

def interleaved(service, floor, payloads: list[bytes]) -> tuple[list[float], list[float]]:
    """Each payload to the service and to the floor, alternately, so that both see the same load."""
    timings: tuple[list[float], list[float]] = ([], [])
    for run, payload in enumerate(payloads):
        order = ((0, service), (1, floor)) if run % 2 == 0 else ((1, floor), (0, service))
        for index, client in order:
            started = time.perf_counter()
            response = client.post(SELECT, data=payload, content_type="application/json")
            timings[index].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return timings


def in_process(database: str) -> None:
    """The app as a served worker runs it: warmed before the fork and with the worker's interpreter
    settings (`mecasermin-cds serve`); the floor, in the same process, shares them."""
    settings = Settings.from_env({}, database_url=f"sqlite:///{database}", log_level="ERROR", max_resources=10_000)
    warm_up(settings, load_policies(settings.policy_dir, default_policy=settings.default_policy), TODAY)
    tune_interpreter()
    service = create_app(settings, today=lambda: TODAY).test_client()
    floor = floor_app().test_client()
    chart = json.dumps(order_select_request(prefetch=padded_prefetch())).encode()
    interleaved(service, floor, [chart] * 5)                                       # warm both
    p50_line("mecasermin, repeated chart", *interleaved(service, floor, [chart] * RUNS))
    p50_line("mecasermin, first-seen chart",
             *interleaved(service, floor, [with_fresh_ids(chart, run) for run in range(RUNS)]))
    other = json.dumps(other_drug(json.loads(chart))).encode()
    p50_line("amoxicillin, same prefetch", *interleaved(service, floor, [other] * RUNS))
    long_chart = json.dumps(order_select_request(prefetch=padded_prefetch(observations=5000))).encode()
    long_runs = max(3, RUNS // 30)
    p50_line("5,000 Observations, first-seen",
             *interleaved(service, floor, [with_fresh_ids(long_chart, run) for run in range(long_runs)]))


# ----------------------------------------------------------------------------- over HTTP

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FLOOR_SERVER = """
import sys
from gunicorn.app.base import BaseApplication
from tests.bench.bench_service import floor_app
class Floor(BaseApplication):
    def load_config(self):
        self.cfg.set("bind", f"127.0.0.1:{sys.argv[1]}")
        self.cfg.set("workers", int(sys.argv[2]))
        self.cfg.set("accesslog", None)
    def load(self):
        return floor_app()
Floor().run()
"""


class Server:
    """The service (`mecasermin-cds serve`) or the floor under gunicorn, on a free loopback port."""

    def __init__(self, kind: str, workers: int, database: str):
        self.port = free_port()
        env = {**os.environ, "CDS_DATABASE_URL": f"sqlite:///{database}", "CDS_LOG_LEVEL": "ERROR",
               "CDS_MAX_RESOURCES": "10000"}
        if kind == "service":
            command = [sys.executable, "-m", "service.cli", "serve", "--port", str(self.port),
                       "--workers", str(workers), "--today", TODAY.isoformat()]
        else:
            command = [sys.executable, "-c", FLOOR_SERVER, str(self.port), str(workers)]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_listening(self, seconds: float = 60) -> None:
        """Until the server accepts connections: within seconds on a quiet machine, far longer on a
        loaded one (the master loads the models and answers a warm-up call before it listens)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("the server did not start")

    def post(self, connection: http.client.HTTPConnection, payload: bytes) -> float:
        started = time.perf_counter()
        connection.request("POST", SELECT, body=payload, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
        return (time.perf_counter() - started) * 1000

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)

    def workers_cpu_ms(self) -> float:
        """User + system CPU time the gunicorn workers (the master's children) have used so far."""
        pid = self.process.pid
        children = open(f"/proc/{pid}/task/{pid}/children").read().split()
        ticks = 0
        for child in children:
            fields = open(f"/proc/{child}/stat").read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def first_call_ms(kind: str, payload: bytes, database: str) -> float:
    """The first hook call once the server accepts connections (no warm-up request before it)."""
    server = Server(kind, 2, database)
    try:
        server.wait_listening()
        time.sleep(0.5)             # every worker forked and listening
        return server.post(server.connection(), payload)
    finally:
        server.stop()


def throughput(server: Server, payload: bytes, clients: int = 4) -> tuple[float, float]:
    """Requests per second with `clients` connections sending back to back for SECONDS, and the
    workers' CPU milliseconds per request."""
    done = [0] * clients
    stop_at = time.perf_counter() + SECONDS

    def client(index: int) -> None:
        connection = server.connection()
        while time.perf_counter() < stop_at:
            server.post(connection, payload)
            done[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    cpu_before, started = server.workers_cpu_ms(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed, requests = time.perf_counter() - started, sum(done)
    return requests / elapsed, (server.workers_cpu_ms() - cpu_before) / requests


def latency_at(server: Server, payload: bytes, rate: float, clients: int = 16) -> list[float]:
    """Open loop: request i leaves at start + i/rate, whatever the others are doing; its latency
    counts from then, so a queue shows up as latency."""
    total = int(rate * SECONDS)
    samples: list[float] = []
    lock = threading.Lock()
    next_index = [0]
    start = time.perf_counter() + 0.05

    def client() -> None:
        connection = server.connection()
        while True:
            with lock:
                index = next_index[0]
                next_index[0] += 1
            if index >= total:
                return
            due = start + index / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            server.post(connection, payload)
            with lock:
                samples.append((time.perf_counter() - due) * 1000)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples


def over_http(tmp: str) -> None:
    chart = json.dumps(order_select_request(prefetch=padded_prefetch())).encode()
    servers = {kind: Server(kind, 2, f"{tmp}/{kind}-http.db") for kind in ("service", "floor")}
    try:
        for server in servers.values():
            server.wait_listening()
            connection = server.connection()
            for _ in range(20):
                server.post(connection, chart)
        rates = {kind: throughput(server, chart) for kind, server in servers.items()}
        figure("HTTP 2 workers, repeated chart", rates["service"][0], rates["floor"][0], unit="req/s")
        figure("HTTP 2 workers, CPU per request", rates["service"][1], rates["floor"][1])
        p99 = {kind: percentile(latency_at(server, chart, 200), 99) for kind, server in servers.items()}
        figure("HTTP 2 workers, 200 req/s p99", p99["service"], p99["floor"])
    finally:
        for server in servers.values():
            server.stop()
    cold = {kind: first_call_ms(kind, chart, f"{tmp}/{kind}-cold.db") for kind in ("service", "floor")}
    figure("first call after start", cold["service"], cold["floor"])


def main() -> None:
    chart = order_select_request(prefetch=padded_prefetch())
    count = sum(len(v.get("entry", [])) for v in chart["prefetch"].values() if isinstance(v, dict)) + 1
    print(f"mecasermin order-select, {count} resources in prefetch and draftOrders, {len(json.dumps(chart))} bytes;"
          f" load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        in_process(f"{tmp}/in-process.db")
        over_http(tmp)


if __name__ == "__main__":
    main()
