"""The `mecasermin-cds` command: serve the service, and inspect records and decisions offline."""
from __future__ import annotations

import argparse
import gc
import sys
from datetime import date
from pathlib import Path

from service.settings import Settings, SettingsError

METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"   # read by prometheus_client when it is imported
# A worker's threads share one GIL. A thread back from I/O — a SQLite commit, while it holds the
# database's write lock that the other workers wait for — waits up to this long for a thread that is
# computing to let go: Python's 5 ms made each write hold the lock for tens of milliseconds under load.
GIL_SWITCH_INTERVAL_S = 0.001
# The collector's youngest generation runs once this many more container objects are alive than at
# its last run (allocations minus what reference counting freed). A first-seen call parses and builds
# tens of thousands of them, all freed by refcounting when it answers; at Python's 700 the collector
# ran about four times per call, moved the call's live objects to older generations, and every ~30
# calls ran a full collection over the content caches (~40 ms each). At 20,000 it runs about once
# in 60 calls. Only cyclic garbage waits for it: what this bounds is the young containers kept
# between two runs (a few MB; the older generations keep Python's thresholds).
GC_YOUNG_THRESHOLD = 20_000


def _serve(args: argparse.Namespace) -> int:
    _prepare_metrics_dir()   # before prometheus_client is imported (settings' checks import it)
    settings = Settings.from_env()

    from gunicorn.app.base import BaseApplication
    from sqlalchemy.exc import SQLAlchemyError

    from service.app import create_app
    from service.metrics import mark_worker_dead
    from service.policy import PolicyError, load_policies
    from service.security.issuers import check_auth_settings
    from service.storage import Database

    host = args.host
    try:   # fail fast with one clear line, before forking workers
        policies = load_policies(settings.policy_dir, default_policy=settings.default_policy)
        check_auth_settings(settings)
        database = Database(settings.database_url)
        database.migrate()   # once, in the master: the workers find the schema current
        database.dispose()
    except (PolicyError, SettingsError) as exc:
        print(f"mecasermin-cds: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(f"mecasermin-cds: the database cannot be opened or migrated ({type(exc).__name__})", file=sys.stderr)
        return 2

    class _Gunicorn(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{args.port or settings.port}")
            self.cfg.set("workers", args.workers or settings.workers)
            self.cfg.set("worker_class", settings.worker_class)
            # gunicorn turns `sync` with threads > 1 into gthread: `sync` means one thread.
            self.cfg.set("threads", settings.threads if settings.worker_class == "gthread" else 1)
            self.cfg.set("timeout", settings.worker_timeout)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("accesslog", None)   # the app logs each call itself, without patient data
            # A kept-alive connection stays with the worker that accepted it: with a few busy
            # connections one worker may get most of them and compute on one core (the GIL) while
            # the other idles. Closed after each answer, the next request goes to whichever worker
            # accepts first, the idle one. (The proxy in front keeps the clients' connections.)
            self.cfg.set("keepalive", 0)
            # gunicorn's control socket (in $HOME/.gunicorn, shared by every instance of a user, and
            # not writable in the image) is not used: the service is managed by signals.
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)
            self.cfg.set("child_exit", lambda _arbiter, worker: mark_worker_dead(worker.pid))

        def load(self):
            # Built in each worker: database connections and thread pools must not cross a fork.
            pinned = args.today
            return create_app(settings, today=(lambda: pinned) if pinned else None)

    from service.warm import warm_up
    # In the master: every forked worker starts with the models, validators and answer path loaded.
    warm_up(settings, policies, args.today)
    tune_interpreter()
    _Gunicorn().run()
    return 0


def tune_interpreter() -> None:
    """The GIL switch interval and the collector's thresholds of a served worker (a fork inherits both)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _prepare_metrics_dir() -> None:
    """Prometheus multiprocess mode: one folder per instance, emptied of a previous run's counters.

    `PROMETHEUS_MULTIPROC_DIR` when the operator sets it (e.g. an emptyDir), else a new temporary folder.
    """
    import os
    import tempfile

    folder = os.environ.get(METRICS_DIR_ENV)
    if not folder:
        os.environ[METRICS_DIR_ENV] = tempfile.mkdtemp(prefix="mecasermin-cds-metrics-")
        return
    os.makedirs(folder, exist_ok=True)
    for stale in Path(folder).glob("*.db"):
        stale.unlink()


def build_parser() -> argparse.ArgumentParser:
    from service.policy.check import add_parser as add_policy
    from service.policy.command import add_parser as add_evaluate
    from service.record.command import add_parser as add_record
    from service.report import add_parser as add_report

    parser = argparse.ArgumentParser(prog="mecasermin-cds", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the CDS Hooks service with gunicorn")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default CDS_PORT)")
    serve.add_argument("--workers", type=int, help="worker processes (default CDS_WORKERS)")
    serve.add_argument("--today", metavar="YYYY-MM-DD", type=date.fromisoformat,
                       help="evaluate as of this date instead of the system date (demos and tests)")
    serve.set_defaults(handler=_serve)
    add_record(commands)
    add_evaluate(commands)
    add_policy(commands)
    add_report(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except SettingsError as exc:
        print(f"mecasermin-cds: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
