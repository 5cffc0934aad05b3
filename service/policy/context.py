"""What every check needs to know about one evaluation, computed once."""
from __future__ import annotations

import re
from datetime import date

from service.fhir.prefetch import KEY_TYPES
from service.fhir.refusals import Refused, describe
from service.policy.decision import Evidence, Reason
from service.policy.rules import LabelRules, Policy
from service.record.frozen import frozen
from service.record.model import Diagnosis, Measurement, MedicationFact, PatientRecord

_LEADING_WORD = re.compile(r"\s*(?:GET\s+)?/?([A-Za-z]+)")
ALL = "*"
# Gaps are named by prefetch key ("observations: HTTP 503") or by resource type.
_RESOURCE_TYPES = frozenset(KEY_TYPES.values()) | {"Medication", "Organization"}


# What each check reads, as scopes: a refused resource of one of them (or a failed query of its type) makes
# the check unknown or incomplete (docs/gathering.md, "Refused resources", says why each).
SCOPES: dict[str, tuple[str, ...]] = {
    # criteria (service.policy.criteria.RESOURCE_TYPES is this table's criteria part)
    "height_sds": ("Observation:height", "Observation:height_sds", "Observation:height_centile", "Patient"),
    "igf1_sds": ("Observation:igf1", "Observation:igf1_sds"),
    "gh_peak": ("Observation:gh",),
    "bone_age": ("Observation:bone_age", "Observation:bone_age_method", "Observation:imaging", "DiagnosticReport",
                 "Patient"),
    "growth_velocity": ("Observation:height",),
    "velocity_gain": ("Observation:height", "MedicationRequest", "MedicationStatement", "MedicationDispense",
                      "MedicationAdministration", "Medication"),
    "age": ("Patient",),
    "diagnosis": ("Condition",),
    # the rest of the coverage decision: exclusions (recorded causes, steroids, somatropin), the
    # re-authorization's treatment start, the payer that chooses the policy
    "exclusions": ("Condition", "MedicationRequest", "MedicationStatement", "MedicationDispense",
                   "MedicationAdministration", "Medication"),
    "policy-choice": ("Coverage", "Organization"),
    # label checks (service.wording.findings.CHECKS names them)
    "hypersensitivity": ("AllergyIntolerance",),
    "malignancy": ("Condition",),
    "closed-epiphyses": ("Condition", "Observation:bone_age", "Observation:bone_age_method", "Observation:imaging",
                         "DiagnosticReport"),
    "advanced-bone-age": ("Observation:bone_age", "Observation:bone_age_method", "Patient"),
    "interactions": ("MedicationRequest", "MedicationStatement", "MedicationDispense", "MedicationAdministration",
                     "Medication"),
    "patient-age": ("Patient",),
    "dose": ("Observation:weight",),
}
# The label checks one warning reports incomplete (the dose check says so itself: service.policy.dosing).
LABEL_CHECKS = ("hypersensitivity", "malignancy", "closed-epiphyses", "advanced-bone-age", "interactions",
                "patient-age")
COVERAGE = tuple(dict.fromkeys(scope for check in ("diagnosis", "exclusions", "policy-choice")
                               for scope in SCOPES[check]))


def gap_resource_types(gaps: tuple[str, ...]) -> frozenset[str]:
    """Resource types the failed fetches were for: a prefetch key ("observations: timeout") or a
    query ("Observation?code=…: HTTP 503"); '*' (everything) when it cannot be told."""
    types = set()
    for gap in gaps:
        found = _LEADING_WORD.match(gap)
        word = found.group(1) if found else ""
        if word in _RESOURCE_TYPES:
            types.add(word)
        else:
            types.add(KEY_TYPES.get(word.lower(), ALL))
    return frozenset(types)


def treatment_start(record: PatientRecord) -> date | None:
    """The earliest dated mecasermin therapy on file (other than the draft order)."""
    dates = [m.date for m in record.medications if m.category == "mecasermin" and m.date is not None]
    return min(dates) if dates else None


@frozen
class Context:
    record: PatientRecord
    today: date
    policy: Policy | None             # None: no version in force on the order's date (label checks only)
    label: LabelRules
    reauthorization: bool
    treatment_start: date | None
    gaps: tuple[str, ...]
    gap_types: frozenset[str]
    refused: tuple[Refused, ...] = ()   # resources not read (service/fhir/refusals.py), with their scopes

    @property
    def sex(self) -> str | None:
        return self.record.patient.sex if self.record.patient else None

    @property
    def age_years(self) -> float | None:
        return self.record.patient.age_years if self.record.patient else None

    def gaps_for(self, *scopes: str) -> tuple[str, ...]:
        """What could have held data of these scopes and was not read: the failed queries of their
        resource types, and the refused resources of those scopes (worded, one line per type). A scope is
        a resource type, or an Observation kind ("Observation:weight", see `SCOPES`): a failed
        Observation query reaches every kind, a refused weight Observation only the weight."""
        types = {scope.partition(":")[0] for scope in scopes}
        fetched = self.gaps if ALL in self.gap_types else tuple(
            g for g in self.gaps if gap_resource_types((g,)) & types)
        return fetched + self.refused_for(*scopes)

    def refused_for(self, *scopes: str) -> tuple[str, ...]:
        """The refused resources of these scopes, worded (service.fhir.refusals.describe). A bare type
        ("Observation") asks for every scope of that type: a check that does not say which kinds it reads
        is told of every refused one."""
        wanted = set(scopes)
        return describe(r for r in self.refused
                        if any(s in wanted or s.partition(":")[0] in wanted for s in r.scopes))

    def active_medications(self, category: str) -> tuple[MedicationFact, ...]:
        return tuple(m for m in self.record.medications if m.category == category and m.active)


def months_between(earlier: date, later: date) -> int:
    return max(0, (later - earlier).days * 12 // 365)


def measurement_evidence(m: Measurement, kind: str | None = None, *, sds: float | None = None,
                         centile: float | None = None, notes: tuple[Reason, ...] = ()) -> Evidence:
    """The measurement as evidence; its notes are codes (service.wording.evidence words them)."""
    partial = (Reason("partial-date", {"date": m.date, "date_last": m.date_last})
               if m.date is not None and m.date_last is not None else None)
    notes = (partial, *notes, Reason("preliminary") if m.preliminary else None,
             None if m.usable else Reason("unusable", {"why": m.reason}))
    return Evidence(
        kind=kind or m.kind, value=m.value, unit=m.unit, date=m.date, reference=m.reference,
        original_value=m.original_value, original_unit=m.original_unit, comparator=m.comparator,
        code=m.code, display=m.code_display,
        sds=sds, centile=centile,
        notes=tuple(n for n in notes if n is not None),
    )


def diagnosis_evidence(d: Diagnosis, *notes: Reason) -> Evidence:
    where = (Reason("order-reason") if d.source == "order-reason" else
             Reason("condition", {"clinical_status": d.clinical_status}))
    return Evidence(kind="diagnosis", value=d.code or d.display, unit=None, date=d.onset or d.recorded,
                    reference=d.reference, code=d.code, display=d.display, notes=(where, *notes))


def medication_evidence(m: MedicationFact, *notes: Reason) -> Evidence:
    return Evidence(kind="medication", value=m.text, unit=None, date=m.date, reference=m.reference, display=m.text,
                    notes=(Reason("medication", {"category": m.category, "status": m.status}), *notes))
