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
from typing import Any, Callable
from urllib.parse import urljoin

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
    _plainly_valid(name)                # compiled alongside (before the fork, by service/warm.py)
    return Draft202012Validator(schema, registry=_registry(), format_checker=FORMATS)


@lru_cache(maxsize=None)
def _plainly_valid(name: str) -> Callable[[Any], bool]:
    return _Quick(_BASE + name).compile(_registry().get_or_retrieve(_BASE + name).value.contents)


class _Quick:
    """A schema compiled to plain Python checks that answer only "surely valid" (True) or "not sure"
    (False), never "invalid": a True stands for jsonschema's empty list of errors; anything else goes
    to jsonschema, whose errors and paths are the answer. Each keyword is read as jsonschema reads it
    (the same `re.search`, the same format checker); a keyword, type or value it does not handle
    makes it "not sure". On a request body it takes microseconds where iter_errors takes a few
    hundred (it descends into every prefetch key through `anyOf`). The checks are plain loops, not
    `all()` over generators: a generator per keyword and value cost most of a request's check."""

    _ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "$comment", "title", "description", "examples", "default"})
    _TYPES = {"object": (dict,), "array": (list,), "string": (str,), "null": (type(None),),
              "boolean": (bool,), "integer": (int,), "number": (int, float)}    # exact types, as parsed

    def __init__(self, base: str):
        self.base = base
        self.refs: dict[str, Callable[[Any], bool]] = {}

    def compile(self, schema: Any) -> Callable[[Any], bool]:
        if schema is True:
            return lambda value: True
        if not isinstance(schema, dict):
            return _not_sure
        checks = [self._KEYWORDS.get(keyword, _unknown)(self, expected, schema)
                  for keyword, expected in schema.items() if keyword not in self._ANNOTATIONS]
        return checks[0] if len(checks) == 1 else _every(checks)

    def _type(self, expected, schema):
        types = tuple(kind for name in ([expected] if isinstance(expected, str) else expected)
                      for kind in self._TYPES.get(name, ()))
        return lambda value: type(value) in types

    def _required(self, expected, schema):
        return lambda value: type(value) is not dict or all(key in value for key in expected)

    def _properties(self, expected, schema):
        checks = [(key, self.compile(sub)) for key, sub in expected.items()]

        def check(value):
            if type(value) is dict:
                for key, check_property in checks:
                    if key in value and not check_property(value[key]):
                        return False
            return True
        return check

    def _additional_properties(self, expected, schema):
        if "patternProperties" in schema:
            return _not_sure
        known, check_other = frozenset(schema.get("properties", ())), self.compile(expected)

        def check(value):
            if type(value) is dict:
                for key, item in value.items():
                    if key not in known and not check_other(item):
                        return False
            return True
        return check

    def _dependent_required(self, expected, schema):
        return lambda value: type(value) is not dict or all(
            needed in value for key, needs in expected.items() if key in value for needed in needs)

    def _items(self, expected, schema):
        if "prefixItems" in schema:
            return _not_sure
        check_item = self.compile(expected)

        def check(value):
            if type(value) is list:
                for item in value:
                    if not check_item(item):
                        return False
            return True
        return check

    def _any_of(self, expected, schema):
        checks = [self.compile(sub) for sub in expected]

        def check(value):
            for check_one in checks:
                if check_one(value):
                    return True
            return False
        return check

    def _all_of(self, expected, schema):
        return _every([self.compile(sub) for sub in expected])

    def _const(self, expected, schema):
        return lambda value: type(value) is str and type(expected) is str and value == expected

    def _enum(self, expected, schema):
        strings = frozenset(item for item in expected if type(item) is str)
        return lambda value: type(value) is str and value in strings

    def _pattern(self, expected, schema):
        search = re.compile(expected).search
        return lambda value: type(value) is not str or search(value) is not None

    def _format(self, expected, schema):
        return lambda value: FORMATS.conforms(value, expected)

    def _bound(kind, holds):
        return lambda self, expected, schema: lambda value: type(value) not in kind or holds(value, expected)

    def _ref(self, expected, schema):
        """The target compiled on first use (a schema may refer to itself)."""
        target = urljoin(self.base, expected)

        def check(value):
            if target not in self.refs:
                self.refs[target] = _not_sure                   # while it compiles
                resolved = _registry().resolver(self.base).lookup(expected).contents
                self.refs[target] = _Quick(target.partition("#")[0]).compile(resolved)
            return self.refs[target](value)
        return check

    _KEYWORDS = {
        "type": _type, "required": _required, "properties": _properties,
        "additionalProperties": _additional_properties, "dependentRequired": _dependent_required,
        "items": _items, "anyOf": _any_of, "allOf": _all_of, "const": _const, "enum": _enum,
        "pattern": _pattern, "format": _format, "$ref": _ref,
        "minLength": _bound((str,), lambda value, limit: len(value) >= limit),
        "maxLength": _bound((str,), lambda value, limit: len(value) <= limit),
        "minItems": _bound((list,), lambda value, limit: len(value) >= limit),
        "maxItems": _bound((list,), lambda value, limit: len(value) <= limit),
        "minProperties": _bound((dict,), lambda value, limit: len(value) >= limit),
        "minimum": _bound((int, float), lambda value, limit: value >= limit),
    }
    del _bound


def _every(checks: list[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    def check(value):
        for check_one in checks:
            if not check_one(value):
                return False
        return True
    return check


def _not_sure(value: Any) -> bool:
    return False


def _unknown(quick: _Quick, expected: Any, schema: dict) -> Callable[[Any], bool]:
    return _not_sure


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
    if _plainly_valid(name)(instance):
        return []
    errors = list(islice(validator(name).iter_errors(instance), MAX_VIOLATIONS))
    errors.sort(key=lambda e: (-len(e.absolute_path), str(e.path)))
    # Schemas composed of parts (allOf, $ref) can break one rule at one place several times: said once.
    return list(dict.fromkeys(SchemaViolation(_json_path(e.absolute_path, prefix), _rule(e)) for e in errors))


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
