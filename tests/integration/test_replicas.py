"""Two replicas of the service on one PostgreSQL database, behind nginx round-robin (issue 18).

What the replicas must share, proved with real processes: a jti accepted by one is refused by
the other; a SMART sign-in started on one completes on the other; `report` counts the feedback
sent to both; the patient hash is the same on both (its key generated once, in the database);
and killing one replica mid-load loses no feedback that was acknowledged.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fixtures import order_sign_request
from tests.integration.conftest import ROOT, CdsServiceProcess
from tests.integration.replicas import NginxBalancer, PostgresServer, require_packages
from tests.security.jwt_helpers import EHR_ISS, claims, ec_key, public_jwk, sign
from tests.smart.fake_ehr import FakeEhr

pytestmark = [pytest.mark.integration, pytest.mark.replicas]

SIGN = "/cds-services/mecasermin-order-sign"
KID = "ehr-replicas-1"


class Cluster:
    def __init__(self, folder: Path):
        bin_dir = require_packages()
        self.key = ec_key(ec.SECP384R1())
        issuers = folder / "trusted-issuers.json"
        issuers.write_text(json.dumps([{"iss": EHR_ISS, "jwks": {"keys": [public_jwk(self.key, KID, "ES384")]}}]))
        self.ehr = FakeEhr().start()
        self.postgres = PostgresServer(bin_dir)
        self.replicas: list[CdsServiceProcess] = []
        self.nginx = None
        try:
            from tests.integration.conftest import free_port

            self.nginx_port = free_port()
            self.base_url = f"http://127.0.0.1:{self.nginx_port}"
            env = {"CDS_DATABASE_URL": self.postgres.url, "CDS_AUTH_MODE": "optional",
                   "CDS_TRUSTED_ISSUERS_FILE": str(issuers), "CDS_PUBLIC_BASE_URL": self.base_url,
                   "CDS_WORKER_CLASS": "gthread", "CDS_THREADS": "4",
                   "CDS_FHIR_ALLOWLIST": f"{self.ehr.iss},{self.ehr.base}/auth/*"}
            # No CDS_AUDIT_HASH_KEY: the replicas must agree on the key kept in the database.
            for name in ("a", "b"):
                self.replicas.append(CdsServiceProcess(folder / f"unused-{name}.sqlite3", self.ehr.iss, env=env))
            self.nginx = NginxBalancer([r.port for r in self.replicas], port=self.nginx_port)
        except BaseException:
            self.stop()
            raise

    def token(self, service_path: str = SIGN) -> str:
        return "Bearer " + sign(self.key, "ES384", KID, claims(aud=self.base_url + service_path))

    def stop(self) -> None:
        if self.nginx:
            self.nginx.stop()
        for replica in self.replicas:
            replica.stop()
            replica.stderr.close()
        self.postgres.stop()
        self.ehr.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("replicas"))
    yield cluster
    cluster.stop()


def served(replica: CdsServiceProcess, service: str) -> float:
    """Requests this replica answered with 200 for `service`, from its own /metrics."""
    text = requests.get(replica.base_url + "/metrics", timeout=5).text
    prefix = f'cds_http_requests_total{{service="{service}",status="200"}} '
    return sum(float(line[len(prefix):]) for line in text.splitlines() if line.startswith(prefix))


def test_a_jti_accepted_by_one_replica_is_refused_by_the_other(cluster):
    a, b = cluster.replicas
    token = cluster.token()
    first = requests.post(a.base_url + SIGN, json=order_sign_request(), headers={"Authorization": token}, timeout=30)
    assert first.status_code == 200, first.text
    replayed = requests.post(b.base_url + SIGN, json=order_sign_request(), headers={"Authorization": token}, timeout=30)
    assert replayed.status_code == 401 and replayed.json()["error"] == "unauthorized"
    fresh = requests.post(b.base_url + SIGN, json=order_sign_request(), headers={"Authorization": cluster.token()},
                          timeout=30)
    assert fresh.status_code == 200, fresh.text


def test_a_smart_sign_in_started_on_one_replica_completes_on_the_other(cluster):
    a, b = cluster.replicas
    browser = requests.Session()
    launch = browser.get(f"{a.base_url}/smart/launch", params={"iss": cluster.ehr.iss, "launch": "abc"},
                         allow_redirects=False, timeout=30)
    assert launch.status_code == 302, launch.text
    authorized = requests.get(launch.headers["Location"], allow_redirects=False, timeout=10)
    assert authorized.status_code == 302, authorized.text
    back = urlsplit(authorized.headers["Location"])
    assert back.netloc == f"127.0.0.1:{cluster.nginx.port}" and back.path == "/smart/callback"
    on_b = urlunsplit(("http", f"127.0.0.1:{b.port}", back.path, back.query, ""))
    callback = browser.get(on_b, allow_redirects=False, timeout=30)
    assert callback.status_code == 303, callback.text
    page = browser.get(f"{a.base_url}/smart/app", timeout=30)
    assert page.status_code == 200 and "mecasermin" in page.text.lower()


def test_report_counts_feedback_sent_to_both_and_the_patient_hash_is_shared(cluster):
    a, b = cluster.replicas
    before = {r.port: served(r, "mecasermin-order-sign/feedback") for r in cluster.replicas}
    cards = []
    for _ in range(6):
        response = requests.post(cluster.nginx.base_url + SIGN, json=order_sign_request(), timeout=30)
        assert response.status_code == 200, response.text
        cards += [card["uuid"] for card in response.json()["cards"]]
    assert cards
    sent = 0
    for n in range(10):
        item = {"card": cards[n % len(cards)], "outcome": "accepted", "outcomeTimestamp": _timestamp(n)}
        response = requests.post(f"{cluster.nginx.base_url}{SIGN}/feedback", json={"feedback": [item]}, timeout=30)
        assert response.status_code == 200 and response.json() == {"stored": 1}, response.text
        sent += 1
    for replica in cluster.replicas:   # round-robin: both replicas stored some
        assert served(replica, "mecasermin-order-sign/feedback") > before[replica.port]

    report = subprocess.run([str(Path(sys.executable).parent / "mecasermin-cds"), "report", "--format", "json"],
                            env={**_env_without_cds(), "CDS_DATABASE_URL": cluster.postgres.url},
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert report.returncode == 0, report.stderr
    assert sum(row["answered"] for row in json.loads(report.stdout)) == sent

    with cluster.postgres.connect() as db:
        hashes = db.execute("SELECT DISTINCT patient_hash FROM audit").fetchall()
        calls = db.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
        versions = db.execute("SELECT DISTINCT policy, policy_version, policy_digest FROM audit "
                              "WHERE policy IS NOT NULL").fetchall()
    assert calls >= 8 and len(hashes) == 1 and hashes[0][0]
    premera = hashlib.sha256((ROOT / "service/policy/policies/premera-mecasermin.yaml").read_bytes()).hexdigest()
    assert versions == [("premera-mecasermin", "2023-12-01", premera)]   # migration 0002 on PostgreSQL
    assert served(a, "mecasermin-order-sign") and served(b, "mecasermin-order-sign")


def test_killing_one_replica_mid_load_loses_no_acknowledged_feedback(cluster):
    victim = cluster.replicas[1]
    card = requests.post(cluster.nginx.base_url + SIGN, json=order_sign_request(), timeout=30).json()["cards"][0]["uuid"]
    acknowledged: list[str] = []
    failed: list[int] = []
    lock = threading.Lock()
    killed = threading.Event()

    def send(worker: int) -> None:
        session = requests.Session()
        for n in range(60):
            stamp = _timestamp(1000 + worker * 100 + n)
            item = {"card": card, "outcome": "accepted", "outcomeTimestamp": stamp}
            try:
                response = session.post(f"{cluster.nginx.base_url}{SIGN}/feedback", json={"feedback": [item]},
                                        timeout=30)
                ok = response.status_code == 200 and response.json() == {"stored": 1}
            except requests.RequestException:
                ok = False
            with lock:
                (acknowledged.append(stamp) if ok else failed.append(n))
                if len(acknowledged) >= 60 and not killed.is_set():
                    killed.set()
                    os.killpg(victim.process.pid, signal.SIGKILL)   # the master and its workers, no goodbye

    threads = [threading.Thread(target=send, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert killed.is_set() and victim.process.wait(10) == -signal.SIGKILL
    with cluster.postgres.connect() as db:
        stored = {row[0] for row in db.execute("SELECT outcome_timestamp FROM feedback WHERE card_uuid = %s", (card,))}
    assert set(acknowledged) <= stored, f"{len(set(acknowledged) - stored)} acknowledged items are missing"
    assert len(acknowledged) >= 200 and len(failed) <= 8, (len(acknowledged), len(failed))


def _timestamp(n: int) -> str:
    moment = datetime(2026, 11, 21, 10, 0, tzinfo=timezone.utc) + timedelta(seconds=n)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _env_without_cds() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
