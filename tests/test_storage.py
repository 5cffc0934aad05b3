"""Storage (service/storage/, service/store.py): migrations, probes without write locks, the audit
failure rule, retention, the shared hash key, and metrics without patient data."""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import responses
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from prometheus_client import REGISTRY
from sqlalchemy import Column, DateTime, MetaData, Table, Text, inspect
from sqlalchemy.exc import SQLAlchemyError

from service.fhir.client import Deadline, FhirClient
from service.settings import Settings, SettingsError
from service.storage import Database, database_url
from service.policy.loader import DEFAULT_POLICY_DIR
from service.storage.database import _alembic_config, _head_revision
from service.storage.tables import metadata
from service.store import Store
from tests.fixtures import PATIENT_ID, mecasermin_order, order_sign_request

SIGN = "/cds-services/mecasermin-order-sign"

# The schema earlier versions created on first use, before migrations existed.
PRE_MIGRATION_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE feedback (id INTEGER PRIMARY KEY, received_at TEXT NOT NULL, service TEXT NOT NULL,
    card_uuid TEXT NOT NULL, outcome TEXT NOT NULL, accepted_suggestions TEXT NOT NULL, override_code TEXT,
    override_display TEXT, user_comment TEXT, outcome_timestamp TEXT NOT NULL);
CREATE INDEX feedback_card ON feedback (card_uuid);
CREATE TABLE audit (id INTEGER PRIMARY KEY, received_at TEXT NOT NULL, hook_instance TEXT, service TEXT NOT NULL,
    patient_hash TEXT, policy TEXT, determination TEXT, coverage_assertion_ids TEXT NOT NULL,
    card_uuids TEXT NOT NULL, card_indicators TEXT NOT NULL, timings_ms TEXT NOT NULL, counts TEXT NOT NULL);
CREATE TABLE card_issued (card_uuid TEXT PRIMARY KEY, card_type TEXT NOT NULL, service TEXT NOT NULL,
    issued_at TEXT NOT NULL);
CREATE TABLE cds_client_jti (iss TEXT NOT NULL, jti TEXT NOT NULL, expires_at REAL NOT NULL,
    PRIMARY KEY (iss, jti)) WITHOUT ROWID;
CREATE INDEX cds_client_jti_expiry ON cds_client_jti (expires_at);
INSERT INTO meta VALUES ('patient_hash_key', 'aa');
INSERT INTO feedback VALUES (1, '2026-01-01T00:00:00.000+00:00', 'mecasermin-order-sign', 'c1', 'accepted', '[]',
    NULL, NULL, NULL, '2026-01-01T00:00:00Z');
"""


def migrated(path) -> Database:
    database = Database(f"sqlite:///{path}")
    database.migrate()
    return database


def test_migrations_build_the_declared_schema_and_record_the_revision(tmp_path):
    database = migrated(tmp_path / "new.sqlite3")
    with database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        assert MigrationContext.configure(connection).get_current_revision() == _head_revision()
    database.migrate()   # at head: nothing to do, nothing fails


def test_a_database_made_before_migrations_is_adopted_with_its_rows(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(PRE_MIGRATION_SCHEMA)
    database = migrated(path)
    store = Store(database)
    assert store.patient_hash(PATIENT_ID) == Store(database, hash_key="aa").patient_hash(PATIENT_ID)
    assert store.query("SELECT card_uuid FROM feedback") == [("c1",)]
    indexes = {index["name"] for index in inspect(database.engine).get_indexes("cds_client_jti")}
    assert "cds_client_jti_issuer_expiry" in indexes
    assert "smart_session" in inspect(database.engine).get_table_names()


def test_the_generated_hash_key_is_the_same_for_every_process_on_one_database(tmp_path):
    first = Store(migrated(tmp_path / "shared.sqlite3"))
    second = Store(migrated(tmp_path / "shared.sqlite3"))
    assert first.patient_hash(PATIENT_ID) == second.patient_hash(PATIENT_ID)
    assert Store(migrated(tmp_path / "other.sqlite3")).patient_hash(PATIENT_ID) != first.patient_hash(PATIENT_ID)


def test_database_urls(tmp_path):
    assert database_url("postgresql://cds:pw@db:5432/m").drivername == "postgresql+psycopg"
    assert database_url("postgres://cds@db/m").drivername == "postgresql+psycopg"
    for wrong in ("mysql://x@y/z", "sqlite://", "sqlite:///:memory:", "not a url"):
        with pytest.raises(SettingsError):
            Settings.from_env({"CDS_DATABASE_URL": wrong})


def test_probes_take_no_write_lock(client, settings):
    """Issue 14 item 11: /healthz took a write lock, so a busy database failed the health check."""
    path = settings.database_url[len("sqlite:///"):]
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")     # another process holds the write lock
    try:
        for probe in ("/livez", "/readyz", "/healthz"):
            started = time.perf_counter()
            response = client.get(probe)
            assert response.status_code == 200 and response.get_json()["status"] == "ok", probe
            assert time.perf_counter() - started < 1.0, probe
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_readiness_fails_fast_when_the_database_is_unreachable(app, client):
    app.extensions["mecasermin"].store.database = Database("postgresql://cds@127.0.0.1:1/nowhere")
    started = time.perf_counter()
    response = client.get("/readyz")
    assert response.status_code == 503 and response.get_json() == {"status": "degraded", "policies": 3,
                                                                    "database": False}
    assert time.perf_counter() - started < 6
    assert client.get("/livez").status_code == 200      # liveness does no I/O: the pod is not restarted


def test_no_cards_without_their_audit_row(client, store, settings):
    path = settings.database_url[len("sqlite:///"):]
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE audit")
    failures_before = REGISTRY.get_sample_value("cds_audit_write_failures_total") or 0
    response = client.post(SIGN, json=order_sign_request())
    body = response.get_json()
    assert response.status_code == 503 and body["error"] == "audit-unavailable" and "cards" not in body
    assert body["retry_after_seconds"] > 0
    assert store.query("SELECT COUNT(*) FROM card_issued") == [(0,)]   # the cards were not recorded either
    assert f"cds_audit_write_failures_total {failures_before + 1}" in client.get("/metrics").get_data(as_text=True)


def test_audit_rows_older_than_the_retention_are_deleted(tmp_path):
    store = Store(migrated(tmp_path / "r.sqlite3"), audit_retention_days=30)
    old = (datetime.now(timezone.utc) - timedelta(days=31)).isoformat(timespec="milliseconds")
    recent = (datetime.now(timezone.utc) - timedelta(days=29)).isoformat(timespec="milliseconds")
    with store.database.write() as db:
        for received_at in (old, recent):
            db.exec_driver_sql(
                "INSERT INTO audit (received_at, service, coverage_assertion_sha256, card_uuids, card_indicators, "
                "timings_ms, counts) VALUES (?, 's', '[]', '[]', '[]', '{}', '{}')", (received_at,))
    store.record_audit({"service": "mecasermin-order-sign", "patient_id": PATIENT_ID})
    rows = [row[0] for row in store.query("SELECT received_at FROM audit ORDER BY id")]
    assert rows[0] == recent and len(rows) == 2


def test_metrics_count_calls_and_decisions_without_patient_data(client):
    assert client.post(SIGN, json=order_sign_request()).status_code == 200
    client.post(SIGN, data="{", content_type="application/json")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'cds_http_requests_total{service="mecasermin-order-sign",status="200"}' in text
    assert 'cds_http_requests_total{service="mecasermin-order-sign",status="400"}' in text
    assert 'cds_http_request_duration_seconds_bucket{le="0.005",service="mecasermin-order-sign"}' in text
    assert 'cds_determinations_total{determination=' in text
    assert 'cds_prefetch_keys_total{service="mecasermin-order-sign",source="prefetched"}' in text
    labels = [line.split("{", 1)[1].split("}", 1)[0] for line in text.splitlines() if "{" in line and line[0] != "#"]
    assert labels and not any(f'"{PATIENT_ID}"' in label or "Patient/" in label for label in labels)


@responses.activate
def test_fhir_fetches_are_timed_and_failures_counted_by_prefetch_key(settings):
    base = "http://127.0.0.1:9/fhir"
    responses.get(f"{base}/Observation", json={"resourceType": "Bundle", "type": "searchset", "entry": []})
    responses.get(f"{base}/Condition", status=500)

    def sample(name, key):
        return REGISTRY.get_sample_value(name, {"key": key}) or 0

    timed_before = sample("cds_fhir_fetch_duration_seconds_count", "observations")
    failed_before = sample("cds_fhir_fetch_failures_total", "conditions")
    client = FhirClient(settings)
    try:
        results = client.fetch_all(base, None, {"observations": "Observation?patient=p1",
                                                "conditions": "Condition?patient=p1"}, Deadline(2))
    finally:
        client.close()
    assert results["observations"].error is None and results["conditions"].error
    assert sample("cds_fhir_fetch_duration_seconds_count", "observations") == timed_before + 1
    assert sample("cds_fhir_fetch_failures_total", "conditions") == failed_before + 1


def test_the_audit_row_names_the_policy_version_and_the_files_digest(client, store):
    assert client.post(SIGN, json=order_sign_request()).status_code == 200
    (row,) = store.query("SELECT policy, policy_version, policy_digest FROM audit")
    shipped = hashlib.sha256((DEFAULT_POLICY_DIR / "premera-mecasermin.yaml").read_bytes()).hexdigest()
    assert row == ("premera-mecasermin", "2023-12-01", shipped)


def test_an_order_dated_when_no_version_is_in_force_is_audited_as_such(client, store):
    order = mecasermin_order()
    order["authoredOn"] = "2023-11-30"                    # before Premera's policy took effect
    response = client.post(SIGN, json=order_sign_request(order=order))
    coverage = next(c for c in response.get_json()["cards"] if c["source"]["topic"]["code"] == "coverage-info")
    assert coverage["summary"] == ("Prior authorization required — no policy version on file for 2023-11-30 "
                                   "(Premera Blue Cross, new start)")
    pa = [part for action in response.get_json()["systemActions"] for e in action["resource"]["extension"]
          for part in e.get("extension", ()) if part["url"] == "pa-needed"]
    assert pa == [{"url": "pa-needed", "valueCode": "auth-needed"}]
    assert "No policy version in force (order date 2023-11-30) · sha256 " in coverage["detail"]
    assert store.query("SELECT policy_version, determination FROM audit") == [("none in force", "documentation-needed")]


def _database_at(path, revision: str, *statements: tuple[str, tuple]) -> Database:
    """A SQLite database migrated only to `revision`, with `statements` (SQL, parameters) run on it."""
    database = Database(f"sqlite:///{path}")
    with database.engine.begin() as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        for sql, parameters in statements:
            connection.exec_driver_sql(sql, parameters)
    return database


def test_migration_0002_adds_the_version_columns_to_an_existing_audit_table(tmp_path):
    database = _database_at(tmp_path / "at-0001.sqlite3", "0001", (
            "INSERT INTO audit (received_at, service, policy, coverage_assertion_ids, card_uuids, card_indicators, "
            "timings_ms, counts) VALUES ('2026-01-01T00:00:00.000+00:00', 's', 'premera-mecasermin', '[]', '[]', "
            "'[]', '{}', '{}')", ()))
    database.migrate()
    columns = {c["name"] for c in inspect(database.engine).get_columns("audit")}
    assert {"policy_version", "policy_digest"} <= columns
    assert Store(database).query("SELECT policy, policy_version, policy_digest FROM audit") == [
        ("premera-mecasermin", None, None)]


def test_the_database_never_holds_a_coverage_assertion_id_only_its_sha256(tmp_path, store, client):
    """The id is the key to the DTR chart sealed under it: with the id in the audit table, a copy of the
    database alone would open every chart kept for DTR."""
    response = client.post(SIGN, json=order_sign_request())
    (assertion_id,) = [part["valueString"] for action in response.get_json()["systemActions"]
                       for e in action["resource"]["extension"] for part in e.get("extension", ())
                       if part["url"] == "coverage-assertion-id"]
    store.database.dispose()                                  # the WAL checkpointed into the file
    files = [p for p in tmp_path.iterdir() if p.name.startswith("cds.sqlite3")]
    assert files and not any(assertion_id.encode() in p.read_bytes() for p in files)
    hashed = hashlib.sha256(assertion_id.encode()).hexdigest()
    assert store.query("SELECT coverage_assertion_sha256 FROM audit") == [(f'["{hashed}"]',)]


def test_migration_0004_replaces_the_audit_rows_assertion_ids_by_their_sha256(tmp_path):
    path = tmp_path / "at-0003.sqlite3"
    insert = ("INSERT INTO audit (received_at, service, coverage_assertion_ids, card_uuids, card_indicators, "
              "timings_ms, counts) VALUES ('2026-01-01T00:00:00.000+00:00', 's', ?, '[]', '[]', '{}', '{}')")
    database = _database_at(path, "0003", *((insert, (ids,)) for ids in (
        '["5c1ad3a4-8f0e-4d52-9a51-3b2f0d6c2e11", "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"]', "[]")))
    database.migrate()
    columns = {c["name"] for c in inspect(database.engine).get_columns("audit")}
    assert "coverage_assertion_ids" not in columns
    rows = Store(database).query("SELECT coverage_assertion_sha256 FROM audit ORDER BY id")
    expected = [hashlib.sha256(i.encode()).hexdigest()
                for i in ("5c1ad3a4-8f0e-4d52-9a51-3b2f0d6c2e11", "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f")]
    assert [json.loads(r[0]) for r in rows] == [expected, []]
    database.dispose()
    assert b"5c1ad3a4-8f0e-4d52-9a51-3b2f0d6c2e11" not in path.read_bytes()


def _audit_entry(card_uuid: str = "card-1") -> dict:
    return {"service": "mecasermin-order-sign", "hook_instance": "hi-1", "patient_id": PATIENT_ID,
            "received_at": "2026-12-01T10:00:00.000+00:00", "policy": "aetna", "determination": "meets-criteria",
            "policy_version": "2026-01", "policy_digest": "ab" * 32, "coverage_assertion_ids": ["ca-1"],
            "card_uuids": [card_uuid], "card_indicators": ["info"], "timings_ms": {"total": 5.5},
            "counts": {"resources": 3}, "card_types": {card_uuid: "coverage"}}


def test_the_audit_write_stores_every_column_of_the_row_and_the_cards_it_issued(tmp_path):
    store = Store(migrated(tmp_path / "a.sqlite3"))
    store.record_audits([_audit_entry("card-1"), _audit_entry("card-2")])
    rows = store.query("SELECT received_at, hook_instance, service, patient_hash, policy, determination, "
                       "policy_version, policy_digest, coverage_assertion_sha256, card_uuids, card_indicators, "
                       "timings_ms, counts FROM audit ORDER BY id")
    sha = hashlib.sha256(b"ca-1").hexdigest()
    assert rows == [("2026-12-01T10:00:00.000+00:00", "hi-1", "mecasermin-order-sign", store.patient_hash(PATIENT_ID),
                     "aetna", "meets-criteria", "2026-01", "ab" * 32, f'["{sha}"]', f'["{uuid}"]', '["info"]',
                     '{"total": 5.5}', '{"resources": 3}') for uuid in ("card-1", "card-2")]
    issued = store.query("SELECT card_uuid, card_type, service FROM card_issued ORDER BY card_uuid")
    assert issued == [("card-1", "coverage", "mecasermin-order-sign"), ("card-2", "coverage", "mecasermin-order-sign")]
    store.record_audit(_audit_entry("card-1"))            # a card issued again is kept once
    assert store.query("SELECT COUNT(*) FROM card_issued") == [(2,)]
    assert store.query("SELECT COUNT(*) FROM audit") == [(3,)]


def test_an_audit_write_that_fails_leaves_nothing_and_the_next_one_succeeds(tmp_path):
    path = tmp_path / "a.sqlite3"
    store = Store(migrated(path))
    with sqlite3.connect(path) as db:
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON card_issued BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(SQLAlchemyError):
        store.record_audit(_audit_entry())
    assert store.query("SELECT COUNT(*) FROM audit") == [(0,)]        # the audit row went with the cards
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER refuse")
    store.record_audit(_audit_entry())                                  # the pooled connection is not stuck
    assert store.query("SELECT COUNT(*) FROM audit, card_issued") == [(1,)]


def test_an_acknowledged_audit_write_is_committed(tmp_path):
    path = tmp_path / "a.sqlite3"
    store = Store(migrated(path))
    store.record_audit(_audit_entry())
    with sqlite3.connect(path) as db:                                  # another connection sees it at once
        assert db.execute("SELECT COUNT(*) FROM audit").fetchone() == (1,)
        db.execute("BEGIN IMMEDIATE")                                   # and no write transaction is left open
        db.rollback()


def test_each_thread_writes_prepared_statements_on_its_own_connection_outside_the_pool(tmp_path):
    database = migrated(tmp_path / "a.sqlite3")
    store = Store(database)
    seen = []

    def write_twice():
        for _ in range(2):
            store.record_audit(_audit_entry())
            seen.append((threading.get_ident(), database._writers.connection.dbapi_connection))

    threads = [threading.Thread(target=write_twice) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    by_thread = {ident: {id(connection) for i, connection in seen if i == ident} for ident, _ in seen}
    assert [len(connections) for connections in by_thread.values()] == [1, 1]     # kept by its thread
    assert len(set().union(*by_thread.values())) == 2                              # one each
    assert database.engine.pool.checkedout() == 0                                  # none taken from the pool
    assert store.query("SELECT COUNT(*) FROM audit") == [(4,)]


def test_a_prepared_write_that_fails_before_the_driver_leaves_no_transaction_open(tmp_path):
    # Not a driver error (a row without one of its columns): the pool used to roll back what was left.
    path = tmp_path / "a.sqlite3"
    store = Store(migrated(path))
    entry = dict(_audit_entry(), card_types={"card-9": "coverage"})
    with pytest.raises(KeyError):
        store.database.execute_prepared([(store._insert_audit, [{"received_at": "2026-12-01"}])])
    with sqlite3.connect(path, timeout=0) as db:                       # no lock held: another writer gets in
        db.execute("BEGIN IMMEDIATE")
        db.rollback()
    store.record_audit(entry)
    assert store.query("SELECT COUNT(*) FROM audit, card_issued") == [(1,)]


def test_a_writer_connection_that_failed_is_replaced(tmp_path):
    path = tmp_path / "a.sqlite3"
    store = Store(migrated(path))
    store.record_audit(_audit_entry())
    first = store.database._writers.connection
    first.invalidate()                                                 # what `_abandon` does to a broken one
    store.record_audit(_audit_entry())
    assert store.database._writers.connection is not first
    assert store.query("SELECT COUNT(*) FROM audit") == [(2,)]


def test_only_columns_the_driver_takes_as_they_are_can_be_prepared(tmp_path):
    database = migrated(tmp_path / "a.sqlite3")
    stamped = Table("stamped", MetaData(), Column("at", DateTime), Column("note", Text))
    with pytest.raises(TypeError, match="at"):
        database.prepare(stamped.insert(), ["at", "note"])
    assert database.prepare(stamped.insert(), ["note"]).sql == "INSERT INTO stamped (note) VALUES (?)"


@pytest.mark.integration
@pytest.mark.replicas
@pytest.mark.parametrize("failure", [
    "RAISE EXCEPTION 'disk full'",
    "PERFORM pg_terminate_backend(pg_backend_pid())",      # the connection dies inside the transaction
])
def test_on_postgres_a_failed_audit_write_leaves_nothing_and_the_next_one_succeeds(failure):
    from tests.integration.replicas import PostgresServer, require_packages
    server = PostgresServer(require_packages())
    try:
        database = Database(server.url)
        database.migrate()
        store = Store(database)
        with server.connect() as db:
            db.execute(f"CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {failure}; "
                       "RETURN NEW; END $$")
            db.execute("CREATE TRIGGER refuse BEFORE INSERT ON card_issued FOR EACH ROW EXECUTE FUNCTION refuse()")
        with pytest.raises(SQLAlchemyError):
            store.record_audit(_audit_entry())
        with server.connect() as db:
            assert db.execute("SELECT COUNT(*) FROM audit").fetchone() == (0,)
            db.execute("DROP TRIGGER refuse ON card_issued")
        store.record_audit(_audit_entry())
        assert store.query("SELECT COUNT(*) FROM audit, card_issued") == [(1,)]
        database.dispose()
    finally:
        server.stop()
