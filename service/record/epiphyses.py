"""Facts stated in the text of one resource: the growth plates and a bone age from a report.

The reading itself (sentences, negation, hedges, ranks) is `radiology_text`; this module turns
what it reads into the record's facts, dated by the resource.
"""
from __future__ import annotations

from datetime import date
from typing import Mapping

from . import radiology_text
from .codes import as_list, status_code
from .dates import date_span, effective_span
from .model import BoneAge, EpiphysesEvidence


def read(resource: Mapping, reference: str) -> tuple[list[EpiphysesEvidence], BoneAge | None]:
    """(at most one growth-plate finding, a bone age stated in the text or None)."""
    plates, bone_age = radiology_text.read(radiology_text.sources_of(resource))
    evidence = []
    if plates is not None:
        status = plates.status
        if status == radiology_text.CLOSED and _tentative(resource):
            status = radiology_text.UNCLEAR     # a provisional diagnosis of closure is a reason to confirm
        evidence.append(EpiphysesEvidence(status, plates.text, reference, text_date(resource)))
    return evidence, _bone_age(bone_age, resource, reference) if bone_age else None


_TENTATIVE = frozenset({"unconfirmed", "provisional", "differential"})


def _tentative(resource: Mapping) -> bool:
    return (resource.get("resourceType") == "Condition"
            and status_code(resource.get("verificationStatus")) in _TENTATIVE)


def reported_results(resource: Mapping) -> list[str]:
    """The Observations a DiagnosticReport lists as its results, as "Observation/x" (also when the
    reference is an absolute URL or carries a version)."""
    out = []
    for result in as_list(resource.get("result")):
        reference = result.get("reference") if isinstance(result, dict) else None
        if isinstance(reference, str):
            parts = reference.split("/_history/")[0].rstrip("/").split("/")
            out.append("/".join(parts[-2:]))
    return out


def _bone_age(reading: radiology_text.BoneAgeText, resource: Mapping, reference: str) -> BoneAge:
    """A bone age stated in a report's text ("Bone age 7 years 6 months (Greulich & Pyle)"), with the
    sentence as its evidence; unusable, quoting the sentence, when the number cannot be read."""
    when, when_last, date_reason = effective_span(resource)
    reason = reading.reason
    if reason is None and when is None:
        reason = date_reason or "no date"
    return BoneAge(kind="bone_age", value=reading.years, unit="a", reference=reference, date=when,
                   date_last=when_last if when_last != when else None,
                   code=None, code_display="Bone age (report text)",
                   preliminary=resource.get("status") == "preliminary",
                   usable=reason is None, reason=reason, method=reading.method, source_text=reading.text)


def text_date(resource: Mapping) -> date | None:
    """The date a text finding refers to (effective, issued, onset, recorded); a partial date
    stands for its first day."""
    for field in ("effectiveDateTime", "issued", "onsetDateTime", "recordedDate"):
        when, _ = date_span(resource.get(field))
        if when is not None:
            return when
    period = resource.get("effectivePeriod")
    if isinstance(period, dict):
        for field in ("end", "start"):
            when, _ = date_span(period.get(field))
            if when is not None:
                return when
    return None
