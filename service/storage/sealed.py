"""Rows sealed by a secret only their holder has: the key and the row's name both derive from it.

A row is named by an HMAC of the secret and encrypted with AES-256-GCM under another HMAC of it
(the name as associated data), so the database alone — a backup, a copy on disk — reveals nothing of
what the rows hold, and which row belongs to which secret cannot be told without the secret. Rows
carry an absolute expiry; expired rows are unreadable and purged on writes (at most every ten seconds). SMART sessions (the
cookie's id) and DTR chart snapshots (the CRD coverage-assertion-id) are stored this way.

A DTR snapshot is a whole chart, written on every CRD answer that carries a questionnaire: it is
written by orjson (a tenth of the standard encoder's time) whenever orjson writes exactly what the
standard encoder would mean. orjson writes NaN and the infinities as `null` (a chart fetched from a
FHIR server was parsed by the standard parser, which reads `NaN`), so a text holding `null` anywhere
is written again by the standard encoder, as is anything orjson refuses; both are read back the same.

The text is deflated (zlib, fastest level) before it is encrypted: a chart's JSON shrinks about
twentyfold, and the bytes a commit writes and syncs are most of a snapshot's cost (a 137 kB row
0.6 ms of CPU per commit on SQLite, its 7 kB deflated 0.1 ms, deflating it 0.2 ms). A row written
before rows were deflated is JSON, which never begins with zlib's header byte `x`: it is read as it
is. A deflated row's length depends on how repetitive its text is as well as on its size: reading
anything from it would take both a copy of the table and chosen text placed in that same chart over
repeated CRD calls.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import time
import zlib
from typing import Any, Callable

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Table, bindparam, delete, select

from service.storage.database import Database, Prepared


# Types orjson writes and the standard encoder refuses: handed back to orjson's (absent) default, so refused.
_STANDARD_TYPES_ONLY = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def encode(data: Any) -> bytes:
    """`data` as JSON that `json.loads` reads back as the standard encoder's text would be read."""
    try:
        text = orjson.dumps(data, option=_STANDARD_TYPES_ONLY)
    except TypeError:                 # orjson.JSONEncodeError: an integer beyond 64 bits, a key not a str, …
        text = None
    if text is None or b"null" in text:     # a None, or a NaN orjson wrote as null: the standard encoder
        return json.dumps(data).encode("utf-8")
    return text


_DEFLATED = b"x"                    # the first byte of every zlib stream; no JSON text begins with it
_COLUMNS = ("id_hash", "expires_at", "nonce", "payload")
SWEEP_EVERY = 10.0                  # seconds between two purges of expired rows by one process


class SealedRows:
    """One table of sealed rows (columns id_hash, expires_at, nonce, payload) for one purpose."""

    def __init__(self, database: Database, table: Table, purpose: bytes, clock: Callable[[], float] = time.time):
        self.database, self.table, self.purpose, self.clock = database, table, purpose, clock
        self._swept_at = -math.inf
        # Compiled once: building the upsert cost a third of writing a whole chart with it.
        self._upsert = database.prepare(database.upsert(table, ["id_hash"], {name: bindparam(name) for name in _COLUMNS}),
                                        _COLUMNS)
        self._sweep = database.prepare(delete(table).where(table.c.expires_at <= bindparam("now")), ["now"])

    def _derive(self, secret: str) -> tuple[str, bytes]:
        raw = secret.encode("utf-8")
        id_hash = hmac.new(raw, self.purpose + b"-id", hashlib.sha256).hexdigest()
        key = hmac.new(raw, self.purpose + b"-key", hashlib.sha256).digest()
        return id_hash, key

    def save(self, secret: str, data: Any, expires_at: float, into: list | None = None) -> None:
        """`data` sealed by `secret`, in a transaction of its own; or, given `into` (the prepared statements
        of a transaction the caller commits with `Database.execute_prepared`), added to those, to stand
        or fall with the rows written with it."""
        id_hash, key = self._derive(secret)
        nonce = os.urandom(12)
        row = {"id_hash": id_hash, "expires_at": float(expires_at), "nonce": nonce,
               "payload": AESGCM(key).encrypt(nonce, zlib.compress(encode(data), 1), id_hash.encode("ascii"))}
        statements: list[tuple[Prepared, list[dict]]] = []
        # Expired rows are unreadable at once (`load`); purging them is housekeeping, which a
        # write does at most every SWEEP_EVERY seconds (DTR writes a chart on most CRD answers).
        now = self.clock()
        if abs(now - self._swept_at) >= SWEEP_EVERY:
            statements.append((self._sweep, [{"now": float(now)}]))
            self._swept_at = now
        statements.append((self._upsert, [row]))
        if into is None:
            self.database.execute_prepared(statements)
        else:
            into += statements

    def load(self, secret: str) -> tuple[Any, float] | None:
        """(data, expires_at), or None when unknown, expired or unreadable."""
        id_hash, key = self._derive(secret)
        table = self.table
        with self.database.read() as db:
            row = db.execute(select(table.c.expires_at, table.c.nonce, table.c.payload)
                             .where(table.c.id_hash == id_hash)).first()
        if row is None or row.expires_at <= self.clock():
            return None
        try:
            plain = AESGCM(key).decrypt(bytes(row.nonce), bytes(row.payload), id_hash.encode("ascii"))
        except InvalidTag:
            return None
        return json.loads(zlib.decompress(plain) if plain[:1] == _DEFLATED else plain), row.expires_at

    def delete(self, secret: str) -> None:
        id_hash, _ = self._derive(secret)
        with self.database.write() as db:
            db.execute(delete(self.table).where(self.table.c.id_hash == id_hash))
