"""The short-stature screen: `mecasermin-screen` (patient-view) and `mecasermin-screen-order-entry`
(order-select on an order form that names no drug yet, as the CDS Hooks sandbox's Rx View sends).

Through the HTTP layer with the test client (every response is schema-checked); the FHIR server
of the fetch-mode tests is mocked with `responses`.
"""
from __future__ import annotations

import copy
import re
import uuid

import pytest
import responses
from fhir.resources.R4B.medicationrequest import MedicationRequest

from service.app import create_app
from service.record import build_record
from service.record.growth import height_sds
from service.settings import Settings
from tests.conftest import TODAY, CheckingClient
from service.fhir.prefetch import templates
from tests.fixtures import (PATIENT_ID, bone_age_observation, condition, fhir_bundle, gh_observation,
                            height_observation, igf1_observation, laron_prefetch, mecasermin_order,
                            order_select_request, patient_resource, weight_observation)

SCREEN = "/cds-services/mecasermin-screen"
ORDER_ENTRY = "/cds-services/mecasermin-screen-order-entry"
SELECT = "/cds-services/mecasermin-order-select"
BASE = "http://127.0.0.1:9999/fhir"
TOKEN = "opaque-token-456"


def growth(heights=((("h3", "2026-10-20", 100.4)), ("h2", "2026-04-18", 98.2)), weights=(("w1", "2026-10-20", 15.2),)):
    return [height_observation(*h) for h in heights] + [weight_observation(*w) for w in weights]


# A qualifying work-up on file: IGF-1 18 ng/mL (range 52–297: SDS about −3.6), stimulated GH peak 21.5.
LABS = (igf1_observation("igf1", "2026-09-02", 18.0), gh_observation("gh2", "2026-08-12", 21.5, code="2963-7"),
        bone_age_observation("ba1", "2026-08-20", 4.5))


def observations(growth_resources=None, labs=LABS) -> dict:
    return fhir_bundle(list(growth() if growth_resources is None else growth_resources) + list(labs))


def prefetch(patient=None, growth_resources=None, medications=(), labs=LABS, conditions=None):
    """The screen reads what the order services read (service.screening.templates)."""
    body = laron_prefetch()
    body.update(patient=patient or patient_resource(), observations=observations(growth_resources, labs),
                medications=fhir_bundle(list(medications)))
    if conditions is not None:
        body["conditions"] = fhir_bundle(list(conditions))
    return body


def view_request(prefetch_body="default", user="Practitioner/dr-7"):
    body = {"hookInstance": str(uuid.uuid4()), "hook": "patient-view",
            "context": {"userId": user, "patientId": PATIENT_ID}}
    if prefetch_body == "default":
        body["prefetch"] = prefetch()
    elif prefetch_body is not None:
        body["prefetch"] = prefetch_body
    return body


def only_card(response) -> dict:
    assert response.status_code == 200, response.get_json()
    (card,) = response.get_json()["cards"]
    return card


def drafted(card) -> dict:
    (suggestion,) = card["suggestions"]
    (action,) = suggestion["actions"]
    return action["resource"]


def prior_mecasermin(status: str) -> dict:
    order = mecasermin_order(order_id=f"mr-prior-{status}")
    order.update(status=status, authoredOn="2025-11-12")
    return order


def active_somatropin() -> dict:
    order = mecasermin_order(order_id="mr-gh")
    order.update(status="active", authoredOn="2026-06-01",
                 medicationCodeableConcept={"text": "somatropin 5 MG/1.5ML Cartridge [Genotropin]"})
    return order


# ----------------------------------------------------------------------------- discovery

def test_discovery_lists_the_screens_with_their_own_prefetch(client):
    services = {s["id"]: s for s in client.get("/cds-services").get_json()["services"]}
    screen, entry = services["mecasermin-screen"], services["mecasermin-screen-order-entry"]
    assert screen["hook"] == "patient-view" and entry["hook"] == "order-select"
    for service in (screen, entry):
        # What the order services read (a child with a contraindication or another cause is never
        # screened) but the prescriber: no order is being prescribed yet.
        order_keys = services["mecasermin-order-select"]["prefetch"]
        assert order_keys == templates()
        assert service["prefetch"] == {k: v for k, v in order_keys.items() if not k.startswith("prescriber")}
        assert "extension" not in service        # no coverage information, so no CRD options
    assert "davinci-crd.configuration-options" in services["mecasermin-order-select"]["extension"]


# ----------------------------------------------------------------------------- the card and its order

def test_short_child_gets_an_info_card_with_a_draft_mecasermin_order(client, store):
    card = only_card(client.post(SCREEN, json=view_request()))
    assert card["indicator"] == "info"
    assert card["source"]["topic"]["code"] == "clinical-reminder"
    assert card["summary"].startswith("Short stature: height \u22123.42 SD at 6.4 y, IGF-1 low, GH normal")
    assert len(card["summary"]) < 140
    assert "100.4 cm on 2026-10-20" in card["detail"] and "centile" in card["detail"]
    assert "IGF-1: 18 ng/mL" in card["detail"] and "GH peak (stimulated): 21.5 \u00b5g/L" in card["detail"]
    assert card["selectionBehavior"] == "at-most-one"
    assert card["suggestions"][0]["label"] == "Draft mecasermin 0.7 mg twice daily"
    action = card["suggestions"][0]["actions"][0]
    assert action["type"] == "create"

    order = drafted(card)
    MedicationRequest.model_validate(order)
    assert order["status"] == "draft" and order["intent"] == "order"
    assert order["medicationCodeableConcept"]["text"] == "mecasermin 10 MG/ML Injectable Solution [Increlex]"
    assert order["medicationCodeableConcept"]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/ndc", "code": "15054-1040-05", "display": "Increlex 40 mg/4 mL vial"}
    assert order["subject"] == {"reference": f"Patient/{PATIENT_ID}"}
    assert order["requester"] == {"reference": "Practitioner/dr-7"}
    assert order["authoredOn"] == TODAY.isoformat()
    (dosage,) = order["dosageInstruction"]
    assert dosage["route"]["coding"][0]["code"] == "34206005"
    assert dosage["timing"] == {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}
    assert dosage["doseAndRate"] == [{"doseQuantity": {"value": 0.7, "unit": "mg",
                                                       "system": "http://unitsofmeasure.org", "code": "mg"}}]
    assert "15.2 kg on 2026-10-20" in dosage["text"]
    (row,) = store.query("SELECT service, determination, card_indicators FROM audit")
    assert row == ("mecasermin-screen", None, '["info"]')
    assert store.query("SELECT card_type FROM card_issued WHERE card_uuid = ?", (card["uuid"],)) == [("screening",)]


@pytest.mark.parametrize("kg,mg", [(15.2, 0.7), (17.5, 0.7), (20.0, 0.8), (22.6, 1.0), (25.0, 1.0), (31.9, 1.3)])
def test_starting_dose_is_the_lowest_tenth_of_a_mg_in_the_starting_range(client, kg, mg):
    body = view_request(prefetch(growth_resources=growth(weights=(("w1", "2026-10-20", kg),))))
    (dosage,) = drafted(only_card(client.post(SCREEN, json=body)))["dosageInstruction"]
    dose = dosage["doseAndRate"][0]["doseQuantity"]["value"]
    assert dose == mg
    assert 0.04 <= round(dose / kg, 3) <= 0.08          # inside the label's 0.04–0.08 mg/kg starting range


def test_without_a_recent_weight_the_order_has_no_dose_in_mg(client):
    body = view_request(prefetch(growth_resources=growth(weights=(("w0", "2025-01-10", 13.9),))))
    card = only_card(client.post(SCREEN, json=body))
    assert card["suggestions"][0]["label"] == "Draft mecasermin 0.04 mg/kg twice daily"
    (dosage,) = drafted(card)["dosageInstruction"]
    assert "doseAndRate" not in dosage
    assert dosage["text"].startswith("0.04 mg/kg subcutaneously twice daily") and "weigh the child" in dosage["text"]
    MedicationRequest.model_validate(drafted(card))


def test_the_drafted_order_passes_the_order_select_checks_without_a_dose_card(client):
    order = drafted(only_card(client.post(SCREEN, json=view_request())))
    body = order_select_request(order=order)
    cards = client.post(SELECT, json=body).get_json()["cards"]
    topics = [c["source"]["topic"]["code"] for c in cards]
    assert topics == ["coverage-info"]
    assert cards[0]["summary"].startswith("Prior authorization required — criteria met")


# ----------------------------------------------------------------------------- who is screened

def _heights_around(sds: float) -> tuple[float, float]:
    """The tallest height (cm, 2 decimals) at 2026-10-20 whose unrounded CDC 2000 SDS is at or below
    `sds`, and the next 0.01 cm, whose SDS is above it."""
    probe = build_record([patient_resource(), height_observation("hp", "2026-10-20", 100.0)], None, TODAY).heights[0]
    candidates = [round(95 + i / 100, 2) for i in range(1500)]
    above = next(cm for cm in candidates if height_sds(cm, "male", probe.age_years)[0] > sds)
    return round(above - 0.01, 2), above


@pytest.mark.parametrize("side,screened", [(0, True), (1, False)])
def test_threshold_is_at_or_below_minus_2_25_unrounded(client, side, screened):
    height = _heights_around(-2.25)[side]
    body = view_request(prefetch(growth_resources=growth(heights=(("h3", "2026-10-20", height),))))
    cards = client.post(SCREEN, json=body).get_json()["cards"]
    assert bool(cards) == screened
    if screened:
        assert "SDS \u22122.25" in cards[0]["detail"]


@pytest.mark.parametrize("change", [
    pytest.param(lambda p: p.update(patient=patient_resource(birth_date="2025-04-10")), id="under 2 years"),
    pytest.param(lambda p: p.update(patient=patient_resource(gender="unknown")), id="sex unknown"),
    pytest.param(lambda p: p.update(observations=observations(growth(heights=()))), id="no height"),
    pytest.param(lambda p: p.update(observations=observations(growth(heights=(("h3", "2026-10-20", 118.0),)))),
                 id="height normal"),
    pytest.param(lambda p: p.update(medications=fhir_bundle([prior_mecasermin("active")])), id="on mecasermin"),
    pytest.param(lambda p: p.update(medications=fhir_bundle([prior_mecasermin("completed")])), id="had mecasermin"),
    pytest.param(lambda p: p.update(medications=fhir_bundle([prior_mecasermin("on-hold")])), id="mecasermin on hold"),
    pytest.param(lambda p: p.update(medications=fhir_bundle([active_somatropin()])), id="on growth hormone"),
    pytest.param(lambda p: p.update(observations=observations(growth(heights=(("h1", "2025-09-30", 96.0),)))),
                 id="height over a year old"),
])
def test_not_screened(client, store, change):
    body = prefetch()
    change(body)
    response = client.post(SCREEN, json=view_request(body))
    assert response.status_code == 200 and response.get_json() == {"cards": []}
    (row,) = store.query("SELECT service, card_indicators FROM audit")
    assert row == ("mecasermin-screen", "[]")


def test_the_latest_height_decides(client):
    # Short two years ago, within the normal range now: no card.
    heights = (("h3", "2026-10-20", 118.0), ("h1", "2024-10-20", 88.0))
    assert client.post(SCREEN, json=view_request(prefetch(growth_resources=growth(heights=heights)))).get_json() == {
        "cards": []}


def test_a_draft_mecasermin_order_on_file_does_not_silence_the_screen(client):
    body = view_request(prefetch(medications=[prior_mecasermin("draft")]))
    assert only_card(client.post(SCREEN, json=body))


# ----------------------------------------------------------------------------- protocol

def test_patient_view_context_is_validated(client):
    body = view_request()
    del body["context"]["patientId"]
    response = client.post(SCREEN, json=body)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid-request"
    wrong_hook = view_request()
    wrong_hook["hook"] = "order-select"
    assert client.post(SCREEN, json=wrong_hook).get_json()["error"] == "hook-mismatch"


def test_patient_missing_and_no_fhir_server_is_412(client):
    body = view_request(prefetch())
    del body["prefetch"]["patient"]
    assert client.post(SCREEN, json=body).status_code == 412


def _mock_fhir(bodies: dict) -> None:
    for path, body in bodies.items():
        if isinstance(body, int):
            responses.add(responses.GET, re.compile(re.escape(f"{BASE}/{path}") + ".*"), status=body)
        else:
            responses.add(responses.GET, re.compile(re.escape(f"{BASE}/{path}") + ".*"), json=body)


def _fetch_request() -> dict:
    body = view_request(prefetch_body=None)
    body["fhirServer"] = BASE
    body["fhirAuthorization"] = {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300,
                                 "scope": "patient/*.read", "subject": "mecasermin-cds"}
    return body


@responses.activate
def test_fetch_mode_reads_what_the_order_services_read(client):
    data = prefetch()
    empty = fhir_bundle([])
    # The imaging-category query first: `responses` answers with the first registered match.
    responses.add(responses.GET, re.compile(re.escape(f"{BASE}/Observation?") + r"patient=p1&category=.*"),
                  json=empty)
    _mock_fhir({"Patient/p1": data["patient"], "Observation?": data["observations"],
                "Condition?": data["conditions"], "MedicationRequest?": data["medications"],
                "MedicationStatement?": empty, "MedicationDispense?": empty, "MedicationAdministration?": empty,
                "AllergyIntolerance?": empty, "Coverage?": data["coverage"], "DiagnosticReport?": empty})
    card = only_card(client.post(SCREEN, json=_fetch_request()))
    assert drafted(card)["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 0.7
    paths = {call.request.path_url.split("?")[0] for call in responses.calls}
    assert paths == {"/fhir/AllergyIntolerance", "/fhir/Condition", "/fhir/Coverage", "/fhir/DiagnosticReport",
                     "/fhir/MedicationAdministration", "/fhir/MedicationDispense", "/fhir/MedicationRequest",
                     "/fhir/MedicationStatement", "/fhir/Observation", "/fhir/Patient/p1"}
    assert all(call.request.headers["Authorization"] == f"Bearer {TOKEN}" for call in responses.calls)


@responses.activate
def test_a_key_that_cannot_be_fetched_silences_the_screen(tmp_path):
    # The missing key could hold the mecasermin order that rules the screen out.
    app = create_app(Settings.from_env({}, database_url=f"sqlite:///{tmp_path}/s.db", fhir_retries=0),
                     today=lambda: TODAY)
    client = CheckingClient(app.test_client())
    data = prefetch()
    _mock_fhir({"Patient/p1": data["patient"], "Observation?": data["observations"], "MedicationRequest?": 503})
    response = client.post(SCREEN, json=_fetch_request())
    assert response.status_code == 200 and response.get_json() == {"cards": []}


def test_feedback_on_the_screen_card_is_stored(client, store):
    card = only_card(client.post(SCREEN, json=view_request()))
    feedback = {"feedback": [{"card": card["uuid"], "outcome": "accepted",
                              "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
                              "outcomeTimestamp": "2026-11-21T10:15:00.000Z"}]}
    assert client.post(f"{SCREEN}/feedback", json=feedback).get_json() == {"stored": 1}
    assert store.query("SELECT service, outcome FROM feedback") == [("mecasermin-screen", "accepted")]


# ----------------------------------------------------------------------------- the empty order form

def sandbox_order_select(order: dict) -> dict:
    """order-select as the sandbox's Rx View sends it: no Bundle.type, reasonCode as one object."""
    return {"hookInstance": str(uuid.uuid4()), "hook": "order-select", "fhirServer": "https://launch.example/fhir",
            "context": {"userId": "Practitioner/dr-7", "patientId": PATIENT_ID,
                        "selections": [f"MedicationRequest/{order['id']}"],
                        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": order}]}},
            "prefetch": prefetch()}


EMPTY_FORM = {"resourceType": "MedicationRequest", "id": "request-123", "status": "draft",
              "subject": {"reference": f"Patient/{PATIENT_ID}"}, "authoredOn": "2026-11-21",
              "reasonCode": {"coding": [{"system": "http://snomed.info/sct", "code": "38196001",
                                         "display": "Laron-type isolated somatotropin defect"}],
                             "text": "Laron syndrome"}}


def test_an_empty_order_form_is_filled_in_as_mecasermin(client):
    card = only_card(client.post(ORDER_ENTRY, json=sandbox_order_select(copy.deepcopy(EMPTY_FORM))))
    (action,) = card["suggestions"][0]["actions"]
    assert action["type"] == "update"
    order = action["resource"]
    MedicationRequest.model_validate(order)
    assert order["id"] == "request-123" and order["status"] == "draft"
    assert order["reasonCode"] == [EMPTY_FORM["reasonCode"]]          # kept, as the R4 list
    assert order["medicationCodeableConcept"]["text"] == "mecasermin 10 MG/ML Injectable Solution [Increlex]"
    # What the sandbox then sends: the form with the suggested drug; the screen is silent, the order services answer.
    filled = sandbox_order_select(order)
    assert client.post(ORDER_ENTRY, json=filled).get_json() == {"cards": []}
    filled["prefetch"] = laron_prefetch()
    cards = client.post(SELECT, json=filled).get_json()["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["coverage-info"]


@pytest.mark.parametrize("order", [
    pytest.param({**EMPTY_FORM, "medicationCodeableConcept": {"text": "amoxicillin 500 MG Oral Capsule"}},
                 id="another drug"),
    pytest.param(mecasermin_order(order_id="request-123"), id="mecasermin already"),
])
def test_the_order_entry_screen_is_silent_once_a_drug_is_named(client, order):
    assert client.post(ORDER_ENTRY, json=sandbox_order_select(order)).get_json() == {"cards": []}


def test_the_order_entry_screen_looks_only_at_the_selected_order(client):
    body = sandbox_order_select(copy.deepcopy(EMPTY_FORM))
    body["context"]["selections"] = ["MedicationRequest/other"]
    assert client.post(ORDER_ENTRY, json=body).get_json() == {"cards": []}


# ----------------------------------------------------------------------------- screening that earns its place

def test_without_the_work_up_the_card_orders_it_and_offers_no_mecasermin(client):
    card = only_card(client.post(SCREEN, json=view_request(prefetch(labs=()))))
    assert card["summary"] == "Short stature: height \u22123.42 SD at 6.4 y — work up: IGF-1, GH stimulation, bone age"
    assert card["selectionBehavior"] == "any"
    resources = [s["actions"][0]["resource"] for s in card["suggestions"]]
    assert {r["resourceType"] for r in resources} == {"ServiceRequest"}
    assert [r["code"]["coding"][0]["code"] for r in resources] == ["2484-4", "80428", "85151-9"]
    assert all(r["requester"] == {"reference": "Practitioner/dr-7"} and "reasonReference" not in r for r in resources)
    assert "mecasermin" not in " ".join(s["label"].lower() for s in card["suggestions"])
    assert "The suggestions order them;" in card["detail"]


def test_one_missing_test_is_one_suggestion_in_the_singular(client):
    card = only_card(client.post(SCREEN, json=view_request(prefetch(labs=LABS[1:]))))    # GH and bone age, no IGF-1
    assert [s["label"] for s in card["suggestions"]] == ["Order serum IGF-1 (baseline)"]
    assert "Still needed: IGF-1 " in card["detail"] and "The suggestion orders it;" in card["detail"]


def test_only_the_missing_part_of_the_work_up_is_ordered(client):
    card = only_card(client.post(SCREEN, json=view_request(prefetch(labs=LABS[:1]))))    # IGF-1 only
    assert [s["label"] for s in card["suggestions"]] == ["Order a growth hormone stimulation test",
                                                         "Order a bone age X-ray (left hand and wrist)"]


ISS = condition("c-iss", "R62.52", "Idiopathic short stature")
MALIGNANCY = condition("c-all", "Z85.6", "Personal history of leukemia", status="resolved")
GH_DEFICIENCY = condition("c-ghd", "E23.0", "Growth hormone deficiency")


@pytest.mark.parametrize("body", [
    pytest.param(lambda: prefetch(labs=(igf1_observation("igf1", "2026-09-02", 160.0),) + LABS[1:]), id="normal IGF-1"),
    pytest.param(lambda: prefetch(labs=LABS[:1] + (gh_observation("gh2", "2026-08-12", 3.1, code="2963-7"),)),
                 id="low stimulated GH"),
    pytest.param(lambda: prefetch(conditions=[ISS]), id="idiopathic short stature"),
    pytest.param(lambda: prefetch(conditions=[GH_DEFICIENCY], labs=()), id="GH deficiency on file"),
    pytest.param(lambda: prefetch(conditions=[MALIGNANCY]), id="history of malignancy"),
    pytest.param(lambda: prefetch(medications=[prior_mecasermin("cancelled")]), id="order cancelled before"),
])
def test_never_screened_with_a_contraindication_another_cause_or_a_withdrawn_order(client, body):
    assert client.post(SCREEN, json=view_request(body())).get_json() == {"cards": []}


def _iv_order() -> dict:
    order = mecasermin_order()
    for dosage in order["dosageInstruction"]:
        dosage["route"] = {"coding": [{"system": "http://snomed.info/sct", "code": "47625008",
                                       "display": "Intravenous route"}]}
    return order


def test_not_re_offered_after_the_prescriber_removed_the_order_at_the_safety_card(client):
    assert only_card(client.post(SCREEN, json=view_request()))        # screened before anything was ordered
    cards = client.post(SELECT, json=order_select_request(order=_iv_order())).get_json()["cards"]
    safety = next(c for c in cards if c["source"]["topic"]["code"] == "contraindication")
    removal = next(s for s in safety["suggestions"] if s["actions"][0]["type"] == "delete")
    feedback = {"feedback": [{"card": safety["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": removal["uuid"]}],
                              "outcomeTimestamp": "2026-11-21T10:15:00.000Z"}]}
    assert client.post(f"{SELECT}/feedback", json=feedback).status_code == 200
    assert client.post(SCREEN, json=view_request()).get_json() == {"cards": []}


def test_not_re_offered_after_the_screening_card_was_dismissed(client):
    card = only_card(client.post(SCREEN, json=view_request()))
    feedback = {"feedback": [{"card": card["uuid"], "outcome": "overridden",
                              "overrideReason": {"reason": card["overrideReasons"][0]},
                              "outcomeTimestamp": "2026-11-21T10:15:00.000Z"}]}
    assert client.post(f"{SCREEN}/feedback", json=feedback).status_code == 200
    assert client.post(SCREEN, json=view_request()).get_json() == {"cards": []}
    another_child = view_request()
    another_child["context"]["patientId"] = "p2"       # another child is still screened
    another_child["prefetch"]["patient"] = {**patient_resource(), "id": "p2"}
    assert client.post(SCREEN, json=another_child).get_json()["cards"]
