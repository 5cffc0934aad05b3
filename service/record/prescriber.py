"""The prescriber's specialty: the order's requester (else the hook's user) and what the chart says of them.

A payer's "prescribed by or in consultation with a pediatric endocrinologist" is read from the
prescriber's PractitionerRoles (`specialty` and `code`: NUCC provider taxonomy in US Core, SNOMED CT
elsewhere) and their Practitioner's `qualification`. The requester names either a PractitionerRole
(that role is read) or a Practitioner (every role of that practitioner on file is read). A role or
qualification counts only while current: not `active: false`, its period begun and not ended; a
partial end date that spans today leaves it uncertain (docs/gathering.md, "The prescriber").
"""
from __future__ import annotations

import re
from datetime import date
from typing import Any, Mapping

from .codes import as_list, codings, concept_words
from .dates import date_span
from .model import PrescriberFacts, PrescriberRole
from .resources import ResourceIndex

PRACTITIONER_TYPES = ("Practitioner", "PractitionerRole")
_REFERENCE = re.compile(r"(?:^|/)(Practitioner|PractitionerRole)/([A-Za-z0-9\-.]{1,64})$")


def practitioner_reference(value: Any) -> str | None:
    """ "PractitionerRole/r1" from a Reference or a reference string (relative or absolute), else None."""
    if isinstance(value, dict):
        value = value.get("reference")
    if not isinstance(value, str):
        return None
    match = _REFERENCE.search(value.split("/_history/")[0].rstrip("/"))
    return f"{match.group(1)}/{match.group(2)}" if match else None


def read_prescriber(order: Mapping, index: ResourceIndex, user: str | None, today: date) -> PrescriberFacts:
    requester = order.get("requester")
    if requester is not None:
        reference = practitioner_reference(requester)
        if reference is None:
            named = requester.get("reference") if isinstance(requester, dict) else None
            what = f"{named}" if isinstance(named, str) and named else "a requester without a reference"
            return PrescriberFacts(None, "requester", reason=f"the order's requester is {what}, not a practitioner")
        source = "requester"
    else:
        reference = practitioner_reference(user)
        if reference is None:
            return PrescriberFacts(None, "none", reason="the order names no requester and the hook names no "
                                                        "practitioner as its user")
        source = "user"
    resource = index.resolve(reference)
    if reference.startswith("PractitionerRole/"):
        if resource is None:
            return PrescriberFacts(reference, source, reason=f"{reference} is not on file")
        practitioner_ref = practitioner_reference(resource.get("practitioner"))
        roles = [_role(resource, reference, today)]
    else:
        practitioner_ref = reference
        roles = [_role(r, f"PractitionerRole/{r.get('id')}", today)
                 for r in index.of_type("PractitionerRole").values()
                 if practitioner_reference(r.get("practitioner")) == reference]
    practitioner = index.resolve(practitioner_ref) if practitioner_ref else None
    if isinstance(practitioner, dict):
        roles += [_qualification(q, f"{practitioner_ref}#qualification[{i}]", today)
                  for i, q in enumerate(as_list(practitioner.get("qualification"))) if isinstance(q, dict)]
    if not roles:
        why = (f"no PractitionerRole of {reference} and no qualification of it is on file" if practitioner
               else f"neither {practitioner_ref or reference} nor a PractitionerRole of it is on file")
        return PrescriberFacts(reference, source, reason=why)
    return PrescriberFacts(reference, source, tuple(roles))


def _role(resource: Mapping, reference: str, today: date) -> PrescriberRole:
    concepts = [c for c in as_list(resource.get("specialty")) + as_list(resource.get("code")) if isinstance(c, dict)]
    status, note = _status(resource.get("period"), today)
    if resource.get("active") is False:
        status, note = "inactive", "the role is marked inactive"
    return PrescriberRole(reference, tuple(code for c in concepts for code in codings(c)),
                          " | ".join(filter(None, (concept_words(c) for c in concepts))), status, note)


def _qualification(qualification: Mapping, reference: str, today: date) -> PrescriberRole:
    concept = qualification.get("code")
    status, note = _status(qualification.get("period"), today)
    return PrescriberRole(reference, tuple(codings(concept)), concept_words(concept), status, note)


def _status(period: Any, today: date) -> tuple[str, str | None]:
    """current | ended | not-started | uncertain, for a period (absent: current)."""
    if not isinstance(period, dict):
        return "current", None
    start_first, start_last = date_span(period.get("start"))
    end_first, end_last = date_span(period.get("end"))
    if end_last is not None and end_last < today:
        return "ended", f"ended {period['end']}"
    if start_first is not None and start_first > today:
        return "not-started", f"begins {period['start']}"
    if (end_first is not None and end_first < today) or (start_last is not None and start_last > today):
        return "uncertain", (f"ends {period.get('end')}" if end_first is not None and end_first < today
                             else f"begins {period.get('start')}") + " (a partial date that spans today)"
    return "current", None
