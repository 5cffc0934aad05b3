"""Observation codes the evaluation reads: they build the prefetch query and drop irrelevant
Observations (vitals, other labs) before the costly R4 validation.

The codes come from the record builder's own table (`KIND_BY_CODE`), so what is fetched and
what is read can never drift apart. Imaging Observations are kept whatever their code: a
radiologist's "physes are fused" is a contraindication wherever it is filed.
"""
from __future__ import annotations

from typing import Any

from service.record.observations import KIND_BY_CODE

OBSERVATION_CODES = tuple(KIND_BY_CODE)      # (system short name, code) pairs

_RELEVANT = frozenset(code for _, code in KIND_BY_CODE)
# Code → kinds, whatever the system (the pre-filter's reading: a refused resource's system is not trusted either).
_KINDS_BY_CODE: dict[str, frozenset[str]] = {}
for (_, _code), _kind in KIND_BY_CODE.items():
    _KINDS_BY_CODE[_code] = _KINDS_BY_CODE.get(_code, frozenset()) | {_kind}


def observation_is_relevant(resource: dict[str, Any]) -> bool:
    """A relevant code on the Observation or one of its components (a GH stimulation panel filed
    under a local code), or an imaging Observation."""
    if _has_relevant_code(resource.get("code")) or _is_imaging(resource.get("category")):
        return True
    components = resource.get("component")
    if isinstance(components, list):
        for component in components:
            if isinstance(component, dict) and _has_relevant_code(component.get("code")):
                return True
    return False


def observation_kinds(resource: dict[str, Any]) -> frozenset[str]:
    """The kinds an Observation's codes (its own and its components') name, and "imaging" for an
    imaging Observation: what it could be evidence of, told from the raw JSON alone."""
    components = resource.get("component") if isinstance(resource.get("component"), list) else ()
    kinds = set(_kinds(resource.get("code")))
    for component in components:
        if isinstance(component, dict):
            kinds.update(_kinds(component.get("code")))
    if _is_imaging(resource.get("category")):
        kinds.add("imaging")
    return frozenset(kinds)


def _kinds(code: Any) -> set[str]:
    codings = code.get("coding") if isinstance(code, dict) else None
    if not isinstance(codings, list):
        return set()
    return {kind for c in codings if isinstance(c, dict) and isinstance(c.get("code"), str)
            for kind in _KINDS_BY_CODE.get(c["code"], ())}


def _has_relevant_code(code: Any) -> bool:
    codings = code.get("coding") if isinstance(code, dict) else None
    if isinstance(codings, list):
        for coding in codings:
            if isinstance(coding, dict):
                value = coding.get("code")
                if isinstance(value, str) and value in _RELEVANT:
                    return True
    return False


def _is_imaging(category: Any) -> bool:
    for each in category if isinstance(category, list) else (category,):
        codings = each.get("coding") if isinstance(each, dict) else None
        if isinstance(codings, list):
            for coding in codings:
                if isinstance(coding, dict) and coding.get("code") == "imaging":
                    return True
    return False
