"""Build the demo patients in `patients/`: one FHIR R4 transaction Bundle per child.

The JSON files are this script's output and are committed, so the demo FHIR server, the
integration tests and a person reading them all see the same data. Change a patient here,
run `python3 sandbox-config/build_demo_patients.py`, and commit the regenerated files;
`--check` exits non-zero when the committed files differ from what the script builds.

Heights are placed on the CDC 2000 stature-for-age reference (length-for-age under 2
years): each patient follows a height SDS path, and the height is the inverse of the LMS
transform, X = M·(1 + L·S·z)^(1/L), with L, M, S interpolated linearly in age. The table
below holds the CDC 2000 LMS values every half year (US federal public-domain data). IGF-1
reference ranges are typical pediatric laboratory ranges for the age; they are demo data,
not a laboratory's published range.

The charts are built as of the anchor day TODAY (2026-11-21, every weight used for dosing within
90 days of it) and tagged date-relative: the demo FHIR server moves every date by the days between
the anchor and the day it loads them (fhir-server/date-relative.mjs), so they never go stale.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

TODAY = date(2026, 11, 21)      # the anchor day: the charts as they stand on it
DATE_RELATIVE_TAG = {"system": "urn:mecasermin-cds:CodeSystem:demo-data", "code": "date-relative",
                     "display": "Dates move with the day the Bundle is loaded; Bundle.timestamp is the anchor"}
HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "patients"
EXPECTED_FILE = "expected.json"     # kept by hand: the outcomes the service must give (not built here)

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
NDC = "http://hl7.org/fhir/sid/ndc"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.19.5"   # HL7's example OID ("Good Health Clinic")
BIRTHSEX_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"

MECASERMIN_TEXT = "mecasermin 10 MG/ML Injectable Solution [Increlex]"
MECASERMIN_NDC = "15054-1040-05"
MG_PER_ML = 10.0
VIAL_ML = 4.0

# CDC 2000 growth reference, L/M/S by age in years: recumbent length for 0–1.5 years
# (birth-to-36-months chart), stature from 2 years (2–20 years chart).
LMS_HEIGHT: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "male": (
        (0.0, 1.267004, 49.9889, 0.053112),
        (0.5, -1.466707, 66.9927, 0.038968),
        (1.0, -0.828354, 75.5198, 0.038659),
        (1.5, 0.090040, 81.9246, 0.039420),
        (2.0, 0.941524, 86.4522, 0.040322),
        (2.5, 0.230626, 90.9808, 0.040959),
        (3.0, -0.347386, 94.9600, 0.040594),
        (3.5, 0.274643, 98.7008, 0.040815),
        (4.0, 0.792898, 102.2239, 0.041298),
        (4.5, 1.114510, 105.6037, 0.041903),
        (5.0, 1.260744, 108.9024, 0.042541),
        (5.5, 1.260565, 112.1593, 0.043135),
        (6.0, 1.150120, 115.3924, 0.043636),
        (6.5, 0.971350, 118.6008, 0.044039),
        (7.0, 0.769745, 121.7689, 0.044376),
        (7.5, 0.589056, 124.8710, 0.044707),
        (8.0, 0.462929, 127.8779, 0.045091),
        (8.5, 0.406603, 130.7634, 0.045574),
        (9.0, 0.413135, 133.5114, 0.046164),
        (9.5, 0.456796, 136.1220, 0.046838),
        (10.0, 0.502608, 138.6188, 0.047551),
        (10.5, 0.519021, 141.0554, 0.048248),
        (11.0, 0.491818, 143.5205, 0.048888),
        (11.5, 0.438732, 146.1381, 0.049446),
        (12.0, 0.418848, 149.0503, 0.049913),
        (12.5, 0.516859, 152.3679, 0.050253),
        (13.0, 0.786809, 156.0870, 0.050342),
        (13.5, 1.195628, 160.0212, 0.049981),
        (14.0, 1.635827, 163.8384, 0.049046),
        (14.5, 1.992858, 167.2085, 0.047637),
        (15.0, 2.195515, 169.9399, 0.046024),
        (15.5, 2.228947, 172.0094, 0.044483),
        (16.0, 2.125774, 173.5057, 0.043182),
        (16.5, 1.944055, 174.5582, 0.042179),
        (17.0, 1.741263, 175.2904, 0.041458),
        (17.5, 1.557167, 175.8006, 0.040971),
        (18.0, 1.410498, 176.1599, 0.040663),
        (18.5, 1.304409, 176.4170, 0.040485),
        (19.0, 1.233786, 176.6045, 0.040396),
        (19.5, 1.190687, 176.7438, 0.040365),
        (20.0, 1.167279, 176.8492, 0.040370),
    ),
    "female": (
        (0.0, -1.295961, 49.2864, 0.050086),
        (0.5, 1.331469, 65.2624, 0.039566),
        (1.0, 1.524181, 73.7903, 0.039333),
        (1.5, 1.328214, 80.3067, 0.039984),
        (2.0, 1.072449, 84.9756, 0.040791),
        (2.5, 0.841383, 89.9591, 0.041723),
        (3.0, 0.560769, 93.9236, 0.041995),
        (3.5, 0.390615, 97.3659, 0.042567),
        (4.0, 0.238432, 100.7510, 0.043209),
        (4.5, 0.087856, 104.1754, 0.043774),
        (5.0, -0.047541, 107.6636, 0.044241),
        (5.5, -0.152100, 111.1930, 0.044624),
        (6.0, -0.215622, 114.7141, 0.044940),
        (6.5, -0.234950, 118.1665, 0.045206),
        (7.0, -0.213490, 121.4914, 0.045442),
        (7.5, -0.159853, 124.6413, 0.045674),
        (8.0, -0.085934, 127.5892, 0.045943),
        (8.5, -0.004119, 130.3361, 0.046304),
        (9.0, 0.077393, 132.9199, 0.046831),
        (9.5, 0.162125, 135.4252, 0.047595),
        (10.0, 0.273317, 137.9901, 0.048612),
        (10.5, 0.450642, 140.7916, 0.049725),
        (11.0, 0.718676, 143.9780, 0.050493),
        (11.5, 1.036765, 147.5362, 0.050280),
        (12.0, 1.288525, 151.1901, 0.048772),
        (12.5, 1.360624, 154.5042, 0.046407),
        (13.0, 1.256136, 157.1541, 0.044037),
        (13.5, 1.090025, 159.0751, 0.042236),
        (14.0, 0.964205, 160.3887, 0.041094),
        (14.5, 0.904985, 161.2673, 0.040448),
        (15.0, 0.895023, 161.8577, 0.040104),
        (15.5, 0.911419, 162.2628, 0.039924),
        (16.0, 0.938687, 162.5488, 0.039827),
        (16.5, 0.968566, 162.7570, 0.039770),
        (17.0, 0.997221, 162.9126, 0.039735),
        (17.5, 1.023116, 163.0315, 0.039709),
        (18.0, 1.045814, 163.1240, 0.039689),
        (18.5, 1.065368, 163.1968, 0.039672),
        (19.0, 1.082037, 163.2547, 0.039658),
        (19.5, 1.096150, 163.3010, 0.039647),
        (20.0, 1.108046, 163.3383, 0.039636),
    ),
}


# ---------------------------------------------------------------------------------------
# Growth arithmetic (the formulas of docs/clinical-rules.md)

def lms_at(sex: str, age: float) -> tuple[float, float, float]:
    rows = LMS_HEIGHT[sex]
    if not rows[0][0] <= age <= rows[-1][0]:
        raise ValueError(f"age {age:.2f} outside the LMS table")
    for low, high in zip(rows, rows[1:]):
        if low[0] <= age <= high[0]:
            f = (age - low[0]) / (high[0] - low[0])
            return tuple(a + f * (b - a) for a, b in zip(low[1:], high[1:]))  # type: ignore[return-value]
    raise AssertionError("unreachable")


def height_for_sds(sex: str, age: float, z: float) -> float:
    lam, mu, sigma = lms_at(sex, age)
    return mu * (1 + lam * sigma * z) ** (1 / lam)


def sds_for_height(sex: str, age: float, height_cm: float) -> float:
    lam, mu, sigma = lms_at(sex, age)
    return ((height_cm / mu) ** lam - 1) / (lam * sigma)


def igf1_sds(value: float, low: float, high: float) -> float:
    """IGF-1 SDS from the result's reference range taken as ±2 SD of the log values."""
    mid = (math.log(low) + math.log(high)) / 2
    sd = (math.log(high) - math.log(low)) / 4
    return (math.log(value) - mid) / sd


def age_years(birth: date, on: date) -> float:
    return (on - birth).days / 365.25


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate in (day.day, 28):
        try:
            return date(year, month, candidate)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def jitter(key: str, amplitude: float) -> float:
    """A deterministic measurement error in [-amplitude, +amplitude]."""
    digest = hashlib.sha256(key.encode()).digest()
    return (int.from_bytes(digest[:4], "big") / 0xFFFFFFFF * 2 - 1) * amplitude


def clinic_time(day: date, minutes_after_8: int) -> str:
    """A Pacific-time clinic timestamp (daylight saving from the second Sunday of March
    to the first Sunday of November)."""
    def nth_sunday(year: int, month: int, n: int) -> date:
        first = date(year, month, 1)
        return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))
    dst = nth_sunday(day.year, 3, 2) <= day < nth_sunday(day.year, 11, 1)
    hours, minutes = divmod(8 * 60 + minutes_after_8, 60)
    return f"{day.isoformat()}T{hours:02d}:{minutes:02d}:00{'-07:00' if dst else '-08:00'}"


def quantity(value: float, unit: str, code: str | None = None, comparator: str | None = None) -> dict:
    q: dict = {"value": value, "unit": unit, "system": UCUM, "code": code or unit}
    if comparator:
        q = {"value": value, "comparator": comparator, "unit": unit, "system": UCUM, "code": code or unit}
    return q


def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> dict:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    result: dict = {"coding": [coding]}
    if text:
        result["text"] = text
    return result


# ---------------------------------------------------------------------------------------
# Shared resources (the same in every bundle; PUT makes loading them twice harmless)

PRACTITIONER = {
    "resourceType": "Practitioner",
    "id": "demo-pediatric-endocrinologist",
    "active": True,
    "name": [{"use": "official", "family": "Whitfield", "given": ["Dana"], "prefix": ["Dr."], "suffix": ["MD"]}],
    "qualification": [{"code": {"text": "Pediatric endocrinology"}}],
}

PAYERS = {
    "premera": {
        "resourceType": "Organization", "id": "demo-payer-premera", "active": True,
        "type": [concept("http://terminology.hl7.org/CodeSystem/organization-type", "pay", "Payer")],
        "name": "Premera Blue Cross",
    },
    "aetna": {
        "resourceType": "Organization", "id": "demo-payer-aetna", "active": True,
        "type": [concept("http://terminology.hl7.org/CodeSystem/organization-type", "pay", "Payer")],
        "name": "Aetna",
    },
    "medicaid": {
        "resourceType": "Organization", "id": "demo-payer-wa-medicaid", "active": True,
        "type": [concept("http://terminology.hl7.org/CodeSystem/organization-type", "pay", "Payer")],
        "name": "Washington Apple Health (Medicaid)",
        "alias": ["Washington State Health Care Authority"],
    },
}

# Source of Payment Typology (PHDSC) top-level codes.
SOPT = "https://nahdo.org/sopt"
PAYER_COVERAGE = {
    "premera": {"type": concept(SOPT, "6", "BLUE CROSS/BLUE SHIELD"), "plan": ("PPO", "Premera Blue Cross PPO"),
                "member_prefix": "PBC"},
    "aetna": {"type": concept(SOPT, "5", "PRIVATE HEALTH INSURANCE"), "plan": ("CHOICE-POS-II", "Aetna Choice POS II"),
              "member_prefix": "W"},
    "medicaid": {"type": concept(SOPT, "2", "MEDICAID"), "plan": ("AH-KIDS", "Apple Health for Kids"),
                 "member_prefix": "2"},
}

GH_CODES = {
    # code: (display, stimulus, stimulated, mass units?)
    "2963-7": ("Somatotropin [Mass/volume] in Serum or Plasma", "random", True),
    "12253-1": ("Somatotropin [Mass/volume] in Serum or Plasma --baseline", "baseline", False),
    "14146-5": ("Somatotropin [Mass/volume] in Serum or Plasma --1 hour post XXX challenge", "60 min post challenge", True),
    "40301-4": ("Somatotropin [Mass/volume] in Serum or Plasma --2 hours post dose cloNIDine", "120 min post clonidine", True),
    "40298-2": ("Somatotropin [Mass/volume] in Serum or Plasma --pre dose cloNIDine", "before clonidine", False),
    "40302-2": ("Somatotropin [Mass/volume] in Serum or Plasma --pre dose arginine", "before arginine", False),
    "47760-4": ("Somatotropin [Units/volume] in Serum or Plasma --1 hour post dose arginine", "60 min post arginine", True),
}


# ---------------------------------------------------------------------------------------
# One child's chart

@dataclass
class Expectation:
    """What a chart shows, for people (--summary); the outcomes the service must give are in
    patients/expected.json, the one file `make demo` and the tests check them against."""

    path: str                     # what the patient demonstrates (README)
    why: str                      # why that determination (README)
    critical: str                 # expected critical findings (README), "none" when none
    payer: str                    # the plan that decides (README)


@dataclass
class Chart:
    pid: str
    sex: str                      # "male" | "female"
    birth: date
    given: str
    family: str
    mrn: str
    city: str
    birthsex_extension: bool = True
    entries: list[dict] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    heights: list[tuple[date, float]] = field(default_factory=list)   # (date, cm) for the summary
    weights: list[tuple[date, float]] = field(default_factory=list)   # (date, kg)
    igf1: list[tuple[date, float, float | None, float | None]] = field(default_factory=list)  # ng/mL
    gh_peak: float | None = None
    bone_age: tuple[date, float] | None = None                        # years
    dose_mg: float | None = None

    def __post_init__(self) -> None:
        self.put(self.patient_resource())

    # -- plumbing -----------------------------------------------------------------------
    def next_id(self, kind: str) -> str:
        self.counters[kind] = self.counters.get(kind, 0) + 1
        return f"{self.pid}-{kind}-{self.counters[kind]:02d}"

    def put(self, resource: dict) -> dict:
        self.entries.append({
            "resource": resource,
            "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
        })
        return resource

    @property
    def subject(self) -> dict:
        return {"reference": f"Patient/{self.pid}", "display": f"{self.given} {self.family}"}

    def age(self, on: date) -> float:
        return age_years(self.birth, on)

    def bundle(self) -> dict:
        # Dated as of TODAY, its timestamp: the demo FHIR server moves every date so that this day
        # becomes the day it loads the Bundle (fhir-server/date-relative.mjs).
        return {"resourceType": "Bundle", "meta": {"tag": [DATE_RELATIVE_TAG]}, "type": "transaction",
                "timestamp": f"{TODAY.isoformat()}T12:00:00Z", "entry": self.entries}

    # -- resources ----------------------------------------------------------------------
    def patient_resource(self) -> dict:
        patient: dict = {"resourceType": "Patient", "id": self.pid}
        if self.birthsex_extension:
            patient["extension"] = [{"url": BIRTHSEX_URL, "valueCode": "M" if self.sex == "male" else "F"}]
        patient.update({
            "identifier": [{
                "use": "usual",
                "type": concept("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical Record Number"),
                "system": MRN_SYSTEM, "value": self.mrn,
            }],
            "active": True,
            "name": [{"use": "official", "family": self.family, "given": [self.given]}],
            "gender": self.sex,
            "birthDate": self.birth.isoformat(),
            "address": [{"use": "home", "city": self.city, "state": "WA", "country": "US"}],
            "communication": [{"language": concept("urn:ietf:bcp:47", "en-US", "English (United States)"),
                               "preferred": True}],
        })
        return patient

    def condition(self, codings: list[tuple[str, str, str]], text: str, onset: date, recorded: date,
                  status: str = "active", abatement: date | None = None, note: str | None = None) -> dict:
        resource: dict = {
            "resourceType": "Condition", "id": self.next_id("condition"),
            "clinicalStatus": concept("http://terminology.hl7.org/CodeSystem/condition-clinical", status),
            "verificationStatus": concept("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"),
            "category": [concept("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item",
                                 "Problem List Item")],
            "code": {"coding": [{"system": s, "code": c, "display": d} for s, c, d in codings], "text": text},
            "subject": self.subject,
            "onsetDateTime": onset.isoformat(),
        }
        if abatement:
            resource["abatementDateTime"] = abatement.isoformat()
        resource["recordedDate"] = recorded.isoformat()
        resource["recorder"] = {"reference": f"Practitioner/{PRACTITIONER['id']}"}
        if note:
            resource["note"] = [{"text": note}]
        return self.put(resource)

    def growth(self, first: date, last: date, sds: list[tuple[date, float]], *, bmi: float,
               steps: tuple[int, ...] = (4, 5, 3, 6), treatment: tuple[date, float] | None = None,
               inches_before: date | None = None, inches: bool = False, pounds: bool = False) -> None:
        """Heights (and weights) at clinic visits every `steps` months, back from `last` to `first`.

        Height follows the SDS path `sds` (linear between anchors, constant outside); after
        `treatment = (start, cm_per_year)` it grows at that velocity from the start height, and
        the start day is a visit too.
        """
        visits, day, i = [last], last, 0
        while (day := add_months(day, -steps[i % len(steps)])) >= first:
            visits.append(day)
            i += 1
        if treatment:   # the visit at which mecasermin was started
            visits.append(treatment[0])
        visits = sorted(set(visits))

        def sds_on(on: date) -> float:
            if on <= sds[0][0]:
                return sds[0][1]
            for (d0, z0), (d1, z1) in zip(sds, sds[1:]):
                if d0 <= on <= d1:
                    return z0 + (z1 - z0) * (on - d0).days / (d1 - d0).days
            return sds[-1][1]

        def true_height(on: date) -> float:
            if treatment and on > treatment[0]:
                start = treatment[0]
                base = height_for_sds(self.sex, self.age(start), sds_on(start))
                return base + treatment[1] * (on - start).days / 365.25
            return height_for_sds(self.sex, self.age(on), sds_on(on))

        for n, visit in enumerate(visits):
            cm = round(true_height(visit) + jitter(f"{self.pid}|h|{visit}", 0.15), 1)
            kg = round(bmi * (cm / 100) ** 2 + jitter(f"{self.pid}|w|{visit}", 0.2), 1)
            when = clinic_time(visit, 20 + 37 * n % 420)
            in_inches = inches or (inches_before is not None and visit < inches_before)
            if in_inches:
                value = round(cm / 2.54, 1)
                self.heights.append((visit, value * 2.54))
                height_q = quantity(value, "in", "[in_i]")
            else:
                self.heights.append((visit, cm))
                height_q = quantity(cm, "cm")
            if pounds:
                lb = round(kg / 0.45359237, 1)
                self.weights.append((visit, lb * 0.45359237))
                weight_q = quantity(lb, "lb", "[lb_av]")
            else:
                self.weights.append((visit, kg))
                weight_q = quantity(kg, "kg")
            self.put(self._vital("height", "8302-2", "Body height", "http://hl7.org/fhir/StructureDefinition/bodyheight",
                                 when, height_q))
            self.put(self._vital("weight", "29463-7", "Body weight", "http://hl7.org/fhir/StructureDefinition/bodyweight",
                                 when, weight_q))

    def _vital(self, kind: str, code: str, display: str, profile: str, when: str, value: dict) -> dict:
        return {
            "resourceType": "Observation", "id": self.next_id(kind),
            "meta": {"profile": [profile]},
            "status": "final",
            "category": [concept(OBS_CATEGORY, "vital-signs", "Vital Signs")],
            "code": concept(LOINC, code, display, text=display),
            "subject": self.subject,
            "effectiveDateTime": when,
            "valueQuantity": value,
        }

    def igf1_result(self, collected: date, value: float, unit: str = "ng/mL",
                    range_: tuple[float, float] | None = None, comparator: str | None = None) -> dict:
        per_ng = 1 / 7.649 if unit == "nmol/L" else 1.0
        age = int(self.age(collected))
        resource: dict = {
            "resourceType": "Observation", "id": self.next_id("igf1"),
            "status": "final",
            "category": [concept(OBS_CATEGORY, "laboratory", "Laboratory")],
            "code": concept(LOINC, "2484-4", "Insulin-like growth factor-I [Mass/volume] in Serum or Plasma",
                            text="IGF-1 (somatomedin C)"),
            "subject": self.subject,
            "effectiveDateTime": clinic_time(collected, 65),
            "issued": f"{(collected + timedelta(days=3)).isoformat()}T16:42:00Z",
            "valueQuantity": quantity(value, unit, comparator=comparator),
        }
        ng = value / per_ng
        if range_:
            low, high = range_
            resource["interpretation"] = [concept(INTERPRETATION, "L" if value < low else "N",
                                                  "Low" if value < low else "Normal")]
            resource["referenceRange"] = [{
                "low": quantity(low, unit), "high": quantity(high, unit),
                "age": {"low": quantity(age, "yr", "a"), "high": quantity(age + 1, "yr", "a")},
                "text": f"Age- and sex-specific reference interval ({self.sex}, {age} years)",
            }]
            self.igf1.append((collected, ng, low / per_ng, high / per_ng))
        else:
            resource["interpretation"] = [concept(INTERPRETATION, "L", "Low")]
            resource["note"] = [{"text": "Reference interval not reported by the performing laboratory."}]
            self.igf1.append((collected, ng, None, None))
        return self.put(resource)

    def gh_test(self, collected: date, stimulus: str, results: list[tuple[str, float, str]]) -> dict:
        """A stimulation test: Observations for each timed sample, grouped by a DiagnosticReport."""
        refs = []
        for n, (code, value, unit) in enumerate(results):
            display, timing, stimulated = GH_CODES[code]
            obs = self.put({
                "resourceType": "Observation", "id": self.next_id("gh"),
                "status": "final",
                "category": [concept(OBS_CATEGORY, "laboratory", "Laboratory")],
                "code": concept(LOINC, code, display, text=f"Growth hormone, {timing}"),
                "subject": self.subject,
                "effectiveDateTime": clinic_time(collected, 30 + 30 * n),
                "issued": f"{(collected + timedelta(days=2)).isoformat()}T18:05:00Z",
                "valueQuantity": quantity(value, "mIU/L", "m[IU]/L") if unit == "mIU/L" else quantity(value, "ng/mL"),
            })
            refs.append({"reference": f"Observation/{obs['id']}"})
            ug_l = value / 3 if unit == "mIU/L" else value
            if stimulated:
                self.gh_peak = max(self.gh_peak or 0.0, ug_l)
        peak = max(v / 3 if u == "mIU/L" else v for c, v, u in results if GH_CODES[c][2])
        return self.put({
            "resourceType": "DiagnosticReport", "id": self.next_id("gh-test"),
            "status": "final",
            "category": [concept("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")],
            "code": {"text": f"Growth hormone stimulation test ({stimulus})"},
            "subject": self.subject,
            "effectiveDateTime": clinic_time(collected, 30),
            "issued": f"{(collected + timedelta(days=2)).isoformat()}T18:05:00Z",
            "result": refs,
            "conclusion": f"{stimulus.capitalize()} stimulation: peak growth hormone {peak:.1f} ug/L.",
        })

    def bone_age_study(self, taken: date, value: float, unit: str, finding: str | None) -> dict:
        years = value / 12 if unit == "mo" else value
        self.bone_age = (taken, years)
        obs: dict = {
            "resourceType": "Observation", "id": self.next_id("bone-age"),
            "status": "final",
            "category": [concept(OBS_CATEGORY, "imaging", "Imaging")],
            "code": concept(LOINC, "85151-9", text="Bone age"),
            "subject": self.subject,
            "effectiveDateTime": clinic_time(taken, 140),
            "issued": f"{taken.isoformat()}T23:10:00Z",
            "valueQuantity": quantity(value, "mo", "mo") if unit == "mo" else quantity(value, "yr", "a"),
            "method": {"text": "Greulich and Pyle atlas, left hand and wrist radiograph"},
            "component": [{
                "code": concept(LOINC, "85150-1", "Bone age method"),
                "valueCodeableConcept": {"text": "Greulich and Pyle"},
            }],
        }
        if finding:
            obs["note"] = [{"text": finding}]
        self.put(obs)
        months = round(years * 12)
        conclusion = (f"Bone age {months // 12} years {months % 12} months by Greulich and Pyle at a chronological "
                      f"age of {self.age(taken):.1f} years.")
        if finding:
            conclusion += " " + finding
        return self.put({
            "resourceType": "DiagnosticReport", "id": self.next_id("xr-bone-age"),
            "status": "final",
            "category": [concept("http://terminology.hl7.org/CodeSystem/v2-0074", "RAD", "Radiology")],
            "code": concept(LOINC, "24724-7", text="XR bone age, left hand and wrist"),
            "subject": self.subject,
            "effectiveDateTime": clinic_time(taken, 140),
            "issued": f"{taken.isoformat()}T23:10:00Z",
            "result": [{"reference": f"Observation/{obs['id']}"}],
            "conclusion": conclusion,
        })

    def allergy(self, code: tuple[str, str] | None, text: str, category: str | None, criticality: str | None,
                recorded: date, reaction: str | None = None) -> dict:
        resource: dict = {
            "resourceType": "AllergyIntolerance", "id": self.next_id("allergy"),
            "clinicalStatus": concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active"),
            "verificationStatus": concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                                          "confirmed"),
        }
        if category:
            resource["type"] = "allergy"
            resource["category"] = [category]
        if criticality:
            resource["criticality"] = criticality
        resource["code"] = {"coding": [{"system": code[0], "code": code[1]}], "text": text} if code else {"text": text}
        resource["patient"] = self.subject
        resource["recordedDate"] = recorded.isoformat()
        if reaction:
            resource["reaction"] = [{"manifestation": [{"text": reaction}]}]
        return self.put(resource)

    def coverage(self, payer: str, member: str, start: date) -> dict:
        org = PAYERS[payer]
        self.put(json.loads(json.dumps(org)))
        info = PAYER_COVERAGE[payer]
        return self.put({
            "resourceType": "Coverage", "id": self.next_id("coverage"),
            "status": "active",
            "type": info["type"],
            "subscriberId": f"{info['member_prefix']}{member}",
            "beneficiary": {"reference": f"Patient/{self.pid}"},
            "relationship": concept("http://terminology.hl7.org/CodeSystem/subscriber-relationship", "child", "Child"),
            "period": {"start": start.isoformat()},
            "payor": [{"reference": f"Organization/{org['id']}", "display": org["name"]}],
            "class": [{
                "type": concept("http://terminology.hl7.org/CodeSystem/coverage-class", "plan", "Plan"),
                "value": info["plan"][0], "name": info["plan"][1],
            }],
            "order": 1,
        })

    def mecasermin_order(self, *, status: str, authored: date, dose: float, dose_unit: str,
                         reason: list[tuple[str, str, str]], reason_text: str, bid_code: bool,
                         draft: bool) -> dict:
        dose_mg = dose * MG_PER_ML if dose_unit == "mL" else dose
        per_day_ml = 2 * dose_mg / MG_PER_ML
        days_per_vial = min(30, int(VIAL_ML / per_day_ml))
        vials = max(1, math.ceil(30 / days_per_vial))
        if draft:
            self.dose_mg = dose_mg
        timing = ({"code": concept("http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation", "BID", "BID")}
                  if bid_code else {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}})
        dose_text = f"{dose:g} mL ({dose_mg:g} mg)" if dose_unit == "mL" else f"{dose:g} mg"
        resource: dict = {
            "resourceType": "MedicationRequest",
            "id": f"{self.pid}-mecasermin-{'draft' if draft else authored.isoformat()}",
            "status": status,
            "intent": "order",
            "category": [concept("http://terminology.hl7.org/CodeSystem/medicationrequest-category", "outpatient",
                                 "Outpatient")],
            "medicationCodeableConcept": {
                "coding": [{"system": NDC, "code": MECASERMIN_NDC, "display": "Increlex (mecasermin) 40 mg/4 mL multi-dose vial"}],
                "text": MECASERMIN_TEXT,
            },
            "subject": self.subject,
            "authoredOn": authored.isoformat(),
            "requester": {"reference": f"Practitioner/{PRACTITIONER['id']}", "display": "Dana Whitfield, MD"},
            "reasonCode": [{"coding": [{"system": s, "code": c, "display": d} for s, c, d in reason],
                            "text": reason_text}],
            "dosageInstruction": [{
                "sequence": 1,
                "text": (f"Inject {dose_text} under the skin twice daily within 20 minutes of a meal or snack; "
                         "skip the dose if the meal is skipped."),
                "additionalInstruction": [{"text": "Rotate injection sites."}],
                "timing": timing,
                "route": concept(SNOMED, "34206005", "Subcutaneous route"),
                "doseAndRate": [{
                    "type": concept("http://terminology.hl7.org/CodeSystem/dose-rate-type", "ordered", "Ordered"),
                    "doseQuantity": quantity(dose, dose_unit),
                }],
            }],
            "dispenseRequest": {
                "validityPeriod": {"start": authored.isoformat(), "end": add_months(authored, 12).isoformat()},
                "numberOfRepeatsAllowed": 11,
                "quantity": quantity(vials * VIAL_ML, "mL"),
                "expectedSupplyDuration": quantity(vials * days_per_vial, "days", "d"),
            },
        }
        return self.put(resource)



# ---------------------------------------------------------------------------------------
# The patients

E34_321 = (ICD10CM, "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency")
LARON_SCT = (SNOMED, "38196001", "Laron-type isolated somatotropin defect")
LARON_TEXT = "Primary IGF-1 deficiency (Laron syndrome, GH receptor mutation)"
OPEN = "Epiphyses open."


def laron_icd10() -> tuple[Chart, Expectation]:
    c = Chart("demo-laron-icd10", "male", date(2019, 3, 14), "Mateo", "Alvarez", "MRN100231", "Tacoma")
    c.condition([E34_321], LARON_TEXT, onset=date(2023, 2, 14), recorded=date(2023, 2, 14),
                note="GHR gene: homozygous pathogenic variant.")
    c.growth(date(2022, 3, 21), date(2026, 11, 5), [(date(2022, 3, 21), -3.5), (date(2026, 11, 5), -3.75)], bmi=16.2)
    c.igf1_result(date(2026, 5, 12), 17, range_=(57, 316))
    c.gh_test(date(2026, 5, 19), "arginine", [("40302-2", 3.8, "ng/mL"), ("14146-5", 22.6, "ng/mL")])
    c.bone_age_study(date(2026, 6, 2), 5.5, "a", OPEN)
    c.allergy((SNOMED, "256349002"), "Peanut", "food", "high", date(2021, 9, 30), reaction="Hives and lip swelling")
    c.coverage("premera", "884213307", date(2026, 1, 1))
    c.mecasermin_order(status="draft", authored=TODAY, dose=0.8, dose_unit="mg", reason=[E34_321],
                       reason_text="Severe primary IGF-1 deficiency", bid_code=True, draft=True)
    return c, Expectation(
        "Qualifies: Laron syndrome coded in ICD-10-CM (E34.321); starting dose 0.04 mg/kg.",
        "All five initial criteria met: diagnosis E34.321, height SDS < -2.25, IGF-1 SDS <= -3 from the lab range, "
        "stimulated GH peak >= 10 ug/L, bone age < 15 years (male).",
        "none", "Premera Blue Cross")


def laron_snomed() -> tuple[Chart, Expectation]:
    c = Chart("demo-laron-snomed", "female", date(2021, 8, 2), "Amara", "Okonkwo", "MRN100874", "Spokane")
    c.condition([LARON_SCT], "Laron syndrome", onset=date(2024, 1, 22), recorded=date(2024, 1, 22))
    c.growth(date(2023, 9, 5), date(2026, 10, 28), [(date(2023, 9, 5), -4.0), (date(2026, 10, 28), -4.3)], bmi=15.8,
             steps=(3, 4, 5))
    c.igf1_result(date(2026, 7, 14), 2.4, unit="nmol/L", range_=(5.2, 26.9))
    c.gh_test(date(2026, 7, 21), "arginine", [("12253-1", 2.9, "ng/mL"), ("47760-4", 68, "mIU/L")])
    c.bone_age_study(date(2026, 8, 4), 36, "mo", OPEN)
    c.coverage("premera", "551907142", date(2025, 7, 1))
    c.mecasermin_order(status="draft", authored=TODAY, dose=0.06, dose_unit="mL", reason=[LARON_SCT],
                       reason_text="Laron syndrome", bid_code=False, draft=True)
    return c, Expectation(
        "Qualifies: Laron syndrome coded only in SNOMED CT (38196001); IGF-1 in nmol/L, GH in mIU/L, bone age in "
        "months, dose in mL with timing as frequency 2 per day.",
        "All five initial criteria met after unit conversion (IGF-1 nmol/L x 7.649; GH mIU/L / 3; bone age 36 months "
        "= 3 years).",
        "none", "Premera Blue Cross")


def no_bone_age() -> tuple[Chart, Expectation]:
    c = Chart("demo-no-bone-age", "male", date(2018, 6, 21), "Lucas", "Bergström", "MRN101562", "Everett",
              birthsex_extension=False)
    c.condition([E34_321], LARON_TEXT, onset=date(2025, 11, 3), recorded=date(2025, 11, 3))
    c.growth(date(2021, 7, 6), date(2026, 10, 15), [(date(2021, 7, 6), -3.3), (date(2026, 10, 15), -3.5)], bmi=15.6)
    c.igf1_result(date(2026, 8, 18), 24, range_=(64, 345))
    c.gh_test(date(2026, 8, 25), "clonidine", [("40298-2", 2.2, "ng/mL"), ("40301-4", 18.4, "ng/mL")])
    c.coverage("premera", "610338275", date(2024, 1, 1))
    c.mecasermin_order(status="draft", authored=TODAY, dose=0.9, dose_unit="mg", reason=[E34_321],
                       reason_text="Severe primary IGF-1 deficiency", bid_code=False, draft=True)
    return c, Expectation(
        "Documentation missing: no bone age on file.",
        "Diagnosis, height, IGF-1 and GH criteria met; the bone-age criterion is unknown (no bone age study).",
        "none", "Premera Blue Cross")


def igf1_no_range() -> tuple[Chart, Expectation]:
    c = Chart("demo-igf1-no-range", "female", date(2019, 11, 30), "Hana", "Kobayashi", "MRN101990", "Bellevue")
    c.condition([E34_321], LARON_TEXT, onset=date(2026, 9, 30), recorded=date(2026, 9, 30))
    c.growth(date(2022, 1, 10), date(2026, 10, 20), [(date(2022, 1, 10), -3.4), (date(2026, 10, 20), -3.6)], bmi=15.9)
    c.igf1_result(date(2026, 9, 9), 19)
    c.gh_test(date(2026, 9, 16), "arginine", [("40302-2", 2.6, "ng/mL"), ("14146-5", 16.9, "ng/mL")])
    c.bone_age_study(date(2026, 9, 30), 4.75, "a", OPEN)
    c.coverage("premera", "702245981", date(2026, 1, 1))
    c.mecasermin_order(status="draft", authored=TODAY, dose=0.7, dose_unit="mg", reason=[E34_321],
                       reason_text="Severe primary IGF-1 deficiency", bid_code=True, draft=True)
    return c, Expectation(
        "Documentation missing: IGF-1 reported without a reference range and with no IGF-1 z-score.",
        "The IGF-1 criterion is unknown: 19 ng/mL cannot be turned into an SDS without the laboratory's range. "
        "Every other criterion is met.",
        "none", "Premera Blue Cross")


def idiopathic_short_stature() -> tuple[Chart, Expectation]:
    c = Chart("demo-iss", "male", date(2018, 2, 9), "Owen", "Fitzgerald", "MRN102417", "Olympia")
    r62 = (ICD10CM, "R62.52", "Short stature (child)")
    c.condition([r62], "Idiopathic short stature", onset=date(2024, 4, 2), recorded=date(2024, 4, 2))
    c.growth(date(2021, 3, 1), date(2026, 10, 8), [(date(2021, 3, 1), -2.55), (date(2026, 10, 8), -2.65)], bmi=15.4,
             inches=True, pounds=True, steps=(6, 6, 4))
    c.igf1_result(date(2026, 7, 7), 118, range_=(64, 345))
    c.gh_test(date(2026, 7, 14), "arginine", [("40302-2", 1.9, "ng/mL"), ("14146-5", 14.2, "ng/mL")])
    c.bone_age_study(date(2026, 7, 28), 7.0, "a", OPEN)
    c.coverage("premera", "338190264", date(2023, 1, 1))
    c.mecasermin_order(status="draft", authored=TODAY, dose=1.0, dose_unit="mg", reason=[r62],
                       reason_text="Idiopathic short stature", bid_code=True, draft=True)
    return c, Expectation(
        "Idiopathic short stature: order reason 'Idiopathic short stature' (R62.52); heights in inches, weights "
        "in pounds.",
        "Not medically necessary under the policy (idiopathic short stature); IGF-1 is normal for age and R62.52 "
        "does not establish primary IGF-1 deficiency.",
        "none", "Premera Blue Cross")


def gh_deficiency() -> tuple[Chart, Expectation]:
    c = Chart("demo-gh-deficiency", "male", date(2019, 9, 3), "Noah", "Tran", "MRN102856", "Renton")
    e230 = (ICD10CM, "E23.0", "Hypopituitarism")
    c.condition([e230], "Isolated growth hormone deficiency", onset=date(2026, 6, 30), recorded=date(2026, 6, 30))
    c.growth(date(2022, 10, 3), date(2026, 10, 27), [(date(2022, 10, 3), -2.7), (date(2026, 10, 27), -3.1)], bmi=16.6)
    c.igf1_result(date(2026, 5, 26), 41, range_=(57, 316))
    c.gh_test(date(2026, 6, 2), "arginine", [("40302-2", 0.4, "ng/mL"), ("14146-5", 3.1, "ng/mL")])
    c.gh_test(date(2026, 6, 16), "clonidine", [("40298-2", 0.6, "ng/mL"), ("40301-4", 4.4, "ng/mL")])
    c.bone_age_study(date(2026, 6, 23), 5.0, "a", OPEN)
    c.mecasermin_order(status="draft", authored=TODAY, dose=0.8, dose_unit="mg", reason=[e230],
                       reason_text="Growth hormone deficiency", bid_code=True, draft=True)
    return c, Expectation(
        "Growth hormone deficiency (E23.0): a secondary IGF-1 deficiency; no coverage on file.",
        "Investigational use (secondary IGF-1 deficiency); both stimulation tests peak below 10 ug/L, so the GH "
        "criterion is not met either. With no Coverage the service's default policy (FDA label) applies and "
        "reaches the same answer.",
        "none", "no coverage (default policy)")


def turner() -> tuple[Chart, Expectation]:
    c = Chart("demo-turner", "female", date(2017, 4, 18), "Sophie", "Lindqvist", "MRN103344", "Vancouver")
    q969 = (ICD10CM, "Q96.9", "Turner's syndrome, unspecified")
    c.condition([q969, (SNOMED, "38804009", "Turner syndrome")], "Turner syndrome (45,X)",
                onset=date(2020, 8, 11), recorded=date(2020, 8, 11))
    c.growth(date(2020, 9, 1), date(2026, 10, 12), [(date(2020, 9, 1), -2.6), (date(2026, 10, 12), -3.1)], bmi=17.4,
             inches_before=date(2023, 1, 1))
    c.igf1_result(date(2026, 6, 9), 160, range_=(74, 388))
    c.gh_test(date(2026, 6, 16), "arginine", [("40302-2", 1.2, "ng/mL"), ("14146-5", 12.4, "ng/mL")])
    c.bone_age_study(date(2026, 6, 30), 8.5, "a", OPEN)
    c.allergy((SNOMED, "716186003"), "No known allergy", None, None, date(2020, 8, 11))
    c.coverage("premera", "917553206", date(2025, 1, 1))
    c.mecasermin_order(status="draft", authored=TODAY, dose=1.2, dose_unit="mg", reason=[q969],
                       reason_text="Turner syndrome", bid_code=True, draft=True)
    return c, Expectation(
        "Turner syndrome (Q96.9, a girl): growth failure with another identifiable cause; early heights in "
        "inches; a 'no known allergy' entry.",
        "Investigational use (growth failure due to Turner syndrome); the IGF-1 is normal for age and the diagnosis "
        "is not primary IGF-1 deficiency.",
        "none", "Premera Blue Cross")


def laron_aetna() -> tuple[Chart, Expectation]:
    c = Chart("demo-laron-aetna", "male", date(2018, 9, 24), "Rafael", "Moreno", "MRN106340", "Seattle")
    c.condition([E34_321, LARON_SCT], LARON_TEXT, onset=date(2025, 2, 11), recorded=date(2025, 2, 11))
    c.growth(date(2021, 10, 4), date(2026, 10, 29), [(date(2021, 10, 4), -3.6), (date(2026, 10, 29), -3.9)], bmi=16.1)
    c.igf1_result(date(2026, 6, 23), 21, range_=(64, 345))
    c.gh_test(date(2026, 6, 30), "arginine", [("40302-2", 3.4, "ng/mL"), ("14146-5", 24.1, "ng/mL")])
    c.bone_age_study(date(2026, 7, 14), 6.0, "a", OPEN)
    c.coverage("aetna", "640219875", date(2024, 1, 1))
    c.mecasermin_order(status="draft", authored=TODAY, dose=0.8, dose_unit="mg", reason=[E34_321],
                       reason_text="Severe primary IGF-1 deficiency", bid_code=True, draft=True)
    return c, Expectation(
        "Second payer: a child who meets the primary policy on every criterion, covered by Aetna (CPB 0711), "
        "whose current criteria text is not known.",
        "The Aetna height-for-age and IGF-1 thresholds are unknown, so those criteria are 'verify with the plan'; "
        "the service does not invent them.",
        "none", "Aetna")


def malignancy_history() -> tuple[Chart, Expectation]:
    c = Chart("demo-malignancy-history", "female", date(2018, 12, 5), "Isla", "MacLeod", "MRN103781", "Bellingham")
    c.condition([E34_321], LARON_TEXT, onset=date(2021, 10, 19), recorded=date(2021, 10, 19))
    c.condition([(ICD10CM, "C71.6", "Malignant neoplasm of cerebellum")], "Medulloblastoma",
                onset=date(2022, 3, 8), recorded=date(2022, 3, 8), status="resolved", abatement=date(2023, 6, 30),
                note="Resection and chemotherapy completed at 4 years of age; no evidence of disease on surveillance MRI.")
    c.condition([(ICD10CM, "Z85.841", "Personal history of malignant neoplasm of brain")],
                "History of medulloblastoma", onset=date(2023, 6, 30), recorded=date(2023, 7, 12))
    c.growth(date(2021, 11, 2), date(2026, 11, 3), [(date(2021, 11, 2), -3.3), (date(2026, 11, 3), -3.45)], bmi=15.7)
    c.igf1_result(date(2026, 4, 21), 22, range_=(57, 316))
    c.gh_test(date(2026, 4, 28), "arginine", [("40302-2", 4.1, "ng/mL"), ("14146-5", 25.8, "ng/mL")])
    c.bone_age_study(date(2026, 5, 12), 6.0, "a", OPEN)
    c.coverage("premera", "425761880", date(2022, 1, 1))
    c.mecasermin_order(status="draft", authored=TODAY, dose=0.8, dose_unit="mg", reason=[E34_321],
                       reason_text="Severe primary IGF-1 deficiency", bid_code=True, draft=True)
    return c, Expectation(
        "Contraindication: history of malignancy (resolved C71.6 medulloblastoma and Z85.841) in an otherwise "
        "qualifying child.",
        "The coverage criteria (which do not list contraindications) are met; the history of malignant neoplasia "
        "is a labeled contraindication, reported as a critical finding beside the coverage answer.",
        "Contraindication: history of malignant neoplasm (Condition C71.6 resolved; Z85.841).", "Premera Blue Cross")


def closed_epiphyses() -> tuple[Chart, Expectation]:
    c = Chart("demo-closed-epiphyses", "male", date(2011, 1, 27), "Diego", "Castillo", "MRN104205", "Yakima")
    c.condition([E34_321], LARON_TEXT, onset=date(2024, 3, 18), recorded=date(2024, 3, 18),
                note="Diagnosed after relocation; no previous treatment.")
    c.growth(date(2024, 2, 26), date(2026, 10, 19), [(date(2024, 2, 26), -4.5), (date(2026, 10, 19), -4.7)], bmi=19.5,
             steps=(6,))
    c.igf1_result(date(2024, 4, 2), 31, range_=(237, 996))
    c.gh_test(date(2024, 4, 9), "arginine", [("40302-2", 6.2, "ng/mL"), ("14146-5", 31.5, "ng/mL")])
    c.bone_age_study(date(2026, 9, 15), 16.5, "a",
                     "Epiphyses fused at the distal radius, distal ulna and phalanges; no remaining growth potential.")
    c.coverage("premera", "193664052", date(2024, 3, 1))
    c.mecasermin_order(status="draft", authored=TODAY, dose=3.6, dose_unit="mg", reason=[E34_321],
                       reason_text="Severe primary IGF-1 deficiency", bid_code=True, draft=True)
    return c, Expectation(
        "Contraindication: closed epiphyses (bone age report 'Epiphyses fused') in a 15-year-old.",
        "Bone age 16.5 years is not < 15 years (male), and closed epiphyses are a labeled contraindication.",
        "Contraindication: closed epiphyses (bone-age report text).", "Premera Blue Cross")


def overdose() -> tuple[Chart, Expectation]:
    c = Chart("demo-overdose", "male", date(2017, 10, 11), "Ethan", "Novak", "MRN104633", "Kent",
              birthsex_extension=False)
    c.condition([E34_321], LARON_TEXT, onset=date(2026, 4, 21), recorded=date(2026, 4, 21))
    c.growth(date(2020, 10, 19), date(2026, 11, 9), [(date(2020, 10, 19), -3.6), (date(2026, 11, 9), -3.8)], bmi=16.2)
    c.igf1_result(date(2026, 3, 31), 20, range_=(74, 388))
    c.gh_test(date(2026, 4, 7), "clonidine", [("40298-2", 3.0, "ng/mL"), ("40301-4", 21.0, "ng/mL")])
    c.bone_age_study(date(2026, 4, 14), 7.0, "a", OPEN)
    c.coverage("premera", "560072319", date(2021, 1, 1))
    c.mecasermin_order(status="draft", authored=TODAY, dose=4.0, dose_unit="mg", reason=[E34_321],
                       reason_text="Severe primary IGF-1 deficiency", bid_code=True, draft=True)
    return c, Expectation(
        "Overdosed order: 4 mg twice daily for a 20 kg child (0.2 mg/kg per dose).",
        "The coverage criteria are met; the dose is a safety problem, not a coverage criterion.",
        "Dose above the labeled maximum of 0.12 mg/kg twice daily (about 0.2 mg/kg per dose).", "Premera Blue Cross")


def reauth_good() -> tuple[Chart, Expectation]:
    c = Chart("demo-reauth-good", "male", date(2016, 5, 30), "Liam", "O'Connor", "MRN105118", "Redmond")
    start = date(2025, 11, 18)
    c.condition([E34_321], LARON_TEXT, onset=date(2025, 7, 15), recorded=date(2025, 7, 15))
    c.growth(date(2021, 6, 7), date(2026, 11, 2), [(date(2021, 6, 7), -3.8), (start, -3.9)], bmi=16.0,
             treatment=(start, 8.4), steps=(5, 4, 6, 3))
    c.igf1_result(date(2025, 9, 10), 16, range_=(88, 452))
    c.gh_test(date(2025, 9, 17), "arginine", [("40302-2", 5.1, "ng/mL"), ("14146-5", 27.4, "ng/mL")])
    c.bone_age_study(date(2025, 10, 1), 8.0, "a", OPEN)
    c.igf1_result(date(2026, 9, 22), 102, range_=(88, 452))
    c.bone_age_study(date(2026, 10, 6), 9.0, "a", OPEN)
    c.coverage("premera", "771420965", date(2022, 1, 1))
    c.mecasermin_order(status="completed", authored=start, dose=0.9, dose_unit="mg", reason=[E34_321],
                       reason_text="Severe primary IGF-1 deficiency", bid_code=True, draft=False)
    c.mecasermin_order(status="draft", authored=TODAY, dose=2.4, dose_unit="mg", reason=[E34_321],
                       reason_text="Severe primary IGF-1 deficiency", bid_code=True, draft=True)
    return c, Expectation(
        "Re-authorization with a good response: mecasermin since 2025-11-18 (completed order), growth velocity "
        "about 8 cm/year.",
        "Baseline (pre-treatment) height, IGF-1 and GH meet the initial criteria; growth velocity >= 2.5 cm/year "
        "and bone age <= 16 years (male).",
        "none", "Premera Blue Cross")


def reauth_poor() -> tuple[Chart, Expectation]:
    c = Chart("demo-reauth-poor", "female", date(2015, 7, 7), "Grace", "Whitaker", "MRN105562", "Tacoma")
    start = date(2025, 11, 12)
    c.condition([E34_321], LARON_TEXT, onset=date(2025, 8, 26), recorded=date(2025, 8, 26))
    c.growth(date(2020, 8, 3), date(2026, 10, 26), [(date(2020, 8, 3), -3.5), (start, -3.6)], bmi=17.0,
             treatment=(start, 1.6), inches_before=date(2024, 1, 1), steps=(4, 4, 5))
    c.igf1_result(date(2025, 9, 2), 26, range_=(111, 551))
    c.gh_test(date(2025, 9, 9), "arginine", [("40302-2", 2.3, "ng/mL"), ("14146-5", 15.8, "ng/mL")])
    c.bone_age_study(date(2025, 9, 23), 8.5, "a", OPEN)
    c.igf1_result(date(2026, 8, 11), 58, range_=(143, 693))
    c.bone_age_study(date(2026, 10, 13), 9.5, "a", OPEN)
    c.allergy((SNOMED, "372687004"), "Amoxicillin", "medication", "low", date(2019, 2, 14), reaction="Rash")
    c.coverage("premera", "302958817", date(2020, 1, 1))
    c.mecasermin_order(status="active", authored=start, dose=0.9, dose_unit="mg", reason=[E34_321],
                       reason_text="Severe primary IGF-1 deficiency", bid_code=True, draft=False)
    c.mecasermin_order(status="draft", authored=TODAY, dose=2.6, dose_unit="mg", reason=[E34_321],
                       reason_text="Severe primary IGF-1 deficiency", bid_code=True, draft=True)
    return c, Expectation(
        "Re-authorization with a poor response: mecasermin since 2025-11-12 (active order), growth velocity "
        "about 1.8 cm/year; heights before 2024 in inches.",
        "The re-authorization criterion growth velocity >= 2.5 cm/year is not met.",
        "none", "Premera Blue Cross")


def under_two() -> tuple[Chart, Expectation]:
    c = Chart("demo-under-2", "male", date(2025, 4, 10), "Elias", "Haddad", "MRN105990", "Pasco")
    c.condition([E34_321], LARON_TEXT, onset=date(2026, 3, 17), recorded=date(2026, 3, 17),
                note="GHR gene: compound heterozygous pathogenic variants.")
    c.growth(date(2025, 5, 12), date(2026, 10, 14), [(date(2025, 5, 12), -3.6), (date(2026, 10, 14), -4.4)], bmi=15.8,
             steps=(2, 2, 3, 3, 3))
    c.igf1_result(date(2026, 2, 24), 9, range_=(18, 156))
    c.gh_test(date(2026, 2, 24), "random sample", [("2963-7", 41.5, "ng/mL")])
    c.coverage("medicaid", "00418856WA", date(2025, 4, 10))
    c.mecasermin_order(status="draft", authored=TODAY, dose=0.4, dose_unit="mg", reason=[E34_321],
                       reason_text="Severe primary IGF-1 deficiency", bid_code=True, draft=True)
    return c, Expectation(
        "A child under 2 years (19 months) with Laron syndrome; Medicaid coverage.",
        "Mecasermin is not established under 2 years (benzyl alcohol preservative), outside the FDA-approved "
        "indication; no payer policy matches Medicaid, so the default policy (FDA label) applies.",
        "Contraindication: age under 2 years.", "Washington Apple Health (Medicaid), default policy")


PATIENTS = (laron_icd10, laron_snomed, no_bone_age, igf1_no_range, idiopathic_short_stature, gh_deficiency,
            turner, laron_aetna, malignancy_history, closed_epiphyses, overdose, reauth_good, reauth_poor, under_two)


# ---------------------------------------------------------------------------------------
# Output

def build() -> tuple[dict[str, dict], dict[str, Expectation], list[Chart]]:
    bundles, expectations, charts = {}, {}, []
    for make in PATIENTS:
        chart, expectation = make()
        chart.entries.insert(1, {"resource": PRACTITIONER,
                                 "request": {"method": "PUT", "url": f"Practitioner/{PRACTITIONER['id']}"}})
        bundles[chart.pid] = chart.bundle()
        expectations[chart.pid] = expectation
        charts.append(chart)
    return bundles, expectations, charts


def velocity(chart: Chart) -> float | None:
    """Growth velocity over the last year (docs/clinical-rules.md): latest height against the one nearest
    12 months earlier, at least 6 months apart."""
    latest_day, latest = chart.heights[-1]
    earlier = [(d, h) for d, h in chart.heights if (latest_day - d).days >= 182]
    if not earlier:
        return None
    day, height = min(earlier, key=lambda dh: abs((latest_day - dh[0]).days - 365))
    return (latest - height) / (latest_day - day).days * 365.25


def summary(chart: Chart) -> dict:
    """The chart's numbers, computed from the generated data with this script's days/365.25 ages;
    the service reads ages by the calendar, so a height SDS can differ in the second decimal:
    patients/README.md quotes the screening card's (a test checks each row against it)."""
    latest_day, latest_cm = chart.heights[-1]
    age = chart.age(latest_day)
    height_sds = sds_for_height(chart.sex, age, latest_cm) if age >= 2 else None
    weight_day, weight = chart.weights[-1]
    baseline = chart.igf1[0]
    igf1 = igf1_sds(baseline[1], baseline[2], baseline[3]) if baseline[2] else None
    return {
        "age": round(chart.age(TODAY), 2),
        "height_cm": round(latest_cm, 1),
        "height_sds": None if height_sds is None else round(height_sds, 2),
        "baseline_igf1_ng_ml": round(baseline[1], 1),
        "igf1_sds": None if igf1 is None else round(igf1, 2),
        "gh_peak_ug_l": None if chart.gh_peak is None else round(chart.gh_peak, 1),
        "bone_age_years": None if chart.bone_age is None else round(chart.bone_age[1], 2),
        "weight_kg": round(weight, 1),
        "weight_age_days": (TODAY - weight_day).days,
        "mg_per_kg": round(chart.dose_mg / weight, 3) if chart.dose_mg else None,
        "velocity_cm_y": None if velocity(chart) is None else round(velocity(chart), 2),
    }


def render(obj: dict) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def outputs() -> dict[Path, str]:
    bundles, _, _ = build()
    files = {OUT_DIR / f"{pid}.json": render(bundle) for pid, bundle in bundles.items()}
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed files are out of date")
    parser.add_argument("--summary", action="store_true", help="print each patient's computed measures")
    args = parser.parse_args(argv)
    files = outputs()
    if args.summary:
        _, expectations, charts = build()
        outcomes = json.loads((OUT_DIR / EXPECTED_FILE).read_text(encoding="utf-8"))
        for chart in charts:
            e = expectations[chart.pid]
            print(f"{chart.pid}: {outcomes[chart.pid]['determination']} under {e.payer}; critical: {e.critical}\n"
                  f"  path: {e.path}\n  why: {e.why}\n  numbers: {json.dumps(summary(chart))}")
        return 0
    stale = sorted(p.name for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text)
    known = set(files)
    extra = sorted(p.name for p in OUT_DIR.glob("*.json") if p not in known and p.name != EXPECTED_FILE)
    if args.check:
        for name in stale:
            print(f"out of date: {name}", file=sys.stderr)
        for name in extra:
            print(f"not built by this script: {name}", file=sys.stderr)
        return 1 if stale or extra else 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files to {OUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
