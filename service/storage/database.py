"""The one database the service keeps its state in: SQLite (default) or PostgreSQL, via SQLAlchemy.

`CDS_DATABASE_URL` picks it: `sqlite:///path` needs no set-up (one host); `postgresql://…` (driven
by psycopg 3) is shared by every replica. Everything stored — feedback, audit, issued cards, jti
replay, SMART sessions, the patient-hash key — goes through one `Database`, one engine per process
(built after gunicorn forks: connections must not cross a fork).

The schema is versioned with Alembic (service/storage/migrations); `migrate()` brings a database
to the newest revision and runs at start-up, under a lock so that replicas starting together
migrate once. A write is one transaction that returns after COMMIT (SQLite: WAL, synchronous=FULL),
so an acknowledged write survives a crash.

SQLite lets one writer in at a time and makes the others poll: its busy handler sleeps 1, 2, 5, 10 …
100 ms between tries, so under load a write waits long after the lock is free (tens of ms at p99
with two workers). The service's own writers therefore queue in the kernel instead (`_WriteLock`:
a thread lock within the process, `flock` on a file beside the database across processes), which
wakes the next writer the moment the last one commits; SQLite's lock and busy timeout still guard
against every other process that opens the file.

The writes on a hook call's path (its audit row, the cards it issued, the DTR chart it sealed) are
statements of the same parameters every time: `prepare` compiles one once for the driver, and
`execute_prepared` runs such statements in one transaction on the driver's own connection (SQLite:
the thread's own, kept outside the pool), with the same lock, BEGIN and COMMIT as `write()`. Through
SQLAlchemy's connection, its own per-call work (the transaction's objects and events, statement cache keys, the pool's wrappers) was 60 % of the write's
CPU. The statement is compiled before the dialect meets the server; the SQL is the same after
(checked on PostgreSQL 15).
"""
from __future__ import annotations

import fcntl
import logging
import os
import threading
import weakref
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Float, LargeBinary, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.sql import Executable

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_S = 5
_MIGRATION_LOCK = 0x6D656361   # pg_advisory_lock id, any constant the service alone uses
# A deferred write transaction that read first cannot wait for the lock (SQLITE_BUSY at once):
# SQLite writes take it up front; reads take none.
_SQLITE_BEGIN_WRITE = "BEGIN IMMEDIATE"
# Types whose SQLAlchemy processors only coerce what both drivers take as it is (bytes, floats): a
# prepared statement may bind them, given values of that very type.
_TAKEN_AS_THEY_ARE = (LargeBinary, Float)

log = logging.getLogger(__name__)
logging.getLogger("alembic").setLevel(logging.WARNING)   # one line of ours per migration instead


class DatabaseUrlError(ValueError):
    """`CDS_DATABASE_URL` is not a SQLite or PostgreSQL URL."""


def database_url(value: str) -> URL:
    """The SQLAlchemy URL for `CDS_DATABASE_URL`; `postgresql://` means the psycopg 3 driver."""
    try:
        url = make_url(value)
    except ArgumentError:
        raise DatabaseUrlError(f"not a database URL: {value.split('@')[-1]!r}") from None
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg")
    if url.drivername == "sqlite" and url.database and url.database != ":memory:":
        return url
    raise DatabaseUrlError("CDS_DATABASE_URL must be sqlite:///path or postgresql://user@host/db, "
                           f"not {url.drivername}://…")


@dataclass(frozen=True)
class Prepared:
    """A statement of fixed parameters, compiled once for one driver (`Database.prepare`)."""

    sql: str
    names: tuple[str, ...]
    positional: bool               # the driver takes a tuple in `names` order, else the row's mapping

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> list:
        if self.positional:
            return [tuple(row[name] for name in self.names) for row in rows]
        return [{name: row[name] for name in self.names} for row in rows]


class Database:
    def __init__(self, url: str, pool_size: int = 5):
        self.url = database_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine = _sqlite_engine(self.url, pool_size) if self.is_sqlite else _postgres_engine(self.url, pool_size)
        self._dialect = sqlite if self.is_sqlite else postgresql
        self._write_lock = _WriteLock(Path(f"{self.url.database}.write-lock")) if self.is_sqlite else None
        self._writers = threading.local()      # SQLite: each thread's connection for `execute_prepared`

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction, committed when the block ends (SQLite: BEGIN IMMEDIATE), rolled back on error."""
        with self._write_lock.held() if self._write_lock else nullcontext(), self.engine.begin() as connection:
            yield connection

    def prepare(self, statement: Executable, names: Sequence[str]) -> Prepared:
        """`statement` compiled for this driver, for parameters of exactly `names` (an INSERT's columns,
        or its bound parameters). Only for values the driver takes as they are (text, numbers, bytes): no
        SQLAlchemy type conversion is applied."""
        compiled = statement.compile(dialect=self.engine.dialect, column_keys=list(names), for_executemany=True)
        converted = [name for name in compiled._bind_processors
                     if not isinstance(compiled.binds[name].type, _TAKEN_AS_THEY_ARE)]
        if converted:
            raise TypeError(f"columns needing conversion cannot be prepared: {sorted(converted)}")
        order = tuple(compiled.positiontup) if compiled.positional else tuple(names)
        return Prepared(compiled.string, order, compiled.positional)

    def execute_prepared(self, batches: Sequence[tuple[Prepared, Sequence[Mapping[str, Any]]]]) -> None:
        """Every batch in one transaction, committed before it returns, rolled back on error (raises
        SQLAlchemy's DBAPIError, as `write()` does). The same transaction as `write()`, on the driver's
        own connection (PostgreSQL: from the same pool; SQLite: the thread's own, `_writer`)."""
        dbapi_error = self.engine.dialect.loaded_dbapi.Error
        with self._write_lock.held() if self._write_lock else nullcontext():
            connection = self._writer() if self.is_sqlite else self.engine.raw_connection()
            cursor = None
            try:
                cursor = connection.cursor()
                if self.is_sqlite:
                    cursor.execute(_SQLITE_BEGIN_WRITE)
                for prepared, rows in batches:
                    if rows:
                        cursor.executemany(prepared.sql, prepared.parameters(rows))
                connection.commit()
            except dbapi_error as exc:
                self._abandon(connection, cursor, exc)
                raise DBAPIError.instance(None, None, exc, dbapi_error, hide_parameters=True,
                                          connection_invalidated=not connection.is_valid,
                                          dialect=self.engine.dialect) from exc
            finally:
                if cursor is not None:
                    cursor.close()
                if not self.is_sqlite:
                    connection.close()      # back to the pool, which rolls back what is left open
                elif connection.is_valid and connection.dbapi_connection.in_transaction:
                    connection.rollback()   # what the pool would have done: nothing is left open

    def _writer(self):
        """The calling thread's SQLite connection for `execute_prepared`, opened by the pool (so with its
        pragmas) and detached from it: checking one out of the pool and back in cost a first-seen call
        0.08–0.11 ms of CPU (measured interleaved, on a loaded machine), a seventh of its writes. A file
        does not drop connections as a server does (what the pool's checks are for, on PostgreSQL): one
        that failed is invalidated (`_abandon`) and replaced on the next call; a thread's ends with it,
        and a forked child opens its own."""
        writers = self._writers
        connection = getattr(writers, "connection", None)
        if connection is None or not connection.is_valid or writers.pid != os.getpid():
            connection = self.engine.raw_connection()
            connection.detach()
            writers.connection, writers.pid = connection, os.getpid()
        return connection

    def _abandon(self, connection, cursor, exc: Exception) -> None:
        """Rolls a failed transaction back; a connection the database dropped leaves the pool."""
        if self.engine.dialect.is_disconnect(exc, connection.dbapi_connection, cursor):
            connection.invalidate(exc)
            return
        try:
            connection.rollback()
        except self.engine.dialect.loaded_dbapi.Error:
            connection.invalidate(exc)

    @contextmanager
    def read(self, timeout_s: float | None = None) -> Iterator[Connection]:
        """A read-only transaction: takes no write lock; Postgres cancels it after `timeout_s`."""
        with self.engine.connect() as connection:
            connection.execution_options(cds_read_only=True)
            with connection.begin():
                if not self.is_sqlite:
                    connection.exec_driver_sql("SET TRANSACTION READ ONLY")
                    if timeout_s is not None:
                        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
                yield connection

    def insert_ignoring_duplicates(self, table: Table):
        """`INSERT … ON CONFLICT DO NOTHING`; add `.returning(…)`: no row back means the key was there
        (psycopg reports no rowcount for it)."""
        return self._dialect.insert(table).on_conflict_do_nothing()

    def upsert(self, table: Table, keys: list[str], values: dict):
        statement = self._dialect.insert(table).values(**values)
        changed = {name: statement.excluded[name] for name in values if name not in keys}
        return statement.on_conflict_do_update(index_elements=keys, set_=changed)

    def migrate(self) -> None:
        """Bring the schema to the newest revision (a no-op when it is there)."""
        with self.engine.begin() as connection:
            if not self.is_sqlite:
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            current, head = _current_revision(connection), _head_revision()
            if current != head:
                config = _alembic_config()
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                log.info("database migrated", extra={"from_revision": current, "to_revision": head})

    def dispose(self) -> None:
        self.engine.dispose()
        if self._write_lock:
            self._write_lock.close()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _sqlite_engine(url: URL, pool_size: int) -> Engine:
    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # Pooled like Postgres: opening the file and setting its pragmas per transaction costs more than the write.
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size,
                           connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None          # transactions are begun below, not by the driver
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")        # a 200 means the row is on disk
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get("cds_read_only")
        connection.exec_driver_sql("BEGIN" if read_only else _SQLITE_BEGIN_WRITE)

    return engine


class _WriteLock:
    """Lets one of this host's service writers at a time into SQLite, waking the next at once.

    Only scheduling: SQLite's own lock still decides who writes. A thread that cannot have the thread
    lock within the busy timeout goes ahead and leaves it to SQLite (which then answers busy, as
    before), and so does a process that cannot open the lock file. The kernel drops a process's
    `flock` when it dies, and its holder holds it for one transaction, which SQLite's busy timeout
    bounds. A forked child starts with its own thread lock and descriptor (the parent's, shared
    through the fork, would exclude nothing and might be held).
    """

    def __init__(self, path: Path):
        self._path = path
        self._threads = threading.Lock()
        self._fd: int | None = None
        _WRITE_LOCKS.add(self)

    @contextmanager
    def held(self) -> Iterator[None]:
        threads = self._threads
        if not threads.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            yield
            return
        try:
            fd = self._locked()
            try:
                yield
            finally:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            threads.release()

    def _locked(self) -> int | None:
        """The process's descriptor, locked; None when the file cannot be opened (SQLite alone decides)."""
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            return self._fd
        except OSError as exc:
            log.warning("write lock unavailable: SQLite's busy handler decides", extra={"error": type(exc).__name__})
            return None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _after_fork(self) -> None:
        self._threads = threading.Lock()
        self.close()          # the child's copy only: the parent's lock, if held, stays held


_WRITE_LOCKS: "weakref.WeakSet[_WriteLock]" = weakref.WeakSet()
os.register_at_fork(after_in_child=lambda: [lock._after_fork() for lock in list(_WRITE_LOCKS)])


def _postgres_engine(url: URL, pool_size: int) -> Engine:
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_timeout=CONNECT_TIMEOUT_S,
                         pool_pre_ping=True, pool_recycle=1800,
                         connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "mecasermin-cds"})
