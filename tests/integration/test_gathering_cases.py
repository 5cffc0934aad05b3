"""Everything the decision needs is gathered, however the chart is shaped and however it reaches us.

Each case is a chart on the demo FHIR server (node, real FHIR search) and goes through both order
hooks in three modes:

- prefetch: the test plays the EHR and fulfils the discovery document's templates *as they are*
  against the FHIR server, then calls with that prefetch (and `fhirServer`, as EHRs send it);
- fetch: no prefetch, the service fetches every key from the FHIR server;
- proxy: fetch mode through a proxy that collapses `//` in URLs, as smart-launcher-v2 does.

All three must give the case's determination, card indicators and suggestions — and the same ones.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

import pytest
import requests

from tests.fixtures import (bone_age_observation, condition, coverage, gh_observation, height_observation,
                            igf1_observation, mecasermin_order, patient_resource, weight_observation)
from tests.integration.collapsing_proxy import CollapsingProxy
from tests.integration.conftest import FhirServerProcess

pytestmark = pytest.mark.integration

SERVICES = {"order-select": "/cds-services/mecasermin-order-select",
            "order-sign": "/cds-services/mecasermin-order-sign"}
TOKEN = {"access_token": "opaque-token-123", "token_type": "Bearer", "expires_in": 300,
         "scope": "patient/*.read", "subject": "mecasermin-cds"}
NDC_OID = "urn:oid:2.16.840.1.113883.6.69"
LOINC_OID = "urn:oid:2.16.840.1.113883.6.1"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def concept(text, system=None, code=None):
    return {"coding": [{"system": system, "code": code, "display": text}], "text": text} if system else {"text": text}


INCRELEX = concept("mecasermin 10 MG/ML Injectable Solution [Increlex]", "http://hl7.org/fhir/sid/ndc", "15054-1040-05")
GENOTROPIN = concept("somatropin 5 MG/1.5 ML Cartridge [Genotropin]", RXNORM, "1363247")
INSULIN = concept("insulin glargine 100 UNT/ML Pen Injector [Lantus]", RXNORM, "847232")
PREDNISOLONE = concept("prednisolone 15 MG/5 ML Oral Solution", RXNORM, "312617")
ORAL = {"route": {"coding": [{"system": SNOMED, "code": "26643006", "display": "Oral route"}]}}


def laron_chart(heights=(100.4, 98.2, 96.1)) -> list[dict]:
    """The Laron syndrome boy of tests/fixtures, who meets the primary plan's initial criteria."""
    return [
        patient_resource(),
        condition("c1", "E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency"),
        height_observation("h3", "2026-10-20", heights[0]),
        height_observation("h2", "2026-04-18", heights[1]),
        height_observation("h1", "2025-10-15", heights[2]),
        weight_observation("w1", "2026-10-20", 15.2),
        igf1_observation("igf1", "2026-09-02", 18.0),
        gh_observation("gh1", "2026-08-12", 14.2, code="14146-5"),
        gh_observation("gh2", "2026-08-12", 21.5, code="2963-7"),
        bone_age_observation("ba1", "2026-08-20", 4.5),
        coverage(),
    ]


# On mecasermin for 18 months but growing 0.9 cm/year: a failing re-authorization.
POOR_GROWTH = (100.0, 99.6, 99.1)


def statement(sid, medication, status, start, end=None, **extra):
    period = {"start": start, **({"end": end} if end else {})}
    return {"resourceType": "MedicationStatement", "id": sid, "status": status, "medicationCodeableConcept": medication,
            "subject": {"reference": "Patient/p1"}, "effectivePeriod": period, **extra}


def dispense(did, medication, status, handed_over, days):
    return {"resourceType": "MedicationDispense", "id": did, "status": status, "medicationCodeableConcept": medication,
            "subject": {"reference": "Patient/p1"}, "whenHandedOver": handed_over,
            "quantity": {"value": 4, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL"},
            "daysSupply": {"value": days, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}}


def administration(aid, medication, status, when, **extra):
    return {"resourceType": "MedicationAdministration", "id": aid, "status": status,
            "medicationCodeableConcept": medication, "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": when, **extra}


def by_reference(resource, medication="Medication/incr"):
    del resource["medicationCodeableConcept"]
    resource["medicationReference"] = {"reference": medication}
    return resource


def somatropin_draft():
    return {"resourceType": "MedicationRequest", "id": "mr-gh", "status": "draft", "intent": "order",
            "medicationCodeableConcept": GENOTROPIN, "subject": {"reference": "Patient/p1"},
            "authoredOn": "2026-11-21"}


def lab_report(n):
    return {"resourceType": "DiagnosticReport", "id": f"lab-{n}", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "24323-8", "display": "Comprehensive metabolic panel"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": f"2026-11-{n:02d}",
            "conclusion": "Within normal limits."}


def bone_age_xray():
    return {"resourceType": "DiagnosticReport", "id": "dr-ba", "status": "final",
            "category": [{"coding": [{"system": "http://loinc.org", "code": "LP29684-5", "display": "Radiology"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "37362-1", "display": "XR Bone age study"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-10-02",
            "conclusion": "The epiphyses are fused."}


def imaging_result_under_a_local_code():
    return {"resourceType": "Observation", "id": "xr-local", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "imaging"}]}],
            "code": {"coding": [{"system": "urn:oid:1.2.840.114350.1.13.1.1.7.2.768282", "code": "XR-HAND-BA"}],
                     "text": "XR hand for bone age"},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-10-02",
            "valueString": "Impression: the epiphyses are fused."}


def oid_coded(resource):
    resource["code"]["coding"][0]["system"] = LOINC_OID
    return resource


def order_by_ndc_oid():
    order = mecasermin_order()
    order["medicationCodeableConcept"] = {"coding": [{"system": NDC_OID, "code": "15054104005"}]}
    return order


def order_by_reference():
    order = mecasermin_order()
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": "Medication/incr"}
    return order


INCRELEX_MEDICATION = {"resourceType": "Medication", "id": "incr",
                       "code": {"coding": [{"system": NDC_OID, "code": "15054-1040-05"}]}}


def incomplete_conditions(prefetch, base, patient):
    """The EHR's Condition prefetch stops after page 1 of 2: the leukaemia history is on page 2."""
    bundle = prefetch["conditions"]
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["code"]["coding"][0]["code"] != "Z85.6"]
    bundle["total"] = len(bundle["entry"]) + 1
    bundle["link"] = [{"relation": "next", "url": f"{base}/Condition?patient={patient}&_count=100&_offset=2"}]


@dataclass
class Case:
    name: str
    determination: str
    coverage: str                           # indicator of the coverage card
    safety: str | None = None               # indicator of the safety card (None: no card)
    chart: list = field(default_factory=laron_chart)
    order: dict = field(default_factory=mecasermin_order)
    drafts: tuple = ()                      # the session's other draft orders
    policy: str = "premera-mecasermin"
    in_detail: tuple = ()                   # words the cards' details must contain
    in_sign_detail: tuple = ()              # … on order-sign only (the monitoring card lists interactions)
    prefetch_change: Callable | None = None


CASES = [
    Case("mecasermin history as a MedicationStatement is a re-authorization", "does-not-meet", "warning",
         chart=laron_chart(POOR_GROWTH) + [statement("ms-1", INCRELEX, "active", "2025-05-02")],
         in_detail=("renewal",)),
    Case("mecasermin history as a MedicationDispense is a re-authorization", "does-not-meet", "warning",
         chart=laron_chart(POOR_GROWTH) + [dispense("md-1", INCRELEX, "completed", "2025-05-02", 30)],
         in_detail=("renewal",)),
    Case("mecasermin history as a MedicationAdministration is a re-authorization", "does-not-meet", "warning",
         chart=laron_chart(POOR_GROWTH) + [administration("ma-1", INCRELEX, "completed", "2025-05-02T08:00:00Z")],
         in_detail=("renewal",)),
    Case("mecasermin history naming its Medication by reference", "does-not-meet", "warning",
         chart=laron_chart(POOR_GROWTH) + [
             by_reference(statement("ms-ref", INCRELEX, "completed", "2025-05-02", "2026-11-01")),
             INCRELEX_MEDICATION],
         in_detail=("renewal",)),
    Case("a mecasermin statement entered in error is no history", "meets-criteria", "info",
         chart=laron_chart(POOR_GROWTH) + [statement("ms-1", INCRELEX, "entered-in-error", "2025-05-02")]),
    Case("somatropin as a MedicationStatement is combination with GH", "does-not-meet", "warning", safety="warning",
         chart=laron_chart() + [statement("ms-gh", GENOTROPIN, "active", "2026-01-10")],
         in_detail=("Genotropin",)),
    Case("a somatropin draft in the same session is combination with GH", "does-not-meet", "warning",
         safety="warning", drafts=(somatropin_draft(),), in_detail=("Genotropin",)),
    Case("insulin as a MedicationStatement is an interaction", "meets-criteria", "info",
         chart=laron_chart() + [statement("ms-ins", INSULIN, "active", "2026-06-01")],
         in_sign_detail=("Antidiabetic treatment on file", "Lantus")),
    # 120 days' supply handed over in August: long-term pharmacologic therapy, still current.
    Case("systemic steroid dispensed for months is a secondary cause", "documentation-needed", "warning",
         chart=laron_chart() + [dispense("md-st", {**PREDNISOLONE}, "completed", "2026-08-15", 120)],
         in_detail=("prednisolone",)),
    # A 30-day course is not chronic corticosteroid therapy (docs/clinical-rules.md).
    Case("a month's steroid dispense is not a secondary cause", "meets-criteria", "info",
         chart=laron_chart() + [dispense("md-st", {**PREDNISOLONE}, "completed", "2026-11-10", 30)]),
    Case("leukaemia history on page 2 of the Condition search", "meets-criteria", "info", safety="critical",
         chart=laron_chart() + [condition("c3", "Z85.6", "Personal history of leukemia", status="resolved")],
         prefetch_change=incomplete_conditions),
    Case("bone-age report behind twenty newer lab reports", "meets-criteria", "info", safety="critical",
         chart=laron_chart() + [bone_age_xray()] + [lab_report(n) for n in range(1, 21)]),
    Case("imaging result under a local code", "meets-criteria", "info", safety="critical",
         chart=laron_chart() + [imaging_result_under_a_local_code()]),
    Case("order coded only by an NDC OID", "meets-criteria", "info", order=order_by_ndc_oid()),
    Case("IGF-1 and GH coded with the LOINC OID", "meets-criteria", "info",
         chart=[oid_coded(r) if r["id"] in ("igf1", "gh1", "gh2") else r for r in laron_chart()]),
    Case("order naming Medication/{id}", "meets-criteria", "info", order=order_by_reference(),
         chart=laron_chart() + [INCRELEX_MEDICATION]),
    Case("payor Organization without a display", "meets-criteria", "info",
         chart=[r for r in laron_chart() if r["resourceType"] != "Coverage"] + [
             {**coverage(), "payor": [{"reference": "Organization/premera"}]},
             {"resourceType": "Organization", "id": "premera", "name": "Premera Blue Cross"}]),
]


def for_patient(value, pid: str):
    """A chart's resources renamed for patient `pid` (ids and references), so every case lives on
    one FHIR server: "h1" → "pid-h1", "Patient/p1" → "Patient/pid"."""
    text = json.dumps(value)
    data = json.loads(text)

    def walk(item):
        if isinstance(item, dict):
            if isinstance(item.get("resourceType"), str) and isinstance(item.get("id"), str):
                item["id"] = pid if item["resourceType"] == "Patient" else f"{pid}-{item['id']}"
            ref = item.get("reference")
            if isinstance(ref, str) and "/" in ref and not ref.startswith("#"):
                rtype, rid = ref.split("/", 1)
                item["reference"] = f"Patient/{pid}" if rtype == "Patient" else f"{rtype}/{pid}-{rid}"
            for child in item.values():
                walk(child)
        elif isinstance(item, list):
            for child in item:
                walk(child)

    walk(data)
    return data


def case_id(case: Case) -> str:
    return "g" + str(CASES.index(case))


@pytest.fixture(scope="module")
def fhir_base():
    server = FhirServerProcess(data=[])
    session = requests.Session()
    try:
        for case in CASES:
            for resource in for_patient(case.chart, case_id(case)):
                url = f"{server.base_url}/{resource['resourceType']}/{resource['id']}"
                answer = session.put(url, json=resource, headers={"Content-Type": "application/fhir+json"})
                assert answer.status_code in (200, 201), (case.name, resource["id"], answer.text[:500])
        yield server.base_url
    finally:
        server.stop()
        server.stderr.close()


@pytest.fixture(scope="module")
def proxy(fhir_base):
    running = CollapsingProxy(fhir_base)
    yield running
    running.close()


USER = "dr-7"      # the hook's user, who orders (no Practitioner resource is on the cases' server)


def ehr_prefetch(client, hook: str, base: str, patient: str) -> dict:
    """What an EHR sends for the discovery templates, each sent to its FHIR server unchanged."""
    service = next(s for s in client.get("/cds-services").get_json()["services"] if s["hook"] == hook
                   and s["id"].startswith("mecasermin-order"))
    prefetch = {}
    for key, template in service["prefetch"].items():
        query = template.replace("{{context.patientId}}", patient).replace(
            "{{context.userId}}", f"Practitioner/{USER}").replace("{{userPractitionerId}}", USER)
        answer = requests.get(f"{base}/{query}", headers={"Accept": "application/fhir+json"}, timeout=10)
        if answer.status_code == 404 and "?" not in query:
            prefetch[key] = None            # a read with no data is null (the cases hold no Practitioner)
            continue
        assert answer.status_code == 200, (key, answer.text[:300])
        prefetch[key] = answer.json()
    return prefetch


def hook_request(case: Case, hook: str, mode: str, client, fhir_base: str, proxy_base: str) -> dict:
    pid = case_id(case)
    order = for_patient(case.order, pid)
    drafts = [order] + [for_patient(d, pid) for d in case.drafts]
    body = {"hookInstance": f"{pid}-{hook}-{mode}", "hook": hook,
            "context": {"userId": f"Practitioner/{USER}", "patientId": pid, "encounterId": "enc-1",
                        "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                        "entry": [{"resource": d} for d in drafts]}},
            "fhirServer": proxy_base if mode == "proxy" else fhir_base, "fhirAuthorization": TOKEN}
    if hook == "order-select":
        body["context"]["selections"] = [f"MedicationRequest/{order['id']}"]
    if mode == "prefetch":
        body["prefetch"] = ehr_prefetch(client, hook, fhir_base, pid)
        if case.prefetch_change:
            case.prefetch_change(body["prefetch"], fhir_base, pid)
    return body


def card_of(cards, topic):
    found = [c for c in cards if c["source"]["topic"]["code"] == topic]
    assert len(found) <= 1
    return found[0] if found else None


def outcome(result: dict, store, hook_instance: str) -> dict:
    cards = result["cards"]
    (row,) = store.query("SELECT determination, policy FROM audit WHERE hook_instance = ?", (hook_instance,))
    return {
        "determination": row[0], "policy": row[1],
        "indicators": {c["source"]["topic"]["code"]: c["indicator"] for c in cards},
        "suggestions": sorted(s["label"] for c in cards for s in c.get("suggestions", [])),
        "covered": [p.get("valueCode") for a in result.get("systemActions", []) for e in a["resource"]["extension"]
                    for p in e["extension"] if p["url"] == "covered"],
    }


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_in_every_mode(case, hook, client, store, fhir_base, proxy):
    seen = {}
    for mode in ("prefetch", "fetch", "proxy"):
        body = hook_request(case, hook, mode, client, fhir_base, proxy.base)
        response = client.post(SERVICES[hook], json=body)
        assert response.status_code == 200, (mode, response.get_json())
        result = response.get_json()
        got = outcome(result, store, body["hookInstance"])
        assert got["determination"] == case.determination, (mode, got, _details(result))
        assert got["policy"] == case.policy, mode
        assert got["indicators"].get("coverage-info") == case.coverage, (mode, got)
        assert got["indicators"].get("contraindication") == case.safety, (mode, got, _details(result))
        details = _details(result)
        assert "could not be fetched" not in details and "incomplete" not in details, (mode, details)
        for words in case.in_detail + (case.in_sign_detail if hook == "order-sign" else ()):
            assert words.lower() in details.lower(), (mode, words, details)
        seen[mode] = got
    assert seen["prefetch"] == seen["fetch"] == seen["proxy"]
    # the proxy really collapsed nothing the service relied on: every search reached the server intact
    assert not any("http:/" in path and "http://" not in path for path in proxy.forwarded)


def _details(result: dict) -> str:
    return "\n".join(f"{c['summary']}\n{c.get('detail', '')}" for c in result["cards"])


def test_the_proxy_breaks_unencoded_search_values_as_smart_launcher_does(fhir_base, proxy):
    """Guard for the suite itself: through the proxy a raw `http://loinc.org|…` matches nothing,
    its encoded form matches every height."""
    pid = case_id(CASES[0])
    raw = requests.get(f"{proxy.base}/Observation?patient={pid}&code=http://loinc.org|8302-2", timeout=10).json()
    encoded = requests.get(f"{proxy.base}/Observation?patient={pid}&code=http%3A%2F%2Floinc.org%7C8302-2",
                           timeout=10).json()
    assert raw.get("total", len(raw.get("entry", []))) == 0
    assert len(encoded["entry"]) == 3
