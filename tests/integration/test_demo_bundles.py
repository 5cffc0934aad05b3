"""The demo patients in sandbox-config/patients (no Node needed).

Each Bundle must be valid FHIR (the fhir.resources R4B models), loadable as a transaction with
stable ids, and hold the clinical numbers that README.md and expected.json promise. Those numbers
are recomputed here from the JSON with the formulas of docs/clinical-rules.md, so a change to a
patient that breaks its story fails here, not only in a demo.
"""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from datetime import date, datetime
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

ROOT = Path(__file__).resolve().parents[2]
PATIENTS = ROOT / "sandbox-config" / "patients"
BUNDLE_PATHS = sorted(PATIENTS.glob("demo-*.json"))
EXPECTED = json.loads((PATIENTS / "expected.json").read_text(encoding="utf-8"))
_spec = importlib.util.spec_from_file_location("build_demo_patients", ROOT / "sandbox-config" / "build_demo_patients.py")
generator = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("build_demo_patients", generator)   # dataclasses look their module up there
_spec.loader.exec_module(generator)
TODAY = generator.TODAY          # the anchor day: the Bundles are dated as of it

LOINC = "http://loinc.org"
GH_STIMULATED = {"2963-7", "14146-5", "40301-4", "47760-4", "48128-3", "56571-3"}
GH_BASELINE = {"12253-1", "40302-2", "40298-2", "46408-1"}


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def resources(bundle: dict, resource_type: str | None = None) -> list[dict]:
    found = [entry["resource"] for entry in bundle["entry"]]
    return [r for r in found if resource_type is None or r["resourceType"] == resource_type]


def loinc_codes(resource: dict) -> set[str]:
    return {c["code"] for c in resource.get("code", {}).get("coding", []) if c.get("system") == LOINC}


def day(value: str) -> date:
    return date.fromisoformat(value[:10])


class Chart:
    """The facts the policy reads, pulled straight from one demo Bundle."""

    def __init__(self, bundle: dict):
        self.bundle = bundle
        patient = resources(bundle, "Patient")[0]
        self.pid = patient["id"]
        self.birth = date.fromisoformat(patient["birthDate"])
        birthsex = [e["valueCode"] for e in patient.get("extension", []) if e["url"].endswith("us-core-birthsex")]
        self.sex = {"M": "male", "F": "female"}[birthsex[0]] if birthsex else patient["gender"]
        observations = resources(bundle, "Observation")

        def by_code(code):
            return sorted((o for o in observations if code in loinc_codes(o)), key=lambda o: o["effectiveDateTime"])

        self.heights = [(day(o["effectiveDateTime"]), self._cm(o["valueQuantity"])) for o in by_code("8302-2")]
        self.weights = [(day(o["effectiveDateTime"]), self._kg(o["valueQuantity"])) for o in by_code("29463-7")]
        self.igf1 = by_code("2484-4")
        self.bone_ages = [(day(o["effectiveDateTime"]), self._years(o["valueQuantity"]), o) for o in by_code("85151-9")]
        self.gh_peak = max((self._ug_l(o["valueQuantity"]) for o in observations if loinc_codes(o) & GH_STIMULATED),
                           default=None)
        orders = [r for r in resources(bundle, "MedicationRequest") if "mecasermin" in r["medicationCodeableConcept"]["text"]]
        self.drafts = [o for o in orders if o["status"] == "draft"]
        self.prior = [o for o in orders if o["status"] != "draft"]
        self.treatment_start = min((day(o["authoredOn"]) for o in self.prior), default=None)

    @staticmethod
    def _cm(q):
        return {"cm": 1.0, "[in_i]": 2.54, "m": 100.0}[q["code"]] * q["value"]

    @staticmethod
    def _kg(q):
        return {"kg": 1.0, "[lb_av]": 0.45359237, "g": 0.001}[q["code"]] * q["value"]

    @staticmethod
    def _years(q):
        return {"a": 1.0, "mo": 1 / 12}[q["code"]] * q["value"]

    @staticmethod
    def _ug_l(q):
        return {"ng/mL": 1.0, "ug/L": 1.0, "m[IU]/L": 1 / 3}[q["code"]] * q["value"]

    def age(self, on: date) -> float:
        return (on - self.birth).days / 365.25

    def baseline_height_sds(self) -> float:
        """SDS of the latest height before treatment (the latest height when untreated)."""
        before = [(d, cm) for d, cm in self.heights if self.treatment_start is None or d <= self.treatment_start]
        d, cm = before[-1]
        return generator.sds_for_height(self.sex, self.age(d), cm)

    def baseline_igf1_sds(self) -> float | None:
        first = self.igf1[0]
        ranges = first.get("referenceRange")
        if not ranges:
            return None
        factor = 7.649 if first["valueQuantity"]["code"] == "nmol/L" else 1.0
        low, high = ranges[0]["low"]["value"] * factor, ranges[0]["high"]["value"] * factor
        return generator.igf1_sds(first["valueQuantity"]["value"] * factor, low, high)

    def velocities(self, min_days: int = 182, max_days: int = 460) -> list[float]:
        """Growth velocity (cm/year) from every earlier height 6-15 months before the latest."""
        last_day, last_cm = self.heights[-1]
        return [(last_cm - cm) / (last_day - d).days * 365.25 for d, cm in self.heights
                if min_days <= (last_day - d).days <= max_days]

    def draft_mg(self) -> float:
        q = self.drafts[0]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
        return q["value"] * (10.0 if q["code"] == "mL" else 1.0)


CHARTS = {path.stem: Chart(load(path)) for path in BUNDLE_PATHS}


def test_at_least_twelve_patients_each_with_an_expectation():
    assert len(BUNDLE_PATHS) >= 12
    assert set(EXPECTED) == set(CHARTS)
    for path in BUNDLE_PATHS:
        assert CHARTS[path.stem].pid == path.stem, "file name is the patient id"


def test_expected_json_shape():
    for pid, expectation in EXPECTED.items():
        assert set(expectation) == {"determination", "crd_covered", "contraindication", "dose_critical",
                                    "screening"}, pid
        assert expectation["determination"] in {"meets-criteria", "documentation-needed", "does-not-meet"}
        assert expectation["crd_covered"] in {"covered", "conditional", "not-covered", None}
        assert all(isinstance(expectation[key], bool) for key in ("contraindication", "dose_critical", "screening"))
    determinations = {e["determination"] for e in EXPECTED.values()}
    assert determinations == {"meets-criteria", "documentation-needed", "does-not-meet"}


@pytest.mark.parametrize("path", BUNDLE_PATHS, ids=lambda p: p.stem)
def test_bundles_are_date_relative_with_the_anchor_as_timestamp(path):
    bundle = load(path)
    assert generator.DATE_RELATIVE_TAG in bundle["meta"]["tag"]
    assert bundle["timestamp"][:10] == TODAY.isoformat()


def test_committed_files_are_the_generator_output(capsys):
    assert generator.main(["--check"]) == 0, capsys.readouterr().err


def test_embedded_cdc_table_matches_the_spec_cross_check():
    # docs/clinical-rules.md: a 6.0-year-old boy at 100.0 cm has z ≈ -3.02
    assert generator.sds_for_height("male", 6.0, 100.0) == pytest.approx(-3.02, abs=0.01)
    # and the IGF-1 example: 25 ng/mL with range 60-300 gives z ≈ -4.2
    assert generator.igf1_sds(25, 60, 300) == pytest.approx(-4.2, abs=0.05)


@pytest.mark.parametrize("path", BUNDLE_PATHS, ids=lambda p: p.stem)
def test_bundle_and_every_resource_parse_as_r4b(path):
    data = load(path)
    bundle = Bundle.model_validate(data)
    assert bundle.type == "transaction"
    for entry in data["entry"]:
        resource = entry["resource"]
        model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        assert model.id == resource["id"]


@pytest.mark.parametrize("path", BUNDLE_PATHS, ids=lambda p: p.stem)
def test_entries_are_puts_with_stable_ids_and_references_resolve(path):
    data = load(path)
    present = set()
    for entry in data["entry"]:
        resource = entry["resource"]
        assert re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", resource["id"])
        assert entry["request"] == {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}
        present.add(f"{resource['resourceType']}/{resource['id']}")
    references = re.findall(r'"reference": "([A-Za-z]+/[A-Za-z0-9\-.]+)"', json.dumps(data))
    assert references and set(references) <= present


@pytest.mark.parametrize("pid", sorted(CHARTS))
def test_one_draft_mecasermin_order_shaped_like_an_ehr_order(pid):
    chart = CHARTS[pid]
    assert len(chart.drafts) == 1
    order = chart.drafts[0]
    assert order["intent"] == "order"
    assert order["medicationCodeableConcept"]["text"] == "mecasermin 10 MG/ML Injectable Solution [Increlex]"
    assert {"system": "http://hl7.org/fhir/sid/ndc", "code": "15054-1040-05"}.items() <= \
        order["medicationCodeableConcept"]["coding"][0].items()
    dosage = order["dosageInstruction"][0]
    assert dosage["route"]["coding"][0]["code"] == "34206005"
    assert dosage["doseAndRate"][0]["doseQuantity"]["code"] in {"mg", "mL"}
    timing = dosage["timing"]
    assert timing.get("code", {}).get("coding", [{}])[0].get("code") == "BID" or \
        timing.get("repeat") == {"frequency": 2, "period": 1, "periodUnit": "d"}
    assert order["reasonCode"][0]["text"]
    assert order["dispenseRequest"]["quantity"]["value"] > 0


@pytest.mark.parametrize("pid", sorted(CHARTS))
def test_latest_weight_is_recent_and_dose_flag_matches_mg_per_kg(pid):
    chart = CHARTS[pid]
    weigh_day, kg = chart.weights[-1]
    assert (TODAY - weigh_day).days <= 90
    mg_per_kg = chart.draft_mg() / kg
    assert (mg_per_kg > 0.12) == EXPECTED[pid]["dose_critical"], mg_per_kg
    assert mg_per_kg >= 0.04 or EXPECTED[pid]["dose_critical"]


@pytest.mark.parametrize("pid", sorted(CHARTS))
def test_heights_are_measured_every_three_to_six_months_over_years(pid):
    chart = CHARTS[pid]
    days = [d for d, _ in chart.heights]
    gaps = [(b - a).days for a, b in zip(days, days[1:])]
    assert len(days) >= 6 and max(gaps) <= 190
    assert (days[-1] - days[0]).days >= 365 * (1 if chart.age(TODAY) < 3 else 2)
    assert all(b[1] > a[1] for a, b in zip(chart.heights, chart.heights[1:])), "children grow"


def test_patients_meeting_the_initial_criteria():
    initial = [pid for pid, e in EXPECTED.items() if e["determination"] == "meets-criteria"]
    assert {"demo-laron-icd10", "demo-laron-snomed", "demo-overdose", "demo-malignancy-history"} <= set(initial)
    # The Aetna child meets the primary policy's numbers too; its plan's thresholds are unknown.
    assert EXPECTED["demo-laron-aetna"]["determination"] == "documentation-needed"
    for pid in initial + ["demo-laron-aetna"]:
        chart = CHARTS[pid]
        assert chart.baseline_height_sds() < -3.0, pid           # policy -2.25; label -3.0
        assert chart.baseline_igf1_sds() <= -3.0, pid
        assert chart.gh_peak >= 10, pid
        bone_age = chart.bone_ages[0][1]                          # pre-treatment study
        assert bone_age < (15 if chart.sex == "male" else 13), pid


def test_laron_patients_coded_in_one_system_each():
    def systems(pid):
        return {c["system"] for r in resources(CHARTS[pid].bundle, "Condition") for c in r["code"]["coding"]}
    assert systems("demo-laron-icd10") == {"http://hl7.org/fhir/sid/icd-10-cm"}
    assert systems("demo-laron-snomed") == {"http://snomed.info/sct"}


def test_documentation_needed_patients_miss_exactly_one_item():
    no_bone_age, no_range = CHARTS["demo-no-bone-age"], CHARTS["demo-igf1-no-range"]
    assert EXPECTED["demo-no-bone-age"]["determination"] == "documentation-needed"
    assert EXPECTED["demo-igf1-no-range"]["determination"] == "documentation-needed"
    assert no_bone_age.bone_ages == [] and "epiphys" not in json.dumps(no_bone_age.bundle).lower()
    assert no_bone_age.baseline_igf1_sds() <= -3 and no_bone_age.gh_peak >= 10
    assert no_bone_age.baseline_height_sds() < -3
    assert no_range.baseline_igf1_sds() is None
    assert not any("73561-3" in loinc_codes(o) for o in resources(no_range.bundle, "Observation"))
    assert no_range.gh_peak >= 10 and no_range.baseline_height_sds() < -3 and no_range.bone_ages[0][1] < 13


def test_reauthorization_patients_growth_velocity():
    good, poor = CHARTS["demo-reauth-good"], CHARTS["demo-reauth-poor"]
    for chart in (good, poor):
        assert chart.prior and (TODAY - chart.treatment_start).days == pytest.approx(365, abs=14)
        assert {o["status"] for o in chart.prior} <= {"active", "completed"}
        assert chart.baseline_igf1_sds() <= -3 and chart.gh_peak >= 10
        assert chart.bone_ages[-1][1] <= (16 if chart.sex == "male" else 14)
    assert good.velocities() and min(good.velocities()) >= 2.5
    assert poor.velocities() and max(poor.velocities()) < 2.5
    assert EXPECTED["demo-reauth-good"]["determination"] == "meets-criteria"
    assert EXPECTED["demo-reauth-poor"]["determination"] == "does-not-meet"


def test_contraindication_flags_have_their_evidence_on_file():
    def malignancy(chart):
        return [c for r in resources(chart.bundle, "Condition") for c in r["code"]["coding"]
                if re.match(r"C\d|Z85", c["code"])]

    def fused(chart):
        return [o for _, _, o in chart.bone_ages if "fused" in json.dumps(o.get("note", [])).lower()]

    for pid, chart in CHARTS.items():
        evidence = {"malignancy": bool(malignancy(chart)), "closed-epiphyses": bool(fused(chart)),
                    "under-2": chart.age(TODAY) < 2}
        assert any(evidence.values()) == EXPECTED[pid]["contraindication"], (pid, evidence)
    resolved = [r for r in resources(CHARTS["demo-malignancy-history"].bundle, "Condition")
                if r["clinicalStatus"]["coding"][0]["code"] == "resolved"]
    assert resolved and resolved[0]["code"]["coding"][0]["code"].startswith("C71")


def test_non_qualifying_indications():
    iss_order = CHARTS["demo-iss"].drafts[0]
    assert iss_order["reasonCode"][0]["text"] == "Idiopathic short stature"
    assert iss_order["reasonCode"][0]["coding"][0]["code"] == "R62.52"
    assert CHARTS["demo-gh-deficiency"].drafts[0]["reasonCode"][0]["coding"][0]["code"] == "E23.0"
    assert CHARTS["demo-gh-deficiency"].gh_peak < 10
    turner = CHARTS["demo-turner"]
    assert turner.sex == "female" and turner.drafts[0]["reasonCode"][0]["coding"][0]["code"] == "Q96.9"
    for pid in ("demo-iss", "demo-gh-deficiency", "demo-turner"):
        assert EXPECTED[pid]["determination"] == "does-not-meet"


def test_units_vary_like_real_charts():
    units = {(o["code"]["coding"][0]["code"], o["valueQuantity"]["code"])
             for chart in CHARTS.values() for o in resources(chart.bundle, "Observation") if "valueQuantity" in o}
    assert {("8302-2", "cm"), ("8302-2", "[in_i]"), ("29463-7", "kg"), ("29463-7", "[lb_av]"),
            ("2484-4", "ng/mL"), ("2484-4", "nmol/L"), ("85151-9", "a"), ("85151-9", "mo")} <= units
    assert any(u == "m[IU]/L" for _, u in units)
    dose_units = {CHARTS[p].drafts[0]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["code"] for p in CHARTS}
    assert dose_units == {"mg", "mL"}
    assert any(r["resourceType"] == "AllergyIntolerance" for c in CHARTS.values() for r in resources(c.bundle))


def test_coverage_mix():
    payers = {}
    for pid, chart in CHARTS.items():
        coverages = [r for r in resources(chart.bundle, "Coverage") if r["status"] == "active"]
        payers[pid] = coverages[0]["payor"][0]["display"] if coverages else None
    assert list(payers.values()).count("Aetna") == 1
    assert list(payers.values()).count(None) == 1
    assert sum(1 for p in payers.values() if p and "Medicaid" in p) == 1
    assert sum(1 for p in payers.values() if p == "Premera Blue Cross") >= 9
    organizations = {r["id"]: r["name"] for c in CHARTS.values() for r in resources(c.bundle, "Organization")}
    assert "Premera Blue Cross" in organizations.values()


def test_dates_are_iso_and_not_in_the_future():
    for chart in CHARTS.values():
        for r in resources(chart.bundle):
            for key in ("effectiveDateTime", "issued", "onsetDateTime", "recordedDate", "authoredOn"):
                if key in r:
                    value = datetime.fromisoformat(r[key].replace("Z", "+00:00"))
                    assert value.date() <= TODAY, (r["id"], key)
