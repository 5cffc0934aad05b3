"""Server-side SMART sessions, in the service's SQLite database (table `smart_session`).

The browser holds only a random opaque session id (HttpOnly, SameSite=Lax cookie). The row is
keyed by a hash of that id and its contents (access token, patient id, PKCE verifier, state) are
encrypted with AES-256-GCM under a key derived from the id, so the database alone — a backup, a
copy on disk — reveals neither tokens nor patients: only the browser that holds the cookie can
open its row. Rows carry an absolute expiry; expired rows are unreadable and purged on writes.

SQLite (not process memory) lets every gunicorn worker serve any step of the flow.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any, Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEMA = """
CREATE TABLE IF NOT EXISTS smart_session (
    id_hash TEXT PRIMARY KEY,
    expires_at REAL NOT NULL,
    nonce BLOB NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS smart_session_expiry ON smart_session (expires_at);
"""
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")    # token_urlsafe(32)


def valid_session_id(value: str | None) -> bool:
    return bool(value) and bool(_SESSION_ID.match(value))


def _derive(session_id: str) -> tuple[str, bytes]:
    secret = session_id.encode("ascii")
    id_hash = hmac.new(secret, b"mecasermin-smart/session-id", hashlib.sha256).hexdigest()
    key = hmac.new(secret, b"mecasermin-smart/session-key", hashlib.sha256).digest()
    return id_hash, key


class SmartSessions:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA busy_timeout=10000")
        return db

    def create(self, data: dict[str, Any], lifetime: float) -> str:
        """Store `data` under a new random session id and return the id (for the cookie only)."""
        session_id = secrets.token_urlsafe(32)
        self.save(session_id, data, self.clock() + lifetime)
        return session_id

    def save(self, session_id: str, data: dict[str, Any], expires_at: float) -> None:
        id_hash, key = _derive(session_id)
        nonce = os.urandom(12)
        payload = AESGCM(key).encrypt(nonce, json.dumps(data).encode("utf-8"), id_hash.encode("ascii"))
        now = self.clock()
        with closing(self._connect()) as db, db:
            db.execute("DELETE FROM smart_session WHERE expires_at <= ?", (now,))
            db.execute("INSERT OR REPLACE INTO smart_session (id_hash, expires_at, nonce, payload) VALUES (?,?,?,?)",
                       (id_hash, expires_at, nonce, payload))

    def load(self, session_id: str | None) -> tuple[dict[str, Any], float] | None:
        """(data, expires_at), or None when the id is malformed, unknown, expired or unreadable."""
        if not valid_session_id(session_id):
            return None
        id_hash, key = _derive(session_id)
        with closing(self._connect()) as db:
            row = db.execute("SELECT expires_at, nonce, payload FROM smart_session WHERE id_hash = ?",
                             (id_hash,)).fetchone()
        if row is None or row[0] <= self.clock():
            return None
        try:
            plain = AESGCM(key).decrypt(row[1], row[2], id_hash.encode("ascii"))
        except InvalidTag:
            return None
        return json.loads(plain), row[0]

    def delete(self, session_id: str | None) -> None:
        if not valid_session_id(session_id):
            return
        id_hash, _ = _derive(session_id)
        with closing(self._connect()) as db, db:
            db.execute("DELETE FROM smart_session WHERE id_hash = ?", (id_hash,))
