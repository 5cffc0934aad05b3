"""Load and validate policy files (and the label data file) at start-up.

`load_policies(folder)` reads every `*.yaml`, `*.yml` and `*.json` file in `folder`, validates each
against `policy.schema.json` (draft 2020-12) plus a few checks a schema cannot express (the id
matches the file name, regular expressions compile, ranges are ordered, criterion ids are unique,
re-authorization carries over existing criteria), and returns an immutable `PolicySet`. Anything
wrong raises `PolicyError` whose message names the file and the field as a JSON path, e.g.
`premera-mecasermin.yaml: $.criteria.initial[1].threshold: 'low' is not valid ...`; the service
refuses to start on it.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from service.policy.codesets import normalise_icd10
from service.policy.rules import LabelRules, Policy, PolicySet, UnknownPolicy

__all__ = ["PolicyError", "UnknownPolicy", "Policy", "PolicySet", "LabelRules", "load_policies", "load_label",
           "load_policy_file", "DEFAULT_POLICY_DIR", "DEFAULT_LABEL_FILE"]

PACKAGE_DIR = Path(__file__).resolve().parent
POLICY_SCHEMA = PACKAGE_DIR / "policy.schema.json"
LABEL_SCHEMA = PACKAGE_DIR / "label.schema.json"
DEFAULT_LABEL_FILE = PACKAGE_DIR / "label.yaml"
DEFAULT_POLICY_DIR = PACKAGE_DIR / "policies"
POLICY_SUFFIXES = (".yaml", ".yml", ".json")


class PolicyError(ValueError):
    """A policy or label file is missing, unreadable or invalid; the message names file and field."""


# --------------------------------------------------------------------------------------------- YAML

class _StrictLoader(yaml.SafeLoader):
    """Safe YAML with dates kept as strings (the schema checks them) and duplicate keys refused."""


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path.name}: cannot read the file: {exc}") from None
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"{path.name}: line {exc.lineno}: invalid JSON: {exc.msg}") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(f"{path.name}: {where}invalid YAML: {problem}") from None


# ------------------------------------------------------------------------------------------ schema

@lru_cache(maxsize=1)
def _validators() -> tuple[Draft202012Validator, Draft202012Validator]:
    policy_schema = json.loads(POLICY_SCHEMA.read_text(encoding="utf-8"))
    label_schema = json.loads(LABEL_SCHEMA.read_text(encoding="utf-8"))
    registry = Registry().with_resources([
        (policy_schema["$id"], Resource.from_contents(policy_schema)),
        (label_schema["$id"], Resource.from_contents(label_schema)),
    ])
    checker = FormatChecker()
    return (Draft202012Validator(policy_schema, registry=registry, format_checker=checker),
            Draft202012Validator(label_schema, registry=registry, format_checker=checker))


def json_path(parts: Any) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _schema_errors(validator: Draft202012Validator, data: Any) -> list[str]:
    messages = []
    errors = sorted(validator.iter_errors(data), key=lambda e: (-len(e.absolute_path), list(map(str, e.absolute_path))))
    for error in errors:
        parts = list(error.absolute_path)
        message = error.message
        if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            known = set(error.schema.get("properties", {}))
            extra = sorted(str(k) for k in error.instance if k not in known)
            if extra:
                parts.append(extra[0])
                message = "unknown field" + (f" (also: {', '.join(extra[1:])})" if extra[1:] else "")
        elif error.validator == "required" and isinstance(error.instance, Mapping):
            missing = [r for r in error.validator_value if r not in error.instance]
            if missing:
                parts.append(missing[0])
                message = "required field is missing"
        messages.append(f"{json_path(parts)}: {message[:300]}")
    return messages


def _fail(path: Path, messages: list[str]) -> None:
    if messages:
        more = f" (and {len(messages) - 1} more problem(s): {'; '.join(messages[1:4])})" if len(messages) > 1 else ""
        raise PolicyError(f"{path.name}: {messages[0]}{more}")


# ------------------------------------------------------------------------------- semantic checks

_REGEX_KEYS = {"name_patterns", "text", "requires_text", "exclude_text", "applies_when_text", "abbreviations",
               "hedge_text", "history_text"}


def _walk(data: Any, parts: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    yield parts, data
    if isinstance(data, Mapping):
        for key, value in data.items():
            yield from _walk(value, parts + (key,))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _walk(value, parts + (index,))


def _semantic_errors(data: Mapping, *, stem: str | None) -> list[str]:
    errors = []
    if stem is not None and data.get("id") != stem:
        errors.append(f"$.id: must equal the file name {stem!r}, not {data.get('id')!r}")
    for parts, value in _walk(data):
        if not parts or not isinstance(value, str):
            continue
        key = parts[-2] if isinstance(parts[-1], int) and len(parts) > 1 else parts[-1]
        if key in _REGEX_KEYS:
            try:
                re.compile(value, re.IGNORECASE)
            except re.error as exc:
                errors.append(f"{json_path(parts)}: invalid regular expression: {exc}")
        if key == "icd10" and "-" in value:
            low, high = (normalise_icd10(p) for p in value.split("-", 1))
            if low and high and low > high:
                errors.append(f"{json_path(parts)}: range start {low} is after its end {high}")
    criteria = data.get("criteria") or {}
    initial = criteria.get("initial") or []
    reauth = (criteria.get("reauthorization") or {})
    seen: dict[str, str] = {}
    for group, items in (("initial", initial), ("reauthorization.criteria", reauth.get("criteria") or [])):
        for index, item in enumerate(items):
            cid = item.get("id")
            where = f"$.criteria.{group}[{index}].id"
            if cid in seen:
                errors.append(f"{where}: duplicate criterion id {cid!r} (first at {seen[cid]})")
            seen.setdefault(cid, where)
            amb = item.get("ambiguity")
            if amb and amb["low"] >= amb["high"]:
                errors.append(f"$.criteria.{group}[{index}].ambiguity: low must be below high")
            if item.get("threshold", 0) is None and not item.get("verify_note"):
                errors.append(f"$.criteria.{group}[{index}].verify_note: required when the threshold is null")
            for sex in ("female", "male"):
                if isinstance(item.get(sex), Mapping) and item[sex].get("threshold") is None and not item.get("verify_note"):
                    errors.append(f"$.criteria.{group}[{index}].verify_note: required when a threshold is null")
    initial_ids = {item.get("id") for item in initial}
    for index, cid in enumerate(reauth.get("carry_over") or []):
        if cid not in initial_ids:
            errors.append(f"$.criteria.reauthorization.carry_over[{index}]: no initial criterion {cid!r}")
    ids = [e.get("id") for e in data.get("exclusions") or []]
    for index, eid in enumerate(ids):
        if ids.index(eid) != index:
            errors.append(f"$.exclusions[{index}].id: duplicate exclusion id {eid!r}")
    if data.get("verified") is True:
        for parts, value in _walk(data.get("criteria")):
            if parts and parts[-1] == "threshold" and value is None:
                errors.append(f"{json_path(('criteria',) + parts)}: a verified policy cannot leave a threshold unknown")
    return errors


# ------------------------------------------------------------------------------------- loading

def load_policy_file(path: Path) -> Policy:
    data = _read(path)
    if not isinstance(data, Mapping):
        raise PolicyError(f"{path.name}: $: a policy file must hold one mapping (object)")
    policy_validator, _ = _validators()
    _fail(path, _schema_errors(policy_validator, data))
    _fail(path, _semantic_errors(data, stem=path.stem))
    return Policy.from_data(data, path)


def load_label(path: Path | str = DEFAULT_LABEL_FILE) -> LabelRules:
    path = Path(path)
    data = _read(path)
    if not isinstance(data, Mapping):
        raise PolicyError(f"{path.name}: $: the label file must hold one mapping (object)")
    _, label_validator = _validators()
    _fail(path, _schema_errors(label_validator, data))
    _fail(path, _semantic_errors(data, stem=None))
    label = LabelRules.from_data(data, path)
    _fail(path, _label_category_errors(data, label))
    return label


def _label_category_errors(data: Mapping, label: LabelRules) -> list[str]:
    ids = [c["id"] for c in data["medication_categories"]]
    errors = [f"$.medication_categories[{i}].id: duplicate category id {cid!r}"
              for i, cid in enumerate(ids) if ids.index(cid) != i]
    known = label.medication_categories.ids
    errors += [f"$.interactions[{i}].medication_category: unknown medication category {rule.medication_category!r} "
               f"(known: {', '.join(known)})"
               for i, rule in enumerate(label.interactions) if rule.medication_category not in known]
    return errors


def category_errors(policy: Policy, label: LabelRules) -> list[str]:
    """A policy names medication categories by id: each must be one the label file defines."""
    known = label.medication_categories.ids
    return [f"$.exclusions[{i}].match[{j}].medication_categories: unknown medication category {name!r} "
            f"(label.yaml defines: {', '.join(known)})"
            for i, rule in enumerate(policy.exclusions) for j, codeset in enumerate(rule.match)
            for name in codeset.medication_categories if name not in known]


def load_policies(folder: Path | str = DEFAULT_POLICY_DIR, *, label_file: Path | str = DEFAULT_LABEL_FILE,
                  default_policy: str | None = None) -> PolicySet:
    """Every policy file in `folder`, validated, plus the label rules; raises PolicyError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PolicyError(f"{folder}: policy folder not found")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in POLICY_SUFFIXES)
    if not files:
        raise PolicyError(f"{folder}: no policy files (*.yaml, *.yml, *.json)")
    policies: list[Policy] = []
    for path in files:
        policy = load_policy_file(path)
        for other in policies:
            if other.id == policy.id:
                raise PolicyError(f"{path.name}: $.id: policy id {policy.id!r} is also defined in {Path(other.path).name}")
        policies.append(policy)
    label = load_label(label_file)
    for policy in policies:
        _fail(Path(policy.path), category_errors(policy, label))
    policy_set = PolicySet(tuple(policies), label, str(folder))
    if default_policy is not None and default_policy not in policy_set.ids:
        raise PolicyError(f"{folder}: default policy {default_policy!r} is not among the loaded policies "
                          f"({', '.join(policy_set.ids)})")
    return policy_set
