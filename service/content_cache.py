"""Results remembered by a digest of the JSON they were computed from.

order-select fires on every edit of an order and resends the same chart each time: one digest of
that chart (orjson, sorted keys: well under a millisecond for 170 kB) lets a repeated call reuse
the screened resources and the record built from them instead of computing both again. Only pure
steps are remembered, and only results that are never changed afterwards (tuples, frozen records).

orjson writes NaN and the infinities as `null`, so only JSON that cannot hold them is digested:
the request body (refused by `read_json`) and resources that passed R4 validation.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any, Callable, Generic, TypeVar

import orjson

T = TypeVar("T")
_MISSING = object()


def digest(value: Any, canonical: bool = True) -> bytes | None:
    """16 bytes naming `value`'s content; None when orjson cannot write it (an integer beyond 64
    bits), and then nothing is remembered. SHA-256 (truncated): with the CPU's SHA instructions it
    hashes a 140 kB chart in 40 % less time than BLAKE2b.

    `canonical=False` names the content as it is written, keys in their order: a third cheaper than
    sorting them, for JSON straight from a request body, where a resent chart is the same text again.
    The same content with its keys reordered gets another digest: a result worked out again, never
    another's."""
    try:
        return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS if canonical else None)).digest()[:16]
    except (orjson.JSONEncodeError, TypeError):
        return None


class ContentCache(Generic[T]):
    """Results by digest, safe to share between threads. A result is first kept among the
    `SEEN_ONCE` newest seen once; asked for again, it joins the most recently used results kept
    while their weights (what the caller says each holds: resources, say) add up to at most
    `max_weight`. A result heavier than that is not kept at all.

    Why two stages: most charts are seen once (a new patient, another order), and a result kept for
    dozens of calls before it is dropped was costly to hold and to free (its objects long out of the
    CPU's caches, and walked by the collector meanwhile: a first-seen call took 1-3 ms longer with the
    screened charts and decisions of the last 33 charts kept than with the last 2), while a stream of
    such charts would push out the resent ones, which are the ones asked for again."""

    SEEN_ONCE = 2

    def __init__(self, max_weight: int):
        self.max_weight = max_weight
        self._results: OrderedDict[bytes, tuple[T, int]] = OrderedDict()      # asked for again
        self._once: OrderedDict[bytes, tuple[T, int]] = OrderedDict()         # the newest seen once
        self._keys: dict[int, bytes] = {}       # the key of each result kept, by the result's id (`key_of`)
        self._weight = 0
        self._lock = threading.Lock()

    def get_or_compute(self, key: bytes | None, compute: Callable[[], T], weight: int = 1) -> T:
        if key is None or weight > self.max_weight:
            return compute()
        with self._lock:
            found = self._found(key)
        if found is not _MISSING:
            return found
        result = compute()
        with self._lock:
            if key not in self._results and key not in self._once:
                self._once[key] = (result, weight)
                self._keys[id(result)] = key
                while len(self._once) > self.SEEN_ONCE:
                    self._forget(*self._once.popitem(last=False))
        return result

    def _found(self, key: bytes) -> Any:
        """The result kept under `key`, moved to the results asked for again; _MISSING if none."""
        if key in self._results:
            self._results.move_to_end(key)
            return self._results[key][0]
        entry = self._once.pop(key, None)
        if entry is None:
            return _MISSING
        self._results[key] = entry
        self._weight += entry[1]
        while self._weight > self.max_weight:
            dropped_key, dropped = self._results.popitem(last=False)
            self._weight -= dropped[1]
            self._forget(dropped_key, dropped)
        return entry[0]

    def _forget(self, key: bytes, entry: tuple[T, int]) -> None:
        if self._keys.get(id(entry[0])) == key:
            del self._keys[id(entry[0])]

    def key_of(self, result: Any) -> bytes | None:
        """The key under which this very object is kept, while it is kept."""
        with self._lock:
            key = self._keys.get(id(result))
            if key is None:
                return None
            entry = self._results.get(key) or self._once.get(key)
            return key if entry is not None and entry[0] is result else None


# JSON parsed from request bodies (their prefetch), by the digest of its text (`service/api/request_body.py`),
# up to this many bytes of text in all (about five times as much memory; most of it the resources the
# screened-chart cache holds too).
request_json: ContentCache = ContentCache(max_weight=4_000_000)


def members_digest(value: Any, keys: tuple[str, ...]) -> bytes | None:
    """16 bytes naming the content of the members `keys` of `value`, a JSON object parsed from a request
    body, by the digest of its text; None when `request_json` does not hold `value`. Written as an object,
    so that no list `digest` names can ever share it."""
    key = request_json.key_of(value)
    return None if key is None else digest({"written": key.hex(), "members": list(keys)})
