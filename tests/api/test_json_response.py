"""The app's JSON responses are written by orjson, byte for byte as Flask's own provider writes them."""
from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
import uuid

from flask import Flask
from hypothesis import given, settings, strategies as st

from service.api.json_response import JSONProvider
from tests.fixtures import order_select_request

SELECT = "/cds-services/mecasermin-order-select"


def _providers():
    standard, fast = Flask("standard"), Flask("fast")
    standard.json.sort_keys = False
    fast.json = JSONProvider(fast)
    return standard, fast


def _standard_bytes(value) -> bytes:
    standard, _ = _providers()
    with standard.app_context():
        return standard.json.response(value).get_data()


def _same_bytes(value) -> None:
    _, fast = _providers()
    with fast.app_context():
        assert fast.json.response(value).get_data() == _standard_bytes(value)


_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.floats(min_value=-1e-3, max_value=1e-3), st.floats(min_value=-1e18, max_value=1e18),
                    st.decimals(places=6, allow_nan=False, allow_infinity=False).map(float))
_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2 ** 70, max_value=2 ** 70), _floats,
                     st.text(), st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x300)),
                     st.sampled_from(["—", "…", "\u2060", "\u2028", "\x7f", "\U0001F600", "\ud800", "é"]))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)), max_leaves=30)


@settings(max_examples=600, deadline=None)
@given(_values)
def test_any_json_value_gets_the_standard_bytes(value):
    _same_bytes(value)


class _Colour(enum.Enum):
    RED = "red"


class _Code(str):
    pass


@dataclasses.dataclass
class _Point:
    x: int


def test_what_orjson_would_write_its_own_way_is_written_by_flask():
    for value in ({"when": datetime.date(2026, 12, 1)}, {"at": datetime.datetime(2026, 12, 1, 9, 30)},
                  [_Point(1)], {"id": uuid.UUID(int=7)}, {"code": _Code("x")}, {1: "int key"},
                  {"v": [1e-05, 2.5e-7, 0.00001234, math.nan, -math.inf]}, {"big": 2 ** 64}):
        _same_bytes(value)
    # The one difference: an Enum, which Flask's encoder refuses (no answer of this service holds one).
    _, fast = _providers()
    with fast.app_context():
        assert fast.json.response({"c": _Colour.RED}).get_data() == b'{"c":"red"}\n'


def test_a_crd_answer_is_the_bytes_flask_would_write(client):
    response = client.post(SELECT, json=order_select_request())
    assert response.status_code == 200 and response.get_json()["cards"]
    assert response.data == _standard_bytes(json.loads(response.data))
    assert "—" in response.get_json()["cards"][0]["detail"] and response.data.isascii()


def test_uuids_and_plain_numbers_take_orjson_and_a_value_it_writes_otherwise_does_not(monkeypatch):
    from flask.json.provider import DefaultJSONProvider
    standard_calls = []
    real = DefaultJSONProvider.dumps
    monkeypatch.setattr(DefaultJSONProvider, "dumps", lambda self, obj, **kw: standard_calls.append(obj) or real(
        self, obj, **kw))
    _, fast = _providers()
    plain = {"uuid": "0b1e-6f12-3e-7a", "detail": "1e-5 mg — 0.00001", "dose": [0.04, 1.5e-10, 12, -0.0]}
    with fast.app_context():
        fast.json.response(plain)
        assert standard_calls == []
        for other in ([2.5e-7], {"a": 0.00001}, {"a": None}):
            fast.json.response(other)
    assert len(standard_calls) == 3
