"""`make bench`: service time of a mecasermin order-select with a 300-resource prefetch.

Prints median and p95 over many runs, in-process (Flask test client) and over HTTP (gunicorn on
a free loopback port). "Cold" gives every run new resource ids, so nothing is cached; "repeated"
resends the same chart, as order-select does on every edit of an order. A script that prints figures, not a timed test: shared machines are noisy.
"""
from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta

import requests

from service.app import create_app
from service.pipeline import mecasermin_orders
from service.settings import Settings
from tests.fixtures import (fhir_bundle, height_observation, laron_prefetch, order_select_request,
                            weight_observation)

RUNS = int(os.environ.get("BENCH_RUNS", "300"))


def big_prefetch(total: int = 300) -> dict:
    """The Laron patient's record padded to `total` resources with heights, weights and vitals."""
    prefetch = laron_prefetch()
    observations = prefetch["observations"]["entry"]
    start = date(2016, 1, 1)
    n = 0
    while sum(len(v.get("entry", [])) for v in prefetch.values() if isinstance(v, dict) and "entry" in v) + 1 < total:
        day = (start + timedelta(days=14 * n)).isoformat()
        kind = n % 3
        if kind == 0:
            resource = height_observation(f"hx{n}", day, 80.0 + n * 0.1)
        elif kind == 1:
            resource = weight_observation(f"wx{n}", day, 10.0 + n * 0.02)
        else:
            resource = height_observation(f"bp{n}", day, 100.0 + n % 20)
            resource["code"] = {"coding": [{"system": "http://loinc.org", "code": "8480-6",
                                            "display": "Systolic blood pressure"}]}
            resource["valueQuantity"] = {"value": 100 + n % 20, "unit": "mm[Hg]",
                                         "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
        observations.append(fhir_bundle([resource])["entry"][0])
        n += 1
    return prefetch


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def report(label: str, samples_ms: list[float]) -> None:
    print(f"{label:<28} runs={len(samples_ms):>4}  median={statistics.median(samples_ms):7.2f} ms"
          f"  p95={percentile(samples_ms, 95):7.2f} ms  max={max(samples_ms):7.2f} ms")


def with_fresh_ids(body: dict, run: int) -> dict:
    """The same chart with new resource ids, so no validation verdict is cached (a cold call)."""
    fresh = json.loads(json.dumps(body))
    for value in fresh.get("prefetch", {}).values():
        for entry in value.get("entry", []) if isinstance(value, dict) else ():
            entry["resource"]["id"] = f"{entry['resource']['id']}-r{run}"
    return fresh


def bench_in_process(body: dict, database: str, cold: bool = False) -> list[float]:
    # ERROR: no access-log line per request, nor the start-up warnings, between the figures.
    app = create_app(Settings.from_env({}, database_url=f"sqlite:///{database}", log_level="ERROR"),
                     today=lambda: date(2026, 11, 21))
    client = app.test_client()
    bodies = [with_fresh_ids(body, run) if cold else body for run in range(RUNS)]
    samples = []
    for run in range(RUNS):
        started = time.perf_counter()
        response = client.post("/cds-services/mecasermin-order-select", json=bodies[run])
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.get_json()
    return samples


def bench_trigger(body: dict) -> list[float]:
    """The service's own decision that an order is not mecasermin (no HTTP, no schema check)."""
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        assert mecasermin_orders(body["hook"], body["context"], ()) == []
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_http(body: dict, database: str) -> list[float]:
    port = free_port()
    env = {**os.environ, "CDS_DATABASE_URL": f"sqlite:///{database}", "CDS_LOG_LEVEL": "ERROR"}
    server = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", "1"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                requests.get(f"{url}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        session = requests.Session()
        payload = json.dumps(body)
        samples = []
        for _ in range(RUNS):
            started = time.perf_counter()
            response = session.post(f"{url}/cds-services/mecasermin-order-select", data=payload,
                                    headers={"Content-Type": "application/json"}, timeout=10)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
        return samples
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    body = order_select_request(prefetch=big_prefetch())
    count = sum(len(v.get("entry", [])) for v in body["prefetch"].values() if isinstance(v, dict)) + 1
    print(f"mecasermin order-select, {count} resources in prefetch and draftOrders, {len(json.dumps(body))} bytes")
    with tempfile.TemporaryDirectory() as tmp:
        report("in-process, cold chart", bench_in_process(body, f"{tmp}/a0.db", cold=True))
        report("in-process, repeated chart", bench_in_process(body, f"{tmp}/a.db"))
        report("over HTTP (gunicorn, 1 wkr)", bench_http(body, f"{tmp}/b.db"))
        non_mecasermin = order_select_request(prefetch=None)
        non_mecasermin["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"] = {
            "text": "amoxicillin 500 MG Oral Capsule"}
        report("non-mecasermin, in-process", bench_in_process(non_mecasermin, f"{tmp}/c.db"))
        report("non-mecasermin: trigger only", bench_trigger(non_mecasermin))


if __name__ == "__main__":
    main()
