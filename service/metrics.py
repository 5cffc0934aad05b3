"""Prometheus metrics, served at `/metrics`; counts and latencies only, never patient data.

Every label value comes from a small fixed set the service defines (service ids, route names,
prefetch keys, policy ids, determinations, auth failure reasons), never from a request's content.
Under gunicorn the workers write to `PROMETHEUS_MULTIPROC_DIR` (set per instance by `serve`) and
`/metrics` sums them; without it (tests, one process) the default registry is served.
"""
from __future__ import annotations

import functools
import os
import time
from typing import Any, Callable, Mapping

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import REGISTRY, multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# prometheus_client picks in-memory or per-process-file values when it is imported (above), once:
# /metrics must read them the same way even if the variable is set later in this process.
MULTIPROCESS = bool(os.environ.get(MULTIPROC_ENV))
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)

REQUESTS = Counter("cds_http_requests_total", "HTTP requests answered, by CDS service (or route) and status.",
                   ["service", "status"])
REQUEST_SECONDS = Histogram("cds_http_request_duration_seconds", "Time to answer an HTTP request.",
                            ["service"], buckets=_LATENCY_BUCKETS)
FHIR_FETCH_SECONDS = Histogram("cds_fhir_fetch_duration_seconds", "Time to fetch one prefetch key from the EHR.",
                               ["key"], buckets=_LATENCY_BUCKETS)
FHIR_FETCH_FAILURES = Counter("cds_fhir_fetch_failures_total", "Prefetch keys the EHR's FHIR server did not deliver.",
                              ["key"])
TECHNICAL_GAPS = Counter("cds_technical_gaps_total", "Prefetch keys missing from a hook call (technical gaps).",
                         ["service"])
PREFETCH_KEYS = Counter("cds_prefetch_keys_total",
                        "Prefetch keys a hook call used, by source: `prefetched` by the EHR (hits), `fetched` by "
                        "the service, or a `gap`.", ["service", "source"])
AUTH_FAILURES = Counter("cds_auth_failures_total", "CDS client JWTs refused, by reason.", ["reason"])
DETERMINATIONS = Counter("cds_determinations_total", "Coverage determinations, by policy.", ["policy", "determination"])
CACHE_LOOKUPS = Counter("cds_cache_lookups_total", "Cache lookups, by cache and result (hit or miss).",
                        ["cache", "result"])
AUDIT_WRITE_FAILURES = Counter("cds_audit_write_failures_total", "Hook calls refused because the audit row failed.")
AUDIT_ROWS_DROPPED = Counter("cds_audit_rows_dropped_total", "Audit rows of declined calls (another drug) not written, "
                             "by reason: the queue was full, or the write failed.", ["reason"])


def register(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_count)
    app.add_url_rule("/metrics", "metrics", _serve)


def _start() -> None:
    g.metrics_started = time.perf_counter()


def _count(response: Response) -> Response:
    started = g.get("metrics_started")
    service = _service_label()
    REQUESTS.labels(service, str(response.status_code)).inc()
    if started is not None:
        REQUEST_SECONDS.labels(service).observe(time.perf_counter() - started)
    return response


def _service_label() -> str:
    """The CDS service id for hook and feedback calls; the route's name otherwise (never the raw path)."""
    from service.api.services import SERVICES

    service_id = (request.view_args or {}).get("service_id")
    if service_id is not None:
        name = service_id if service_id in SERVICES else "unknown-service"
        return f"{name}/feedback" if request.endpoint == "cds.feedback" else name
    return request.endpoint or "unmatched"


def _serve() -> Response:
    registry = REGISTRY
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def hook_call(service_id: str, audit: Mapping[str, Any]) -> None:
    """What one answered hook call decided and which data it had (from its audit entry)."""
    counts = audit.get("counts") or {}
    if counts.get("gaps"):
        TECHNICAL_GAPS.labels(service_id).inc(counts["gaps"])
    for source, name in (("prefetched", "prefetched_keys"), ("fetched", "fetched_keys"), ("gap", "gaps")):
        if counts.get(name):
            PREFETCH_KEYS.labels(service_id, source).inc(counts[name])
    policies = (audit.get("policy") or "").split(",")
    determinations = (audit.get("determination") or "").split(",")
    for policy, determination in zip(policies, determinations):
        if policy:
            DETERMINATIONS.labels(policy, determination).inc()


def timed_fetch(fetch_key: Callable) -> Callable:
    """Decorates `FhirClient._fetch_key(self, base_url, token, key, query, deadline)`: latency and failures by key."""
    @functools.wraps(fetch_key)
    def timed(self, base_url, token, key, query, deadline):
        started = time.perf_counter()
        result = fetch_key(self, base_url, token, key, query, deadline)
        FHIR_FETCH_SECONDS.labels(key).observe(time.perf_counter() - started)
        if result.error:
            FHIR_FETCH_FAILURES.labels(key).inc()
        return result
    return timed


def mark_worker_dead(pid: int) -> None:
    """gunicorn's child_exit hook: a dead worker's gauges stop counting (its counters stay summed)."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(pid)


def cache_lookup(cache: str, hit: bool) -> None:
    CACHE_LOOKUPS.labels(cache, "hit" if hit else "miss").inc()


def auth_failure(reason: str) -> None:
    AUTH_FAILURES.labels(reason).inc()
