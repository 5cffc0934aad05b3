"""The body's fast parse (orjson) gives what the standard parser gives, and every refusal the same."""
from __future__ import annotations

import json

import pytest

from service.api.errors import ApiError
from hypothesis import given, settings, strategies as st

from service.api.request_body import _UNPARSED, _check_depth, _check_parsed_depth, _fast_parse


@pytest.mark.parametrize("raw", [b'{"a": [1, -0, 1e5, 0.1, 2.5e-300, "\\ud83d\\ude00", null, true]}',
                                 b'{"a": 1, "a": 2}', b'  [] ', b'"text"'])
def test_the_fast_parse_equals_the_standard_one(raw):
    fast = _fast_parse(raw)
    assert fast == json.loads(raw) and json.dumps(fast) == json.dumps(json.loads(raw))


@pytest.mark.parametrize("raw", [b'{"n": 12345678901234567890123}', b'{"n": 1.00000000000000000001}',
                                 b'[NaN]', b'[1e400]', b'["\\ud800"]', b'{"a": }', b"[" * 2000 + b"]" * 2000])
def test_what_orjson_would_read_differently_or_refuses_goes_the_standard_way(raw):
    assert _fast_parse(raw) is _UNPARSED


@pytest.mark.parametrize("depth", [1, 2, 63, 64, 65, 100])
def test_the_depth_of_the_parsed_bytes_is_the_depth_of_the_text(depth):
    text = '{"a": ' * (depth - 1) + "[]" + "}" * (depth - 1)
    outcomes = []
    for check in (lambda: _check_depth(text, 64), lambda: _check_parsed_depth(text.encode(), 64)):
        try:
            check()
            outcomes.append("ok")
        except ApiError as exc:
            outcomes.append((exc.status, exc.error, exc.message))
    assert outcomes[0] == outcomes[1]
    assert (outcomes[0] == "ok") == (depth <= 64)


def _outcome(check, *args):
    try:
        check(*args)
    except ApiError as exc:
        return (exc.status, exc.error, exc.message)
    return "ok"


# Strings full of what could fool a byte scan: brackets, quotes and backslashes, escaped every way.
_TRICKY_TEXT = st.text(alphabet='[]{}"\\/\n\tuD8a0', max_size=12)
_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                     | _TRICKY_TEXT,
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TRICKY_TEXT, inner, max_size=4),
                     max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(_JSON, st.integers(min_value=1, max_value=8), st.booleans())
def test_the_byte_scan_of_any_body_answers_as_the_text_scan(value, max_depth, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert _outcome(_check_parsed_depth, text.encode(), max_depth) == _outcome(_check_depth, text, max_depth)


@pytest.mark.parametrize("text", ['["\\\\", [["\\""]]]', '{"a\\"": [{"]]": "[[\\\\"}]}', '[[], [[]], {"x": [[[]]]}]',
                                  '"[[[["', '{"k": "\\u005b\\u005b", "v": [[["\\\\\\""]]]}'])
@pytest.mark.parametrize("max_depth", [1, 2, 3, 4])
def test_escapes_and_brackets_in_strings_do_not_count(text, max_depth):
    json.loads(text)
    assert _outcome(_check_parsed_depth, text.encode(), max_depth) == _outcome(_check_depth, text, max_depth)
