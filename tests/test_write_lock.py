"""SQLite writers queue on a kernel lock (service/storage/database.py, `_WriteLock`): one writer at a
time across threads and processes, the next woken when the last commits, and SQLite alone deciding
when the lock cannot be had."""
from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import threading
import time

from sqlalchemy import func, select

from service.storage import Database
from service.storage.tables import meta


def migrated(path) -> Database:
    database = Database(f"sqlite:///{path}")
    database.migrate()
    return database


def _insert(database: Database, name: str) -> None:
    with database.write() as db:
        db.execute(meta.insert().values(name=name, value="x"))


def _rows(database: Database) -> int:
    with database.read() as db:
        return db.execute(select(func.count()).select_from(meta)).scalar_one()


def _writer_process(path: str, prefix: str, count: int) -> None:
    database = Database(f"sqlite:///{path}")
    threads = [threading.Thread(target=lambda t=t: [_insert(database, f"{prefix}-{t}-{i}") for i in range(count)])
               for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_writers_in_two_processes_and_many_threads_all_commit(tmp_path):
    path = tmp_path / "w.sqlite3"
    before = _rows(migrated(path))
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_writer_process, args=(str(path), f"p{n}", 25)) for n in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    assert _rows(Database(f"sqlite:///{path}")) == before + 2 * 4 * 25
    assert (tmp_path / "w.sqlite3.write-lock").exists()


def _write_when_told(database: Database, go, result) -> None:
    go.wait(30)
    started = time.monotonic()
    _insert(database, "from-the-child")
    result.put(time.monotonic() - started)


def test_a_process_forked_after_the_lock_was_used_waits_for_the_parents_write(tmp_path):
    # The child inherits the parent's lock object, its descriptor and (had the fork come from inside a
    # write) its held thread lock: it must start with its own, or its flock would exclude nothing.
    database = migrated(tmp_path / "f.sqlite3")
    _insert(database, "before-the-fork")          # the parent's descriptor exists before the fork
    database.engine.dispose()                     # as `serve` does: no SQLite connection crosses the fork
    context = multiprocessing.get_context("fork")
    go, result = context.Event(), context.Queue()
    child = context.Process(target=_write_when_told, args=(database, go, result))
    child.start()
    with database.write() as db:
        db.execute(meta.insert().values(name="held", value="x"))
        go.set()
        time.sleep(0.4)
    waited = result.get(timeout=30)
    child.join(30)
    assert child.exitcode == 0
    assert waited >= 0.3                          # it could not write until the parent committed
    assert _rows(database) == 3


def test_the_next_writer_starts_as_soon_as_the_holder_commits(tmp_path):
    path = tmp_path / "k.sqlite3"
    database = migrated(path)
    holder = os.open(f"{path}.write-lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)                 # another process's writer, as the kernel sees it
    done = threading.Event()
    writer = threading.Thread(target=lambda: (_insert(database, "waiting"), done.set()))
    writer.start()
    time.sleep(0.3)
    assert not done.is_set()                           # queued on the lock, not writing beside it
    released = time.monotonic()
    fcntl.flock(holder, fcntl.LOCK_UN)
    assert done.wait(5)
    # SQLite's busy handler would have slept up to 100 ms between tries; the kernel wakes the waiter.
    assert time.monotonic() - released < 0.1
    writer.join()
    os.close(holder)


def test_without_the_lock_file_sqlite_alone_decides_and_the_write_succeeds(tmp_path, caplog):
    path = tmp_path / "n.sqlite3"
    database = migrated(path)
    os.mkdir(f"{path}.write-lock")                     # cannot be opened as the lock file
    before = _rows(database)
    with caplog.at_level(logging.WARNING, logger="service.storage.database"):
        _insert(database, "unlocked")
    assert _rows(database) == before + 1
    assert any("write lock unavailable" in r.getMessage() for r in caplog.records)


def test_postgres_writes_take_no_file_lock():
    database = Database("postgresql://cds@127.0.0.1:1/nowhere")
    assert database._write_lock is None
