"""Audit rows of declined calls, written off the request path by one thread per process.

Most hook calls are about another drug: the trigger declines them, they issue no card and decide
nothing. The durability promise (a 200 means the audit row and the cards it issued are on disk, and
feedback is taken only for recorded cards: docs/operations.md) is about cards, so it does not cover
these calls, and their fsync'd commit need not hold up the answer. Every mecasermin call keeps its row
on the request path (service/api/hooks.py).

The queue is bounded, so a database that cannot keep up costs memory only up to `max_queued` rows;
a row that does not fit, or whose write fails, is dropped and counted (`cds_audit_rows_dropped_total`),
never silently. A graceful shutdown (gunicorn's SIGTERM, or the interpreter exiting) writes every
queued row first; only a killed process loses the rows still queued.
"""
from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from typing import Any, Mapping

from sqlalchemy.exc import SQLAlchemyError

from service import metrics
from service.store import timestamp_now

log = logging.getLogger(__name__)
MAX_QUEUED = 10_000
MAX_BATCH = 200         # rows per transaction: one commit (one fsync) for all that waited
# After the first row of a batch, the writer waits this long for others: one commit then serves
# every call of a busy moment instead of each (a commit per row cost as much CPU as writing on the path).
LINGER_S = 0.05
_STOP = object()


class DeferredAuditWriter:
    def __init__(self, store, max_queued: int = MAX_QUEUED):
        self._store = store
        self._queue: queue.Queue = queue.Queue(maxsize=max_queued)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def submit(self, entry: Mapping[str, Any]) -> None:
        self._ensure_running()
        try:
            self._queue.put_nowait({**entry, "received_at": timestamp_now()})
        except queue.Full:
            metrics.AUDIT_ROWS_DROPPED.labels("queue-full").inc()
            log.warning("deferred audit queue full: a declined call's row was dropped")

    def flush(self) -> None:
        """Return once every row submitted before the call is written (or dropped and counted)."""
        self._queue.join()

    def close(self) -> None:
        """Write what is queued and stop the thread (graceful shutdown)."""
        with self._lock:
            thread, running_here = self._thread, self._pid == os.getpid()
            self._thread = None
        if thread is not None and running_here:
            self._queue.put(_STOP)
            thread.join()

    def _ensure_running(self) -> None:
        # A thread does not survive fork: a gunicorn worker starts its own on its first declined call.
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="deferred-audit", daemon=True)
                self._thread.start()
                atexit.register(self.close)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            if batch[0] is not _STOP:
                time.sleep(LINGER_S)
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(entry is _STOP for entry in batch)
            rows = [entry for entry in batch if entry is not _STOP]
            self._write(rows)
            for _ in batch:
                self._queue.task_done()
            if stop:
                self._write_remaining()
                return

    def _write_remaining(self) -> None:
        rows = []
        while True:
            try:
                rows.append(self._queue.get_nowait())
            except queue.Empty:
                break
        self._write([row for row in rows if row is not _STOP])
        for _ in rows:
            self._queue.task_done()

    def _write(self, rows: list) -> None:
        if not rows:
            return
        try:
            self._store.record_audits(rows)
        except (SQLAlchemyError, TypeError, ValueError) as exc:     # the thread lives on: later rows still get written
            metrics.AUDIT_ROWS_DROPPED.labels("write-failed").inc(len(rows))
            log.error("deferred audit write failed: rows dropped", extra={"rows": len(rows), "error": type(exc).__name__})
