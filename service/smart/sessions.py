"""Server-side SMART sessions, in the service's database (table `smart_session`).

The browser holds only a random opaque session id (HttpOnly, SameSite=Lax cookie). The row is
keyed by a hash of that id and its contents (access token, patient id, PKCE verifier, state) are
encrypted with AES-256-GCM under a key derived from the id, so the database alone — a backup, a
copy on disk — reveals neither tokens nor patients: only the browser that holds the cookie can
open its row. Rows carry an absolute expiry; expired rows are unreadable and purged on writes.

The database (not process memory) lets every gunicorn worker, and every replica that shares a
PostgreSQL database, serve any step of the flow: no sticky sessions.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import time
from typing import Any, Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select

from service.storage import Database
from service.storage.tables import smart_session

_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")    # token_urlsafe(32)


def valid_session_id(value: str | None) -> bool:
    return bool(value) and bool(_SESSION_ID.match(value))


def _derive(session_id: str) -> tuple[str, bytes]:
    secret = session_id.encode("ascii")
    id_hash = hmac.new(secret, b"mecasermin-smart/session-id", hashlib.sha256).hexdigest()
    key = hmac.new(secret, b"mecasermin-smart/session-key", hashlib.sha256).digest()
    return id_hash, key


class SmartSessions:
    def __init__(self, database: Database, clock: Callable[[], float] = time.time):
        self.database = database
        self.clock = clock

    def create(self, data: dict[str, Any], lifetime: float) -> str:
        """Store `data` under a new random session id and return the id (for the cookie only)."""
        session_id = secrets.token_urlsafe(32)
        self.save(session_id, data, self.clock() + lifetime)
        return session_id

    def save(self, session_id: str, data: dict[str, Any], expires_at: float) -> None:
        id_hash, key = _derive(session_id)
        nonce = os.urandom(12)
        payload = AESGCM(key).encrypt(nonce, json.dumps(data).encode("utf-8"), id_hash.encode("ascii"))
        with self.database.write() as db:
            db.execute(delete(smart_session).where(smart_session.c.expires_at <= self.clock()))
            db.execute(self.database.upsert(smart_session, ["id_hash"], {
                "id_hash": id_hash, "expires_at": expires_at, "nonce": nonce, "payload": payload}))

    def load(self, session_id: str | None) -> tuple[dict[str, Any], float] | None:
        """(data, expires_at), or None when the id is malformed, unknown, expired or unreadable."""
        if not valid_session_id(session_id):
            return None
        id_hash, key = _derive(session_id)
        with self.database.read() as db:
            row = db.execute(select(smart_session.c.expires_at, smart_session.c.nonce, smart_session.c.payload)
                             .where(smart_session.c.id_hash == id_hash)).first()
        if row is None or row.expires_at <= self.clock():
            return None
        try:
            plain = AESGCM(key).decrypt(bytes(row.nonce), bytes(row.payload), id_hash.encode("ascii"))
        except InvalidTag:
            return None
        return json.loads(plain), row.expires_at

    def delete(self, session_id: str | None) -> None:
        if not valid_session_id(session_id):
            return
        id_hash, _ = _derive(session_id)
        with self.database.write() as db:
            db.execute(delete(smart_session).where(smart_session.c.id_hash == id_hash))
