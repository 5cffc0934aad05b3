"""Reading a JSON request body safely: media type, size, syntax and nesting depth."""
from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import orjson

from flask import Request

from service.api.errors import ApiError
from service.content_cache import request_json


def read_json(request: Request, max_bytes: int, max_depth: int) -> Any:
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiError(415, "unsupported-media-type",
                       f"Content-Type must be application/json, not {mimetype or 'missing'}")
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes)
    raw = request.stream.read(max_bytes + 1)
    # A chunked body (no Content-Length) comes through a stream Werkzeug stops at exactly
    # MAX_CONTENT_LENGTH bytes; only the next read tells (RequestEntityTooLarge, also a 413).
    if len(raw) > max_bytes or (len(raw) == max_bytes and request.stream.read(1)):
        raise _too_large(max_bytes)
    body = _parse_resent_prefetch(raw, max_depth)
    if body is not _UNPARSED:
        return body
    body = _fast_parse(raw)
    if body is not _UNPARSED:
        _check_parsed_depth(raw, max_depth)
        return body
    # Decoded only here: orjson refuses any body that is not UTF-8, so every such body comes this far.
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid-json", f"The body is not UTF-8 (byte {exc.start}).") from None
    _check_depth(text, max_depth)
    try:
        body = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid-json",
                       f"The body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.") from None
    except ValueError as exc:
        raise ApiError(400, "invalid-json", str(exc)) from None
    if _SURROGATE_ESCAPE.search(text):
        _check_text(body, "$")
    return body


_UNPARSED = object()
# 19 digits in a row may be an integer beyond 64 bits, which orjson would turn into a float. Found
# by mapping every digit to "0" and everything else to " " (one C pass; a regex search takes 10×).
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_DIGITS = b"0" * 19


def _fast_parse(raw: bytes) -> Any:
    """The body parsed by orjson, or _UNPARSED when the standard parser must decide.

    orjson is several times faster and refuses all that the standard path refuses (NaN, infinite
    numbers, lone surrogates, nesting past 1024), but words its errors differently and reads a
    huge integer as a float: any such body goes the standard way, so every answer stays the same.
    """
    if _LONG_DIGITS in raw.translate(_DIGITS_AS_ZERO):
        return _UNPARSED
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _UNPARSED


_PREFETCH_KEY = b'"prefetch"'
_COLON = re.compile(rb"\s*:\s*")


def _parse_resent_prefetch(raw: bytes, max_depth: int) -> Any:
    """The body, its prefetch parsed once for a text sent again (`_prefetch`); _UNPARSED when
    `_fast_parse` must decide.

    Taken when the prefetch is the body's last member (as CDS clients write it): the body is then its
    text before the prefetch, `null` and the closing brace, with that `null` replaced by the prefetch.
    JSON is context-free, so both parsed apart give what one parse of the whole gives, the same
    refusals and the same nesting (the prefetch's, one deeper). The key is the member's text only when
    it follows `{` or `,` (so its quotes are not escaped) and the rest is valid JSON with that `null`
    right before the closing brace: the last member of the top-level object. The prefetch is shared by
    every call that sends its text: nothing changes what a request body holds."""
    start = raw.find(_PREFETCH_KEY)
    if start < 0 or raw[:start].rstrip()[-1:] not in (b"{", b","):
        return _UNPARSED
    value_start = _COLON.match(raw, start + len(_PREFETCH_KEY))
    close = len(raw.rstrip()) - 1
    if value_start is None or raw[close] != 0x7D or value_start.end() > close:       # 0x7D: "}"
        return _UNPARSED
    rest = raw[:value_start.end()] + b"null" + raw[close:]
    body = _fast_parse(rest)
    if not isinstance(body, dict):
        return _UNPARSED
    text = raw[value_start.end():close]
    prefetch = _prefetch(text, max_depth)
    if prefetch is _UNPARSED:
        return _UNPARSED
    if _nests_deeper(rest, max_depth) or prefetch is _TOO_DEEP:
        raise _too_deep(max_depth)
    body["prefetch"] = prefetch
    return body


_TOO_DEEP = object()


def _prefetch(text: bytes, max_depth: int) -> Any:
    """The prefetch's text parsed (`_parse_prefetch`), once for a text sent again (order-select resends
    the chart on every edit of an order): `request_json`, by the digest of its text."""
    key = hashlib.sha256(text).digest()[:16] + max_depth.to_bytes(4, "big")
    return request_json.get_or_compute(key, lambda: _parse_prefetch(text, max_depth), weight=len(text))


def _parse_prefetch(text: bytes, max_depth: int) -> Any:
    """A prefetch's text parsed; _TOO_DEEP when it nests deeper than a member of a body may, _UNPARSED
    when `_fast_parse` would not read it."""
    value = _fast_parse(text)
    if value is _UNPARSED:
        return _UNPARSED
    if _nests_deeper(text, max_depth - 1):
        return _TOO_DEEP
    return value


def _check_parsed_depth(raw: bytes, max_depth: int) -> None:
    if _nests_deeper(raw, max_depth):
        raise _too_deep(max_depth)


def _nests_deeper(raw: bytes, max_depth: int) -> bool:
    """The nesting of a body orjson has parsed (so valid JSON), read from its bytes by C-level passes:
    the same limit and error as `_check_depth`, in half the time of a walk of the parsed tree.

    Escapes go first (an escaped quote must not end a string), then every byte but quotes and
    brackets, then what lies between quotes (brackets in a string do not nest). What is left is
    balanced, and each pass removes its innermost pairs: the passes are the depth, at most
    `max_depth` + 1 of them over ever shorter bytes, so the cost stays linear in the body's size."""
    if b"\\" in raw:
        raw = _ESCAPE.sub(b"", raw)
    marks = raw.translate(_BRACKETS_AS_SQUARE, _NOT_MARKS).replace(b'""', b"")
    brackets = b"".join(marks.split(b'"')[::2])
    depth = 0
    while brackets:
        depth += 1
        if depth > max_depth:
            return True
        brackets = brackets.replace(b"[]", b"")
    return False


_ESCAPE = re.compile(rb"\\.", re.S)
_BRACKETS_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_MARKS = bytes(byte for byte in range(256) if byte not in b'"[]{}')


def _too_deep(max_depth: int) -> ApiError:
    return ApiError(400, "too-deep", f"The JSON nests deeper than {max_depth} levels.")


# A "\\uD800"-style escape: the only way a JSON body can hold a lone UTF-16 surrogate (UTF-8 cannot).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_text(value: Any, path: str) -> None:
    """Every string is Unicode text: a lone surrogate (an escaped half of a UTF-16 pair) is not, and
    could be neither stored nor logged; the answer names the first place it is."""
    if isinstance(value, str):
        if _LONE_SURROGATE.search(value):
            raise ApiError(400, "invalid-json", f"{path}: the string holds a lone UTF-16 surrogate "
                           "(an unpaired \\uD800–\\uDFFF escape), which is not text.",
                           violations=[{"path": path, "rule": "lone UTF-16 surrogate: not text"}])
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, f"{path} (a key)")
            _check_text(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_text(item, f"{path}[{index}]")


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "payload-too-large", f"The body is larger than the limit of {max_bytes} bytes.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"The body is not valid JSON for this service: the number {text[:40]} is out of range.")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"The body is not valid JSON: {name} is not allowed.")


# Unrolled and with an optional closing quote: an unterminated string (`"\"\"\"…`) is consumed in
# one linear pass instead of being retried from every quote (quadratic: 64 KB took 20 s).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _check_depth(text: str, max_depth: int) -> None:
    """Reject deep nesting before parsing, so the parser never recurses that far.

    Strings are removed and everything but brackets dropped with regular expressions (C speed);
    only the brackets are walked in Python.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > max_depth:
                raise _too_deep(max_depth)
        else:
            depth -= 1
