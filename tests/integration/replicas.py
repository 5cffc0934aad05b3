"""A throw-away PostgreSQL server and an nginx round-robin balancer, as real processes on loopback.

Both come from Debian's packages (`postgresql`, `nginx-light`): `make replica-packages` installs
them when running as root; `require_packages()` installs them the same way when pytest runs
alone, and skips (saying why) only when they are missing and cannot be installed.
PostgreSQL refuses to run as root, so as root the server runs as the `postgres` (or `nobody`) user,
in its own folder under /tmp (the checkout may be where that user cannot go).
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Sequence

import psycopg
import pytest

from tests.integration.conftest import free_port, read_stderr, start_process, stop_process

NGINX = Path("/usr/sbin/nginx")
APT_PACKAGES = ("postgresql", "nginx-light")
START_TIMEOUT_S = 60


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def require_packages() -> Path:
    """The PostgreSQL bin folder, after installing the packages with apt-get if needed (root only)."""
    if _postgres_bin() is None or not NGINX.exists():
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.skip("the multi-replica test needs Debian's postgresql and nginx-light packages; "
                        "they are missing and apt-get needs root (run `make replica-packages` as root)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", *APT_PACKAGES]):
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
            if result.returncode != 0:
                pytest.fail(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return _postgres_bin()


class PostgresServer:
    """initdb into a temporary folder, then `postgres` on a free loopback port (trust auth, loopback only).

    `fsync` is off unless asked for: the tests kill service replicas, never the database, and a
    throw-away cluster need not survive a power cut. Benchmarks ask for it (`fsync=True`).
    """

    def __init__(self, bin_dir: Path, fsync: bool = False):
        as_root = os.geteuid() == 0
        # As root, under /tmp: the postgres user must reach the folder (TMPDIR may be inside /root).
        self.folder = Path(tempfile.mkdtemp(prefix="cds-postgres-", dir="/tmp" if as_root else None))
        self.port = free_port()
        user = None
        if as_root:
            user = "postgres" if _user_exists("postgres") else "nobody"
            shutil.chown(self.folder, user)
        data = self.folder / "data"
        initdb = subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", "cds", "--auth=trust",
                                 "--encoding=UTF8", "--no-instructions"],
                                user=user, cwd=self.folder, capture_output=True, text=True, timeout=120)
        if initdb.returncode != 0:
            pytest.fail(f"initdb failed: {initdb.stderr[-2000:]}")
        self.process, self.stderr = start_process(
            [str(bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port),
             "-k", str(self.folder), "-c", "max_connections=200", "-c", f"fsync={'on' if fsync else 'off'}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, user=user, cwd=self.folder)
        self._create_database()
        self.url = f"postgresql://cds@127.0.0.1:{self.port}/mecasermin"

    def _create_database(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with psycopg.connect(host="127.0.0.1", port=self.port, user="cds", dbname="postgres",
                                     autocommit=True, connect_timeout=2) as db:
                    db.execute("CREATE DATABASE mecasermin")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    pytest.fail(f"PostgreSQL did not start: {read_stderr(self.stderr)[-2000:]}")
                time.sleep(0.2)

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="cds", dbname="mecasermin", autocommit=True)

    def stop(self) -> None:
        stop_process(self.process, term_timeout=20)   # SIGTERM: PostgreSQL's "smart" shutdown
        self.stderr.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class NginxBalancer:
    """nginx round-robin over `upstream_ports`; a refused connection moves the request to the next one."""

    def __init__(self, upstream_ports: Sequence[int], port: int | None = None):
        self.folder = Path(tempfile.mkdtemp(prefix="cds-nginx-"))
        os.chmod(self.folder, 0o777)    # nginx's workers run as nobody when started by root
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        upstreams = "\n".join(f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=30s;" for port in upstream_ports)
        temp_paths = "\n".join(f"  {kind}_temp_path {self.folder}/{kind};"
                               for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        config = self.folder / "nginx.conf"
        config.write_text(f"""daemon off;
worker_processes 2;
pid {self.folder}/nginx.pid;
error_log {self.folder}/error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log off;
{temp_paths}
  upstream cds {{
{upstreams}
  }}
  server {{
    listen 127.0.0.1:{self.port};
    location / {{
      proxy_pass http://cds;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_next_upstream error timeout;
      proxy_connect_timeout 2s;
      proxy_read_timeout 30s;
    }}
  }}
}}
""")
        self.process, self.stderr = start_process(
            [str(NGINX), "-p", str(self.folder), "-e", str(self.folder / "error.log"), "-c", str(config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        import socket

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        log = (self.folder / "error.log").read_text() if (self.folder / "error.log").exists() else ""
        self.stop()
        pytest.fail(f"nginx did not start: {read_stderr(self.stderr)[-1000:]} {log[-1000:]}")

    def stop(self) -> None:
        stop_process(self.process, term_timeout=10)
        self.stderr.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
