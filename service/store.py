"""Feedback, the audit log, issued cards, the patient-hash key and the report's queries.

Everything goes through `service.storage.Database` (SQLite or PostgreSQL): a write returns only
after COMMIT, so a 200 means the row survives a crash, and every replica on one database sees
every row. Patient ids are stored only as a keyed hash (HMAC-SHA256); tokens never reach this module.

Audit rows older than `audit_retention_days` (0: kept) are deleted, at most once an hour per process.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import delete, func, literal, select
from sqlalchemy.exc import SQLAlchemyError

from service.logs import patient_hash
from service.storage import Database
from service.storage.database import Prepared
from service.storage.tables import audit, card_issued, feedback, meta

READY_TIMEOUT_S = 1.0
RETENTION_PURGE_INTERVAL_S = 3600
_AUDIT_COLUMNS = ("received_at", "hook_instance", "service", "patient_hash", "policy", "determination",
                  "policy_version", "policy_digest", "coverage_assertion_sha256", "card_uuids",
                  "card_indicators", "timings_ms", "counts")
_ISSUED_COLUMNS = ("card_uuid", "card_type", "service", "issued_at")


def assertion_sha256(assertion_id: str) -> str:
    """What the audit keeps of a coverage-assertion-id: the id is the key to the DTR chart sealed under it
    (docs/dtr.md), so the database holds only its hash, which still traces an id presented later."""
    return hashlib.sha256(assertion_id.encode("utf-8")).hexdigest()


def timestamp_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Store:
    def __init__(self, database: Database, hash_key: str = "", audit_retention_days: int = 0):
        self.database = database
        self._hash_key = hash_key.encode() if hash_key else self._stored_key()
        self._retention_days = audit_retention_days
        self._purged_at = float("-inf")
        self._purge_lock = threading.Lock()
        # Every mecasermin call writes these on its path: compiled once, not per call.
        self._insert_audit = database.prepare(audit.insert(), _AUDIT_COLUMNS)
        self._insert_issued = database.prepare(database.insert_ignoring_duplicates(card_issued), _ISSUED_COLUMNS)

    def _stored_key(self) -> bytes:
        """A random key kept in the database: the same on every replica that shares it."""
        with self.database.write() as db:
            db.execute(self.database.insert_ignoring_duplicates(meta).values(
                name="patient_hash_key", value=secrets.token_hex(32)))
            value = db.execute(select(meta.c.value).where(meta.c.name == "patient_hash_key")).scalar_one()
        return value.encode()

    def patient_hash(self, patient_id: str) -> str:
        return patient_hash(patient_id, self._hash_key)

    def ping(self, timeout_s: float = READY_TIMEOUT_S) -> bool:
        """A read-only round trip (no write lock), for the readiness probe."""
        try:
            with self.database.read(timeout_s) as db:
                db.execute(select(func.count()).select_from(meta)).scalar_one()
            return True
        except SQLAlchemyError:
            return False

    def save_feedback(self, service: str, items: Iterable[Mapping[str, Any]]) -> int:
        rows = [_feedback_row(service, item) for item in items]
        if rows:
            with self.database.write() as db:
                db.execute(feedback.insert(), rows)
        return len(rows)

    def record_audit(self, entry: Mapping[str, Any], along: Sequence[tuple[Prepared, list]] = ()) -> None:
        """The audit row and the cards issued, in one transaction (raises SQLAlchemyError when it fails),
        with the prepared statements `along` (the DTR chart the answer sealed: docs/dtr.md)."""
        self.record_audits([entry], along)

    def record_audits(self, entries: Iterable[Mapping[str, Any]], along: Sequence[tuple[Prepared, list]] = ()) -> None:
        """Audit rows and the cards they issued, and the statements `along`, in one transaction."""
        now = timestamp_now()
        rows, issued = [], []
        for entry in entries:
            patient = entry.get("patient_id")
            rows.append(dict(
                received_at=entry.get("received_at") or now, hook_instance=entry.get("hook_instance"), service=entry["service"],
                patient_hash=self.patient_hash(patient) if patient else None, policy=entry.get("policy"),
                determination=entry.get("determination"), policy_version=entry.get("policy_version"),
                policy_digest=entry.get("policy_digest"),
                coverage_assertion_sha256=json.dumps(list(map(assertion_sha256, entry.get("coverage_assertion_ids", [])))),
                card_uuids=json.dumps(entry.get("card_uuids", [])),
                card_indicators=json.dumps(entry.get("card_indicators", [])),
                timings_ms=json.dumps(entry.get("timings_ms", {})), counts=json.dumps(entry.get("counts", {}))))
            issued += [{"card_uuid": uuid, "card_type": card_type, "service": entry["service"], "issued_at": now}
                       for uuid, card_type in entry.get("card_types", {}).items()]
        self.database.execute_prepared([(self._insert_audit, rows), (self._insert_issued, issued), *along])
        self._purge_expired_audit()

    def _purge_expired_audit(self) -> None:
        if self._retention_days <= 0 or time.monotonic() - self._purged_at < RETENTION_PURGE_INTERVAL_S:
            return
        if not self._purge_lock.acquire(blocking=False):
            return
        try:
            self._purged_at = time.monotonic()
            self.purge_audit_before(datetime.now(timezone.utc) - timedelta(days=self._retention_days))
        finally:
            self._purge_lock.release()

    def purge_audit_before(self, cutoff: datetime) -> int:
        with self.database.write() as db:
            result = db.execute(delete(audit).where(audit.c.received_at < cutoff.isoformat(timespec="milliseconds")))
        return result.rowcount

    # --- the report's queries (service/report.py) ---

    def issued_counts(self) -> list[tuple[str, int]]:
        """(card type, cards issued)."""
        query = select(card_issued.c.card_type, func.count()).group_by(card_issued.c.card_type)
        return self._rows(query)

    def outcome_counts(self) -> list[tuple[str, str, int]]:
        """(card type, outcome, feedback items); feedback for an unknown card counts as type 'unknown'."""
        card_type = func.coalesce(card_issued.c.card_type, literal("unknown")).label("card_type")
        query = (select(card_type, feedback.c.outcome, func.count())
                 .select_from(feedback.outerjoin(card_issued, card_issued.c.card_uuid == feedback.c.card_uuid))
                 .group_by(card_type, feedback.c.outcome))
        return self._rows(query)

    def override_reasons(self) -> list[tuple[str, str, int]]:
        """(card type, reason, overrides), the most frequent first."""
        card_type = func.coalesce(card_issued.c.card_type, literal("unknown")).label("card_type")
        reason = func.coalesce(feedback.c.override_display, feedback.c.override_code,
                               literal("no reason given")).label("reason")
        count = func.count().label("n")
        query = (select(card_type, reason, count)
                 .select_from(feedback.outerjoin(card_issued, card_issued.c.card_uuid == feedback.c.card_uuid))
                 .where(feedback.c.outcome == "overridden")
                 .group_by(card_type, reason).order_by(count.desc(), reason))
        return self._rows(query)

    def _rows(self, query) -> list[tuple]:
        with self.database.read() as db:
            return [tuple(row) for row in db.execute(query)]

    def issued_cards(self, service: str, card_uuids: Iterable[str]) -> set[str]:
        """Those of `card_uuids` that `service` issued (feedback is taken only for them)."""
        wanted = sorted(set(card_uuids))
        if not wanted:
            return set()
        query = select(card_issued.c.card_uuid).where(card_issued.c.service == service,
                                                      card_issued.c.card_uuid.in_(wanted))
        return {uuid for (uuid,) in self._rows(query)}

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Raw SQL in the driver's parameter style (tests and ad-hoc inspection only)."""
        with self.database.read() as db:
            return [tuple(row) for row in db.exec_driver_sql(sql, params)]


def _feedback_row(service: str, item: Mapping[str, Any]) -> dict:
    reason = item.get("overrideReason") or {}
    coding = reason.get("reason") or {}
    accepted = [s["id"] for s in item.get("acceptedSuggestions") or ()]
    return {"received_at": timestamp_now(), "service": service, "card_uuid": item["card"], "outcome": item["outcome"],
            "accepted_suggestions": json.dumps(accepted), "override_code": coding.get("code"),
            "override_display": coding.get("display"), "user_comment": reason.get("userComment"),
            "outcome_timestamp": item["outcomeTimestamp"]}
