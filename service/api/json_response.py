"""The app's JSON responses, written by orjson with the very bytes Flask's own provider writes.

Flask's default provider runs the json module's encoder over every answer: a tenth of a
millisecond or more for a CRD answer, as much as parsing a fifth of the chart. orjson writes the
same JSON ten times faster; what differs is put back, so that a client sees the same bytes:

- non-ASCII characters are escaped as `\\uXXXX` (surrogate pairs beyond the BMP), and DEL too,
  as `ensure_ascii` does;
- a float the json module writes with a two-digit exponent (`1e-05`) or orjson without one
  (`0.00001`), NaN and the infinities (orjson: `null`), an integer beyond 64 bits, a lone
  surrogate, a non-str key, and any type orjson would write its own way (dates, dataclasses,
  subclasses, which Flask's `default` handles) send the answer to Flask's encoder instead.

One difference is left: an Enum, which Flask's encoder refuses, is written as its value. No answer of
this service holds one (answers are built of dicts, lists, strings and numbers).
"""
from __future__ import annotations

import re
from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

# A number the two encoders write differently (where a value starts: not the "…3e-6…" of a uuid), or
# orjson's `null` (NaN, the infinities, or None): rare in an answer (CDS Hooks forbids null), and then the
# standard encoder writes the whole answer. Each try reads one run of digits: linear.
_MAYBE_DIFFERENT = re.compile(rb"(?:^|[:,\[])-?(?:0\.0000|\d+(?:\.\d+)?e-\d(?!\d))|null")
_NOT_ASCII = re.compile("[\x7f-\U0010ffff]")
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def _refuse(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def _escaped(found: re.Match[str]) -> str:
    code = ord(found.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xd800 | code >> 10:04x}\\u{0xdc00 | code & 0x3ff:04x}"


class JSONProvider(DefaultJSONProvider):
    """Flask's provider with orjson for its compact, ASCII, unsorted output (every response out of debug
    mode); anything else — indented, sorted, non-ASCII, other arguments — is Flask's own."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs != {"separators": (",", ":")} or self.sort_keys or not self.ensure_ascii:
            return super().dumps(obj, **kwargs)
        try:
            written = orjson.dumps(obj, default=_refuse, option=_OPTIONS)
        except (orjson.JSONEncodeError, TypeError):
            return super().dumps(obj, **kwargs)
        if _MAYBE_DIFFERENT.search(written):
            return super().dumps(obj, **kwargs)
        text = written.decode()
        return text if text.isascii() and "\x7f" not in text else _NOT_ASCII.sub(_escaped, text)
