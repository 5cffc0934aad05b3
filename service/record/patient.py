"""The patient: birth date, age today and sex for the sex-specific growth reference."""
from __future__ import annotations

from datetime import date
from typing import Mapping

from .codes import as_list
from .dates import age_years, date_span, parse_date
from .model import PatientFacts

BIRTHSEX_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
_BIRTHSEX = {"F": "female", "M": "male"}
_GENDER = {"female": "female", "male": "male"}


def read_patient(resource: Mapping, reference: str, today: date) -> tuple[PatientFacts, list[str]]:
    """(facts, problems). The US Core birth-sex extension wins over `gender` when it says F or M:
    the growth reference is indexed by sex at birth, and `gender` may record gender identity.
    A partial birth date ("2017-06") is kept as its span of days: `age_years` is then None and
    `age_range` gives the youngest and oldest age it allows, for checks that decide only when
    both ends agree."""
    problems: list[str] = []
    birth, last = date_span(resource.get("birthDate"))
    if birth is None:
        problems.append(f"birth date unusable: {parse_date(resource.get('birthDate'))[1]}")
    elif birth > today:
        problems.append(f"birth date {resource['birthDate']} is after today")
        birth = last = None
    elif last > today:
        last = today            # born this month or year: not after today
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
    partial = birth is not None and last != birth
    youngest, oldest = age_years(last, today), age_years(birth, today)
    age_range = None if youngest is None or oldest is None else (youngest, oldest)
    return PatientFacts(reference=reference, birth_date=birth,
                        age_years=None if oldest is None or partial else oldest,
                        sex=sex, sex_source=source, birth_date_last=last if partial else None,
                        birth_date_text=resource["birthDate"].strip() if partial else None,
                        age_range=age_range), problems
