"""Resources of a read type that this service refuses to read, and what each could have changed.

A resource the evaluation reads that is not valid R4, or that carries a modifier extension this service
does not understand (R4: a reader that does not understand a modifier must not process the resource as if
the modifier were absent — it can negate the resource's meaning), is not read. It is not silent either:
its *scope* says which checks it could have changed, and those become unknown or incomplete with the
reason, as after a failed query (service/policy/context.py:Context.gaps_for; docs/gathering.md,
"Refused resources").

The scope of an Observation is the kind its code says (the table `KIND_BY_CODE` the pre-filter uses,
read on the raw JSON, which is all there is of a refused resource): "Observation:weight" reaches the dose
check and not the IGF-1 criterion. Every other type's scope is its type.

Ids and element names come from the chart: only ones of FHIR's own forms are named (an id of `[A-Za-z0-9-.]`,
element names of letters and digits), anything else is left unnamed; the words are escaped again where
they enter a card.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from service.fhir.observation_codes import observation_kinds

INVALID = "invalid-r4"
MODIFIER = "modifier-extension"
# Modifier extensions whose meaning this service reads (none today: any modifier refuses its resource).
UNDERSTOOD_MODIFIERS: frozenset[str] = frozenset()

_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_MAX_NAMED = 3                    # references named per group; more are counted
_WHY = {INVALID: "not valid FHIR R4", MODIFIER: "carries a modifier extension this service does not understand"}


@dataclass(frozen=True)
class Refused:
    """One resource not read: its type, "Type/id" when the id has FHIR's form, why, the element concerned
    (a path such as "onsetDateTime" or "code.coding[0].system", when it can be named) and its scope."""
    resource_type: str
    reference: str | None
    why: str                      # INVALID | MODIFIER
    element: str | None
    scopes: tuple[str, ...]       # "Condition", "Observation:weight", …


def refused(resource: dict, why: str, element: str | None) -> Refused:
    rtype = resource["resourceType"]
    rid = resource.get("id")
    reference = f"{rtype}/{rid}" if isinstance(rid, str) and _FHIR_ID.fullmatch(rid) else None
    if rtype == "Observation":
        scopes = tuple(sorted(f"Observation:{kind}" for kind in observation_kinds(resource)))
    else:
        scopes = (rtype,)
    return Refused(rtype, reference, why, element, scopes)


def element_path(location: Iterable[Any]) -> str | None:
    """A validation error's location as a path ("code.coding[0].system"), up to the first part that is
    not an element name of FHIR's form (a key the chart made up is not repeated); None when nothing is left."""
    path = ""
    for part in location:
        if isinstance(part, int) and path:
            path += f"[{part}]"
        elif isinstance(part, str) and _NAME.fullmatch(part):
            path += f".{part}" if path else part
        else:
            break
    return path or None


def modifier_extension_at(resource: dict) -> str | None:
    """The path of the first modifier extension this service does not understand, anywhere in the
    resource (its elements, backbone elements, contained resources); None when there is none. A plain
    pass over the JSON without recursion (a fetched resource may be nested very deep); the path is
    worked out only for a resource that has one."""
    pending: list[Any] = [resource]
    pop, push = pending.pop, pending.extend
    while pending:
        value = pop()
        if type(value) is dict:
            if "modifierExtension" in value and not _understood(value["modifierExtension"]):
                return _path_to_modifier(resource)
            push([item for item in value.values() if type(item) is dict or type(item) is list])
        elif type(value) is list:
            push([item for item in value if type(item) is dict or type(item) is list])
    return None


def _path_to_modifier(resource: dict) -> str:
    pending: list[tuple[Any, str]] = [(resource, "")]
    while pending:
        value, path = pending.pop()
        if isinstance(value, dict):
            if "modifierExtension" in value and not _understood(value["modifierExtension"]):
                return f"{path}.modifierExtension" if path else "modifierExtension"
            for key, item in value.items():
                if isinstance(item, (dict, list)):
                    name = key if isinstance(key, str) and _NAME.fullmatch(key) else "?"
                    pending.append((item, f"{path}.{name}" if path else name))
        elif isinstance(value, list):
            pending.extend((item, f"{path}[{i}]") for i, item in enumerate(value) if isinstance(item, (dict, list)))
    return "modifierExtension"


def _understood(modifiers: Any) -> bool:
    if modifiers == []:
        return True               # an empty list modifies nothing (the models refuse it anyway)
    return isinstance(modifiers, list) and all(
        isinstance(m, dict) and m.get("url") in UNDERSTOOD_MODIFIERS for m in modifiers)


def describe(refusals: Iterable[Refused]) -> tuple[str, ...]:
    """One line per type and reason, for the clinician: "1 Condition could not be read: not valid FHIR R4
    (Condition/abc, onsetDateTime)"; "2 Observations could not be read: carries …"."""
    groups: dict[tuple[str, str], list[Refused]] = {}
    for r in refusals:
        groups.setdefault((r.resource_type, r.why), []).append(r)
    lines = []
    for (rtype, why), members in groups.items():
        count = len(members)
        named = [", ".join(x for x in (r.reference, r.element) if x) for r in members[:_MAX_NAMED]]
        named = [n for n in named if n]
        if count > _MAX_NAMED:
            named.append(f"{count - _MAX_NAMED} more")
        which = f" ({'; '.join(named)})" if named else ""
        reason = _WHY[why] if count == 1 or why != MODIFIER else f"each {_WHY[why]}"
        lines.append(f"{count} {rtype}{'' if count == 1 else 's'} could not be read: {reason}{which}")
    return tuple(lines)
