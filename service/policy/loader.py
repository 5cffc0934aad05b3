"""Load and validate policy files (and the label data file) at start-up.

`load_policies(folder)` reads every `*.yaml`, `*.yml` and `*.json` file in `folder`, validates each
against `policy.schema.json` (draft 2020-12) plus a few checks a schema cannot express (the id
matches the file name, regular expressions compile, ranges are ordered, criterion ids are unique,
re-authorization carries over existing criteria), and returns an immutable `PolicySet`. A file with
`versions` is validated section by section: each version's document (the top level with the version's
sections in place) against the same schema; versions must not overlap. Files whose payer matches
could claim the same payer are refused (`payer_overlap`). The `examples` are checked in shape only
(`mecasermin-cds policy check` runs them). Anything
wrong raises `PolicyError` whose message names the file and the field as a JSON path, e.g.
`premera-mecasermin.yaml: $.criteria.initial[1].threshold: 'low' is not valid ...`; the service
refuses to start on it.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from service.policy.codesets import normalise_icd10
from service.policy.decision import NO_VERSION_IN_FORCE, PolicyVersion
from service.policy.rules import LabelRules, PayerMatch, Policy, PolicyFile, PolicySet, UnknownPolicy, freeze

__all__ = ["PolicyError", "UnknownPolicy", "Policy", "PolicyFile", "PolicySet", "LabelRules", "load_policies",
           "load_label", "load_policy_file", "policy_paths", "policy_set_of", "payer_overlap", "DEFAULT_POLICY_DIR",
           "DEFAULT_LABEL_FILE"]

PACKAGE_DIR = Path(__file__).resolve().parent
POLICY_SCHEMA = PACKAGE_DIR / "policy.schema.json"
LABEL_SCHEMA = PACKAGE_DIR / "label.schema.json"
DEFAULT_LABEL_FILE = PACKAGE_DIR / "label.yaml"
DEFAULT_POLICY_DIR = PACKAGE_DIR / "policies"
POLICY_SUFFIXES = (".yaml", ".yml", ".json")


class PolicyError(ValueError):
    """A policy or label file is missing, unreadable or invalid; the message names file and field."""


# --------------------------------------------------------------------------------------------- YAML

# libyaml's parser when PyYAML has it (the example charts make the files long; it reads them ~4× faster).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SAFE_LOADER):
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
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path.name}: cannot read the file: {exc}") from None


def _read(path: Path, raw: bytes | None = None) -> Any:
    try:
        text = (_read_bytes(path) if raw is None else raw).decode("utf-8")
    except UnicodeDecodeError as exc:
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
def _validators() -> tuple[Draft202012Validator, Draft202012Validator, Draft202012Validator]:
    """(one version's document, the label file, a file with `versions`: its sections may be in the versions)."""
    policy_schema = json.loads(POLICY_SCHEMA.read_text(encoding="utf-8"))
    label_schema = json.loads(LABEL_SCHEMA.read_text(encoding="utf-8"))
    registry = Registry().with_resources([
        (policy_schema["$id"], Resource.from_contents(policy_schema)),
        (label_schema["$id"], Resource.from_contents(label_schema)),
    ])
    checker = FormatChecker()
    versioned = {**policy_schema, "required": [r for r in policy_schema["required"]
                                               if r not in version_sections() and r != "effective_date"]}
    return (Draft202012Validator(policy_schema, registry=registry, format_checker=checker),
            Draft202012Validator(label_schema, registry=registry, format_checker=checker),
            Draft202012Validator(versioned, registry=registry, format_checker=checker))


@lru_cache(maxsize=1)
def version_sections() -> frozenset[str]:
    """The top-level sections a version may replace (the schema's `versions` items list them)."""
    schema = json.loads(POLICY_SCHEMA.read_text(encoding="utf-8"))
    return frozenset(schema["properties"]["versions"]["items"]["properties"]) - VERSION_FIELDS


VERSION_FIELDS = frozenset({"version", "effective_from", "effective_to"})
FILE_ONLY = ("versions", "examples")   # sections of the file that are not part of any version's rules


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
    groups = [("initial", initial), ("reauthorization.criteria", reauth.get("criteria") or [])]
    # An OR group's own criteria are checked as criteria too, their ids unique among all.
    groups += [(f"{group}[{index}].criteria", item.get("criteria") or []) for group, items in list(groups)
               for index, item in enumerate(items) if item.get("type") == "any_of"]
    for group, items in groups:
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
    errors += _question_errors(data, set(seen) | set(ids))
    if data.get("verified") is True:
        for parts, value in _walk(data.get("criteria")):
            if parts and parts[-1] == "threshold" and value is None:
                errors.append(f"{json_path(('criteria',) + parts)}: a verified policy cannot leave a threshold unknown")
    return errors


def _question_errors(data: Mapping, targets: set) -> list[str]:
    """Each DTR question settles a criterion or exclusion of this file, and its `record` names its own items."""
    errors = []
    for qid, question in (data.get("questions") or {}).items():
        where = f"$.questions.{qid}"
        if qid not in targets:
            errors.append(f"{where}: no criterion or exclusion {qid!r} in this policy")
        items = {item["id"]: item for item in question["items"]}
        for kind, spec in question["record"].items():
            for key in ("value", "date", "when", "note"):
                if key in spec and spec[key] not in items:
                    errors.append(f"{where}.record.{kind}.{key}: no item {spec[key]!r}")
            for key, ref in (spec.get("range") or {}).items():
                if ref not in items:
                    errors.append(f"{where}.record.{kind}.range.{key}: no item {ref!r}")
            if kind == "refute" and spec["equals"] not in {o["code"] for o in items.get(spec["when"], {}).get("options", ())}:
                errors.append(f"{where}.record.refute.equals: not an option of item {spec['when']!r}")
    return errors


# ------------------------------------------------------------------------------------- loading

def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _version_errors(versions: list[Mapping]) -> list[str]:
    """Names unique, each range ordered, only the oldest open at its start, only the newest open at
    its end, and no two versions in force on the same day."""
    errors = []
    names: dict[str, int] = {}
    spans = []
    for index, item in enumerate(versions):
        where = f"$.versions[{index}]"
        name = item["version"]
        if name in names:
            errors.append(f"{where}.version: version {name!r} is also $.versions[{names[name]}]")
        names.setdefault(name, index)
        start, end = _day(item.get("effective_from")), _day(item.get("effective_to"))
        if start and end and end < start:
            errors.append(f"{where}.effective_to: {end} is before effective_from {start}")
        spans.append((start or date.min, end or date.max, index, name))
    spans.sort()
    for (start, end, index, name), (next_start, next_end, next_index, next_name) in zip(spans, spans[1:]):
        if next_start <= end:
            errors.append(f"$.versions[{next_index}]: version {next_name!r} ({_span_text(next_start, next_end)}) "
                          f"overlaps version {name!r} ({_span_text(start, end)})")
    return errors


def _span_text(start: date, end: date) -> str:
    return (f"from {start}" if start != date.min else "from the start") + \
        (f" to {end}" if end != date.max else ", open-ended")


def _version_documents(data: Mapping) -> list[tuple[PolicyVersion, dict, int | None]]:
    """(version, its rules as one document, its index in `versions`): the file's top level with the
    version's sections in place; a file without `versions` is one version from `effective_date`."""
    shared = {k: v for k, v in data.items() if k not in FILE_ONLY}
    if "versions" not in data:
        start = _day(data.get("effective_date"))
        name = start.isoformat() if start else "undated"
        return [(PolicyVersion(name, start, None, declared=False), shared, None)]
    documents = []
    for index, item in enumerate(data["versions"]):
        start, end = _day(item.get("effective_from")), _day(item.get("effective_to"))
        document = {**shared, **{k: v for k, v in item.items() if k not in VERSION_FIELDS},
                    "effective_date": item.get("effective_from")}
        documents.append((PolicyVersion(item["version"], start, end), document, index))
    documents.sort(key=lambda d: d[0].effective_from or date.min)
    return documents


def _in_version(messages: list[str], index: int | None, item: Mapping | None) -> list[str]:
    """Errors found in one version's document, pointed at the version where its own sections caused them."""
    if index is None:
        return messages
    pointed = []
    for message in messages:
        section = message[2:].split(":", 1)[0].split(".", 1)[0].split("[", 1)[0]
        if section in item:
            pointed.append(f"$.versions[{index}]{message[1:]}")
        else:
            pointed.append(f"{message} (in version {item['version']!r}, from the top level)")
    return pointed


def _example_errors(data: Mapping, documents) -> list[str]:
    """Example names unique; an expected version is on file; expected criteria exist in it."""
    errors = []
    names: dict[str, int] = {}
    by_name = {v.name: doc for v, doc, _ in documents}
    for index, example in enumerate(data.get("examples") or ()):
        where = f"$.examples[{index}]"
        if example["name"] in names:
            errors.append(f"{where}.name: example {example['name']!r} is also $.examples[{names[example['name']]}]")
        names.setdefault(example["name"], index)
        expect = example["expect"]
        wanted = expect.get("version")
        if wanted is not None and wanted not in by_name and wanted != NO_VERSION_IN_FORCE:
            errors.append(f"{where}.expect.version: no version {wanted!r} on file ({', '.join(by_name)}; "
                          f"or {NO_VERSION_IN_FORCE!r})")
            continue
        docs = [by_name[wanted]] if wanted in by_name else list(by_name.values())
        known = {c.get("id") for doc in docs for c in _all_criteria(doc)}
        for cid in expect.get("criteria") or {}:
            if cid not in known:
                errors.append(f"{where}.expect.criteria.{cid}: no criterion {cid!r} in "
                              + (f"version {wanted!r}" if wanted else "the policy"))
    return errors


def _all_criteria(document: Mapping) -> list[Mapping]:
    criteria = document.get("criteria") or {}
    return list(criteria.get("initial") or []) + list((criteria.get("reauthorization") or {}).get("criteria") or [])


def _payer_errors(data: Mapping) -> list[str]:
    """Every name pattern has an example payer name it matches, and every example name is matched:
    the examples are what the overlap check between files compares (docs/policies.md)."""
    payer = data.get("payer_match") or {}
    if data.get("kind") != "payer":
        return []
    errors = []
    names = payer.get("example_names") or []
    if payer.get("name_patterns") and not names:
        return ["$.payer_match.example_names: required with name_patterns: the payer names (as Coverage.payor "
                "gives them) the patterns are meant to match"]
    match = PayerMatch((), tuple(payer.get("name_patterns") or ()),
                       tuple((payer.get("exclude") or {}).get("name_patterns") or ()), ())
    for index, pattern in enumerate(payer.get("name_patterns") or ()):
        if not any(re.search(pattern, name, re.IGNORECASE) for name in names):
            errors.append(f"$.payer_match.name_patterns[{index}]: matches none of example_names")
    for index, name in enumerate(names):
        if not match.claims_name(name):
            errors.append(f"$.payer_match.example_names[{index}]: {name!r} is not matched by the name patterns "
                          "(or is excluded)")
    return errors


def load_policy_file(path: Path) -> PolicyFile:
    """One policy file, validated: the file's shape, then each version's rules as one document."""
    raw = _read_bytes(path)
    data = _read(path, raw)
    if not isinstance(data, Mapping):
        raise PolicyError(f"{path.name}: $: a policy file must hold one mapping (object)")
    document_validator, _, versioned_validator = _validators()
    versioned = "versions" in data
    _fail(path, _schema_errors(versioned_validator if versioned else document_validator, data))
    if versioned and "effective_date" in data:
        _fail(path, ["$.effective_date: not used when the file has versions (each version's effective_from "
                     "says when it starts)"])
    _fail(path, _version_errors(data["versions"]) if versioned else [])
    documents = _version_documents(data)
    for _version, document, index in documents:
        item = data["versions"][index] if index is not None else None
        _fail(path, _in_version(_schema_errors(document_validator, document), index, item))
        _fail(path, _in_version(_semantic_errors(document, stem=path.stem), index, item))
    _fail(path, _payer_errors(data))
    _fail(path, _example_errors(data, documents))
    digest = hashlib.sha256(raw).hexdigest()
    versions = tuple(Policy.from_data(document, path, version, digest) for version, document, _ in documents)
    payer = versions[-1].payer
    return PolicyFile(data["id"], data["title"], data["kind"], payer, str(path), digest, versions,
                      freeze(list(data.get("examples") or ())))


def load_label(path: Path | str = DEFAULT_LABEL_FILE) -> LabelRules:
    path = Path(path)
    data = _read(path)
    if not isinstance(data, Mapping):
        raise PolicyError(f"{path.name}: $: the label file must hold one mapping (object)")
    _, label_validator, _ = _validators()
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


def category_errors(policy_file: PolicyFile, label: LabelRules) -> list[str]:
    """A policy names medication categories by id: each must be one the label file defines."""
    known = label.medication_categories.ids
    return [f"version {policy.version.name}: $.exclusions[{i}].match[{j}].medication_categories: unknown medication "
            f"category {name!r} (label.yaml defines: {', '.join(known)})"
            for policy in policy_file.versions
            for i, rule in enumerate(policy.exclusions) for j, codeset in enumerate(rule.match)
            for name in codeset.medication_categories if name not in known]


def load_policies(folder: Path | str = DEFAULT_POLICY_DIR, *, label_file: Path | str = DEFAULT_LABEL_FILE,
                  default_policy: str | None = None) -> PolicySet:
    """Every policy file in `folder`, validated, plus the label rules; raises PolicyError."""
    files = policy_paths(folder)
    if not files:
        raise PolicyError(f"{folder}: no policy files (*.yaml, *.yml, *.json)")
    return policy_set_of([load_policy_file(path) for path in files], folder, label_file=label_file,
                         default_policy=default_policy)


def policy_paths(folder: Path | str) -> list[Path]:
    """The policy files of a folder, by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PolicyError(f"{folder}: policy folder not found")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in POLICY_SUFFIXES)


def policy_set_of(files: list[PolicyFile], folder: Path | str, *, label_file: Path | str = DEFAULT_LABEL_FILE,
                  default_policy: str | None = None) -> PolicySet:
    """Loaded policy files as one set: ids unique, payer matches that cannot claim the same payer."""
    folder = Path(folder)
    policies: list[PolicyFile] = []
    for policy in files:
        for other in policies:
            if other.id == policy.id:
                raise PolicyError(f"{Path(policy.path).name}: $.id: policy id {policy.id!r} is also defined in "
                                  f"{Path(other.path).name}")
            overlap = payer_overlap(other, policy)
            if overlap:
                raise PolicyError(f"{Path(policy.path).name}: $.payer_match: could match the same payer as "
                                  f"{Path(other.path).name}: {overlap}")
        policies.append(policy)
    label = load_label(label_file)
    for policy in policies:
        _fail(Path(policy.path), category_errors(policy, label))
    policy_set = PolicySet(tuple(policies), label, str(folder))
    if default_policy is not None and default_policy not in policy_set.ids:
        raise PolicyError(f"{folder}: default policy {default_policy!r} is not among the loaded policies "
                          f"({', '.join(policy_set.ids)})")
    return policy_set


def payer_overlap(first: PolicyFile, second: PolicyFile) -> str | None:
    """Why two payer policy files could both match one Coverage, or None: an identifier both match, or
    an example payer name of one that the other's name patterns match (docs/policies.md)."""
    if first.kind != "payer" or second.kind != "payer":
        return None
    shared = first.payer.shares_identifier(second.payer)
    if shared:
        return f"both match payer identifier {shared!r}"
    for mine, theirs in ((first, second), (second, first)):
        for name in mine.payer.example_names:
            if theirs.payer.claims_name(name):
                return (f"{Path(mine.path).name} names the payer {name!r}, which the name patterns of "
                        f"{Path(theirs.path).name} also match")
    return None
