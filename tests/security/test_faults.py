"""Fault injection: a real FHIR server on loopback that hangs, fails, lies and floods.

Whatever it does, the service answers a valid CDS Hooks response within the deadline (4 s with
the default 3 s FHIR deadline), never a 5xx, reports the missing data as a technical gap, sends
the bearer token only to the allowlisted server and is still healthy afterwards.
"""
from __future__ import annotations

import json
import time

import pytest

from service.fhir.prefetch import templates
from tests.fixtures import order_select_request, order_sign_request
from tests.security.conftest import SELECT, SIGN, response_problems

ACCESS_TOKEN = "at-7e1f0c2b9d4a4f0e8c55d1a3b6e9f201"
ANSWER_WITHIN = 4.0

# Every behaviour in which no usable Patient arrives: the card must say the record is incomplete.
PATIENT_LOST = [
    "hang", "hang-after-headers", "drip", "http-500", "http-503", "retry-after", "retry-after-long",
    "html", "truncated", "short-body", "huge", "huge-chunked", "gzip-bomb", "drop", "reset",
    "garbage-status", "outcome", "outcome-404", "redirect", "not-utf8", "deep-json",
]
# The server answers, but with nothing usable or with odd shapes: still a valid response.
ODD_BUT_ANSWERED = ["wrong-type", "null-json", "array-json", "next-loop", "next-offsite", "ok", "slow-ok"]


def no_prefetch_request(server_url: str, hook: str = "order-select") -> dict:
    """A mecasermin draft order with no prefetch at all: everything must come from the FHIR server."""
    body = (order_select_request if hook == "order-select" else order_sign_request)(prefetch=None)
    assert body["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"]["text"] == \
        "mecasermin 10 MG/ML Injectable Solution [Increlex]"
    body["fhirServer"] = server_url
    body["fhirAuthorization"] = {"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 300,
                                 "scope": "patient/*.read user/Practitioner.read", "subject": "mecasermin-cds",
                                 "patient": "p1"}
    return body


@pytest.fixture(scope="module")
def client(fault_server, tmp_path_factory):
    from datetime import date

    from service.app import create_app
    from service.settings import Settings

    database = tmp_path_factory.mktemp("faults") / "cds.sqlite3"
    # Only the fault server's /<mode> bases are allowed: the second origin (`other`) is not.
    settings = Settings.from_env({}, database_url=f"sqlite:///{database}", log_level="WARNING",
                                 fhir_allowlist=(fault_server.base + "/*",))
    app = create_app(settings, today=lambda: date(2026, 11, 21))
    yield app.test_client()
    app.extensions["mecasermin"].fhir_client.close()


def call(client, body: dict, path: str = SELECT):
    started = time.perf_counter()
    response = client.post(path, json=body)
    return response, time.perf_counter() - started


def assert_valid_answer(response, elapsed: float) -> dict:
    assert response.status_code == 200, response.data[:500]
    assert elapsed < ANSWER_WITHIN, f"answered in {elapsed:.2f} s"
    body = json.loads(response.data)
    assert response_problems(body) == []
    return body


def details(body: dict) -> str:
    return "\n".join(card.get("detail", "") for card in body["cards"])


@pytest.mark.parametrize("mode", PATIENT_LOST)
def test_failing_fhir_server_gives_a_valid_answer_with_a_technical_gap(client, fault_server, mode):
    response, elapsed = call(client, no_prefetch_request(fault_server.url(mode)))
    body = assert_valid_answer(response, elapsed)
    assert body["cards"], "a mecasermin order always gets guidance, even with no data"
    assert any(card["indicator"] == "warning" for card in body["cards"])
    assert "patient:" in details(body), "the card names the data that could not be read"
    calls = fault_server.calls_for(mode)
    assert calls and all(auth == f"Bearer {ACCESS_TOKEN}" for _, _, auth in calls)


@pytest.mark.parametrize("mode", ODD_BUT_ANSWERED)
def test_odd_answers_still_give_a_valid_response(client, fault_server, mode):
    response, elapsed = call(client, no_prefetch_request(fault_server.url(mode)))
    assert_valid_answer(response, elapsed)


@pytest.mark.parametrize("mode", ["hang", "http-500", "drip", "outcome"])
def test_order_sign_with_a_failing_server(client, fault_server, mode):
    response, elapsed = call(client, no_prefetch_request(fault_server.url(mode), "order-sign"), SIGN)
    body = assert_valid_answer(response, elapsed)
    assert "patient:" in details(body)


def test_token_never_leaves_the_allowlisted_origin(client, fault_server):
    for mode in ("redirect", "next-offsite"):
        call(client, no_prefetch_request(fault_server.url(mode)))
    assert fault_server.other.calls == [], "redirects and foreign next links must not be followed"


def test_pagination_loop_is_bounded(client, fault_server):
    before = len(fault_server.calls_for("next-loop"))
    call(client, no_prefetch_request(fault_server.url("next-loop")))
    searches = len(templates()) - 1                   # every prefetch key but the Patient read
    assert len(fault_server.calls_for("next-loop")) - before <= 1 + searches * 5   # CDS_FHIR_MAX_PAGES


def test_retry_after_is_honoured_within_the_deadline(client, fault_server):
    before = len(fault_server.calls_for("retry-after"))
    call(client, no_prefetch_request(fault_server.url("retry-after")))
    per_key = (len(fault_server.calls_for("retry-after")) - before) / len(templates())
    assert per_key == 3                               # first try + CDS_FHIR_RETRIES (2), 1 s apart

    before = len(fault_server.calls_for("retry-after-long"))
    response, elapsed = call(client, no_prefetch_request(fault_server.url("retry-after-long")))
    assert elapsed < 1.5                              # an hour's Retry-After is not waited for
    assert len(fault_server.calls_for("retry-after-long")) - before == len(templates())


def test_server_outside_the_allowlist_gets_no_request(make_app, fault_server):
    app = make_app(log_level="WARNING", fhir_allowlist=("https://ehr.example-health.org/fhir/r4",))
    before = len(fault_server.calls)
    body = no_prefetch_request(fault_server.url("ok"))
    response = app.test_client().post(SELECT, json=body)
    assert response.status_code == 412 and response.get_json()["error"] == "patient-unavailable"
    body["prefetch"] = {"patient": {"resourceType": "Patient", "id": "p1", "gender": "male",
                                    "birthDate": "2020-05-14"}}
    response = app.test_client().post(SELECT, json=body)
    assert_valid_answer(response, 0.0)
    assert len(fault_server.calls) == before


def test_service_recovers_after_slow_servers(client, fault_server):
    """Dripping and hanging servers must not leave the FHIR worker pool stuck."""
    for mode in ("drip", "drip"):                    # 14 stuck reads would fill the 8-thread pool
        call(client, no_prefetch_request(fault_server.url(mode)))
    time.sleep(2.2)                                   # hung reads end at the 2 s read timeout
    response, elapsed = call(client, no_prefetch_request(fault_server.url("ok")))
    body = assert_valid_answer(response, elapsed)
    assert elapsed < 1.5
    assert "patient:" not in details(body), "a healthy server's data is read in full again"


def test_concurrent_calls_against_a_hanging_server_all_answer_in_time(fault_server, tmp_path):
    """Several hook calls at once, all waiting on a hanging server, each answer within the deadline."""
    import threading
    from datetime import date

    from service.app import create_app
    from service.settings import Settings

    settings = Settings.from_env({}, database_url=f"sqlite:///{tmp_path}/c.sqlite3", log_level="WARNING",
                                 fhir_allowlist=(fault_server.base + "/*",))
    app = create_app(settings, today=lambda: date(2026, 11, 21))
    results: list[tuple[int, float, dict]] = []

    def one() -> None:
        response, elapsed = call(app.test_client(), no_prefetch_request(fault_server.url("hang")))
        results.append((response.status_code, elapsed, json.loads(response.data)))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 4
    for status, elapsed, body in results:
        assert status == 200 and elapsed < ANSWER_WITHIN and response_problems(body) == []
    app.extensions["mecasermin"].fhir_client.close()
