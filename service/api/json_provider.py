"""The app's JSON responses written by orjson: the same JSON values as Flask's standard encoder writes.

A hook's answer (a few kB of cards) took the standard encoder about fifty microseconds, orjson a
tenth of that. The text differs only where JSON lets two texts stand for one value, and never in what
a client reads from it (RFC 8259):

- non-ASCII characters are written as UTF-8, not as `\\uXXXX` escapes (JSON text is UTF-8, §8.1);
- a float is written as its shortest decimal, as the standard encoder does, but a small one in
  another form of the same number (§6): "0.00001" for "1e-05", "2.5e-9" for "2.5e-09".

Only Flask's compact form (`separators=(",", ":")`, used when not debugging) with its defaults is
written so. What orjson would write as another value, or refuses, is left to Flask's own `dumps`:
NaN and the infinities, which orjson writes as `null` (a text holding `null` anywhere goes there),
an integer beyond 64 bits, a key that is not a str, a lone surrogate (not UTF-8), and the types
Flask's `default` writes (dates, dataclasses, decimals).
"""
from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

_COMPACT = {"separators": (",", ":")}
# Types the standard encoder hands to Flask's `default`: refused by orjson, so written by Flask.
_STANDARD_TYPES_ONLY = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class AnswerJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, with its compact `dumps` done by orjson where it writes the same values."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs == _COMPACT and not self.sort_keys:
            try:
                written = orjson.dumps(obj, option=_STANDARD_TYPES_ONLY)
            except TypeError:                       # orjson.JSONEncodeError
                written = None
            if written is not None and b"null" not in written:      # a None, or a NaN orjson wrote as null
                return written.decode("utf-8")
        return super().dumps(obj, **kwargs)
