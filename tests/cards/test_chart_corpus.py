"""A corpus of messy charts, each sent through both hooks (order-select and order-sign) with full
prefetch via the Flask test client: odd units, height only as a z-score or percentile, GH panels as
components or DiagnosticReport results, comparators, entered-in-error and amended records,
contained Medications, banded reference ranges, bone ages only in report text, radiology text that
negates, hedges or asks, and partial dates. Each case asserts the determination (audit), the
coverage and safety indicators, the tests suggested, and where it matters the evidence shown."""
from __future__ import annotations

import base64
import copy
import json
import re
from dataclasses import dataclass
from typing import Callable

import pytest

from service.api.request_body import _parse_resent_prefetch
from service.app import create_app
from service.content_cache import request_json
from service.fhir.prefetch import templates
from service.record.growth import lms_at
from tests.conftest import CheckingClient
from tests.fixtures import fhir_bundle, order_select_request
from tests.policy.charts import LOINC, PATIENT_ID, PATIENT_REF, SNOMED, TODAY, UCUM, Chart, laron_boy

SERVICES = {"order-select": "/cds-services/mecasermin-order-select",
            "order-sign": "/cds-services/mecasermin-order-sign"}
PREFETCH_KEY = {"Condition": "conditions", "Observation": "observations", "MedicationRequest": "medications",
                "MedicationStatement": "medicationstatements", "MedicationDispense": "medicationdispenses",
                "MedicationAdministration": "medicationadministrations",
                "AllergyIntolerance": "allergies", "Coverage": "coverage", "Organization": "coverage",
                "DiagnosticReport": "reports"}
MEETS, DOCS, NOT_MET = "meets-criteria", "documentation-needed", "does-not-meet"


@dataclass
class Case:
    name: str
    chart: Callable[[], Chart]
    determination: str
    coverage: str = "info"               # indicator of the coverage card
    safety: str | None = None            # indicator of the contraindication card, if any
    tests: tuple[str, ...] = ()          # codes of the ServiceRequests the coverage card suggests (exactly)
    shows: tuple[str, ...] = ()          # text the cards must show (evidence, reasons)
    hides: tuple[str, ...] = ()          # text the cards must not show


# --- chart changes ----------------------------------------------------------------------------------

def obs(chart: Chart, obs_id: str) -> dict:
    return next(r for r in chart.resources if r["resourceType"] == "Observation" and r["id"] == obs_id)


def change(base: Callable[[], Chart] = laron_boy, *steps: Callable[[Chart], object]) -> Callable[[], Chart]:
    def build() -> Chart:
        chart = base()
        for step in steps:
            step(chart)
        return chart
    return build


def quantity(value, unit, code=None, comparator=None):
    q = {"value": value, "unit": unit, "system": UCUM, "code": code or unit}
    if comparator:
        q["comparator"] = comparator
    return q


def set_value(obs_id, **fields):
    def step(chart):
        resource = obs(chart, obs_id)
        resource.pop("valueQuantity", None)
        resource.update(fields)
    return step


def set_range(obs_id, *ranges):
    def step(chart):
        obs(chart, obs_id)["referenceRange"] = list(ranges)
    return step


def band(low, high, unit="ng/mL", sex=None, age=None, text=None):
    entry = {"low": quantity(low, unit), "high": quantity(high, unit)} if low is not None else {}
    if sex:
        entry["appliesTo"] = [{"coding": [{"system": "http://hl7.org/fhir/administrative-gender", "code": sex}],
                               "text": sex.title()}]
    if age:
        entry["age"] = {"low": quantity(age[0], "years", "a"), "high": quantity(age[1], "years", "a")}
    if text:
        entry["text"] = text
    return entry


def status(obs_id, value):
    def step(chart):
        obs(chart, obs_id)["status"] = value
    return step


def report(report_id="dr-xr", when="2024-12-12", conclusion=None, presented=None, content_type="text/plain",
           title="XR hand and wrist, bone age"):
    def step(chart):
        resource = {
            "resourceType": "DiagnosticReport", "id": report_id, "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD",
                                      "display": "Radiology"}]}],
            "code": {"coding": [{"system": LOINC, "code": "37362-1", "display": "XR Bone age study"}], "text": title},
            "subject": PATIENT_REF, "effectiveDateTime": when, "issued": f"{when}T10:05:00Z",
        }
        if conclusion is not None:
            resource["conclusion"] = conclusion
        if presented is not None:
            resource["presentedForm"] = [{"contentType": content_type, "language": "en-US", "title": title,
                                          "data": base64.b64encode(presented.encode("utf-8")).decode("ascii")}]
        chart.add(resource)
    return step


def drop(reference):
    return lambda chart: chart.drop(reference)


def birth(value):
    def step(chart):
        chart.resources[0]["birthDate"] = value
    return step


def gh_panel_as_components(chart):
    chart.drop("Observation/gh-arg-2024-12")
    chart.add({
        "resourceType": "Observation", "id": "gh-panel", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": "82942-3", "display": "Growth hormone stimulation panel"}],
                 "text": "GH stimulation (arginine)"},
        "subject": PATIENT_REF, "effectiveDateTime": "2024-12-10",
        "component": [
            {"code": {"coding": [{"system": LOINC, "code": "12253-1", "display": "Somatotropin baseline"}]},
             "valueQuantity": quantity(1.2, "ng/mL")},
            {"code": {"coding": [{"system": LOINC, "code": "2963-7", "display": "Somatotropin 30 min post arginine"}]},
             "valueQuantity": quantity(8.1, "ng/mL")},
            {"code": {"coding": [{"system": LOINC, "code": "47760-4", "display": "Somatotropin 60 min post arginine"}]},
             "valueQuantity": quantity(19.4, "ng/mL")},
        ]})


def gh_in_a_report(chart):
    chart.drop("Observation/gh-arg-2024-12")
    chart._obs("gh-0", "2024-12-10", "12253-1", "Somatotropin [Mass/volume] in Serum or Plasma --baseline",
               valueQuantity=quantity(0.9, "ng/mL"))
    chart._obs("gh-60", "2024-12-10", "2963-7", "Somatotropin --post arginine stimulation",
               valueQuantity=quantity(16.0, "ug/L"))
    chart.add({"resourceType": "DiagnosticReport", "id": "dr-gh", "status": "final",
               "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "CH"}]}],
               "code": {"text": "Arginine stimulation test"}, "subject": PATIENT_REF,
               "effectiveDateTime": "2024-12-10", "issued": "2024-12-11T09:00:00Z",
               "result": [{"reference": "Observation/gh-0"}, {"reference": "Observation/gh-60"}]})


def only_baseline_gh(chart):
    chart.drop("Observation/gh-arg-2024-12")
    chart._obs("gh-0", "2024-12-10", "12253-1", "Somatotropin [Mass/volume] in Serum or Plasma --baseline",
               valueQuantity=quantity(3.1, "ng/mL"))


def heights_replaced(*values):
    """Replace both heights by (id, date, quantity) triples."""
    def step(chart):
        chart.drop("Observation/ht-2024-01").drop("Observation/ht-2025-01")
        for obs_id, when, q in values:
            chart._obs(obs_id, when, "8302-2", "Body height", "vital-signs", valueQuantity=q)
    return step


def height_only_as(code_system, code, display, value, unit, unit_code):
    def step(chart):
        chart.drop("Observation/ht-2024-01").drop("Observation/ht-2025-01")
        resource = chart._obs("ht-score", "2025-01-15", "x", display, "vital-signs",
                              valueQuantity=quantity(value, unit, unit_code))
        resource["code"] = {"coding": [{"system": code_system, "code": code, "display": display}], "text": display}
    return step


def height_at_sds(z, age_years, sex="male"):
    power, median, cv = lms_at(sex, age_years * 12)
    return round(median * (1 + power * cv * z) ** (1 / power), 1)


def contained_medication_order(chart):
    order = chart.order
    del order["medicationCodeableConcept"]
    order["contained"] = [{"resourceType": "Medication", "id": "med-increlex",
                           "code": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "15054104005",
                                                "display": "Increlex 40 MG in 4 ML Injection"}]}}]
    order["medicationReference"] = {"reference": "#med-increlex"}


def add_condition(*args, **kwargs):
    return lambda chart: chart.condition(*args, **kwargs)


def somatropin(chart):
    chart.medication("mr-gh", "somatropin 5 MG/1.5 ML Cartridge [Norditropin]", authored="2025-02-01")


# Height 99.8 cm on 2025-01-15 is SDS about -3.1 for this boy; the limit is < -2.25.
BORDERLINE = height_at_sds(-2.25, 6.32)

CASES = [
    Case("reference chart", laron_boy, MEETS),
    # --- units and shapes of measurements --------------------------------------------------------
    Case("heights in inches", change(laron_boy, heights_replaced(
        ("h1", "2024-01-10", quantity(37.4, "in", "[in_i]")), ("h2", "2025-01-15", quantity(39.29, "in", "[in_i]")))),
        MEETS, shows=("39.29",)),
    Case("height in metres", change(laron_boy, heights_replaced(("h2", "2025-01-15", quantity(0.998, "m"))),
                                    ), MEETS),
    Case("height in millimetres", change(laron_boy, heights_replaced(("h2", "2025-01-15", quantity(998, "mm")))), MEETS),
    Case("height in an unknown unit", change(laron_boy, heights_replaced(("h2", "2025-01-15", quantity(9.8, "hands", "hands")))),
         DOCS, "warning", tests=("8302-2",), shows=("hands",)),
    Case("height only as a z-score", change(laron_boy, height_only_as(
        SNOMED, "1153604005", "Height-for-age z-score", -3.1, "SD", "{SD}")), MEETS),
    Case("height only as a percentile", change(laron_boy, height_only_as(
        LOINC, "8303-0", "Body height Percentile", 0.1, "%", "%")), MEETS),
    Case("height percentile at the 5th centile", change(laron_boy, height_only_as(
        LOINC, "8303-0", "Body height Percentile", 5, "%", "%")), NOT_MET, "warning"),
    Case("height entered in error is ignored", change(laron_boy, lambda c: c.height("ht-eie", "2025-02-01", 12.0),
                                                      status("ht-eie", "entered-in-error")), MEETS),
    Case("amended height is used", change(laron_boy, status("ht-2025-01", "amended")), MEETS),
    Case("weight in pounds", change(laron_boy, drop("Observation/wt-2025-02"), lambda c: c._obs(
        "wt-lb", "2025-02-20", "29463-7", "Body weight", "vital-signs", valueQuantity=quantity(34.4, "lb", "[lb_av]"))),
        MEETS),
    Case("weight in grams", change(laron_boy, drop("Observation/wt-2025-02"), lambda c: c._obs(
        "wt-g", "2025-02-20", "29463-7", "Body weight", "vital-signs", valueQuantity=quantity(15600, "g"))), MEETS),
    # --- IGF-1: units, comparators, reference ranges ---------------------------------------------
    Case("IGF-1 in nmol/L with its range in nmol/L", change(laron_boy, set_value(
        "igf1-2024-12", valueQuantity=quantity(2.353, "nmol/L")), set_range("igf1-2024-12", band(5.1, 24.97, "nmol/L"))),
        MEETS),
    Case("IGF-1 below the reporting limit (<25) decides", change(laron_boy, set_value(
        "igf1-2024-12", valueQuantity=quantity(25, "ng/mL", comparator="<"))), MEETS),
    Case("IGF-1 below a high reporting limit (<50) cannot decide", change(laron_boy, set_value(
        "igf1-2024-12", valueQuantity=quantity(50, "ng/mL", comparator="<"))), DOCS, "warning", tests=("2484-4",),
        shows=("< 50 ng/mL (SDS \u22121.37)",)),
    Case("IGF-1 as a text value with unit", change(laron_boy, set_value("igf1-2024-12", valueString="18 ng/mL")), MEETS),
    Case("IGF-1 z-score only", change(laron_boy, drop("Observation/igf1-2024-12"),
                                      lambda c: c.igf1_z("igf1-z", "2024-12-10", -3.6)), MEETS),
    Case("banded ranges: a boy is judged by the boys' band", change(laron_boy, set_value(
        "igf1-2024-12", valueQuantity=quantity(35, "ng/mL")), set_range(
        "igf1-2024-12", band(100, 400, sex="female", age=(6, 7)), band(39, 191, sex="male", age=(6, 7)))),
        NOT_MET, "warning"),
    Case("banded ranges: the right band meets the limit", change(laron_boy, set_range(
        "igf1-2024-12", band(100, 400, sex="female", age=(6, 7)), band(39, 191, sex="male", age=(6, 7)),
        band(60, 290, sex="male", age=(8, 9)))), MEETS),
    Case("banded ranges: no band for the patient's age", change(laron_boy, set_range(
        "igf1-2024-12", band(60, 290, sex="male", age=(8, 9)), band(80, 350, sex="male", age=(10, 11)))),
        DOCS, "warning", tests=("2484-4",), shows=("no reference range of the result applies to a male aged 6.2 y",)),
    Case("range given only as text", change(laron_boy, set_range("igf1-2024-12", {"text": "39 - 191 ng/mL"})), MEETS),
    Case("range text that is not a range", change(laron_boy, set_range(
        "igf1-2024-12", {"text": "see laboratory reference table"})), DOCS, "warning", tests=("2484-4",),
        shows=("reference range text is not one range: 'see laboratory reference table'",)),
    Case("range in another unit than the value is converted", change(laron_boy, set_value(
        "igf1-2024-12", valueQuantity=quantity(2.353, "nmol/L"))), MEETS),
    # --- GH -------------------------------------------------------------------------------------
    Case("GH panel as components", change(laron_boy, gh_panel_as_components), MEETS, shows=("19.4",)),
    Case("GH results of a DiagnosticReport", change(laron_boy, gh_in_a_report), MEETS, shows=("16",)),
    Case("GH in mIU/L", change(laron_boy, set_value("gh-arg-2024-12", valueQuantity=quantity(73.5, "mIU/L", "m[IU]/L"))),
         MEETS),
    Case("only a baseline GH", change(laron_boy, only_baseline_gh), DOCS, "warning", tests=("80428",)),
    Case("GH entered in error", change(laron_boy, status("gh-arg-2024-12", "entered-in-error")), DOCS, "warning",
         tests=("80428",)),
    # --- bone age -------------------------------------------------------------------------------
    Case("bone age only in a report conclusion", change(laron_boy, drop("Observation/ba-2024-12"), report(
        conclusion="Bone age 4 years 6 months (Greulich & Pyle). Chronological age 6 years 3 months.")),
        MEETS, shows=("4.5 y on 2024-12-12", "\u201cBone age 4 years 6 months (Greulich & Pyle)\u201d")),
    Case("bone age only in presentedForm text", change(laron_boy, drop("Observation/ba-2024-12"), report(
        presented="EXAM: XR LEFT HAND BONE AGE\nFINDINGS: Bone age: 54 months by Greulich and Pyle.\n"
                  "Chronological age: 75 months.\nIMPRESSION: Delayed bone age. Growth plates open.")),
        MEETS),
    Case("report bone age of 16 years in a boy", change(laron_boy, drop("Observation/ba-2024-12"), report(
        conclusion="Bone age 16 years (Greulich and Pyle). Chronological age 6 years 3 months.")), NOT_MET, "warning"),
    Case("bone age as a text duration", change(laron_boy, set_value("ba-2024-12", valueString="4 y 6 m")), MEETS),
    Case("bone age text that is not a duration", change(laron_boy, set_value("ba-2024-12", valueString="delayed")),
         DOCS, "warning", tests=("85151-9",), shows=("delayed",)),
    Case("report that only gives the chronological age", change(laron_boy, drop("Observation/ba-2024-12"), report(
        conclusion="Chronological age 6 years 3 months. Bone age is delayed.")), DOCS, "warning", tests=("85151-9",)),
    # --- growth plates in text ------------------------------------------------------------------
    Case("closed: a qualifier between subject and verb", change(laron_boy, report(
        conclusion="The growth plates of the distal radius and ulna have closed.")), MEETS, safety="critical",
         shows=("distal radius and ulna have closed",)),
    Case("closed: only in presentedForm HTML", change(laron_boy, report(
        presented="<html><body><h3>Impression</h3><p>Epiphyses are <b>fused</b>.</p></body></html>",
        content_type="text/html")), MEETS, safety="critical"),
    Case("negated list is not closure", change(laron_boy, report(
        conclusion="No evidence of epiphyseal fusion or physeal closure.")), MEETS),
    Case("'not seen' is not closure", change(laron_boy, report(conclusion="Fused epiphyses are not seen.")), MEETS),
    Case("'negative for' is not closure", change(laron_boy, report(conclusion="Negative for physeal closure.")), MEETS),
    Case("a title asking about closure is not closure", change(laron_boy, report(
        conclusion="Physes are open.", title="XR hand - evaluate for physeal closure")), MEETS),
    Case("rule out in the reason for exam", change(laron_boy, report(
        presented="Reason for exam: rule out closed epiphyses.\nFindings: bone age 4 years 6 months.\n"
                  "Impression: open growth plates.")), MEETS),
    Case("a report saying both open and closed warns", change(laron_boy, report(
        conclusion="The physes are open. The epiphyses of the distal phalanges are fused.")), MEETS, safety="warning"),
    Case("a hedged closure warns", change(laron_boy, report(conclusion="Physeal closure cannot be excluded.")),
         MEETS, safety="warning"),
    Case("refuted closed-epiphyses condition is ignored", change(laron_boy, add_condition(
        "cond-epi", "snomed", "448155007", "Closed epiphyses", text="Closed epiphyses", verification="refuted")), MEETS),
    Case("cancelled report is ignored", change(laron_boy, report(conclusion="Epiphyses fused."),
                                                lambda c: c.resources[-1].update(status="cancelled")), MEETS),
    # --- partial dates --------------------------------------------------------------------------
    Case("year-month birth date", change(laron_boy, birth("2018-09")), MEETS),
    Case("year-only birth date far from every limit", change(laron_boy, birth("2018")), MEETS),
    Case("year-only birth date with a height on the limit", change(
        laron_boy, birth("2018"), heights_replaced(("h2", "2025-01-15", quantity(BORDERLINE, "cm")))),
        DOCS, "warning", shows=("birth date is known only from 2018-01-01 to 2018-12-31",)),
    Case("height dated to the month", change(laron_boy, lambda c: obs(c, "ht-2025-01").update(
        effectiveDateTime="2025-01"), lambda c: obs(c, "ht-2025-01").pop("issued")), MEETS,
        shows=("2025-01-01 to 2025-01-31 (partial date)",)),
    Case("birth month that may be under two years", change(
        lambda: Chart(birth_date="2023-03", sex="male"), lambda c: c.condition(
            "cond-laron", "icd10", "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency"),
        lambda c: c.weight("wt", "2025-02-20", 9.8), lambda c: c.coverage(), lambda c: c.draft_order(0.5)),
        DOCS, "warning", safety="warning", tests=("2484-4", "80428", "85151-9", "8302-2"), shows=("2023-03",)),
    # --- orders and medications -----------------------------------------------------------------
    Case("draft order naming a contained Medication", change(laron_boy, contained_medication_order), MEETS),
    Case("somatropin alongside is combination with GH", change(laron_boy, somatropin), NOT_MET, "warning",
         safety="warning"),
]


@pytest.fixture
def corpus_client(settings):
    return CheckingClient(create_app(settings, today=lambda: TODAY).test_client())


def request_body(chart: Chart, hook: str) -> dict:
    prefetch = {key: fhir_bundle([]) for key in templates()}   # every key the service asks for, answered
    for resource in chart.resources:
        if resource["resourceType"] == "Patient":
            prefetch["patient"] = resource
        else:
            prefetch[PREFETCH_KEY[resource["resourceType"]]]["entry"] += fhir_bundle([resource])["entry"]
    for bundle in prefetch.values():
        if bundle.get("resourceType") == "Bundle":
            bundle["total"] = len(bundle["entry"])
    body = order_select_request(prefetch=prefetch, order=copy.deepcopy(chart.order), hook=hook)
    body["context"]["patientId"] = PATIENT_ID
    return body


def card_of(cards, topic):
    found = [c for c in cards if c["source"]["topic"]["code"] == topic]
    assert len(found) <= 1
    return found[0] if found else None


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40 and len({c.name for c in CASES}) == len(CASES)


def as_read(markdown: str) -> str:
    """The text as a clinician reads it: chart text arrives escaped for CommonMark (cards/markdown.py)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace("\u2060", "")


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_corpus_chart(corpus_client, store, case, hook):
    response = corpus_client.post(SERVICES[hook], json=request_body(case.chart(), hook))
    assert response.status_code == 200, response.get_json()
    cards = response.get_json()["cards"]
    (row,) = store.query("SELECT determination FROM audit")
    coverage_card = card_of(cards, "coverage-info")
    safety = card_of(cards, "contraindication")
    suggested = {coding["code"] for s in coverage_card.get("suggestions", []) for a in s["actions"]
                 if "resource" in a and a["resource"]["resourceType"] == "ServiceRequest"
                 for coding in a["resource"]["code"]["coding"][:1]}
    seen = as_read(" ".join(c["summary"] + " " + c.get("detail", "") for c in cards))
    assert (row[0], coverage_card["indicator"], safety["indicator"] if safety else None) == (
        case.determination, case.coverage, case.safety), seen
    assert suggested == set(case.tests), seen
    for text in case.shows:
        assert text in seen, (text, seen)
    for text in case.hides:
        assert text not in seen, (text, seen)


def _without_ids(value):
    """An answer with the ids each call draws afresh (card uuids, coverage-assertion-ids, the ids of
    suggested resources such as "sr-…") taken out."""
    text = json.dumps(value, sort_keys=True)
    return re.sub(r'"([a-z]+-)?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}"|"[a-z]+-[0-9a-f]{12}"',
                  '"<id>"', text)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_resent_chart_is_answered_alike_and_left_as_it_was_sent(corpus_client, settings, case):
    """A resent prefetch is parsed once and shared by every call that sends its text
    (service/api/request_body.py): no step of an answer may change it, or the next call would read
    another chart. Each corpus chart, sent three times through both hooks, gets the same answer each
    time, and the prefetch kept for its text is still what its text says."""
    for hook in SERVICES:
        body = request_body(case.chart(), hook)
        prefetch = body.pop("prefetch")
        raw = json.dumps({**body, "prefetch": prefetch}).encode()      # the prefetch last, as CDS clients write it
        answers = []
        for _ in range(3):
            response = corpus_client.post(SERVICES[hook], data=raw, content_type="application/json")
            assert response.status_code == 200, response.get_json()
            answers.append(_without_ids(response.get_json()))
        assert answers[0] == answers[1] == answers[2]
        kept = _parse_resent_prefetch(raw, settings.max_json_depth)["prefetch"]
        assert request_json.key_of(kept) is not None
        assert kept == json.loads(raw)["prefetch"]
