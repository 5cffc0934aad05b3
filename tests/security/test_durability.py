"""Durability: feedback acknowledged with 200 survives the server being SIGKILLed mid-load.

The service runs as it does in production (`mecasermin-cds serve`: gunicorn, 2 workers) on a
free loopback port with a temporary SQLite database. Hook calls first issue the cards (feedback is
taken only for cards the service issued); four client threads then post feedback on them, each
item told apart by its own outcome timestamp; the whole process group is killed with SIGKILL while
requests are in flight; then every item that got a 200 must be in the database, and the database
must pass an integrity check.
"""
from __future__ import annotations

import itertools
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.fixtures import order_sign_request

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SIGN = "/cds-services/mecasermin-order-sign"
FEEDBACK = SIGN + "/feedback"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(database: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "CDS_DATABASE_URL": f"sqlite:///{database}", "CDS_LOG_LEVEL": "WARNING",
           "CDS_WORKERS": "2", "CDS_AUTH_MODE": "off"}
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"server exited with {server.returncode}: {log.read_text()[-2000:]}")
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return server, url
        except requests.RequestException:
            pass
        time.sleep(0.1)
    os.killpg(server.pid, signal.SIGKILL)
    pytest.fail("server did not become healthy")


def issue_cards(url: str, calls: int) -> list[str]:
    """Card uuids the service issued, from `calls` order-sign calls."""
    cards = []
    with requests.Session() as session:
        for _ in range(calls):
            response = session.post(url + SIGN, json=order_sign_request(), timeout=30)
            assert response.status_code == 200, response.text[:300]
            cards += [card["uuid"] for card in response.json()["cards"]]
    return cards


_SEQUENCE = itertools.count()


def feedback_body(cards: list[str]) -> tuple[dict, list[tuple[str, str]]]:
    """The body, and its items as (card uuid, outcome timestamp): each timestamp is unique."""
    items = [(card, f"2026-11-21T14:03:11.{next(_SEQUENCE):06d}Z") for card in cards]
    return {"feedback": [
        {"card": card, "outcome": "overridden",
         "overrideReason": {"reason": {"system": "http://example.org/cds/override-reason", "code": "pa-on-file",
                                       "display": "Prior authorization already on file"}},
         "outcomeTimestamp": stamp} if i % 2 else
        {"card": card, "outcome": "accepted", "acceptedSuggestions": [{"id": str(uuid.uuid4())}],
         "outcomeTimestamp": stamp}
        for i, (card, stamp) in enumerate(items)]}, items


def test_acknowledged_feedback_survives_sigkill(tmp_path):
    database = tmp_path / "feedback.sqlite3"
    server, url = start_server(database, tmp_path / "server.log")
    issued = issue_cards(url, 20)
    acknowledged: list[tuple[str, str]] = []
    attempted = 0
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        nonlocal attempted
        session = requests.Session()
        while not stop.is_set():
            with lock:
                body, items = feedback_body(random.sample(issued, 3))
                attempted += 1
            try:
                response = session.post(url + FEEDBACK, json=body, timeout=5)
            except requests.RequestException:
                continue                    # the server died mid-request: not acknowledged
            if response.status_code == 200 and response.json() == {"stored": 3}:
                with lock:
                    acknowledged.extend(items)

    threads = [threading.Thread(target=client) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(2.0)
        os.killpg(server.pid, signal.SIGKILL)          # master and workers, no chance to flush
        server.wait(timeout=10)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)

    assert len(acknowledged) >= 30, f"only {len(acknowledged)} items acknowledged before the kill"
    assert attempted * 3 > len(acknowledged), "the kill must land while requests are still being sent"
    db = sqlite3.connect(database)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = set(db.execute("SELECT card_uuid, outcome_timestamp FROM feedback"))
    finally:
        db.close()
    missing = set(acknowledged) - stored
    print(f"durability: {attempted} posts sent, {len(acknowledged)} items acknowledged, {len(stored)} stored")
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged feedback items were lost"

    # And the service starts again on the same database and keeps accepting feedback.
    server, url = start_server(database, tmp_path / "server2.log")
    try:
        body, _ = feedback_body(issued[:1])
        assert requests.post(url + FEEDBACK, json=body, timeout=5).json() == {"stored": 1}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
