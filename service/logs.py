"""Structured logs: one JSON object per line, with the request's id and hook instance.

- `configure_logging(level)` installs one stderr handler on the root logger (idempotent).
- `log_context(request_id=..., hook_instance=...)` (a context manager) or `set_log_context` /
  `reset_log_context` bind fields that every record logged meanwhile carries.
- Extra fields passed with `logger.info("...", extra={...})` are emitted as JSON keys.
- `RedactionFilter` and the formatter both mask anything that looks like a JWT, a bearer token or
  a `token=`/`"access_token": ...` pair: defence in depth, the code must not log them anyway.
- `patient_hash(patient_id, key)` is the keyed hash used wherever a patient must be recognisable
  across log lines or audit rows without being named.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import json
import logging
import re
import sys
import traceback
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping

REDACTED = "[REDACTED]"

_CONTEXT: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("cds_log_context", default={})
_CONTEXT_FIELDS = ("request_id", "hook_instance")

# Compact JWS/JWE: base64url JSON header (always starts "eyJ") and 2 or 4 more parts. It starts a
# base64url run, and the quantifiers are possessive, so that "eyJeyJeyJ…" is one linear scan, not
# one scan of the rest of the text per "eyJ" (quadratic: 60 kB took 18 s).
_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{2,}+(?:\.[A-Za-z0-9_-]*+){2,4}")
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+|%20|\+)[A-Za-z0-9\-._~+/]+=*")
_SECRET_PAIR = re.compile(
    r"""(?ix)
    (["']?\b(?:access_token|refresh_token|id_token|client_secret|password|authorization|token)\b["']?
     \s*[:=]\s*["']?)
    ([^"'\s,;&}]+)
    """)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def redact(text: str) -> str:
    """`text` with JWTs, bearer tokens and secret-looking `key=value` pairs masked."""
    if not text:
        return text
    text = _JWT.sub(REDACTED, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _SECRET_PAIR.sub(lambda m: m.group(1) + REDACTED, text)


def _redact_value(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact(value)
    if depth > 8:
        return REDACTED
    if isinstance(value, Mapping):
        return {str(k): (REDACTED if _secret_key(str(k)) else _redact_value(v, depth + 1)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_redact_value(v, depth + 1) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(str(value))


def _secret_key(key: str) -> bool:
    lowered = key.lower()
    return lowered in ("authorization", "access_token", "refresh_token", "id_token", "token",
                       "client_secret", "password", "fhirauthorization")


# ----------------------------------------------------------------------------- context

def current_log_context() -> dict[str, Any]:
    return dict(_CONTEXT.get())


def set_log_context(**fields: Any) -> contextvars.Token:
    """Bind fields (e.g. request_id, hook_instance) until `reset_log_context(token)`."""
    merged = dict(_CONTEXT.get())
    merged.update({k: v for k, v in fields.items() if v is not None})
    return _CONTEXT.set(merged)


def reset_log_context(token: contextvars.Token) -> None:
    _CONTEXT.reset(token)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    token = set_log_context(**fields)
    try:
        yield
    finally:
        reset_log_context(token)


# ----------------------------------------------------------------------------- filter, formatter

class RedactionFilter(logging.Filter):
    """Masks tokens in the message, its arguments and extra fields before any handler formats them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format: keep the template, drop the arguments
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, REDACTED if _secret_key(key) else _redact_value(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, hook_instance, extras."""

    def format(self, record: logging.LogRecord) -> str:
        context = _CONTEXT.get()
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name in _CONTEXT_FIELDS:
            value = getattr(record, name, None) or context.get(name)
            if value is not None:
                entry[name] = value
        for key, value in context.items():
            entry.setdefault(key, value)
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        for key in list(entry):
            if key not in ("time", "level", "logger"):
                entry[key] = REDACTED if _secret_key(key) else _redact_value(entry[key])
        return json.dumps(entry, ensure_ascii=False, default=str, separators=(",", ":"))


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def configure_logging(level: str = "INFO", stream: Any = None) -> logging.Handler:
    """Send every log record to `stream` (stderr) as JSON lines, at `level`; safe to call again."""
    name = str(level).strip().upper()
    if name not in _LEVELS:
        raise ValueError(f"log level must be one of {', '.join(_LEVELS)}, not {level!r}")
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_cds_json", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._cds_json = True  # type: ignore[attr-defined]
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(name)
    # urllib3 logs every request line, query string included (patient ids in FHIR searches).
    numeric = logging.getLevelName(name)
    logging.getLogger("urllib3").setLevel(max(numeric, logging.WARNING))
    return handler


# ----------------------------------------------------------------------------- patient hash

def patient_hash(patient_id: str, key: bytes) -> str:
    """Keyed hash (HMAC-SHA256, first 128 bits as hex) of a patient id, for logs and audit."""
    if not key:
        raise ValueError("patient_hash needs a non-empty key")
    if isinstance(key, str):
        key = key.encode("utf-8")
    return hmac.new(key, str(patient_id).encode("utf-8"), hashlib.sha256).hexdigest()[:32]
