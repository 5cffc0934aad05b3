"""Code systems, CodeableConcept helpers and ICD-10-CM range membership.

Shared by extraction and by the policy evaluator (`service.policy`), so that both read codes
the same way: one place knows the many spellings of a code system URI and of an ICD-10 code.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Iterator

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
UNII = "http://fdasis.nlm.nih.gov"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SOPT = "https://nahdo.org/sopt"

# Every URI (and OID form) an EHR uses for a system, mapped to the short name used in facts.
# WHO ICD-10 codes are read as ICD-10-CM: the categories this service looks for (C00–C96, E34.3,
# Z85, …) are the same in both, and US EHRs sometimes label CM codes with the WHO URI.
_SYSTEMS = {
    "http://hl7.org/fhir/sid/icd-10-cm": "icd10cm",
    "urn:oid:2.16.840.1.113883.6.90": "icd10cm",
    "http://hl7.org/fhir/sid/icd-10": "icd10cm",
    "urn:oid:2.16.840.1.113883.6.3": "icd10cm",
    "http://snomed.info/sct": "snomed",
    "urn:oid:2.16.840.1.113883.6.96": "snomed",
    "http://loinc.org": "loinc",
    "urn:oid:2.16.840.1.113883.6.1": "loinc",
    "http://fdasis.nlm.nih.gov": "unii",
    "urn:oid:2.16.840.1.113883.4.9": "unii",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "rxnorm",
    "urn:oid:2.16.840.1.113883.6.88": "rxnorm",
    "http://terminology.hl7.org/CodeSystem/v3-ActCode": "v3-actcode",
    "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration": "v3-route",
    "http://terminology.hl7.org/CodeSystem/v2-0074": "v2-0074",
    "http://terminology.hl7.org/CodeSystem/observation-category": "observation-category",
    "urn:oid:2.16.840.1.113883.12.74": "v2-0074",
    "http://ncithesaurus-stage.nci.nih.gov": "ncit",
    "http://ncit.nci.nih.gov": "ncit",
    "urn:oid:2.16.840.1.113883.3.26.1.1": "ncit",
    "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation": "gts",
    "https://nahdo.org/sopt": "sopt",
    "http://nahdo.org/sopt": "sopt",
    "urn:oid:2.16.840.1.113883.3.221.5": "sopt",
    "http://hl7.org/fhir/sid/ndc": "ndc",
    "urn:oid:2.16.840.1.113883.6.69": "ndc",
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": "hcpcs",
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": "hcpcs",
    "urn:oid:2.16.840.1.113883.6.285": "hcpcs",
    "urn:oid:2.16.840.1.113883.6.14": "hcpcs",       # HCPCS Level II, the older OID
    "http://nucc.org/provider-taxonomy": "nucc",     # NUCC Health Care Provider Taxonomy (US Core specialty)
    "urn:oid:2.16.840.1.113883.6.101": "nucc",
    "http://www.ama-assn.org/go/cpt": "cpt",
    "urn:oid:2.16.840.1.113883.6.12": "cpt",
}


def canonical_uri(name: str) -> str:
    """The FHIR URI of a system's short name: the first URI listed for it above."""
    return next(uri for uri, short in _SYSTEMS.items() if short == name)


def search_uris(name: str) -> tuple[str, ...]:
    """The URIs a FHIR search must name to find codes of this system however they are stored:
    the canonical URI and the system's OID (searches match `system|code` exactly)."""
    return (canonical_uri(name),) + tuple(
        uri for uri, short in _SYSTEMS.items() if short == name and uri.startswith("urn:oid:"))


def system_name(system: Any) -> str | None:
    """Short name ("icd10cm", "snomed", "loinc", "unii", "rxnorm", …) of a system URI, or None."""
    if not isinstance(system, str):
        return None
    name = _SYSTEMS.get(system)
    return name if name is not None else _SYSTEMS.get(system.strip().rstrip("/"))


def as_list(value: Any) -> list:
    """A FHIR array that may arrive as a single object (the CDS Hooks sandbox sends `category`
    and `reasonCode` that way) or be absent."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def system_uris(name: str) -> tuple[str, ...]:
    """Every URI (and OID) listed above for a system's short name, as `system_name` reads them exactly."""
    return tuple(uri for uri, short in _SYSTEMS.items() if short == name)


def codings(concept: Any) -> Iterator[tuple[str | None, str, str | None]]:
    """(system short name, code, display) for each well-formed coding of a CodeableConcept."""
    if not isinstance(concept, dict):
        return
    for coding in as_list(concept.get("coding")):
        read = read_coding(coding)
        if read is not None:
            yield read


def read_coding(coding: Any) -> tuple[str | None, str, str | None] | None:
    """(system short name, code, display) of one Coding, or None when it is not one or has no code."""
    if not isinstance(coding, dict):
        return None
    code = coding.get("code")
    if not isinstance(code, str) or not code.strip():
        return None
    display = coding.get("display")
    return system_name(coding.get("system")), code.strip(), display if isinstance(display, str) else None


def has_code(concept: Any, system: str, codes: Iterable[str] | str) -> str | None:
    """The first code of `concept` in `system` (short name) that is one of `codes`, else None."""
    wanted = {codes} if isinstance(codes, str) else set(codes)
    for sys_name, code, _ in codings(concept):
        if sys_name == system and code in wanted:
            return code
    return None


def concept_text(concept: Any) -> str:
    """Human text of a concept: its `text`, else the first coding display, else ""."""
    if not isinstance(concept, dict):
        return ""
    text = concept.get("text")
    if isinstance(text, str) and text.strip():
        return text.strip()
    for _, _, display in codings(concept):
        if display:
            return display
    return ""


def concept_words(concept: Any) -> str:
    """`text` and every coding display joined, for text matching over everything a concept says."""
    if not isinstance(concept, dict):
        return ""
    parts = [concept.get("text")] + [display for _, _, display in codings(concept)]
    return " | ".join(p for p in parts if isinstance(p, str) and p)


def status_code(concept: Any) -> str | None:
    """The code of a status CodeableConcept (Condition/AllergyIntolerance clinicalStatus…)."""
    for _, code, _ in codings(concept):
        return code.lower()
    return None


# --- ICD-10-CM ---------------------------------------------------------------------------------

_ICD10 = re.compile(r"^[A-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?$")


def icd10_normalise(code: Any) -> str | None:
    """ "e34321", " E34.321 " → "E34.321"; "c50" → "C50"; not an ICD-10 shape → None."""
    if not isinstance(code, str):
        return None
    compact = code.strip().upper().replace(" ", "")
    if not _ICD10.match(compact):
        return None
    compact = compact.replace(".", "")
    return compact if len(compact) == 3 else f"{compact[:3]}.{compact[3:]}"


def icd10_in(code: Any, spec: str) -> bool:
    """Is an ICD-10-CM code within `spec`: a category or code prefix ("Z85", "E03", "E34.3",
    "F50.0"), an inclusive range of them ("C00-C96", "E40-E46", "N18.4-N18.6"), or several such
    joined by commas ("C00-C96, Z85"). A range bound covers every code below it, so
    "C00-C96" contains "C96.Z" and "C7A.010"; a prefix is a family, so "E34.3" contains "E34.321".
    """
    normalised = icd10_normalise(code)
    if normalised is None:
        return False
    compact = normalised.replace(".", "")
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            low, high = (icd10_normalise(b) for b in part.split("-", 1))
            if low is None or high is None:
                raise ValueError(f"not an ICD-10 range: {part!r}")
            low, high = low.replace(".", ""), high.replace(".", "")
            if compact[: len(low)] >= low and compact[: len(high)] <= high:
                return True
        else:
            prefix = icd10_normalise(part)
            if prefix is None:
                raise ValueError(f"not an ICD-10 code or category: {part!r}")
            if compact.startswith(prefix.replace(".", "")):
                return True
    return False


def icd10_equal(a: Any, b: Any) -> bool:
    """Same ICD-10 code, whatever the dots and case ("E34321" == "e34.321")."""
    na, nb = icd10_normalise(a), icd10_normalise(b)
    return na is not None and na == nb
