"""Durable storage of feedback and the audit log (SQLite, WAL, one transaction per write).

A write returns only after COMMIT, so a 200 means the row survives a crash. Patient ids are
stored only as a keyed hash (HMAC-SHA256); tokens never reach this module.
"""
from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from service.logs import patient_hash

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    service TEXT NOT NULL,
    card_uuid TEXT NOT NULL,
    outcome TEXT NOT NULL,
    accepted_suggestions TEXT NOT NULL,
    override_code TEXT,
    override_display TEXT,
    user_comment TEXT,
    outcome_timestamp TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_card ON feedback (card_uuid);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    hook_instance TEXT,
    service TEXT NOT NULL,
    patient_hash TEXT,
    policy TEXT,
    determination TEXT,
    coverage_assertion_ids TEXT NOT NULL,
    card_uuids TEXT NOT NULL,
    card_indicators TEXT NOT NULL,
    timings_ms TEXT NOT NULL,
    counts TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS card_issued (
    card_uuid TEXT PRIMARY KEY,
    card_type TEXT NOT NULL,
    service TEXT NOT NULL,
    issued_at TEXT NOT NULL
);
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Store:
    def __init__(self, path: Path, hash_key: str = ""):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connection().executescript(SCHEMA)   # executescript manages its own transaction
        self._hash_key = hash_key.encode() if hash_key else self._stored_key()

    def _connect(self) -> "_Transaction":
        return _Transaction(self._connection())

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")   # a 200 means the row is on disk
            db.execute("PRAGMA busy_timeout=10000")
            self._local.db = db
        return db

    def _stored_key(self) -> bytes:
        with self._connect() as db:
            db.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('patient_hash_key', ?)",
                       (secrets.token_hex(32),))
            (value,) = db.execute("SELECT value FROM meta WHERE name = 'patient_hash_key'").fetchone()
        return value.encode()

    def patient_hash(self, patient_id: str) -> str:
        return patient_hash(patient_id, self._hash_key)

    def ping(self) -> bool:
        try:
            with self._connect() as db:
                db.execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def save_feedback(self, service: str, items: Iterable[Mapping[str, Any]]) -> int:
        rows = [_feedback_row(service, item) for item in items]
        with self._connect() as db:
            db.executemany(
                "INSERT INTO feedback (received_at, service, card_uuid, outcome, accepted_suggestions, "
                "override_code, override_display, user_comment, outcome_timestamp) VALUES (?,?,?,?,?,?,?,?,?)",
                rows)
        return len(rows)

    def record_audit(self, entry: Mapping[str, Any]) -> None:
        patient = entry.get("patient_id")
        with self._connect() as db:
            db.execute(
                "INSERT INTO audit (received_at, hook_instance, service, patient_hash, policy, determination, "
                "coverage_assertion_ids, card_uuids, card_indicators, timings_ms, counts) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (_now(), entry.get("hook_instance"), entry["service"],
                 self.patient_hash(patient) if patient else None, entry.get("policy"), entry.get("determination"),
                 json.dumps(entry.get("coverage_assertion_ids", [])), json.dumps(entry.get("card_uuids", [])),
                 json.dumps(entry.get("card_indicators", [])), json.dumps(entry.get("timings_ms", {})),
                 json.dumps(entry.get("counts", {}))))
            db.executemany(
                "INSERT OR IGNORE INTO card_issued (card_uuid, card_type, service, issued_at) VALUES (?,?,?,?)",
                [(uuid, card_type, entry["service"], _now()) for uuid, card_type in entry.get("card_types", {}).items()])

    def issued_cards(self, service: str, card_uuids: Iterable[str]) -> set[str]:
        """Those of `card_uuids` that `service` issued (feedback is taken only for them)."""
        wanted = sorted(set(card_uuids))
        if not wanted:
            return set()
        with self._connect() as db:
            rows = db.execute(f"SELECT card_uuid FROM card_issued WHERE service = ? AND card_uuid IN "
                              f"({','.join('?' * len(wanted))})", (service, *wanted)).fetchall()
        return {uuid for (uuid,) in rows}

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._connect() as db:
            return db.execute(sql, params).fetchall()


class _Transaction:
    """`with` block = one IMMEDIATE transaction, committed on success, rolled back on error."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _feedback_row(service: str, item: Mapping[str, Any]) -> tuple:
    reason = item.get("overrideReason") or {}
    coding = reason.get("reason") or {}
    accepted = [s["id"] for s in item.get("acceptedSuggestions") or ()]
    return (_now(), service, item["card"], item["outcome"], json.dumps(accepted), coding.get("code"),
            coding.get("display"), reason.get("userComment"), item["outcomeTimestamp"])
