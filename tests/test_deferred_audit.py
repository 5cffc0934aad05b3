"""Declined calls (another drug): their audit row is written off the request path, never lost on a
graceful shutdown, and counted when it cannot be written; mecasermin calls keep theirs on the path."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest
from sqlalchemy.exc import OperationalError

from service import metrics
from service.deferred_audit import DeferredAuditWriter
from service.storage import Database
from service.store import Store
from tests.fixtures import mecasermin_order, order_select_request

SELECT = "/cds-services/mecasermin-order-select"


def amoxicillin_call() -> dict:
    order = mecasermin_order()
    order["medicationCodeableConcept"] = {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "308182",
                    "display": "amoxicillin 250 MG Oral Capsule"}]}
    return order_select_request(order=order)


def dropped(reason: str) -> float:
    return metrics.AUDIT_ROWS_DROPPED.labels(reason)._value.get()


def test_a_declined_call_is_audited_once_the_writer_catches_up(app, client, store):
    body = amoxicillin_call()
    response = client.post(SELECT, json=body)
    assert response.status_code == 200 and response.get_json() == {"cards": []}
    app.extensions["mecasermin"].deferred_audit.flush()
    (row,) = store.query("SELECT hook_instance, service, patient_hash, determination, card_uuids, received_at FROM audit")
    assert row[:2] == (body["hookInstance"], "mecasermin-order-select")
    assert row[2:5] == (None, None, "[]") and row[5]      # the same row as when it was written on the path


def test_a_mecasermin_call_is_audited_before_its_answer(client, store):
    body = order_select_request()
    assert client.post(SELECT, json=body).get_json()["cards"]
    # No flush: the row is on disk when the 200 is.
    assert store.query("SELECT hook_instance FROM audit") == [(body["hookInstance"],)]


class _SlowStore:
    """Records batches; the first write waits until the test lets it go."""

    def __init__(self):
        self.batches: list[list[dict]] = []
        self.writing = threading.Event()
        self.release = threading.Event()

    def record_audits(self, rows):
        self.writing.set()
        self.release.wait(10)
        self.batches.append(list(rows))


def test_a_full_queue_drops_the_row_and_counts_it():
    store = _SlowStore()
    writer = DeferredAuditWriter(store, max_queued=2)
    before = dropped("queue-full")
    writer.submit({"service": "s", "hook_instance": "first"})
    assert store.writing.wait(10)                                    # the thread is stuck writing it
    writer.submit({"service": "s", "hook_instance": "a"})
    writer.submit({"service": "s", "hook_instance": "b"})
    writer.submit({"service": "s", "hook_instance": "c"})            # no room
    assert dropped("queue-full") == before + 1
    store.release.set()
    writer.close()
    written = [row["hook_instance"] for batch in store.batches for row in batch]
    assert written == ["first", "a", "b"]


def test_a_failed_write_is_counted():
    class FailingStore:
        def record_audits(self, rows):
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    writer = DeferredAuditWriter(FailingStore())
    before = dropped("write-failed")
    writer.submit({"service": "s"})
    writer.submit({"service": "s"})
    writer.close()
    assert dropped("write-failed") == before + 2


def test_close_writes_every_queued_row(tmp_path):
    database = Database(f"sqlite:///{tmp_path}/a.db")
    database.migrate()
    store = Store(database)
    writer = DeferredAuditWriter(store)
    for n in range(500):
        writer.submit({"service": "mecasermin-order-select", "hook_instance": f"h{n}"})
    writer.close()
    assert store.query("SELECT COUNT(*) FROM audit") == [(500,)]


def test_rows_queued_when_the_interpreter_exits_are_written(tmp_path):
    """A gunicorn worker's graceful exit ends the interpreter normally (SystemExit): the queue is written."""
    script = textwrap.dedent(f"""
        from service.deferred_audit import DeferredAuditWriter
        from service.storage import Database
        from service.store import Store
        database = Database("sqlite:///{tmp_path}/exit.db")
        database.migrate()
        store = Store(database)
        writer = DeferredAuditWriter(store)
        for n in range(300):
            writer.submit({{"service": "mecasermin-order-select", "hook_instance": f"h{{n}}"}})
        raise SystemExit(0)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    store = Store(Database(f"sqlite:///{tmp_path}/exit.db"))
    assert store.query("SELECT COUNT(*) FROM audit") == [(300,)]
