"""Requests a CDS client should never send, each answered with a 4xx JSON body naming the problem and
nothing stored: lone surrogates, feedback on cards never issued, timestamps that are not RFC 3339."""
from __future__ import annotations

import json

import pytest

from tests.fixtures import order_select_request, order_sign_request
from tests.security.conftest import SELECT, SIGN, assert_error_body

LONE = "\ud800"


def post_raw(client, path: str, body) -> tuple[int, dict]:
    # json.dumps writes a lone surrogate as the escape "\ud800", as a client's serializer would.
    response = client.post(path, data=json.dumps(body), content_type="application/json")
    return response.status_code, assert_error_body(response) if response.status_code != 200 else response.get_json()


@pytest.fixture
def app(make_app):
    return make_app(fhir_allowlist=())


def issued_card(client, path=SIGN) -> str:
    body = order_sign_request() if path == SIGN else order_select_request()
    return client.post(path, json=body).get_json()["cards"][0]["uuid"]


def stored(app, table: str) -> int:
    return app.extensions["mecasermin"].store.query(f"SELECT COUNT(*) FROM {table}")[0][0]


def feedback(card: str, stamp: str = "2026-11-21T10:15:00Z", **extra) -> dict:
    return {"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": stamp,
                          "overrideReason": {"reason": {"code": "pa-in-progress"}, **extra}}]}


@pytest.mark.parametrize("place", ["hookInstance", "userId", "chart"])
def test_a_lone_surrogate_in_a_hook_call_is_a_400_naming_it(app, place):
    client = app.test_client()
    body = order_select_request()
    expected = {"hookInstance": "$.hookInstance", "userId": "$.context.userId",
                "chart": "$.prefetch.conditions.entry[0].resource.code.text"}[place]
    if place == "hookInstance":
        body["hookInstance"] = "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea" + LONE
    elif place == "userId":
        body["context"]["userId"] = "Practitioner/" + LONE
    else:
        body["prefetch"]["conditions"]["entry"][0]["resource"]["code"]["text"] = "Laron " + LONE
    status, error = post_raw(client, SELECT, body)
    assert status == 400 and error["error"] == "invalid-json", error
    assert error["message"].startswith(expected) and error["violations"][0]["path"] == expected
    assert stored(app, "audit") == 0


def test_a_valid_surrogate_pair_is_text(app):
    body = order_select_request()
    body["prefetch"]["conditions"]["entry"][0]["resource"]["code"]["text"] = "Laron \U0001F600"
    status, _ = post_raw(app.test_client(), SELECT, body)
    assert status == 200


@pytest.mark.parametrize("field", ["card", "userComment"])
def test_a_lone_surrogate_in_feedback_is_a_400_and_nothing_is_stored(app, field):
    client = app.test_client()
    card = issued_card(client)
    body = feedback(card + LONE) if field == "card" else feedback(card, userComment="call back " + LONE)
    status, error = post_raw(client, SIGN + "/feedback", body)
    assert status == 400 and error["error"] == "invalid-json"
    path = "$.feedback[0].card" if field == "card" else "$.feedback[0].overrideReason.userComment"
    assert error["violations"][0]["path"] == path
    assert stored(app, "feedback") == 0


def test_feedback_on_a_card_never_issued_is_refused(app):
    client = app.test_client()
    card = issued_card(client)
    body = feedback(card)
    body["feedback"].append(feedback("1f6c1b49-7a8e-4bb5-9d55-3c6a1f0e2b7d")["feedback"][0])
    status, error = post_raw(client, SIGN + "/feedback", body)
    assert status == 422 and error["error"] == "unknown-card"
    assert [v["path"] for v in error["violations"]] == ["$.feedback[1].card"]
    assert stored(app, "feedback") == 0, "nothing of a refused batch is stored"
    assert post_raw(client, SIGN + "/feedback", feedback(card)) == (200, {"stored": 1})


def test_feedback_goes_to_the_service_that_issued_the_card(app):
    client = app.test_client()
    card = issued_card(client, SELECT)
    status, error = post_raw(client, SIGN + "/feedback", feedback(card))
    assert status == 422 and error["error"] == "unknown-card"
    assert post_raw(client, SELECT + "/feedback", feedback(card)) == (200, {"stored": 1})


@pytest.mark.parametrize("stamp", ["2026-99-99Tjunk", "2026-02-30T10:15:00Z", "2026-11-21T10:15Z",
                                   "2026-11-21T10:15:00", "2026-11-21T25:15:00Z", "2026-11-21T10:15:00+24:00",
                                   "2026-11-21T10:15:00Zjunk"])
def test_feedback_timestamps_must_be_rfc3339(app, stamp):
    client = app.test_client()
    status, error = post_raw(client, SIGN + "/feedback", feedback(issued_card(client), stamp))
    assert status == 400 and error["error"] == "invalid-request"
    assert error["violations"][0]["path"] == "$.feedback[0].outcomeTimestamp"
    assert stored(app, "feedback") == 0


@pytest.mark.parametrize("stamp", ["2026-11-21T10:15:00Z", "2026-11-21T10:15:00.123456+05:30",
                                   "2016-12-31T23:59:60Z"])
def test_rfc3339_timestamps_are_accepted(app, stamp):
    client = app.test_client()
    assert post_raw(client, SIGN + "/feedback", feedback(issued_card(client), stamp)) == (200, {"stored": 1})
