"""The patient record: clinical facts extracted from FHIR R4, each with its evidence.

These types are the contract between extraction (`service.record.build`), evaluation
(`service.policy`), card building (`cards`) and the SMART app. They are plain frozen
dataclasses (`frozen.py`: quick to build) so that every layer can render them and `to_jsonable` can
print them.

A fact that cannot be used is still kept, with `usable=False` and a `reason`, so that
the clinician sees why a value on file did not count.
"""
from __future__ import annotations

import dataclasses
from dataclasses import field
from datetime import date
from fractions import Fraction
from typing import Any

from .frozen import frozen


@frozen
class Measurement:
    """One observed value, normalised, with where it came from.

    `value`/`unit` are normalised (cm, kg, ng/mL, ug/L, a, "1" for z-scores, "%" for a
    reported centile; a reported centile is also given as a `height_sds` entry);
    `original_value`/`original_unit` are as recorded. `comparator` keeps "<", "<=",
    ">", ">=" from the source; consumers use such values conservatively.
    """

    kind: str                       # height | weight | igf1 | gh | bone_age | height_sds | height_centile | igf1_sds
    value: float | None
    unit: str
    reference: str                  # "Observation/abc"
    date: date | None
    code: str | None = None         # the LOINC/SNOMED code that identified it
    code_display: str | None = None
    comparator: str | None = None
    original_value: float | None = None
    original_unit: str | None = None
    age_years: float | None = None  # age on `date`
    preliminary: bool = False
    usable: bool = True
    reason: str | None = None       # why not usable
    date_last: date | None = None   # a partial date ("2024-06"): `date` is its first day, this its last


@frozen
class Height(Measurement):
    sds: float | None = None        # computed from the CDC 2000 LMS table
    centile: float | None = None    # 0–100
    sds_reason: str | None = None   # why no SDS could be computed
    # With a partial birth or measurement date: the lowest and highest SDS over the days the dates
    # stand for, when they differ (then `sds` is None and the evaluator decides only if both agree).
    sds_range: tuple[float, float] | None = None


@frozen
class Igf1(Measurement):
    range_low: float | None = None   # ng/mL, from Observation.referenceRange
    range_high: float | None = None
    sds: float | None = None         # from the reference range (docs/clinical-rules.md)
    sds_reason: str | None = None


@frozen
class GhResult(Measurement):
    stimulated: bool = True          # False for the baseline code 12253-1


@frozen
class BoneAge(Measurement):
    method: str | None = None        # e.g. "Greulich and Pyle"
    source_text: str | None = None   # the words it was read from: a report's sentence, a text value


@frozen
class EpiphysesEvidence:
    status: str                      # "closed" | "open"
    text: str                        # the matched text or code display
    reference: str
    date: date | None


@frozen
class Diagnosis:
    system: str                      # "icd10cm" | "snomed" | "text"
    code: str | None                 # "E34.321", "38196001"; None for text-only
    display: str | None
    reference: str                   # "Condition/x" or "MedicationRequest/y#reasonCode"
    source: str                      # "condition" | "order-reason"
    clinical_status: str | None      # active | recurrence | relapse | inactive | remission | resolved
    active: bool                     # False for resolved/inactive/remission: history only
    onset: date | None = None
    recorded: date | None = None
    verification_status: str | None = None   # confirmed | unconfirmed | provisional | differential | None


@frozen
class Allergy:
    substance: str                   # "mecasermin" | "benzyl-alcohol" | "polysorbate-20" | … (record.allergies)
    text: str
    reference: str
    criticality: str | None
    verification_status: str | None
    recorded: date | None
    clinical_status: str | None = None   # active | inactive | resolved
    severe: bool = False             # criticality high, a severe reaction, or anaphylaxis


@frozen
class MedicationFact:
    category: str                    # "mecasermin" | "somatropin" | "antidiabetic" | "systemic-corticosteroid"
    text: str
    reference: str
    status: str | None
    active: bool                     # current therapy, by the source's status rules (docs/clinical-rules.md)
    date: date | None                # when the therapy began, as best the source says (= start, else ordered/recorded)
    source: str = "MedicationRequest"   # the resource type it was read from
    start: date | None = None        # the period it was taken, when the source gives one
    end: date | None = None          # when the course ended or is planned to end: the period's end, dispense +
                                     # days' supply, else the dosage's bounds or the supply ordered (course.py)
    date_last: date | None = None    # `date` and `end` read at the last day of a partial date ("2024-12" →
    end_last: date | None = None     # 2024-12-31); the same as `date` and `end` for full dates


@frozen
class OrderFacts:
    """The draft mecasermin MedicationRequest under review."""

    reference: str                   # "MedicationRequest/abc"
    resource_id: str | None
    medication_text: str
    dose_mg: float | None            # per administration
    dose_original_value: float | None
    dose_original_unit: str | None
    dose_reason: str | None          # why dose_mg is unknown
    per_day: int | None              # administrations per day
    frequency_text: str | None
    route: str | None                # "subcutaneous" | "intravenous" | "other"; None when not stated
    route_text: str | None
    weight_kg: float | None          # the weight used for mg/kg
    weight_reference: str | None
    weight_date: date | None
    mg_per_kg: float | None          # per dose
    mg_per_kg_reason: str | None     # why mg_per_kg is unknown
    dispense_value: float | None
    dispense_unit: str | None
    reasons: tuple[Diagnosis, ...] = ()
    dose_note: str | None = None     # how dose_mg was derived (mL at 10 mg/mL, mg/kg × weight, range)
    per_day_rate: Fraction | None = None  # administrations per day from a timing repeat, exact (12/5 for q10h)
    authored_on: date | None = None       # the order's date (authoredOn, the local date as written)
    authored_on_text: str | None = None   # authoredOn as written, when present but not a full date


@frozen
class GrowthVelocity:
    cm_per_year: float | None
    start: Height | None
    end: Height | None
    reason: str | None               # why unknown; when cm_per_year is set, a caveat (e.g. treatment start unknown)


@frozen
class CoverageFacts:
    reference: str                   # "Coverage/abc"
    status: str | None
    payer_names: tuple[str, ...]
    payer_identifiers: tuple[str, ...]   # "system|value" or "value"
    plan_names: tuple[str, ...]
    government_programme: str | None     # "Medicaid", "Medicare", "TRICARE", "VA", ... or None


@frozen
class PrescriberRole:
    """One specialty statement about the prescriber: a PractitionerRole, or a Practitioner's qualification."""

    reference: str                   # "PractitionerRole/r1" or "Practitioner/p1#qualification[0]"
    codes: tuple[tuple[str | None, str, str | None], ...]   # (system short name, code, display): specialty + code
    text: str                        # every text and display of those concepts, for text patterns
    status: str                      # current | ended | inactive | not-started | uncertain (a partial date spans today)
    note: str | None = None          # why it is not current, in words


@frozen
class PrescriberFacts:
    """Who prescribes: the order's requester, else the hook's user; and what the chart says of their specialty."""

    reference: str | None            # "Practitioner/p1" | "PractitionerRole/r1"; None when no practitioner is named
    source: str                      # requester | user | none
    roles: tuple[PrescriberRole, ...] = ()
    reason: str | None = None        # why no role can be read (none named, not on file, not a practitioner)


@frozen
class PatientFacts:
    reference: str                   # "Patient/abc"
    birth_date: date | None          # the first day a partial birth date ("2017-06") stands for
    age_years: float | None          # today; None when the birth date is partial (see age_range)
    sex: str | None                  # "female" | "male" | None (other/unknown)
    sex_source: str | None           # "birthsex-extension" | "gender"
    birth_date_last: date | None = None   # the last day a partial birth date stands for, else birth_date
    birth_date_text: str | None = None    # the birth date as recorded, when partial
    age_range: tuple[float, float] | None = None   # (youngest, oldest) age today over the birth span

    @property
    def birth_span(self) -> tuple[date, date] | None:
        if self.birth_date is None:
            return None
        return self.birth_date, self.birth_date_last or self.birth_date


@frozen
class Skipped:
    reference: str
    reason: str


@frozen
class PatientRecord:
    today: date
    patient: PatientFacts | None
    heights: tuple[Height, ...] = ()              # newest first
    height_scores: tuple[Measurement, ...] = ()   # reported z-scores / centiles, newest first
    weights: tuple[Measurement, ...] = ()
    igf1: tuple[Igf1, ...] = ()
    igf1_scores: tuple[Measurement, ...] = ()     # reported IGF-1 z-scores (LOINC 73561-3)
    gh_results: tuple[GhResult, ...] = ()
    bone_ages: tuple[BoneAge, ...] = ()
    epiphyses: tuple[EpiphysesEvidence, ...] = ()
    diagnoses: tuple[Diagnosis, ...] = ()
    allergies: tuple[Allergy, ...] = ()
    medications: tuple[MedicationFact, ...] = ()
    order: OrderFacts | None = None
    growth_velocity: GrowthVelocity | None = None
    coverage: CoverageFacts | None = None
    skipped: tuple[Skipped, ...] = ()
    notes: tuple[str, ...] = field(default=())    # e.g. "2 invalid resources skipped"
    other_coverages: tuple[CoverageFacts, ...] = ()  # further usable coverages, in order of preference
    prescriber: PrescriberFacts | None = None        # None when there is no draft order

    @property
    def reauthorization(self) -> bool:
        """Prior mecasermin therapy on file (other than the draft) marks a re-authorization."""
        return any(m.category == "mecasermin" for m in self.medications)

    @property
    def partially_dated(self) -> tuple[Measurement, ...]:
        """Measurements dated only to a month or a year (`date_last` set)."""
        return tuple(m for facts in (self.heights, self.height_scores, self.weights, self.igf1, self.igf1_scores,
                                     self.gh_results, self.bone_ages) for m in facts if m.date_last is not None)

    @property
    def treatment_start(self) -> date | None:
        """The earliest dated prior mecasermin therapy (MedicationRequest/MedicationStatement other
        than the draft), dated as `MedicationFact.date`; None when there is none or none is dated."""
        dates = [m.date for m in self.medications if m.category == "mecasermin" and m.date is not None]
        return min(dates) if dates else None


def to_jsonable(obj: Any) -> Any:
    """Dataclasses → dicts, dates → ISO strings, tuples → lists, for JSON output."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, Fraction):
        return float(obj)
    return obj
