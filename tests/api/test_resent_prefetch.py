"""A body's prefetch parsed once per text (`_parse_resent_prefetch`): the same body, refusals and
nesting verdicts as one parse of the whole, wherever the prefetch member stands."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from service.api.errors import ApiError
from service.api.request_body import _UNPARSED, _check_depth, _parse_resent_prefetch
from service.content_cache import digest, members_digest, request_json

_SCALARS = st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(alphabet=st.sampled_from('ab"\\{}[],:prefetch \u00e9\U0001F600'), max_size=12)
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.sampled_from(["a", "prefetch", 'x"prefetch', "b"]), inner, max_size=4),
                     max_leaves=25)
_KEYS = st.sampled_from(["hook", "prefetch", "context", 'say "prefetch"', "prefetch"])


def _outcome(read, *args):
    try:
        value = read(*args)
    except ApiError as exc:
        return (exc.status, exc.error, exc.message)
    return value if value is _UNPARSED else ("body", json.dumps(value))


def _standard(text: str, max_depth: int):
    try:
        _check_depth(text, max_depth)
    except ApiError as exc:
        return (exc.status, exc.error, exc.message)
    return ("body", json.dumps(json.loads(text)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_KEYS, _JSON), max_size=5), st.none() | _JSON, st.integers(min_value=1, max_value=6),
       st.booleans(), st.sampled_from(["", " ", "\n  "]))
def test_any_body_reads_as_one_parse_of_the_whole(members, prefetch, max_depth, ascii_only, space):
    members = members + [("prefetch", prefetch)] if prefetch is not None else members
    text = "{" + ",".join(f"{space}{json.dumps(k, ensure_ascii=ascii_only)}{space}:{space}"
                          f"{json.dumps(v, ensure_ascii=ascii_only)}" for k, v in members) + space + "}" + space
    for _ in range(2):      # parsed, then found again
        outcome = _outcome(_parse_resent_prefetch, text.encode(), max_depth)
        if outcome is not _UNPARSED:
            assert outcome == _standard(text, max_depth)


def test_a_resent_prefetch_is_parsed_once_and_named_by_its_text():
    first = b'{"hookInstance": "1", "prefetch": {"patient": {"resourceType": "Patient", "id": "p1"}}}'
    again = b'{"hookInstance": "2", "prefetch": {"patient": {"resourceType": "Patient", "id": "p1"}}}'
    other = b'{"hookInstance": "2", "prefetch": {"patient": {"resourceType": "Patient", "id": "p2"}}}'
    bodies = [_parse_resent_prefetch(raw, 64) for raw in (first, again, other, first)]
    assert [body["hookInstance"] for body in bodies] == ["1", "2", "2", "1"]
    assert bodies[0]["prefetch"] is bodies[1]["prefetch"] is bodies[3]["prefetch"]
    assert request_json.key_of(bodies[0]["prefetch"]) is not None         # kept from its second time
    assert request_json.key_of(bodies[2]["prefetch"]) is not None         # seen once, among the newest
    assert bodies[2]["prefetch"] == {"patient": {"resourceType": "Patient", "id": "p2"}}
    named = [members_digest(body["prefetch"], ("patient",)) for body in bodies]
    assert named[0] == named[1] != named[2] and None not in named
    assert members_digest(bodies[0]["prefetch"], ()) != named[0]
    assert members_digest({"patient": {}}, ("patient",)) is None


@pytest.mark.parametrize("raw", [
    b'{"prefetch": {"a": 1}, "context": {}}',                      # not the last member
    b'{"context": {"prefetch": {"a": 1}}}',                         # not a member of the body
    b'{"note": "a,\\"prefetch\\": {\\"a\\": 1}", "x": {"a": 1}}',   # in a string
    b'[{"prefetch": {"a": 1}}]',                                    # the body is not an object
])
def test_a_prefetch_elsewhere_is_left_to_the_whole_parse(raw):
    assert _parse_resent_prefetch(raw, 64) is _UNPARSED


def test_a_resent_prefetch_too_deep_is_refused_each_time():
    raw = b'{"hook": "h", "prefetch": ' + b'[' * 64 + b']' * 64 + b'}'
    for _ in range(2):
        with pytest.raises(ApiError) as refused:
            _parse_resent_prefetch(raw, 64)
        assert (refused.value.status, refused.value.error) == (400, "too-deep")
    assert _parse_resent_prefetch(raw, 65)["hook"] == "h"


def test_members_are_never_named_as_a_list_is():
    prefetch = _parse_resent_prefetch(b'{"prefetch": {}}', 64)["prefetch"]
    key = request_json.key_of(prefetch)
    assert key is not None and members_digest(prefetch, ()) != digest([key.hex(), []], canonical=False)


def test_a_cache_tells_the_key_of_a_result_only_while_it_keeps_that_very_object():
    from service.content_cache import ContentCache

    cache: ContentCache = ContentCache(max_weight=2)
    first, second, third = {"n": 1}, {"n": 1}, {"n": 3}
    cache.get_or_compute(b"first", lambda: first)
    cache.get_or_compute(b"second", lambda: second)
    assert (cache.key_of(first), cache.key_of(second), cache.key_of({"n": 1})) == (b"first", b"second", None)
    cache.get_or_compute(b"third", lambda: third)          # the oldest seen once is dropped
    assert (cache.key_of(first), cache.key_of(third)) == (None, b"third")
    assert cache.get_or_compute(b"third", lambda: {"n": "recomputed"}) is third           # asked for again: kept
    assert cache.key_of(third) == b"third"
