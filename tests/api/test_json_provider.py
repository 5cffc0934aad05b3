"""The app's JSON provider writes the same JSON values as Flask's standard provider, in the same text but for
non-ASCII characters (UTF-8, not escaped) and small floats (service/api/json_provider.py)."""
from __future__ import annotations

import dataclasses
import json
import re
import datetime
import decimal
import math
import struct
import uuid

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider
from hypothesis import given, settings, strategies as st

from service.api.json_provider import AnswerJSONProvider
from service.app import create_app
from service.settings import Settings

_APP = Flask(__name__)
FAST, STANDARD = AnswerJSONProvider(_APP), DefaultJSONProvider(_APP)
for _provider in (FAST, STANDARD):
    _provider.sort_keys = False             # as service/app.py sets it


def _both(value, **kwargs):
    return FAST.dumps(value, **kwargs), STANDARD.dumps(value, **kwargs)


def _read(text):
    """The value a client reads; NaN read as a string, so that it equals itself."""
    return json.loads(text, parse_constant=lambda constant: "constant " + constant)


_DIFFERENTLY_WRITTEN_FLOAT = re.compile(r"e|0\.0000")


def _same(value):
    fast, standard = _both(value, separators=(",", ":"))
    assert _read(fast) == _read(standard)
    # The text itself is the same wherever it holds neither non-ASCII nor a float written otherwise.
    if fast.isascii() and "\x7f" not in fast and not any(
            _DIFFERENTLY_WRITTEN_FLOAT.search(repr(x)) for x in _floats(value)):
        assert fast == standard
    fast.encode("utf-8")            # the response's bytes: never a lone surrogate


def _floats(value):
    if isinstance(value, float):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _floats(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _floats(item)


# Any text Python can hold: every plane, control characters, DEL, lone surrogates.
texts = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=30)
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [1e-05, 9.99e-05, 1e-4, -1.5e-05, 1e15, 1e16, 1.2345e22, 5e-324, -0.0, 0.1, 2.5])
scalars = st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | floats | texts
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(texts, inner, max_size=5)
                           | st.tuples(inner, inner), max_leaves=40)


@settings(max_examples=1500, deadline=None)
@given(json_values)
def test_the_same_text_as_the_standard_provider(value):
    _same(value)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_every_float_written_as_the_standard_encoder_writes_it(bits):
    value = struct.unpack("<d", struct.pack("<Q", bits))[0]
    _same({"value": value, "list": [value, -value]})


def test_floats_written_in_another_form_are_the_same_numbers():
    for value in (1e-05, 4.02e-05, 1e16, 1e22, 2.35e-09, 5e-324):
        _same([value])
        _same({"a": -value})


def test_nan_and_the_infinities_are_left_to_the_standard_encoder():
    for value in (math.nan, math.inf, -math.inf):
        fast, standard = _both({"a": [value]}, separators=(",", ":"))
        assert fast == standard


@pytest.mark.parametrize("value", [
    {"text": "IGF-1 −2.4 SDS · 2.5 µg/L — ✓ 😀 \x7f \x00 \u2028 </script>"},
    {"lone": "\ud800"},
    {1: "a key not a str"},
    [2**64, -2**63 - 1],
    {"when": datetime.date(2026, 12, 1), "at": datetime.datetime(2026, 12, 1, 20, 0)},
    {"id": uuid.UUID(int=7), "amount": decimal.Decimal("1.10")},
    {"null": None, "text": "null"},
])
def test_messy_values(value):
    _same(value)


@dataclasses.dataclass
class _Card:
    summary: str
    indicator: str


def test_a_dataclass_is_written_by_flasks_default():
    _same({"card": _Card("Coverage — criteria met", "info")})


def test_other_forms_go_to_flask_unchanged():
    value = {"b": [1, 2.5, "é"], "a": None}
    for kwargs in ({}, {"indent": 2}, {"separators": (",", ":"), "sort_keys": True}):
        fast, standard = _both(value, **kwargs)
        assert fast == standard


def test_the_app_uses_it_and_its_responses_keep_flasks_form(tmp_path):
    app = create_app(Settings.from_env({}, database_url=f"sqlite:///{tmp_path}/x.db", log_level="ERROR"))
    assert isinstance(app.json, AnswerJSONProvider)
    with app.app_context():
        response = app.json.response({"cards": [], "text": "≥ 2 · µ"})
    assert response.get_data() == '{"cards":[],"text":"≥ 2 · µ"}\n'.encode("utf-8")
    assert response.mimetype == "application/json"
