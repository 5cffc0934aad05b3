"""Every scan of chart text is linear in its size: a long, repetitive text (the shape that made
negation checks, the epiphyses reader and log redaction quadratic) is answered in about the time
any text of that size takes."""
from __future__ import annotations

import time

from service.logs import redact
from service.policy.codesets import text_matches
from service.record import epiphyses
from tests.fixtures import condition, fhir_bundle, laron_prefetch, order_select_request
from tests.security.conftest import SELECT

MEGABYTE_REPEATS = 100_000          # "no cancer " × 100,000 = 1 MB
LOCAL_SYSTEM = "http://hospital.example.org/problem-list"


def _elapsed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _hook_with_condition_text(client, text: str):
    prefetch = laron_prefetch()
    prefetch["conditions"] = fhir_bundle([
        condition("c1", "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency"),
        condition("c2", "local-77", text, system=LOCAL_SYSTEM)])
    return client.post(SELECT, json=order_select_request(prefetch=prefetch))


def test_a_megabyte_of_negated_mentions_through_the_hook_is_answered_in_linear_time(make_app):
    client = make_app(fhir_allowlist=()).test_client()
    floor_text = "plain word " * (MEGABYTE_REPEATS * 10 // 11)          # same size, nothing to match
    floor = _elapsed(lambda: _hook_with_condition_text(client, floor_text))
    hostile = "no cancer " * MEGABYTE_REPEATS
    answers = []
    took = _elapsed(lambda: answers.append(_hook_with_condition_text(client, hostile)))
    assert answers[0].status_code == 200, answers[0].data[:300]
    # Quadratic matching took 31–52 s on 16,000 repeats; linear matching costs about the floor.
    assert took < 2.0 and took < 3 * floor + 0.5, (took, floor)
    cards = answers[0].get_json()["cards"]
    assert not any("malignancy" in card["summary"].lower() for card in cards), "every mention is negated"


def test_negation_checks_are_linear_in_the_number_of_mentions():
    small, large = "no cancer " * 10_000, "no cancer " * MEGABYTE_REPEATS
    small_took = _elapsed(lambda: text_matches(["cancer"], small))
    large_took = _elapsed(lambda: text_matches(["cancer"], large))
    assert text_matches(["cancer"], large) is None
    assert text_matches(["cancer"], large + "; cancer of the left kidney") == "cancer"
    # Ten times the text: about ten times the time (a quadratic scan is a hundred times).
    assert large_took < 1.0 and large_took < 30 * small_took + 0.05, (small_took, large_took)


def test_a_mention_at_the_end_of_a_long_clause_is_still_read_with_its_own_words():
    long_clause = "word " * 50_000
    assert text_matches(["cancer"], long_clause + "no cancer") is None
    assert text_matches(["cancer"], long_clause + "cancer") == "cancer"
    assert text_matches(["cancer"], "cancer " + long_clause + "not detected") == "cancer"


def test_epiphyses_reader_is_linear_on_repeated_closure_mentions():
    for phrase in ("partially closed growth plates, ", "open growth plates ", "closed growth plates "):
        took = _elapsed(lambda: epiphyses.find([phrase * 30_000], "Observation/x", None))
        assert took < 2.0, (phrase, took)
    found = epiphyses.find(["partially closed growth plates, " * 30_000], "Observation/x", None)
    assert found == [], "every mention is hedged"


def test_log_redaction_is_linear_on_a_run_of_jwt_headers():
    assert _elapsed(lambda: redact("eyJ" * 100_000)) < 1.0
    assert "[REDACTED]" in redact("token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl seen")
