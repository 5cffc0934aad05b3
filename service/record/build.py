"""FHIR R4 resources + the draft order + today → PatientRecord. Pure: no network, no clock.

Each resource is read on its own, inside a guard: a malformed resource becomes a `Skipped`
entry and never stops the others from being read. Values that were recognised but cannot be
used stay in their list with `usable=False` and are listed in `skipped` as well, so one place
says everything on file that did not count.

Resources are JSON objects, so the readers test `isinstance(x, dict)`: checking against
`typing.Mapping` costs an ABC look-up per call, which alone doubled the time to build a record.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Callable, Iterable, Mapping

from . import allergies, diagnoses, epiphyses, medications, observations
from .categories import MedicationCategories, shipped_categories
from .coverage import read_coverage, select_coverages
from .model import Allergy, Diagnosis, EpiphysesEvidence, MedicationFact, PatientFacts, PatientRecord, Skipped
from .order import label_concentration, read_order
from .patient import read_patient
from .prescriber import read_prescriber
from .resources import ResourceIndex, reference_of
from .velocity import growth_velocity

_REPORT_IGNORED = frozenset({"entered-in-error", "cancelled"})


def build_record(resources: Iterable[Any], order: Mapping | None, today: date, *,
                 rxnorm_codes: Iterable[str] = (), mg_per_ml: float | None = None,
                 categories: MedicationCategories | None = None, user: str | None = None) -> PatientRecord:
    """`mg_per_ml`: the label's concentration (LabelRules.dosing), to read a dose ordered in mL;
    `categories`: the label's medication categories (LabelRules.medication_categories); by default
    the shipped label's. `user`: the hook's `context.userId`, the prescriber when the order names none."""
    if mg_per_ml is None and order is not None:
        mg_per_ml = label_concentration()
    return _Extraction(resources, order, today, tuple(rxnorm_codes), mg_per_ml,
                       categories or shipped_categories(), user).record()


class _Extraction:
    """The state of one build: resources by type, what was found, what was set aside."""

    def __init__(self, resources: Iterable[Any], order: Mapping | None, today: date, rxnorm: tuple[str, ...],
                 mg_per_ml: float | None, categories: MedicationCategories, user: str | None):
        self.today, self.rxnorm, self.mg_per_ml = today, rxnorm, mg_per_ml
        self.categories, self.user = categories, user
        self.order = order if isinstance(order, dict) else None
        self.skipped: list[Skipped] = []
        self.buckets: dict[str, list[tuple[dict, str]]] = {}
        items = list(resources) if resources is not None else []
        for position, resource in enumerate(items):
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                self.skip(f"item {position}", "not a FHIR resource (no resourceType)")
                continue
            self.buckets.setdefault(resource["resourceType"], []).append((resource, reference_of(resource, position)))
        self.index = ResourceIndex(r for r in items if isinstance(r, dict))
        self.evidence: list[EpiphysesEvidence] = []
        self.coded_bone_ages: set[str] = set()      # Observations holding a coded bone age (85151-9)
        self.diagnoses: list[Diagnosis] = []

    def skip(self, reference: str, reason: str) -> None:
        self.skipped.append(Skipped(reference, reason))

    def guard(self, reference: str, read: Callable[..., Any], *args: Any) -> Any:
        try:
            return read(*args)
        except Exception as exc:  # noqa: BLE001 — one bad resource must not stop extraction
            self.skip(reference, f"malformed {reference.split('/', 1)[0]}, not read ({type(exc).__name__})")
            return None

    def of_type(self, rtype: str) -> list[tuple[dict, str]]:
        return self.buckets.get(rtype, [])

    # --- one reader per resource type -------------------------------------------------------------

    def patient(self) -> PatientFacts | None:
        facts: PatientFacts | None = None
        for resource, ref in self.of_type("Patient"):
            if facts is not None:
                self.skip(ref, "another Patient resource; the first readable one is used")
                continue
            result = self.guard(ref, read_patient, resource, ref, self.today)
            if result:
                facts, problems = result
                for problem in problems:
                    self.skip(ref, problem)
        return facts

    def observations(self, ctx: observations.Context) -> observations.ObservationFacts:
        out = observations.ObservationFacts()
        for resource, ref in self.of_type("Observation"):
            why = observations.ignored_status(resource)
            if why:
                self.skip(ref, f"status {why}")
                continue
            kinds = self.guard(ref, observations.read_observation, resource, ref, ctx, out)
            if kinds and "bone_age" in kinds:
                self.coded_bone_ages.add(ref)
            if not kinds or not kinds <= observations.NUMERIC_KINDS:
                # Growth plates are described in bone-age and imaging results, not in a height or a lab value;
                # a bone age in words counts only where no coded bone age (85151-9, 85150-1) says it.
                self.text_facts(resource, ref, out if not kinds or not kinds & {"bone_age", "bone_age_method"} else None)
        observations.attach_methods(out)
        return out

    def text_facts(self, resource: dict, ref: str, out: observations.ObservationFacts | None) -> None:
        """Growth plates, and a bone age stated only in words (when `out` is given), from a resource's text."""
        found = self.guard(ref, epiphyses.read, resource, ref)
        if found:
            self.evidence += found[0]
            if found[1] is not None and out is not None:
                out.bone_ages.append(found[1])

    def reports(self, out: observations.ObservationFacts) -> None:
        for resource, ref in self.of_type("DiagnosticReport"):
            status = resource.get("status")
            if isinstance(status, str) and status in _REPORT_IGNORED:
                self.skip(ref, f"status {status}")
                continue
            # A report whose results include a coded bone age states it in its words too: count it once.
            coded = any(r in self.coded_bone_ages for r in epiphyses.reported_results(resource))
            self.text_facts(resource, ref, None if coded else out)

    def conditions(self) -> None:
        for resource, ref in self.of_type("Condition"):
            why = self.guard(ref, diagnoses.ignored_condition, resource)
            if why:
                self.skip(ref, why)
                continue
            self.diagnoses += self.guard(ref, diagnoses.from_condition, resource, ref) or []
            self.text_facts(resource, ref, None)

    def allergies(self) -> list[Allergy]:
        found: list[Allergy] = []
        for resource, ref in self.of_type("AllergyIntolerance"):
            result = self.guard(ref, allergies.read_allergy, resource, ref)
            if result:
                found += result[0]
                if result[1]:
                    self.skip(ref, result[1])
        return found

    def medications(self) -> list[MedicationFact]:
        found: list[MedicationFact] = []
        for rtype in medications.SOURCES:
            for resource, ref in self.of_type(rtype):
                if self.order is not None and _same(resource, self.order):
                    continue
                result = self.guard(ref, medications.read_medication, resource, ref, self.index, self.rxnorm,
                                    self.today, self.categories)
                if result:
                    if result[0]:
                        found.append(result[0])
                    if result[1]:
                        self.skip(ref, result[1])
        return found

    def draft_order(self, weights: list) -> Any:
        if self.order is None:
            return None
        order_ref = reference_of(self.order)
        reasons: list[Diagnosis] = []
        result = self.guard(order_ref, diagnoses.from_order, self.order, order_ref, self.index)
        if result:
            reasons = result[0]
            for ref, why in result[1]:
                self.skip(ref, why)
        self.diagnoses += reasons
        return self.guard(order_ref, read_order, self.order, self.index, weights, self.today, reasons,
                          self.mg_per_ml)

    def prescriber(self):
        if self.order is None:
            return None
        return self.guard(reference_of(self.order), read_prescriber, self.order, self.index, self.user, self.today)

    def coverages(self) -> list:
        ordered, set_aside = select_coverages(self.of_type("Coverage"), self.today)
        for ref, why in set_aside:
            self.skip(ref, why)
        facts = [self.guard(ref, read_coverage, resource, ref, self.index) for resource, ref in ordered]
        return [f for f in facts if f is not None]

    # --- assembly ---------------------------------------------------------------------------------

    def record(self) -> PatientRecord:
        patient = self.patient()
        ctx = observations.Context(today=self.today, birth_date=patient.birth_date if patient else None,
                                   sex=patient.sex if patient else None,
                                   birth_last=patient.birth_date_last if patient else None)
        obs = self.observations(ctx)
        self.reports(obs)
        self.conditions()
        found_allergies = self.allergies()
        found_medications = self.medications()
        heights, weights = _newest_first(obs.heights), _newest_first(obs.weights)
        order_facts = self.draft_order(weights)
        coverages = self.coverages()
        lists = {name: _newest_first(getattr(obs, name)) for name in
                 ("height_scores", "igf1", "igf1_scores", "gh_results", "bone_ages")}
        for facts in [heights, weights, *lists.values()]:
            for fact in facts:
                if not fact.usable:
                    self.skip(fact.reference, f"{fact.kind} not used: {fact.reason}")
        return PatientRecord(
            today=self.today,
            patient=patient,
            heights=tuple(heights),
            weights=tuple(weights),
            **{name: tuple(facts) for name, facts in lists.items()},
            epiphyses=tuple(_newest_first(self.evidence)),
            diagnoses=tuple(self.diagnoses),
            allergies=tuple(found_allergies),
            medications=tuple(found_medications),
            order=order_facts,
            # A height dated only to the month or year cannot give an interval in days.
            growth_velocity=growth_velocity(
                [h for h in heights if h.date_last is None], prior_therapy=any(m.category == "mecasermin" for m in found_medications),
                treatment_start=medications.treatment_start(found_medications)),
            coverage=coverages[0] if coverages else None,
            other_coverages=tuple(coverages[1:]),
            prescriber=self.prescriber(),
            skipped=tuple(self.skipped),
            notes=tuple(_notes(patient, self.skipped)),
        )


def _same(resource: Mapping, order: Mapping) -> bool:
    """Is this MedicationRequest the draft order under review (by id, or the same object)?"""
    if resource is order:
        return True
    rid = order.get("id")
    return (isinstance(rid, str) and rid != "" and resource.get("id") == rid
            and resource.get("resourceType") == order.get("resourceType", "MedicationRequest"))


def _newest_first(facts: list) -> list:
    # Undated facts last; equal dates keep their input order (sorted() is stable).
    return sorted(facts, key=lambda f: f.date or date.min, reverse=True)


def _notes(patient: PatientFacts | None, skipped: list[Skipped]) -> list[str]:
    notes = []
    if patient is None:
        notes.append("no Patient resource: ages, height SDS and the age checks are unknown")
    if skipped:
        plural = "s" if len(skipped) != 1 else ""
        notes.append(f"{len(skipped)} resource{plural} or value{plural} not used; see skipped")
    return notes
