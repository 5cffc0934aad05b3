"""The patient: birth date, age today and sex for the sex-specific growth reference."""
from __future__ import annotations

from datetime import date
from typing import Mapping

from .codes import as_list
from .dates import age_years, parse_date
from .model import PatientFacts

BIRTHSEX_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
_BIRTHSEX = {"F": "female", "M": "male"}
_GENDER = {"female": "female", "male": "male"}


def read_patient(resource: Mapping, reference: str, today: date) -> tuple[PatientFacts, list[str]]:
    """(facts, problems). The US Core birth-sex extension wins over `gender` when it says F or M:
    the growth reference is indexed by sex at birth, and `gender` may record gender identity."""
    problems: list[str] = []
    birth, reason = parse_date(resource.get("birthDate"))
    if birth is None:
        problems.append(f"birth date unusable: {reason}")
    elif birth > today:
        problems.append(f"birth date {birth.isoformat()} is after today")
        birth = None
    sex, source = None, None
    for extension in as_list(resource.get("extension")):
        if isinstance(extension, dict) and extension.get("url") == BIRTHSEX_URL:
            sex = _BIRTHSEX.get(str(extension.get("valueCode") or "").upper())
            if sex:
                source = "birthsex-extension"
            break
    if sex is None:
        gender = resource.get("gender")
        sex = _GENDER.get(gender) if isinstance(gender, str) else None
        source = "gender" if isinstance(gender, str) else None
    age = age_years(birth, today)
    return PatientFacts(reference=reference, birth_date=birth, age_years=age,
                        sex=sex, sex_source=source), problems
