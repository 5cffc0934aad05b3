"""The `jti` replay caches: a CDS client's token is accepted once, never twice.

`ReplayCache` keeps seen `(iss, jti)` pairs in memory (one process); `SqliteReplayCache` keeps them
in the service's SQLite database so that every gunicorn worker shares them. Both forget a pair when
its token expires and refuse tokens rather than grow without bound.
"""
from __future__ import annotations

import heapq
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable

from service.security.auth_errors import AuthenticationFailed

# Logged under the name these records had before the module was split, so log filters keep working.
log = logging.getLogger("service.security.client_auth")

REPLAY_CACHE_SIZE = 100_000         # jti values remembered; when full of live ones, tokens are refused


class ReplayCache:
    """Seen `(iss, jti)` pairs until their token expires; bounded, thread-safe."""

    def __init__(self, max_entries: int = REPLAY_CACHE_SIZE, clock: Callable[[], float] = time.time):
        self._max = max_entries
        self._clock = clock
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def _purge(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            expires, key = heapq.heappop(self._heap)
            if self._expiry.get(key) == expires:
                del self._expiry[key]

    def add(self, iss: str, jti: str, expires_at: float) -> None:
        """Remember a jti; raise AuthenticationFailed when it was seen or the cache is full."""
        key = (iss, jti)
        with self._lock:
            now = self._clock()
            self._purge(now)
            if key in self._expiry:
                raise AuthenticationFailed("replayed-jti")
            if len(self._expiry) >= self._max:
                raise AuthenticationFailed("replay-cache-full")
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))


class SqliteReplayCache:
    """Seen `(iss, jti)` pairs in the service's SQLite database, shared by every worker process.

    An in-memory cache is per process: behind gunicorn with N workers a replayed token would
    reach another worker and pass. Rows live until their token expires (at most
    `MAX_TOKEN_LIFETIME` plus leeway), which bounds the table by the request rate; `max_entries`
    is a hard cap on top. Commits do not fsync (WAL, synchronous=NORMAL): a replay cache needs
    to survive a worker crash, not a power cut. Any database error refuses the token.
    """

    TABLE = "cds_client_jti"

    def __init__(self, path: str | Path, max_entries: int = REPLAY_CACHE_SIZE, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._max = max_entries
        self._clock = clock
        self._local = threading.local()
        db = self._db()
        db.execute(f"CREATE TABLE IF NOT EXISTS {self.TABLE} (iss TEXT NOT NULL, jti TEXT NOT NULL, "
                   "expires_at REAL NOT NULL, PRIMARY KEY (iss, jti)) WITHOUT ROWID")
        db.execute(f"CREATE INDEX IF NOT EXISTS {self.TABLE}_expiry ON {self.TABLE} (expires_at)")

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=10000")
            self._local.db = db
        return db

    def __len__(self) -> int:
        return self._db().execute(f"SELECT count(*) FROM {self.TABLE} WHERE expires_at > ?",
                                  (self._clock(),)).fetchone()[0]

    def add(self, iss: str, jti: str, expires_at: float) -> None:
        now = self._clock()
        try:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(f"DELETE FROM {self.TABLE} WHERE expires_at <= ?", (now,))
                if db.execute(f"SELECT count(*) FROM {self.TABLE}").fetchone()[0] >= self._max:
                    raise AuthenticationFailed("replay-cache-full")
                db.execute(f"INSERT INTO {self.TABLE} (iss, jti, expires_at) VALUES (?, ?, ?)", (iss, jti, expires_at))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.IntegrityError:
            raise AuthenticationFailed("replayed-jti") from None
        except sqlite3.Error as exc:
            log.error("replay cache unavailable", extra={"error": type(exc).__name__})
            raise AuthenticationFailed("replay-cache-unavailable") from None
