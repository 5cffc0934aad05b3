"""The `jti` replay caches: a CDS client's token is accepted once, never twice.

`ReplayCache` keeps seen `(iss, jti)` pairs in memory (one process); `DatabaseReplayCache` keeps
them in the service's database, so every worker and every replica sharing it refuses a replay.

Only tokens whose signature, issuer and lifetime were verified reach a cache, and each pair is
forgotten when its token expires (`exp` plus leeway, at most `MAX_TOKEN_LIFETIME` after `iat`).
Each issuer has its own bound (`CDS_JTI_LIMIT_PER_ISSUER` live pairs): an issuer that sends more
than bound ÷ token lifetime tokens a second has its excess refused — throttled, since pairs expire
continuously — while every other issuer is untouched. A database error refuses the token.
"""
from __future__ import annotations

import heapq
import logging
import threading
import time
from typing import Callable

from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError

from service.security.auth_errors import AuthenticationFailed
from service.storage import Database
from service.storage.tables import cds_client_jti

# Logged under the name these records had before the module was split, so log filters keep working.
log = logging.getLogger("service.security.client_auth")

JTI_LIMIT_PER_ISSUER = 500_000      # live jti per issuer: ~500 tokens/s sustained for a 16-minute lifetime
BOUND_CHECK_INTERVAL_S = 1.0        # how often a process recounts an issuer's live rows
PURGE_INTERVAL_S = 60.0             # how often a process deletes expired rows


class ReplayCache:
    """Seen `(iss, jti)` pairs until their token expires; bounded per issuer, thread-safe."""

    def __init__(self, limit_per_issuer: int = JTI_LIMIT_PER_ISSUER, clock: Callable[[], float] = time.time):
        self._limit = limit_per_issuer
        self._clock = clock
        self._expiry: dict[str, dict[str, float]] = {}
        self._heap: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(seen) for seen in self._expiry.values())

    def _purge(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            expires, iss, jti = heapq.heappop(self._heap)
            seen = self._expiry.get(iss, {})
            if seen.get(jti) == expires:
                del seen[jti]

    def add(self, iss: str, jti: str, expires_at: float) -> None:
        """Remember a jti; raise AuthenticationFailed when it was seen or its issuer is at its bound."""
        with self._lock:
            self._purge(self._clock())
            seen = self._expiry.setdefault(iss, {})
            if jti in seen:
                raise AuthenticationFailed("replayed-jti")
            if len(seen) >= self._limit:
                _log_at_bound(iss)
                raise AuthenticationFailed("replay-cache-full")
            seen[jti] = expires_at
            heapq.heappush(self._heap, (expires_at, iss, jti))


class DatabaseReplayCache:
    """Seen `(iss, jti)` pairs in the service database (`INSERT … ON CONFLICT DO NOTHING`).

    The insert is the check: one round trip, atomic across replicas. The per-issuer bound is
    recounted at most once a second per process (between counts, the process adds its own
    inserts), and expired rows are deleted at most once a minute, so neither costs a query per token.
    """

    def __init__(self, database: Database, limit_per_issuer: int = JTI_LIMIT_PER_ISSUER,
                 clock: Callable[[], float] = time.time):
        self.database = database
        self._limit = limit_per_issuer
        self._clock = clock
        self._live: dict[str, tuple[float, int]] = {}    # iss -> (counted at, live rows then + inserted since)
        self._purged_at = float("-inf")
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self.database.read() as db:
            return db.execute(select(func.count()).select_from(cds_client_jti)
                              .where(cds_client_jti.c.expires_at > self._clock())).scalar_one()

    def add(self, iss: str, jti: str, expires_at: float) -> None:
        now = self._clock()
        try:
            if self._issuer_at_bound(iss, now):
                _log_at_bound(iss)
                raise AuthenticationFailed("replay-cache-full")
            with self.database.write() as db:
                inserted = db.execute(self.database.insert_ignoring_duplicates(cds_client_jti).values(
                    iss=iss, jti=jti, expires_at=expires_at).returning(cds_client_jti.c.jti)).first()
                if inserted is None:
                    # The pair may be an expired row not yet purged: then this is a new token.
                    taken = db.execute(delete(cds_client_jti).where(
                        cds_client_jti.c.iss == iss, cds_client_jti.c.jti == jti,
                        cds_client_jti.c.expires_at <= now).returning(cds_client_jti.c.jti)).first()
                    if taken is None:
                        raise AuthenticationFailed("replayed-jti")
                    db.execute(cds_client_jti.insert().values(iss=iss, jti=jti, expires_at=expires_at))
            self._counted_insert(iss)
            self._purge_expired(now)
        except SQLAlchemyError as exc:
            log.error("replay cache unavailable", extra={"error": type(exc).__name__})
            raise AuthenticationFailed("replay-cache-unavailable") from None

    def _issuer_at_bound(self, iss: str, now: float) -> bool:
        counted = self._live.get(iss)
        if counted is None or now - counted[0] >= BOUND_CHECK_INTERVAL_S:
            live = (select(cds_client_jti.c.jti)
                    .where(cds_client_jti.c.iss == iss, cds_client_jti.c.expires_at > now)
                    .limit(self._limit).subquery())
            with self.database.read() as db:
                counted = (now, db.execute(select(func.count()).select_from(live)).scalar_one())
            self._live[iss] = counted
        return counted[1] >= self._limit

    def _counted_insert(self, iss: str) -> None:
        with self._lock:
            counted_at, live = self._live[iss]
            self._live[iss] = (counted_at, live + 1)

    def _purge_expired(self, now: float) -> None:
        with self._lock:
            if now - self._purged_at < PURGE_INTERVAL_S:
                return
            self._purged_at = now
        with self.database.write() as db:
            db.execute(delete(cds_client_jti).where(cds_client_jti.c.expires_at <= now))


def _log_at_bound(iss: str) -> None:
    log.warning("jti replay bound reached: this issuer's excess tokens are refused", extra={"issuer": iss})
