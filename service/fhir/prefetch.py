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
USER = "{{context.userId}}"

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
    "boneagereports": "DiagnosticReport", "prescriber": "PractitionerRole", "prescriberroles": "PractitionerRole",
}
# What a payer's prescriber-specialty clause reads (service/record/prescriber.py); a gap in them matters
# only to a policy with such a clause.
PRESCRIBER_TYPES = frozenset({"Practitioner", "PractitionerRole"})


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
        # The user (the prescriber when the order names no other): a Practitioner or a PractitionerRole,
        # and a Practitioner's roles (specialty). The second applies only when the user is a Practitioner.
        "prescriber": USER,
        "prescriberroles": "PractitionerRole?practitioner={{userPractitionerId}}&_count=50",
    }


_TEMPLATES = _templates()    # built once: every call asks for them (percent-encoding a few hundred codes)


def fill(template: str, context: Mapping, user_id: str | None = None) -> str | None:
    """Substitute tokens with URL-encoded values; None when a token has no value.

    `{{context.X}}` takes a primitive from the hook context (`{{context.userId}}`, a reference, is
    substituted as a path); `{{userPractitionerId}}` and its siblings come from `context.userId` when it
    names that resource type.
    """
    missing = False

    def value_of(match: re.Match) -> str:
        nonlocal missing
        token = match.group(1)
        value = _token_value(token, context, user_id)
        if value is None:
            missing = True
            return ""
        return value if token == "context.userId" else quote(value, safe="")

    filled = _TOKEN.sub(value_of, template)
    return None if missing else filled


def applies(template: str, user_id: str | None) -> bool:
    """False when the template asks for the user as another resource type than the user is
    (`{{userPractitionerId}}` for a PractitionerRole user): not data missing, a question that does not arise."""
    for match in _TOKEN.finditer(template):
        resource_type = _USER_TOKENS.get(match.group(1))
        if resource_type and isinstance(user_id, str) and "/" in user_id and \
                not user_id.startswith(resource_type + "/"):
            return False
    return True


# `context.userId` is a reference ("Practitioner/123"): substituted as a path only when its type and id
# hold nothing but the characters FHIR allows them, none of which needs percent-encoding.
_FHIR_REFERENCE = re.compile(r"[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}")


def _reference(value) -> str | None:
    return value if isinstance(value, str) and _FHIR_REFERENCE.fullmatch(value) else None


_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


def _token_value(token: str, context: Mapping, user_id: str | None) -> str | None:
    if token == "context.userId":
        return _reference(context.get("userId"))
    if token.startswith("context."):
        value = context.get(token[len("context."):])
        return value if isinstance(value, str) and value else None
    resource_type = _USER_TOKENS.get(token)
    if resource_type and user_id and user_id.startswith(resource_type + "/"):
        return user_id.split("/", 1)[1]
    return None
