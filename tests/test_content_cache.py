"""The content cache behind a resent chart: digests name content, weights bound what is kept."""
from __future__ import annotations

from service.content_cache import ContentCache, digest


def test_digest_names_content_not_key_order_and_refuses_what_orjson_cannot_write():
    assert digest({"a": 1, "b": [1.5, "x"]}) == digest({"b": [1.5, "x"], "a": 1})
    assert digest({"a": 1}) != digest({"a": 1.0}) != digest({"a": "1"})
    assert digest({"value": 10 ** 30}) is None


def test_a_result_is_reused_by_key_and_the_oldest_go_when_the_weight_is_exceeded():
    cache: ContentCache[str] = ContentCache(max_weight=10)
    calls: list[str] = []

    def compute(name: str):
        return lambda: calls.append(name) or name

    for name in ("a", "a", "b", "b", "c", "c"):                 # each asked for twice: kept by weight
        assert cache.get_or_compute(name.encode(), compute(name), weight=4) == name
    cache.get_or_compute(b"a", compute("a recomputed"), weight=4)   # 12 > 10: "a", the oldest, went
    assert calls == ["a", "b", "c", "a recomputed"]


def test_a_result_seen_once_is_kept_only_among_the_newest_seen_once():
    cache: ContentCache[str] = ContentCache(max_weight=100)
    calls: list[str] = []
    cache.get_or_compute(b"resent", lambda: calls.append("resent") or "resent")
    cache.get_or_compute(b"resent", lambda: calls.append("again") or "again")         # asked for again: kept
    for name in ("one", "two", "three", "one"):       # "one" was pushed out by the two seen once after it
        cache.get_or_compute(name.encode(), lambda name=name: calls.append(name) or name)
    assert cache.get_or_compute(b"resent", lambda: "recomputed") == "resent"        # first-seen ones never push it out
    assert cache.get_or_compute(b"three", lambda: "recomputed") == "three"
    assert calls == ["resent", "one", "two", "three", "one"]


def test_no_key_or_a_result_heavier_than_the_bound_is_computed_every_time():
    cache: ContentCache[int] = ContentCache(max_weight=10)
    calls = []
    for _ in range(2):
        cache.get_or_compute(None, lambda: calls.append("none"))
        cache.get_or_compute(b"big", lambda: calls.append("big"), weight=11)
    assert calls == ["none", "big", "none", "big"]


def test_a_digest_as_written_names_the_same_text_and_tells_key_orders_apart():
    value = {"a": 1, "b": [1.5, "x"]}
    assert digest(value, canonical=False) == digest({"a": 1, "b": [1.5, "x"]}, canonical=False)
    assert digest(value, canonical=False) != digest({"b": [1.5, "x"], "a": 1}, canonical=False)
    assert digest({"a": 1}, canonical=False) != digest({"a": 1.0}, canonical=False)
    assert digest({"value": 10 ** 30}, canonical=False) is None
