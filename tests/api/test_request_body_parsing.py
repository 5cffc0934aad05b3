"""The body's fast parse (orjson) gives what the standard parser gives, and every refusal the same."""
from __future__ import annotations

import json

import pytest

from service.api.errors import ApiError
from hypothesis import given, settings, strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from service.api.request_body import _UNPARSED, _check_depth, _check_parsed_depth, _fast_parse, read_json


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


# Bytes no UTF-8 text holds: stray and truncated sequences, overlong forms, an encoded surrogate and a
# code point past U+10FFFF.
_NOT_UTF8 = [b"\xff", b"\xfe", b"\x80", b"\xbf\xbf", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc0\x80", b"\xc1\xbf",
             b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80"]
_MEMBER_KEYS = st.sampled_from(["hook", "context", "prefetch", "a"])


def _read_body(raw: bytes, max_depth: int):
    request = Request(EnvironBuilder(method="POST", data=raw, content_type="application/json").get_environ())
    try:
        return ("body", json.dumps(read_json(request, 1_000_000, max_depth)))
    except ApiError as exc:
        return (exc.status, exc.error, exc.message)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_MEMBER_KEYS, _JSON), max_size=4), _JSON, st.integers(min_value=1, max_value=8),
       st.booleans(), st.sampled_from(_NOT_UTF8), st.floats(min_value=0, max_value=1), st.booleans())
def test_a_body_not_utf8_is_refused_as_not_utf8_wherever_the_bytes_are(members, prefetch, max_depth, ascii_only,
                                                                      bad, where, deep):
    """The body is decoded only on the standard path, after orjson (which refuses what is not UTF-8) has
    declined it: wherever the bad bytes are (in the prefetch, sent again or not, or elsewhere), and however
    deep the body nests, the answer names the first bad byte as a decode of the whole body first did."""
    if deep:
        for _ in range(max_depth):
            prefetch = {"a": [prefetch]}
    text = "{" + ",".join(f"{json.dumps(key, ensure_ascii=ascii_only)}: {json.dumps(value, ensure_ascii=ascii_only)}"
                          for key, value in members + [("prefetch", prefetch)]) + "}"
    good = text.encode()
    at = round(where * len(good))
    raw = good[:at] + bad + good[at:]
    try:
        raw.decode("utf-8")
        return      # the bytes completed a character already there: still UTF-8, not this test's case
    except UnicodeDecodeError as exc:
        expected = (400, "invalid-json", f"The body is not UTF-8 (byte {exc.start}).")
    for _ in range(2):      # read, then read again (a prefetch text the cache has seen)
        assert _read_body(raw, max_depth) == expected
