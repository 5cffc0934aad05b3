"""The warm-up before the fork (service/warm.py): it answers the built-in chart the way a served call
does, and leaves nothing open that would cross the fork."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from service.warm import _payer_name, _warm_call, warm_request
from tests.conftest import TODAY

SELECT = "/cds-services/mecasermin-order-select"


def _without_ids(cards: list[dict]) -> list[dict]:
    """Cards without what is new on every call (uuids, coverage-assertion ids, links)."""
    return [{"indicator": c["indicator"], "summary": c["summary"], "detail": c.get("detail")} for c in cards]


def test_the_warm_call_is_answered_as_the_service_answers_it(app, client):
    deps = app.extensions["mecasermin"]
    payer = _payer_name(deps.policies)
    warm = _warm_call(deps.settings, deps.policies, TODAY)
    served = client.post(SELECT, json=warm_request(TODAY, payer))
    assert served.status_code == 200
    assert warm["cards"] and _without_ids(warm["cards"]) == _without_ids(served.get_json()["cards"])


def test_the_warm_chart_reaches_a_payer_policy_with_nothing_missing(app):
    deps = app.extensions["mecasermin"]
    payer = _payer_name(deps.policies)
    claimed = [p.title for p in deps.policies.policies if p.kind == "payer" and p.payer.claims_name(payer)]
    summaries = " ".join(c["summary"] for c in _warm_call(deps.settings, deps.policies, TODAY)["cards"])
    assert claimed, payer
    assert "could not be read" not in summaries and "could not be checked" not in summaries


def test_warm_up_opens_no_thread_and_leaves_no_file_open(tmp_path):
    script = textwrap.dedent("""
        import os, threading
        from datetime import date
        from service.policy import load_policies
        from service.settings import Settings
        from service.warm import warm_up
        settings = Settings.from_env({}, log_level="ERROR")
        policies = load_policies(settings.policy_dir, default_policy=settings.default_policy)
        descriptors, threads = sorted(os.listdir("/proc/self/fd")), threading.active_count()
        assert warm_up(settings, policies, date(2026, 11, 21)) > 0
        assert threading.active_count() == threads, threading.enumerate()
        assert sorted(os.listdir("/proc/self/fd")) == descriptors
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_served_worker_collects_rarely_and_never_fully_on_first_seen_calls():
    """The interpreter as `serve` leaves it for its workers (service/cli.py): across 60 first-seen
    charts the young generation is collected a few times, not ~4 times per call, and the content
    caches are never scanned by a full collection (each cost ~40 ms at Python's thresholds)."""
    script = textwrap.dedent("""
        import gc, json, os, sys, tempfile
        from service.cli import GC_YOUNG_THRESHOLD, GIL_SWITCH_INTERVAL_S, tune_interpreter
        from service.app import create_app
        from service.policy import load_policies
        from service.settings import Settings
        from service.warm import warm_up
        from tests.bench.bench_service import SELECT, TODAY, padded_prefetch, with_fresh_ids
        from tests.fixtures import order_select_request
        settings = Settings.from_env({}, database_url=f"sqlite:///{tempfile.mkdtemp()}/a.db", log_level="ERROR",
                                     max_resources=10_000)
        warm_up(settings, load_policies(settings.policy_dir, default_policy=settings.default_policy), TODAY)
        tune_interpreter()
        pid = os.fork()
        if pid:
            sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD and sys.getswitchinterval() == GIL_SWITCH_INTERVAL_S
        client = create_app(settings, today=lambda: TODAY).test_client()
        chart = json.dumps(order_select_request(prefetch=padded_prefetch())).encode()
        collections = []
        gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))
        for run in range(60):
            response = client.post(SELECT, data=with_fresh_ids(chart, run), content_type="application/json")
            assert response.status_code == 200
        assert len(collections) <= 10 and 2 not in collections, collections
        os._exit(0)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
