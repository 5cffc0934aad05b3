"""SQLite's WAL is checkpointed off the request path (service/storage/database.py, `_Checkpointer`):
no COMMIT of the service copies the WAL back, a thread of the writing process does, the WAL stays
bounded under writes that never pause, and a forked worker checkpoints on its own."""
from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
import time

from service.storage import Database
from service.storage import database as database_module
from service.storage.tables import meta

ROW_TEXT = "x" * 6000                # about two WAL pages a row


def migrated(path) -> Database:
    database = Database(f"sqlite:///{path}")
    database.migrate()
    with sqlite3.connect(path) as connection:           # the schema into the file, whatever checkpoints later
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return database


def _insert(database: Database, name: str) -> None:
    with database.write() as db:
        db.execute(meta.insert().values(name=name, value=ROW_TEXT))


def _rows_in_file(path) -> int:
    """Rows in the database file itself: `immutable` reads it without its WAL."""
    with sqlite3.connect(f"file:{path}?immutable=1", uri=True) as connection:
        return connection.execute("SELECT count(*) FROM meta WHERE name LIKE 'row-%'").fetchone()[0]


def _wait_for(condition, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_commit_never_checkpoints(tmp_path, monkeypatch):
    # 1,200 rows of two pages: past SQLite's 1,000-page autocheckpoint, which would copy them back.
    monkeypatch.setattr(database_module._Checkpointer, "wrote", lambda self: None)
    path = tmp_path / "c.sqlite3"
    database = migrated(path)
    for index in range(1200):
        _insert(database, f"row-{index}")
    with database.read() as db:
        assert db.execute(meta.select().where(meta.c.name == "row-1199")).first() is not None
    assert _rows_in_file(path) == 0
    assert os.path.getsize(f"{path}-wal") > 1000 * 4096
    database.dispose()


def test_the_checkpointer_copies_the_wal_into_the_file(tmp_path):
    path = tmp_path / "c.sqlite3"
    database = migrated(path)
    for index in range(50):
        _insert(database, f"row-{index}")
    assert _wait_for(lambda: _rows_in_file(path) == 50)
    database.dispose()
    assert not any(thread.name == "sqlite-checkpoint" for thread in threading.enumerate())


def test_the_wal_stays_bounded_while_writers_never_pause(tmp_path, monkeypatch):
    # Passive checkpoints alone never let the WAL start over while writers keep appending: past the
    # limit, the checkpointer holds the write lock once, and the next writer starts the WAL over.
    monkeypatch.setattr(database_module, "WAL_LIMIT_PAGES", 200)
    monkeypatch.setattr(database_module, "CHECKPOINT_PAUSE_S", 0.01)
    path = tmp_path / "c.sqlite3"
    database = migrated(path)
    threads = [threading.Thread(target=lambda t=t: [_insert(database, f"row-{t}-{i}") for i in range(600)])
               for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = 4 * 600 * len(ROW_TEXT)
    assert os.path.getsize(f"{path}-wal") < written / 4
    assert _wait_for(lambda: _rows_in_file(path) == 4 * 600)
    database.dispose()


def _write_in_child(database: Database, path: str, result) -> None:
    database.engine.dispose(close=False)                # the parent's connections stay the parent's
    for index in range(20):
        _insert(database, f"row-child-{index}")
    result.put(_wait_for(lambda: _rows_in_file(path) == 40))


def test_a_forked_worker_checkpoints_its_own_writes(tmp_path):
    path = tmp_path / "c.sqlite3"
    database = migrated(path)
    for index in range(20):
        _insert(database, f"row-parent-{index}")       # the parent's checkpointer is running at the fork
    context = multiprocessing.get_context("fork")
    result = context.Queue()
    child = context.Process(target=_write_in_child, args=(database, str(path), result))
    child.start()
    assert result.get(timeout=60) is True
    child.join(30)
    assert child.exitcode == 0
    database.dispose()
