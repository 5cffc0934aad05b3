"""Sealed chart rows (service/storage/sealed.py): a chart is written by orjson when that writes it exactly,
by the standard encoder otherwise, and `recall` gives back the very chart that was kept either way (NaN in
a Medication read from a FHIR server stays NaN — orjson would write it as null —, a None stays None, an
integer beyond 64 bits and a lone surrogate survive). Expired rows are purged by a write at most every
SWEEP_EVERY seconds, and never read in between."""
from __future__ import annotations

import json
import math
from datetime import date

import pytest
from sqlalchemy import func, select

from service.dtr.snapshots import ChartSnapshots
from service.storage import Database
from service.storage.sealed import SWEEP_EVERY, encode
from service.storage.tables import dtr_snapshot
from tests.fixtures import laron_prefetch, mecasermin_order


@pytest.fixture
def now():
    return [1_800_000_000.0]


@pytest.fixture
def snapshots(tmp_path, now):
    database = Database(f"sqlite:///{tmp_path / 'snapshots.sqlite3'}")
    database.migrate()
    return ChartSnapshots(database, lifetime=3600, clock=lambda: now[0])


def _rows(snapshots) -> int:
    with snapshots.rows.database.read() as db:
        return db.execute(select(func.count()).select_from(dtr_snapshot)).scalar_one()


def _chart() -> list[dict]:
    return [entry["resource"] for value in laron_prefetch().values() if isinstance(value, dict)
            for entry in value.get("entry", [])]


def test_a_plain_chart_is_written_by_orjson_and_recalled_whole(snapshots):
    chart = _chart()
    chart[0] = {**chart[0], "name": [{"text": "Zoë Ñúñez 李"}]}
    data = {"resources": chart, "order": mecasermin_order(), "policy": "aetna"}
    assert encode(data) != json.dumps(data).encode()            # not the standard encoder's text…
    assert json.loads(encode(data)) == data                     # …read back the same
    snapshots.keep_answer(None, "assertion-1", chart, mecasermin_order(), "aetna", None)
    kept = snapshots.recall("assertion-1")
    assert kept.resources == chart and kept.order == mecasermin_order()
    assert kept.policy_id == "aetna" and kept.user is None


@pytest.mark.parametrize("odd", [float("nan"), float("inf"), None, 2 ** 70, "\ud800 lone surrogate"])
def test_what_orjson_cannot_write_exactly_is_written_by_the_standard_encoder(snapshots, odd):
    medication = {"resourceType": "Medication", "id": "m1", "amount": {"numerator": {"value": odd}}}
    data = {"resources": [medication]}
    assert encode(data) == json.dumps(data).encode()
    snapshots.keep_answer(None, "assertion-2", [medication], mecasermin_order(), None, "Practitioner/p1")
    kept = snapshots.recall("assertion-2")
    value = kept.resources[0]["amount"]["numerator"]["value"]
    assert (math.isnan(value) if isinstance(odd, float) and math.isnan(odd) else value == odd)
    assert type(value) is type(odd) and kept.user == "Practitioner/p1" and kept.policy_id is None


def test_types_json_cannot_write_are_still_refused(snapshots):
    with pytest.raises(TypeError):
        encode({"when": date(2026, 1, 1)})


def test_an_expired_row_is_never_read_and_is_purged_by_a_later_write(snapshots, now):
    order = mecasermin_order()
    snapshots.keep_answer(None, "early", _chart(), order, "aetna", None)        # expires at +3600
    now[0] += 3600 - SWEEP_EVERY / 2
    snapshots.keep_answer(None, "a", [], order, "aetna", None)                  # a purge: nothing expired yet
    now[0] += SWEEP_EVERY / 2
    assert snapshots.recall("early") is None
    snapshots.keep_answer(None, "b", [], order, "aetna", None)                  # too soon for another purge
    assert _rows(snapshots) == 3 and snapshots.recall("early") is None          # on disk, never read
    now[0] += SWEEP_EVERY / 2
    snapshots.keep_answer(None, "c", [], order, "aetna", None)
    assert _rows(snapshots) == 3                                                # "early" purged
    assert [snapshots.recall(key).policy_id for key in ("a", "b", "c")] == ["aetna"] * 3
