"""Coverage: the payer (selects the payer policy) and whether it is a government programme
(whose patients cannot use the manufacturer's copay assistance, docs/clinical-rules.md)."""
from __future__ import annotations

import re
from datetime import date
from typing import Any, Mapping, Sequence

from .codes import as_list, codings, concept_words
from .dates import parse_date
from .model import CoverageFacts
from .resources import ResourceIndex

GENERIC_GOVERNMENT = "government programme"

# Coverage.type codes (HL7 v3 ActCode) that denote a public programme: PUBLICPOL and its
# specialisations. MCPOL is "managed care policy", which private plans use too, so it is not here:
# a Medicaid or Medicare managed-care plan is recognised by its name instead.
V3_PUBLIC_PROGRAMMES = frozenset({
    "PUBLICPOL", "DENTPRG", "DISEASEPRG", "CANPRG", "ENDRENAL", "HIVAIDS", "MANDPOL", "MENTPRG",
    "SAFNET", "SUBPRG", "SUBSIDIZ", "SUBSIDMC", "SUBSUPP",
})
V3_PROGRAMME_NAMES = {"MILITARY": "TRICARE"}

# Source of Payment Typology: the first digits name the payer family.
SOPT_PREFIXES = (("31", "TRICARE"), ("32", "VA"), ("33", "Indian Health Service"),
                 ("1", "Medicare"), ("2", "Medicaid"), ("3", GENERIC_GOVERNMENT))

# Names in payer, plan and type text. "CHIP" and "VA" only in capitals: as words they are common.
GOVERNMENT_TEXT = (
    ("Medicaid", re.compile(r"\b(medicaid|medi-cal)\b", re.IGNORECASE)),
    ("CHIP", re.compile(r"\bCHIP\b|(?i:children'?s\s+health\s+insurance\s+program)")),
    ("Medicare", re.compile(r"\bmedicare\b", re.IGNORECASE)),
    ("TRICARE", re.compile(r"\b(tricare|champus)\b", re.IGNORECASE)),
    ("VA", re.compile(r"\bCHAMPVA\b|\bVA\b|(?i:\bveterans\s+(affairs|administration|health))")),
    ("Indian Health Service", re.compile(r"\bindian\s+health\s+service\b", re.IGNORECASE)),
)
_SKIPPED_STATUS = frozenset({"entered-in-error", "cancelled"})


def select_coverages(coverages: Sequence[tuple[Mapping, str]],
                     today: date) -> tuple[list[tuple[Mapping, str]], list[tuple[str, str]]]:
    """Coverages in order of preference (active and current first, then Coverage.order), and the
    ones set aside with a reason."""
    kept, skipped = [], []
    for position, (resource, reference) in enumerate(coverages):
        status = resource.get("status")
        if isinstance(status, str) and status in _SKIPPED_STATUS:
            skipped.append((reference, f"coverage status {status}"))
            continue
        kept.append((position, resource, reference))

    def preference(item: tuple[int, Mapping, str]) -> tuple:
        position, resource, _ = item
        period = resource.get("period") if isinstance(resource.get("period"), dict) else {}
        end, _ = parse_date(period.get("end"), allow_partial=True)
        order = resource.get("order") if isinstance(resource.get("order"), int) else 99
        return (resource.get("status") != "active", end is not None and end < today, order, position)

    return [(r, ref) for _, r, ref in sorted(kept, key=preference)], skipped


def read_coverage(resource: Mapping, reference: str, index: ResourceIndex) -> CoverageFacts:
    names: list[str] = []
    identifiers: list[str] = []
    for payor in as_list(resource.get("payor")):
        if not isinstance(payor, dict):
            continue
        organization = index.resolve(payor, container=resource)
        for name in (payor.get("display"), organization.get("name") if isinstance(organization, dict) else None):
            if isinstance(name, str) and name.strip() and name.strip() not in names:
                names.append(name.strip())
        org_identifiers = as_list(organization.get("identifier")) if isinstance(organization, dict) else []
        for identifier in [payor.get("identifier"), *org_identifiers]:
            shown = _identifier(identifier)
            if shown and shown not in identifiers:
                identifiers.append(shown)
    plans = []
    for entry in as_list(resource.get("class")):
        if not isinstance(entry, dict):
            continue
        kinds = {code for _, code, _ in codings(entry.get("type"))}
        label = entry.get("name") if isinstance(entry.get("name"), str) else None
        if not label and kinds & {"plan", "group"} and isinstance(entry.get("value"), str):
            label = entry["value"]
        if label and label not in plans:
            plans.append(label)
    status = resource.get("status") if isinstance(resource.get("status"), str) else None
    return CoverageFacts(reference=reference, status=status,
                         payer_names=tuple(names), payer_identifiers=tuple(identifiers), plan_names=tuple(plans),
                         government_programme=government_programme(resource, names, plans))


def government_programme(resource: Mapping, payer_names: Sequence[str], plan_names: Sequence[str]) -> str | None:
    named: str | None = None
    for system, code, _ in codings(resource.get("type")):
        if system == "v3-actcode" and code.upper() in V3_PROGRAMME_NAMES:
            return V3_PROGRAMME_NAMES[code.upper()]
        if system == "v3-actcode" and code.upper() in V3_PUBLIC_PROGRAMMES:
            named = named or GENERIC_GOVERNMENT
        if system == "sopt":
            for prefix, programme in SOPT_PREFIXES:
                if code.startswith(prefix):
                    return programme
    text_parts = list(payer_names) + list(plan_names) + [concept_words(resource.get("type"))]
    for entry in as_list(resource.get("class")):
        if isinstance(entry, dict):
            text_parts += [v for v in (entry.get("name"), entry.get("value")) if isinstance(v, str)]
    text = " | ".join(text_parts)
    for programme, pattern in GOVERNMENT_TEXT:
        if pattern.search(text):
            return programme
    return named


def _identifier(identifier: Any) -> str | None:
    if not isinstance(identifier, dict) or not isinstance(identifier.get("value"), str):
        return None
    system = identifier.get("system")
    return f"{system}|{identifier['value']}" if isinstance(system, str) and system else identifier["value"]
