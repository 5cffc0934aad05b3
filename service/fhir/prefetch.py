"""Prefetch templates: what the evaluation reads, and how to turn a template into a query.

The same templates serve two purposes: discovery advertises them so the EHR can prefetch, and
the service fetches whichever key the EHR did not fulfil. Only tokens the CDS Hooks 2.0.1
specification allows are used.
"""
from __future__ import annotations

import re
from typing import Mapping
from urllib.parse import quote

from service.fhir.observation_codes import OBSERVATION_CODES
from service.record.codes import search_uris

_TOKEN = re.compile(r"\{\{\s*([A-Za-z.]+)\s*\}\}")

OBSERVATION_COUNT = 200   # heights every 3 months for 10 years plus labs fit well inside this
PATIENT = "{{context.patientId}}"

# Imaging reports by category (HL7 v2 diagnostic service sections RAD and RX, LOINC "Radiology"),
# and bone-age studies by code whatever their category: lab volume cannot push them out.
IMAGING_CATEGORIES = (("v2-0074", "RAD"), ("v2-0074", "RX"), ("loinc", "LP29684-5"))
IMAGING_OBSERVATIONS = (("observation-category", "imaging"),)
BONE_AGE_REPORT_CODES = (("loinc", "37362-1"), ("loinc", "85151-9"), ("loinc", "85150-1"))

# Prefetch key → the resource type its query returns (technical gaps are named by key).
KEY_TYPES = {
    "patient": "Patient", "conditions": "Condition", "observations": "Observation", "imagingresults": "Observation",
    "medications": "MedicationRequest", "medicationstatements": "MedicationStatement",
    "medicationdispenses": "MedicationDispense", "medicationadministrations": "MedicationAdministration",
    "allergies": "AllergyIntolerance", "coverage": "Coverage", "reports": "DiagnosticReport",
    "boneagereports": "DiagnosticReport",
}


MEDICATION_KEYS = ("medications", "medicationstatements", "medicationdispenses", "medicationadministrations")


def token_values(pairs) -> str:
    """A token search value for (system short name, code) pairs: every spelling of each system
    (URI and OID), each `system|code` percent-encoded, joined by literal commas. Encoded, the
    value survives proxies that collapse `//` in URLs and can be sent by an EHR as it is."""
    return ",".join(quote(f"{uri}|{code}", safe="") for name, code in pairs for uri in search_uris(name))


# US Core servers support `_include=<Type>:medication` on these searches (SHALL for MedicationRequest,
# SHOULD for MedicationDispense); elsewhere a Medication is read by id (service/fhir/gather.py), since
# a server may answer an `_include` it does not know with an error.
_INCLUDES_MEDICATION = frozenset({"MedicationRequest", "MedicationDispense"})


def medication_query(resource_type: str) -> str:
    include = f"&_include={resource_type}:medication" if resource_type in _INCLUDES_MEDICATION else ""
    return f"{resource_type}?patient={PATIENT}{include}&_count=100"


def templates() -> dict[str, str]:
    """Prefetch key → FHIR query, with `{{context.patientId}}` tokens."""
    return dict(_TEMPLATES)


def _templates() -> dict[str, str]:
    return {
        "patient": f"Patient/{PATIENT}",
        "conditions": f"Condition?patient={PATIENT}&_count=100",
        "observations": (f"Observation?patient={PATIENT}&code={token_values(OBSERVATION_CODES)}"
                         f"&_sort=-date&_count={OBSERVATION_COUNT}"),
        # Imaging results whatever their code: a radiologist's "physes are fused" may sit under a local one.
        "imagingresults": (f"Observation?patient={PATIENT}&category={token_values(IMAGING_OBSERVATIONS)}"
                           f"&_sort=-date&_count=50"),
        "medications": medication_query("MedicationRequest"),
        "medicationstatements": medication_query("MedicationStatement"),
        "medicationdispenses": medication_query("MedicationDispense"),
        "medicationadministrations": medication_query("MedicationAdministration"),
        "allergies": f"AllergyIntolerance?patient={PATIENT}&_count=50",
        "coverage": f"Coverage?patient={PATIENT}&status=active",
        "reports": (f"DiagnosticReport?patient={PATIENT}&category={token_values(IMAGING_CATEGORIES)}"
                    f"&_sort=-date&_count=50"),
        "boneagereports": (f"DiagnosticReport?patient={PATIENT}&code={token_values(BONE_AGE_REPORT_CODES)}"
                           f"&_sort=-date&_count=20"),
    }


_TEMPLATES = _templates()    # built once: every call asks for them (percent-encoding a few hundred codes)


def fill(template: str, context: Mapping, user_id: str | None = None) -> str | None:
    """Substitute tokens with URL-encoded values; None when a token has no value.

    `{{context.X}}` takes a primitive from the hook context; `{{userPractitionerId}}` and its
    siblings come from `context.userId` when it names that resource type.
    """
    missing = False

    def value_of(match: re.Match) -> str:
        nonlocal missing
        token = match.group(1)
        value = _token_value(token, context, user_id)
        if value is None:
            missing = True
            return ""
        return quote(value, safe="")

    filled = _TOKEN.sub(value_of, template)
    return None if missing else filled


_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


def _token_value(token: str, context: Mapping, user_id: str | None) -> str | None:
    if token.startswith("context."):
        value = context.get(token[len("context."):])
        return value if isinstance(value, str) and value else None
    resource_type = _USER_TOKENS.get(token)
    if resource_type and user_id and user_id.startswith(resource_type + "/"):
        return user_id.split("/", 1)[1]
    return None
