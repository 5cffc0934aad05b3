"""Fixtures that run the demo FHIR R4 server (fhir-server/server.mjs) as a real process.

- `fhir_server`: one server per test session on a free loopback port, loaded with the demo
  patients in sandbox-config/patients; yields its base URL ("http://127.0.0.1:PORT/fhir").
  Treat it as read-only: other tests share it.
- `fhir_server_factory`: starts more servers for a test that writes, or needs other data:
  `base = fhir_server_factory(data=[folder, ...])` (`data=[]` for an empty server,
  `lenient=True` to store resources without R4 validation). They are stopped at teardown.
- `cds_service`: the CDS service as a real process — gunicorn through the `mecasermin-cds serve`
  console script, like `make run` — on a free loopback port, one per test module, with its own
  SQLite database (`.database`), the session's `fhir_server` as its only allowed FHIR server, and
  its clock pinned (`serve --today`) to DEMO_TODAY, the anchor day of the demo patients.
  The FHIR servers date the (date-relative) demo charts to DEMO_TODAY too, so the files and the
  servers hold the same dates; pass `extra=["--today", ...]` to move them.

When fhir-server/node_modules is missing (a fresh clone), the fixture runs
`make fhir-server/node_modules` first, which needs npm and the npm registry.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing
from datetime import date
from pathlib import Path
from typing import IO, Callable, Iterator, Mapping, Sequence

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SERVER_DIR = ROOT / "fhir-server"
NODE = SERVER_DIR / "node_modules" / ".bin" / "node"
DEMO_PATIENTS = ROOT / "sandbox-config" / "patients"
START_TIMEOUT_S = 60
DEMO_TODAY = date(2026, 11, 21)
_LISTENING = re.compile(r"^listening (http://\S+/fhir)\s*$")


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_process(args: Sequence[str], **popen_kwargs) -> tuple[subprocess.Popen, IO[bytes]]:
    """Starts `args` in its own process group (so stop_process reaches its children too), its stderr
    captured in a temporary file; returns the process and that file (close it after stop_process)."""
    stderr = tempfile.TemporaryFile()
    process = subprocess.Popen(args, stderr=stderr, start_new_session=True, **popen_kwargs)
    return process, stderr


def read_stderr(stderr: IO[bytes]) -> str:
    stderr.seek(0)
    return stderr.read().decode("utf-8", "replace")


def stop_process(process: subprocess.Popen, term_timeout: float) -> None:
    """SIGTERM to the process group, SIGKILL if it is still running after `term_timeout` seconds;
    then closes the pipes to it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=term_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    for stream in (process.stdin, process.stdout):
        if stream:
            stream.close()


def ensure_installed() -> Path:
    """The Node binary that runs the server, installing fhir-server's packages if needed."""
    if not NODE.exists():
        make = shutil.which("make")
        command = [make, "fhir-server/node_modules"] if make else ["npm", "ci", "--no-audit", "--no-fund"]
        cwd = ROOT if make else SERVER_DIR
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
        if result.returncode != 0 or not NODE.exists():
            pytest.fail(f"could not install the FHIR server ({' '.join(command)}):\n{result.stderr[-2000:]}")
    return NODE


class FhirServerProcess:
    """One running server: started in __init__, stopped by stop()."""

    def __init__(self, data: Sequence[Path] | None = None, lenient: bool = False, extra: Sequence[str] = ()):
        node = ensure_installed()
        # --exit-on-stdin-eof: if this process dies without teardown, the server stops too.
        args = [str(node), str(SERVER_DIR / "server.mjs"), "--host", "127.0.0.1", "--port", "0",
                "--today", DEMO_TODAY.isoformat(), "--exit-on-stdin-eof"]
        for folder in (DEMO_PATIENTS,) if data is None else data:
            args += ["--data", str(folder)]
        if data is not None and not data:
            args += ["--data", "none"]
        if lenient:
            args.append("--lenient")
        args += list(extra)
        self.process, self.stderr = start_process(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.base_url = self._wait_for_listening()

    def _wait_for_listening(self) -> str:
        first_line: list[str] = []
        reader = threading.Thread(target=lambda: first_line.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        match = _LISTENING.match(first_line[0]) if first_line else None
        if not match:
            self.stop()
            pytest.fail(f"FHIR server did not start within {START_TIMEOUT_S}s: "
                        f"stdout={first_line!r} stderr={self.stderr_text()[-2000:]!r}")
        return match.group(1)

    def stderr_text(self) -> str:
        return read_stderr(self.stderr)

    def stop(self) -> None:
        stop_process(self.process, term_timeout=10)


@pytest.fixture(scope="session")
def fhir_server() -> Iterator[str]:
    server = FhirServerProcess()
    try:
        yield server.base_url
    finally:
        server.stop()
        server.stderr.close()


@pytest.fixture
def fhir_server_factory() -> Iterator[Callable[..., str]]:
    started: list[FhirServerProcess] = []

    def start(data: Sequence[Path] | None = None, lenient: bool = False, extra: Sequence[str] = ()) -> str:
        server = FhirServerProcess(data=data, lenient=lenient, extra=extra)
        started.append(server)
        return server.base_url

    yield start
    for server in started:
        server.stop()
        server.stderr.close()


class CdsServiceProcess:
    """The service under gunicorn (`mecasermin-cds serve`), started in __init__, stopped by stop()."""

    def __init__(self, database: Path, fhir_base: str, env: Mapping[str, str] | None = None, workers: int = 2,
                 today: date | None = None):
        console_script = Path(sys.executable).parent / "mecasermin-cds"
        if not console_script.exists():
            pytest.fail(f"{console_script} is missing: install the project into this venv (make test does)")
        self.port = free_port()
        self.database = database
        self.base_url = f"http://127.0.0.1:{self.port}"
        process_env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
        process_env.update({"CDS_DATABASE_URL": f"sqlite:///{database}", "CDS_FHIR_ALLOWLIST": fhir_base,
                            "CDS_AUTH_MODE": "off", "CDS_LOG_LEVEL": "WARNING", **(env or {})})
        args = [str(console_script), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)]
        if today is not None:
            args += ["--today", today.isoformat()]
        self.process, self.stderr = start_process(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                  env=process_env, cwd=ROOT)
        self._wait_until_healthy()

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if requests.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"the CDS service did not start on port {self.port}: {self.stderr_text()[-2000:]!r}")

    def stderr_text(self) -> str:
        return read_stderr(self.stderr)

    def stop(self) -> None:
        stop_process(self.process, term_timeout=15)


@pytest.fixture(scope="module")
def cds_service(fhir_server, tmp_path_factory) -> Iterator[CdsServiceProcess]:
    service = CdsServiceProcess(tmp_path_factory.mktemp("cds-service") / "cds.sqlite3", fhir_server, today=DEMO_TODAY)
    try:
        yield service
    finally:
        service.stop()
        service.stderr.close()
