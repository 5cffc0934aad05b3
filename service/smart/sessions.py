"""Server-side SMART sessions, in the service's database (table `smart_session`).

The browser holds only a random opaque session id (HttpOnly, SameSite=Lax cookie). The row is
sealed by that id (service/storage/sealed.py): keyed by a hash of it, its contents (access token,
patient id, PKCE verifier, state) encrypted with AES-256-GCM under a key derived from it, so the
database alone reveals neither tokens nor patients: only the browser that holds the cookie can open
its row. Rows carry an absolute expiry; expired rows are unreadable and purged on writes.

The database (not process memory) lets every gunicorn worker, and every replica that shares a
PostgreSQL database, serve any step of the flow: no sticky sessions.
"""
from __future__ import annotations

import re
import secrets
import time
from typing import Any, Callable

from service.storage import Database
from service.storage.sealed import SealedRows
from service.storage.tables import smart_session

_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")    # token_urlsafe(32)


def valid_session_id(value: str | None) -> bool:
    return bool(value) and bool(_SESSION_ID.match(value))


class SmartSessions:
    def __init__(self, database: Database, clock: Callable[[], float] = time.time):
        self.database = database
        self.clock = clock
        # Through `self.clock`, which may be replaced later (tests move time on).
        self.rows = SealedRows(database, smart_session, b"mecasermin-smart/session", lambda: self.clock())

    def create(self, data: dict[str, Any], lifetime: float) -> str:
        """Store `data` under a new random session id and return the id (for the cookie only)."""
        session_id = secrets.token_urlsafe(32)
        self.save(session_id, data, self.clock() + lifetime)
        return session_id

    def save(self, session_id: str, data: dict[str, Any], expires_at: float) -> None:
        self.rows.save(session_id, data, expires_at)

    def load(self, session_id: str | None) -> tuple[dict[str, Any], float] | None:
        """(data, expires_at), or None when the id is malformed, unknown, expired or unreadable."""
        if not valid_session_id(session_id):
            return None
        return self.rows.load(session_id)

    def delete(self, session_id: str | None) -> None:
        if valid_session_id(session_id):
            self.rows.delete(session_id)
