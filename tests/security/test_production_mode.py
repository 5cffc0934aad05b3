"""Production mode (`CDS_AUTH_MODE=required`) never lets a caller aim the EHR's bearer token at any
local port, and no card tells a caller how a FHIR request failed (which would map open ports)."""
from __future__ import annotations

import socket

import pytest

from service.settings import Settings, SettingsError
from tests.fixtures import laron_prefetch, order_select_request
from tests.security.conftest import SELECT

PRODUCTION = {"auth_mode": "required", "audit_hash_key": "k-test-0123456789"}


@pytest.mark.parametrize("allowlist", [
    Settings().fhir_allowlist,                       # the development default
    ("https://fhir.example-health.org/r4", "http://localhost:*/fhir"),
    ("http://127.0.0.1:*",), ("http://[::1]:*",), ("http://0.0.0.0:*",), ("http://app.localhost:*",),
])
def test_required_mode_refuses_an_allowlist_open_to_any_local_port(allowlist):
    with pytest.raises(SettingsError, match="CDS_FHIR_ALLOWLIST"):
        Settings.from_env({}, fhir_allowlist=allowlist, **PRODUCTION)


@pytest.mark.parametrize("allowlist", [("https://fhir.example-health.org/r4",), ("http://127.0.0.1:8090/fhir",)])
def test_required_mode_accepts_named_fhir_bases(allowlist):
    assert Settings.from_env({}, fhir_allowlist=allowlist, **PRODUCTION).fhir_allowlist == allowlist


def test_development_modes_keep_the_loopback_default():
    assert Settings.from_env({}, auth_mode="optional").fhir_allowlist == Settings().fhir_allowlist


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gap_words(client, server: str) -> str:
    body = order_select_request(prefetch={"patient": laron_prefetch()["patient"]})
    body["fhirServer"] = server
    response = client.post(SELECT, json=body)
    assert response.status_code == 200, response.data[:300]
    result = response.get_json()
    details = [card["detail"] for card in result["cards"]]
    texts = [part["valueCodeableConcept"]["text"] for action in result.get("systemActions", [])
             for ext in action["resource"].get("extension", []) for part in ext.get("extension", [])
             if part["url"] == "reason"]
    return "\n".join(details + texts)


def test_cards_name_the_missing_data_never_the_network_failure(make_app, fault_server):
    client = make_app(fhir_deadline=1.5).test_client()
    refused = _gap_words(client, f"http://127.0.0.1:{_closed_port()}/fhir")
    answered = _gap_words(client, fault_server.url("http-500"))
    for words in (refused, answered):
        assert "observations: could not be read from the FHIR server" in words
        for detail in ("refused", "Connection", "connection", "HTTP 5", "500", "timeout", "Error)"):
            assert detail not in words, (detail, words)
    # A closed port and a server answering 500 read the same: nothing to tell them apart.
    def gap_lines(words: str) -> set[str]:
        return {line for line in words.splitlines() if "could not be read" in line}
    assert gap_lines(refused) == gap_lines(answered)


def test_a_search_cut_short_by_this_services_own_limits_still_says_what_was_left_unread():
    from service.pipeline import public_gap
    cut = "observations: the search was not read to the end: pages after the first 5 were left unread (40 of 540 matches unread)"
    assert public_gap(cut) == cut
    assert public_gap("conditions: the prefetched search is incomplete (it holds 2 of 3 matches) and was not "
                      "completed: connection refused") == ("conditions: the prefetched search is incomplete (it holds "
                                                           "2 of 3 matches) and was not completed: could not be read "
                                                           "from the FHIR server")


@pytest.mark.parametrize("gap,shown", [
    # No FHIR server may be called: nothing was tried, and the card must not say a fetch failed.
    ("observations: the prefetched search is incomplete (it holds 7 of 8 matches) and was not completed: "
     "no FHIR server may be called", None),
    ("Coverage/cov1: Organization/org-7 was not prefetched and no FHIR server may be called", None),
    # The service's own cap on references followed.
    ("MedicationRequest/m21: Medication/x was not read (more than 20 references)", None),
    # A reference the server failed to answer: which one, once, and not how it failed.
    ("Coverage/cov1: Organization/org-7 could not be read: connection failed (ConnectionRefusedError)",
     "Coverage/cov1: Organization/org-7 could not be read from the FHIR server"),
    ("conditions: HTTP 500", "conditions: could not be read from the FHIR server"),
])
def test_public_gaps_say_what_happened_and_never_how_the_network_failed(gap, shown):
    from service.pipeline import public_gap
    assert public_gap(gap) == (shown or gap)
