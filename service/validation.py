"""The project's own JSON Schemas (draft 2020-12) for CDS Hooks 2.0.1, and checking against them.

There is no official JSON Schema for CDS Hooks, so the files in `service/schemas/` are ours.
Errors are reported as (JSON path, rule) so that a 400 names exactly what is wrong.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
_BASE = "https://mecasermin-cds.example/schemas/"

CONTEXT_SCHEMAS = {
    "order-select": "order-select-context.schema.json",
    "order-sign": "order-sign-context.schema.json",
    "patient-view": "patient-view-context.schema.json",
}


@dataclass(frozen=True)
class SchemaViolation:
    path: str       # JSON path, e.g. "$.context.selections[0]"
    rule: str       # the failed keyword and its message

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "rule": self.rule}


@lru_cache(maxsize=1)
def _registry() -> Registry:
    resources = []
    for path in SCHEMA_DIR.glob("*.schema.json"):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((_BASE + path.name, Resource.from_contents(contents)))
    return Registry().with_resources(resources)


# jsonschema checks "date-time" only when an optional package is installed, and says nothing when it
# is not: the check is ours, so that "2026-99-99Tjunk" is refused wherever a schema asks for one.
FORMATS = FormatChecker()
_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:[Zz]|[+-](\d{2}):(\d{2}))$")


@FORMATS.checks("date-time")
def is_rfc3339_date_time(value: object) -> bool:
    """RFC 3339 §5.6: full date, "T", full time with seconds and a zone ("Z" or ±hh:mm), real values."""
    if not isinstance(value, str):
        return True                             # formats constrain strings only (JSON Schema)
    found = _RFC3339.match(value)
    if not found:
        return False
    year, month, day, hour, minute, second = (int(part) for part in found.groups()[:6])
    zone_hour, zone_minute = (int(part) if part else 0 for part in found.groups()[6:])
    try:
        datetime(year, month, day, hour, minute, min(second, 59))     # a leap second is :60
    except ValueError:
        return False
    return second <= 60 and zone_hour <= 23 and zone_minute <= 59


@lru_cache(maxsize=None)
def validator(name: str) -> Draft202012Validator:
    schema = _registry().get_or_retrieve(_BASE + name).value.contents
    return Draft202012Validator(schema, registry=_registry(), format_checker=FORMATS)


def _json_path(parts: Any, prefix: str) -> str:
    path = prefix
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


MAX_VIOLATIONS = 20


def violations(name: str, instance: Any, prefix: str = "$") -> list[SchemaViolation]:
    """Up to 20 violations of schema `name`, most specific first, as (path, rule).

    Only the first 20 are generated: a body with a million bad items must not cost a million errors.
    """
    errors = list(islice(validator(name).iter_errors(instance), MAX_VIOLATIONS))
    errors.sort(key=lambda e: (-len(e.absolute_path), str(e.path)))
    return [SchemaViolation(_json_path(e.absolute_path, prefix), _rule(e)) for e in errors]


def _rule(error) -> str:
    """The failed rule in words, built from the schema, never from the value: a 400 must not echo
    a token that was sent in the wrong place."""
    keyword, expected = error.validator, error.validator_value
    if keyword == "required":
        missing = [p for p in expected if isinstance(error.instance, dict) and p not in error.instance]
        return f"required: missing {', '.join(repr(p) for p in missing) or 'a required property'}"
    wording = {"type": "must be of type", "enum": "must be one of", "const": "must equal", "pattern": "must match",
               "format": "must be a valid", "minLength": "must have at least this many characters:",
               "maxLength": "must have at most this many characters:", "minItems": "must have at least this many items:",
               "maxItems": "must have at most this many items:", "minimum": "must be at least",
               "maximum": "must be at most", "minProperties": "must have at least this many properties:",
               "dependentRequired": "needs these properties alongside:"}
    if keyword in wording:
        return f"{keyword}: {wording[keyword]} {json.dumps(expected)[:200]}"
    if keyword == "additionalProperties":
        return "additionalProperties: a property is not allowed here"
    return f"{keyword}: the value does not match the schema"
