"""The project's own JSON Schemas (draft 2020-12) for CDS Hooks 2.0.1, and checking against them.

There is no official JSON Schema for CDS Hooks, so the files in `service/schemas/` are ours.
Errors are reported as (JSON path, rule) so that a 400 names exactly what is wrong.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
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


@lru_cache(maxsize=None)
def validator(name: str) -> Draft202012Validator:
    schema = _registry().get_or_retrieve(_BASE + name).value.contents
    return Draft202012Validator(schema, registry=_registry(), format_checker=FormatChecker())


def _json_path(parts: Any, prefix: str) -> str:
    path = prefix
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def violations(name: str, instance: Any, prefix: str = "$") -> list[SchemaViolation]:
    """Every violation of schema `name`, most specific first, as (path, rule)."""
    found = []
    for error in sorted(validator(name).iter_errors(instance), key=lambda e: (-len(e.absolute_path), str(e.path))):
        found.append(SchemaViolation(_json_path(error.absolute_path, prefix), f"{error.validator}: {error.message[:300]}"))
    return found
