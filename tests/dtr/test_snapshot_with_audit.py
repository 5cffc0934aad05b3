"""A first-seen CRD answer's DTR chart is written in the transaction of the answer's audit row: one
commit for both, before the answer is sent (docs/dtr.md). An audit row that cannot be written takes the
chart with it (the call is refused: 503); a chart the database refuses leaves the answer and its audit
row standing, and its id is not reused. Sealed rows are deflated; a row written before that still opens."""
from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.exc import SQLAlchemyError

from service.dtr.snapshots import ChartSnapshots
from service.storage import Database
from service.storage.sealed import encode
from service.storage.tables import dtr_snapshot
from service.store import Store
from tests.dtr.flow import kept_assertion_id
from tests.fixtures import laron_prefetch, mecasermin_order, order_select_request

SELECT = "/cds-services/mecasermin-order-select"


def _path(settings) -> str:
    return settings.database_url[len("sqlite:///"):]


def _refuse_inserts(settings, table: str) -> None:
    with sqlite3.connect(_path(settings)) as db:
        db.execute(f"CREATE TRIGGER refuse BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'disk full'); END")


def _allow_inserts(settings) -> None:
    with sqlite3.connect(_path(settings)) as db:
        db.execute("DROP TRIGGER refuse")


def _tables(statements: list[str]) -> list[str]:
    return [re.search(r"(?:INTO|FROM) (\w+)", sql).group(1) for sql in statements]


def _count(store, table: str) -> int:
    ((count,),) = store.query(f"SELECT COUNT(*) FROM {table}")
    return count


@pytest.fixture
def transactions(app):
    """The SQL of each transaction the service writes, by `Database.execute_prepared` or `Database.write`."""
    database = app.extensions["mecasermin"].store.database
    assert app.extensions["mecasermin"].snapshots.rows.database is database
    seen, prepared, write = [], database.execute_prepared, database.write

    def spied_prepared(batches):
        seen.append([statement.sql for statement, rows in batches if rows])
        return prepared(batches)

    def spied_write():
        seen.append(["write()"])
        return write()

    database.execute_prepared, database.write = spied_prepared, spied_write
    return seen


def test_a_first_seen_answer_commits_its_chart_with_its_audit_row_in_one_transaction(app, client, store, transactions):
    answer = client.post(SELECT, json=order_select_request())
    assert answer.status_code == 200
    kept = kept_assertion_id(answer.get_json())
    (statements,) = transactions                                     # one transaction, one commit
    assert _tables(statements) == ["audit", "card_issued", "dtr_snapshot", "dtr_snapshot"]
    assert statements[2].startswith("DELETE")                         # the first write of a process purges
    (recorded,) = store.query("SELECT coverage_assertion_sha256 FROM audit")
    assert recorded == (f'["{hashlib.sha256(kept.encode()).hexdigest()}"]',)
    assert app.extensions["mecasermin"].snapshots.recall(kept) is not None
    again = client.post(SELECT, json=order_select_request())         # a repeat: its audit row only
    assert kept_assertion_id(again.get_json()) == kept and _tables(transactions[1]) == ["audit", "card_issued"]


def test_an_audit_row_that_cannot_be_written_takes_the_chart_with_it(app, client, store, settings):
    _refuse_inserts(settings, "audit")
    refused = client.post(SELECT, json=order_select_request())
    assert refused.status_code == 503 and refused.get_json()["error"] == "audit-unavailable"
    assert _count(store, "dtr_snapshot") == 0                           # no chart for an answer never sent
    _allow_inserts(settings)
    kept = kept_assertion_id(client.post(SELECT, json=order_select_request()).get_json())
    assert _count(store, "audit") == 1 and _count(store, "dtr_snapshot") == 1
    assert app.extensions["mecasermin"].snapshots.recall(kept) is not None


def test_a_chart_the_database_refuses_leaves_the_answer_and_its_audit_row(app, client, store, settings, caplog):
    _refuse_inserts(settings, "dtr_snapshot")
    with caplog.at_level(logging.WARNING, logger="service.api.hooks"):
        answer = client.post(SELECT, json=order_select_request())
    assert answer.status_code == 200 and answer.get_json()["cards"]
    lost = kept_assertion_id(answer.get_json())
    assert "DTR chart snapshot not kept" in caplog.text
    (recorded,) = store.query("SELECT coverage_assertion_sha256 FROM audit")
    assert recorded == (f'["{hashlib.sha256(lost.encode()).hexdigest()}"]',)
    snapshots = app.extensions["mecasermin"].snapshots
    assert _count(store, "dtr_snapshot") == 0 and snapshots.recall(lost) is None
    _allow_inserts(settings)
    kept = kept_assertion_id(client.post(SELECT, json=order_select_request()).get_json())
    assert kept != lost and snapshots.recall(kept) is not None         # the lost id was not remembered


def _chart() -> list[dict]:
    return [entry["resource"] for value in laron_prefetch().values() if isinstance(value, dict)
            for entry in value.get("entry", [])]


@pytest.fixture
def snapshots(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'snapshots.sqlite3'}")
    database.migrate()
    return ChartSnapshots(database, lifetime=3600)


def test_a_sealed_chart_is_deflated(snapshots):
    snapshots.keep_answer(None, "assertion-1", _chart(), mecasermin_order(), "aetna", None)
    with snapshots.rows.database.read() as db:
        (payload,) = db.execute(dtr_snapshot.select().with_only_columns(dtr_snapshot.c.payload)).one()
    text = encode({"resources": _chart(), "order": mecasermin_order(), "policy": "aetna"})
    assert len(payload) < len(text) / 4


def test_a_chart_sealed_before_rows_were_deflated_still_opens(snapshots):
    data = {"resources": _chart(), "order": mecasermin_order(), "policy": "aetna", "user": "Practitioner/p1"}
    id_hash, key = snapshots.rows._derive("sealed-last-week")
    nonce = os.urandom(12)
    with snapshots.rows.database.write() as db:
        db.execute(dtr_snapshot.insert().values(id_hash=id_hash, expires_at=snapshots.clock() + 600, nonce=nonce,
                                                payload=AESGCM(key).encrypt(nonce, encode(data), id_hash.encode())))
    kept = snapshots.recall("sealed-last-week")
    assert (kept.resources, kept.order, kept.policy_id, kept.user) == (data["resources"], data["order"], "aetna",
                                                                       "Practitioner/p1")


def _audit_entry(assertion_id: str) -> dict:
    return {"service": "mecasermin-order-select", "hook_instance": "hi-1", "patient_id": "p1",
            "coverage_assertion_ids": [assertion_id], "card_uuids": ["card-1"], "card_indicators": ["info"],
            "card_types": {"card-1": "coverage"}}


@pytest.mark.integration
@pytest.mark.replicas
def test_on_postgres_a_chart_and_its_audit_row_commit_together_or_not_at_all():
    from tests.integration.replicas import PostgresServer, require_packages
    server = PostgresServer(require_packages())
    try:
        database = Database(server.url)
        database.migrate()
        store, snapshots = Store(database), ChartSnapshots(database, lifetime=3600)
        sealed = snapshots.seal_answer(b"inputs", "assertion-1", _chart(), mecasermin_order(), "aetna", "Practitioner/p1")
        store.record_audit(_audit_entry("assertion-1"), sealed.statements)
        kept = snapshots.recall("assertion-1")                           # bytes and floats bound as they are
        assert (kept.resources, kept.policy_id, kept.user) == (_chart(), "aetna", "Practitioner/p1")
        with server.connect() as db:
            db.execute("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                       "RAISE EXCEPTION 'disk full'; RETURN NEW; END $$")
            db.execute("CREATE TRIGGER refuse BEFORE INSERT ON dtr_snapshot FOR EACH ROW EXECUTE FUNCTION refuse()")
        sealed = snapshots.seal_answer(b"other", "assertion-2", _chart(), mecasermin_order(), "aetna", None)
        with pytest.raises(SQLAlchemyError):
            store.record_audit(_audit_entry("assertion-2"), sealed.statements)
        assert store.query("SELECT COUNT(*) FROM audit") == [(1,)]        # the audit row went with the chart
        assert snapshots.assertion_id(b"other")[1]                       # and its id is not reused
        database.dispose()
    finally:
        server.stop()
