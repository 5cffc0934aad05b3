"""The body's fast parse (orjson) gives what the standard parser gives, and every refusal the same."""
from __future__ import annotations

import json

import pytest

from service.api.errors import ApiError
from service.api.request_body import _UNPARSED, _check_depth, _check_tree_depth, _fast_parse


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
def test_the_depth_on_the_tree_is_the_depth_of_the_text(depth):
    text = '{"a": ' * (depth - 1) + "[]" + "}" * (depth - 1)
    outcomes = []
    for check in (lambda: _check_depth(text, 64), lambda: _check_tree_depth(json.loads(text), 64)):
        try:
            check()
            outcomes.append("ok")
        except ApiError as exc:
            outcomes.append((exc.status, exc.error, exc.message))
    assert outcomes[0] == outcomes[1]
    assert (outcomes[0] == "ok") == (depth <= 64)
