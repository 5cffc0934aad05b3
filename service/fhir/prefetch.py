"""Prefetch templates: what the evaluation reads, and how to turn a template into a query.

The same templates serve two purposes: discovery advertises them so the EHR can prefetch, and
the service fetches whichever key the EHR did not fulfil. Only tokens the CDS Hooks 2.0.1
specification allows are used.
"""
from __future__ import annotations

import re
from typing import Mapping
from urllib.parse import quote

from service.fhir.observation_codes import prefetch_observation_codes

_TOKEN = re.compile(r"\{\{\s*([A-Za-z.]+)\s*\}\}")

OBSERVATION_COUNT = 200   # heights every 3 months for 10 years plus labs fit well inside this


def templates() -> dict[str, str]:
    """Prefetch key → FHIR query, with `{{context.patientId}}` tokens."""
    codes = ",".join(prefetch_observation_codes())
    return {
        "patient": "Patient/{{context.patientId}}",
        "conditions": "Condition?patient={{context.patientId}}&_count=100",
        "observations": (
            f"Observation?patient={{{{context.patientId}}}}&code={codes}"
            f"&_sort=-date&_count={OBSERVATION_COUNT}"
        ),
        "medications": "MedicationRequest?patient={{context.patientId}}&_count=100",
        "allergies": "AllergyIntolerance?patient={{context.patientId}}&_count=50",
        "coverage": "Coverage?patient={{context.patientId}}&status=active",
        # Imaging reports: where a radiologist writes that the epiphyses are closed.
        "reports": "DiagnosticReport?patient={{context.patientId}}&_sort=-date&_count=20",
    }


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
