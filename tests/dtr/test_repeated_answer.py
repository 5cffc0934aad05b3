"""A repeated CRD answer reuses its coverage-assertion-id and keeps nothing again: order-select resends
the same chart on every edit, and sealing it anew each time wrote the whole chart on every call
(service/dtr/snapshots.py). Any change in what the answer was decided from gets a new id and a new
sealed chart; so does a repeat once a quarter of the row's lifetime has passed."""
from __future__ import annotations

import copy

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from service.storage.tables import dtr_snapshot
from tests.dtr.flow import kept_assertion_id
from tests.fixtures import order_select_request

SELECT = "/cds-services/mecasermin-order-select"
SIGN = "/cds-services/mecasermin-order-sign"


@pytest.fixture
def clock(app):
    """The snapshots' clock, which the test moves."""
    now = [1_800_000_000.0]
    snapshots = app.extensions["mecasermin"].snapshots
    snapshots.clock = snapshots.rows.clock = lambda: now[0]
    return now


@pytest.fixture
def saves(app):
    """Every chart sealed, as the list of keys it was sealed under."""
    rows = app.extensions["mecasermin"].snapshots.rows
    sealed, real = [], rows.save
    rows.save = lambda secret, *a, **k: sealed.append(secret) or real(secret, *a, **k)
    return sealed


def _rows(app) -> int:
    with app.extensions["mecasermin"].snapshots.rows.database.read() as db:
        return db.execute(select(func.count()).select_from(dtr_snapshot)).scalar_one()


def test_a_resent_chart_reuses_the_assertion_id_and_writes_no_snapshot(app, client, clock, saves):
    body = order_select_request()
    first = kept_assertion_id(client.post(SELECT, json=body).get_json())
    clock[0] += 3600
    again = kept_assertion_id(client.post(SELECT, json=copy.deepcopy(body)).get_json())
    signed = kept_assertion_id(client.post(SIGN, json=order_select_request(hook="order-sign")).get_json())
    assert first == again == signed
    assert saves == [first] and _rows(app) == 1
    snapshot = app.extensions["mecasermin"].snapshots.recall(again)
    assert snapshot.order["id"] == body["context"]["draftOrders"]["entry"][0]["resource"]["id"]


def test_a_changed_chart_or_user_gets_a_new_id_and_its_own_snapshot(app, client, clock, saves):
    body = order_select_request()
    first = kept_assertion_id(client.post(SELECT, json=body).get_json())
    changed = copy.deepcopy(body)
    height = next(e["resource"] for e in changed["prefetch"]["observations"]["entry"]
                  if e["resource"]["code"]["coding"][0]["code"] == "8302-2")
    height["valueQuantity"]["value"] += 0.1
    other_chart = kept_assertion_id(client.post(SELECT, json=changed).get_json())
    other_user = copy.deepcopy(body)
    other_user["context"]["userId"] = "Practitioner/dr-8"
    by_another = kept_assertion_id(client.post(SELECT, json=other_user).get_json())
    assert len({first, other_chart, by_another}) == 3 and saves == [first, other_chart, by_another]
    snapshots = app.extensions["mecasermin"].snapshots
    kept = next(r for r in snapshots.recall(other_chart).resources if r.get("id") == height["id"])
    assert kept["valueQuantity"]["value"] == height["valueQuantity"]["value"]
    assert snapshots.recall(by_another).user == "Practitioner/dr-8"


def test_an_id_is_reused_only_while_three_quarters_of_its_lifetime_remain(app, client, clock, saves):
    lifetime = app.extensions["mecasermin"].snapshots.lifetime
    body = order_select_request()
    first = kept_assertion_id(client.post(SELECT, json=body).get_json())
    clock[0] += lifetime / 4 - 1
    assert kept_assertion_id(client.post(SELECT, json=body).get_json()) == first
    clock[0] += 2
    renewed = kept_assertion_id(client.post(SELECT, json=body).get_json())
    assert renewed != first and saves == [first, renewed]
    assert app.extensions["mecasermin"].snapshots.recall(first) is not None     # the first id still opens


def test_a_snapshot_that_could_not_be_kept_is_not_reused(app, client, clock, saves):
    rows = app.extensions["mecasermin"].snapshots.rows
    working = rows.save

    def failing(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    rows.save = failing
    body = order_select_request()
    lost = kept_assertion_id(client.post(SELECT, json=body).get_json())      # the answer stands without it
    rows.save = working
    kept = kept_assertion_id(client.post(SELECT, json=body).get_json())
    assert kept != lost and saves == [kept]
    assert app.extensions["mecasermin"].snapshots.recall(kept) is not None
