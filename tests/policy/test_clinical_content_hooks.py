"""Issue 22: the clinical content says what the policy and the label say. Each case of the audit goes
through both hooks (order-select and order-sign) via the Flask test client, with full prefetch, and is
checked on what the clinician sees (card indicators and words) and on the audited determination."""
from __future__ import annotations

import copy
import re

import pytest
import responses

from tests.fixtures import (ICD10, SNOMED, condition, coverage, fhir_bundle, igf1_observation, laron_prefetch,
                            mecasermin_order, order_select_request, patient_resource)

UNII = "http://fdasis.nlm.nih.gov"
SERVICES = {"order-select": "/cds-services/mecasermin-order-select",
            "order-sign": "/cds-services/mecasermin-order-sign"}
HOOKS = pytest.mark.parametrize("hook", ["order-select", "order-sign"])


def call(client, store, hook, *, conditions=None, extra_conditions=(), allergies=(), medications=(),
         order=None, patient=None, payer=None, plan=None, igf1=None):
    prefetch = laron_prefetch()
    if igf1 is not None:
        entries = [e for e in prefetch["observations"]["entry"] if e["resource"]["id"] != "igf1"]
        prefetch["observations"]["entry"] = entries + fhir_bundle([igf1_observation("igf1", "2026-09-02", igf1)])["entry"]
    if conditions is not None:
        prefetch["conditions"] = fhir_bundle(list(conditions))
    prefetch["conditions"]["entry"] += fhir_bundle(list(extra_conditions))["entry"]
    prefetch["allergies"] = fhir_bundle(list(allergies))
    prefetch["medications"] = fhir_bundle(list(medications))
    if patient is not None:
        prefetch["patient"] = patient
    if payer is not None:
        cov = coverage(payer=payer)
        if plan is not None:
            cov["class"][0]["name"] = plan
        prefetch["coverage"] = fhir_bundle([cov])
    body = order_select_request(prefetch=copy.deepcopy(prefetch), order=order or mecasermin_order(), hook=hook)
    response = client.post(SERVICES[hook], json=body)
    assert response.status_code == 200, response.get_json()
    cards = {c["source"]["topic"]["code"]: c for c in response.get_json()["cards"]}
    (row,) = store.query("SELECT determination FROM audit ORDER BY rowid DESC LIMIT 1")
    return cards, row[0]


def coded(cond_id, system, code, display, *, text=None, status="active", verification="confirmed"):
    resource = condition(cond_id, code, display, system=system, status=status)
    if text is not None:
        resource["code"]["text"] = text
    resource["verificationStatus"]["coding"][0]["code"] = verification
    return resource


def text_only(cond_id, text, status="active"):
    resource = condition(cond_id, "x", "x", status=status)
    resource["code"] = {"text": text}
    return resource


def reason_order(*reasons, text=None):
    order = mecasermin_order(reason=None)
    order["reasonCode"] = [{"coding": [{"system": ICD10, "code": code, "display": display}]} for code, display in reasons]
    if text:
        order["reasonCode"].append({"text": text})
    return order


def allergy(allergy_id, code, *, clinical="active", criticality="high", manifestation="Anaphylaxis",
            severity="severe", verification="confirmed"):
    return {
        "resourceType": "AllergyIntolerance", "id": allergy_id,
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                       "code": clinical}]},
        "verificationStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": verification}]},
        "type": "allergy", "category": ["medication"], "criticality": criticality, "code": code,
        "patient": {"reference": "Patient/p1"}, "recordedDate": "2024-03-11",
        "reaction": [{"manifestation": [{"text": manifestation}], "severity": severity}],
    }


def steroid(med_id, text, *, authored, bounds_days=None, status="active"):
    resource = {
        "resourceType": "MedicationRequest", "id": med_id, "status": status, "intent": "order",
        "medicationCodeableConcept": {"text": text}, "subject": {"reference": "Patient/p1"}, "authoredOn": authored,
        "dosageInstruction": [{"text": "by mouth once daily",
                               "route": {"coding": [{"system": SNOMED, "code": "26643006", "display": "Oral route"}]}}],
    }
    if bounds_days is not None:
        resource["dosageInstruction"][0]["timing"] = {"repeat": {
            "frequency": 1, "period": 1, "periodUnit": "d",
            "boundsDuration": {"value": bounds_days, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}}}
    return resource


# ----------------------------------------------------------------------------------- malignancy

@HOOKS
def test_acute_lymphoblastic_leukaemia_coded_in_snomed_with_b_all_text_is_critical(client, store, hook):
    leukaemia = coded("c-all", SNOMED, "91857003", "Acute lymphoid leukemia", text="B-ALL", status="resolved")
    cards, _ = call(client, store, hook, extra_conditions=[leukaemia])
    safety = cards["contraindication"]
    assert safety["indicator"] == "critical"
    assert "history of malignancy" in safety["summary"].lower()
    assert "not coded as one" not in safety["detail"]


@HOOKS
@pytest.mark.parametrize("text", ["B-ALL", "ALL in remission since 2023", "Neuroblastoma stage 4, treated 2022"])
def test_a_malignancy_named_only_in_the_conditions_text_is_critical(client, store, hook, text):
    cards, _ = call(client, store, hook, extra_conditions=[text_only("c-onc", text)])
    assert cards["contraindication"]["indicator"] == "critical"
    assert "malignancy" in cards["contraindication"]["summary"].lower()


@HOOKS
def test_a_malignancy_only_suspected_is_a_warning(client, store, hook):
    cards, _ = call(client, store, hook, extra_conditions=[text_only("c-onc", "Possible lymphoma, biopsy pending")])
    assert cards["contraindication"]["indicator"] == "warning"
    assert "confirm before prescribing" in cards["contraindication"]["detail"]


# ------------------------------------------------------------------------------ hypersensitivity

@HOOKS
def test_a_past_severe_reaction_to_increlex_recorded_as_resolved_is_critical(client, store, hook):
    past = allergy("al-inc", {"text": "Increlex (mecasermin)"}, clinical="resolved")
    cards, _ = call(client, store, hook, allergies=[past])
    assert cards["contraindication"]["indicator"] == "critical"
    assert "allergy to mecasermin" in cards["contraindication"]["summary"].lower()


@HOOKS
@pytest.mark.parametrize("code, name", [
    ({"coding": [{"system": UNII, "code": "7T1F30V5YH", "display": "POLYSORBATE 20"}]}, "polysorbate 20"),
    ({"text": "Sodium chloride"}, "sodium chloride"),
    ({"text": "Glacial acetic acid"}, "glacial acetic acid"),
    ({"coding": [{"system": UNII, "code": "4550K0SC9B", "display": "SODIUM ACETATE"}]}, "sodium acetate"),
    ({"text": "Benzyl alcohol"}, "benzyl alcohol"),
])
def test_a_confirmed_reaction_to_any_inactive_ingredient_is_critical(client, store, hook, code, name):
    reaction = allergy("al-exc", code, criticality="low", manifestation="Urticaria", severity="mild")
    cards, _ = call(client, store, hook, allergies=[reaction])
    assert cards["contraindication"]["indicator"] == "critical"
    assert f"allergy to {name}" in cards["contraindication"]["summary"].lower()


@HOOKS
def test_a_resolved_mild_reaction_and_a_polysorbate_80_allergy_do_not_count(client, store, hook):
    mild = allergy("al-1", {"text": "mecasermin"}, clinical="resolved", criticality="low",
                   manifestation="injection-site redness", severity="mild")
    other = allergy("al-2", {"text": "Polysorbate 80"})
    cards, _ = call(client, store, hook, allergies=[mild, other])
    assert "contraindication" not in cards


# ---------------------------------------------------------- GH gene deletion coded as E23.0

@HOOKS
def test_e23_0_documented_as_gh1_deletion_with_neutralising_antibodies_is_covered(client, store, hook):
    deletion = coded("c-gh1", ICD10, "E23.0", "Hypopituitarism",
                     text="GH1 gene deletion with neutralizing anti-GH antibodies")
    order = reason_order(("E23.0", "Hypopituitarism"))
    cards, determination = call(client, store, hook, conditions=[deletion], order=order)
    assert determination == "meets-criteria"
    assert cards["coverage-info"]["indicator"] == "info"
    assert "investigational" not in cards["coverage-info"]["summary"].lower()


@HOOKS
@pytest.mark.parametrize("text, expected", [
    (None, "does-not-meet"),                                         # E23.0 alone: GH deficiency
    ("GH1 gene deletion; antibody status not documented", "documentation-needed"),
    ("GH1 gene deletion, no neutralizing antibodies detected", "documentation-needed"),
])
def test_e23_0_without_documented_antibodies_is_not_covered_as_gene_deletion(client, store, hook, text, expected):
    hypopituitarism = coded("c-e23", ICD10, "E23.0", "Hypopituitarism", text=text)
    cards, determination = call(client, store, hook, conditions=[hypopituitarism],
                                order=reason_order(("E23.0", "Hypopituitarism")))
    assert determination == expected


# ------------------------------------------------------------------------------ acronym collisions

@HOOKS
def test_acid_labile_subunit_deficiency_is_primary_igfd_not_als(client, store, hook):
    order = reason_order(text="Acid-labile subunit (ALS) deficiency")
    cards, determination = call(client, store, hook, conditions=[], order=order)
    assert determination == "meets-criteria"
    assert "amyotrophic" not in cards["coverage-info"]["detail"].lower()


@HOOKS
@pytest.mark.parametrize("reason", [("E23.2", "Diabetes insipidus"), ("N25.1", "Nephrogenic diabetes insipidus")])
def test_diabetes_insipidus_is_not_diabetes_mellitus(client, store, hook, reason):
    order = reason_order(("E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency"), reason)
    cards, determination = call(client, store, hook, order=order)
    assert determination == "meets-criteria"
    assert "diabetes mellitus" not in cards["coverage-info"]["detail"].lower()


@HOOKS
def test_diabetes_mellitus_e13_on_the_order_is_investigational(client, store, hook):
    order = reason_order(("E13.9", "Other specified diabetes mellitus without complications"))
    cards, determination = call(client, store, hook, conditions=[], order=order)
    assert determination == "does-not-meet" and "investigational" in cards["coverage-info"]["summary"]


# ------------------------------------------------------------------------ chronic corticosteroids

@HOOKS
@pytest.mark.parametrize("medication", [
    steroid("pred-5d", "prednisoLONE 15 mg/5 mL oral solution", authored="2026-11-19", bounds_days=5),
    steroid("hc", "hydrocortisone 5 mg tablet", authored="2024-02-01"),       # physiological replacement
])
def test_a_short_course_or_hydrocortisone_replacement_is_not_chronic_steroid_therapy(client, store, hook,
                                                                                     medication):
    cards, determination = call(client, store, hook, medications=[medication])
    assert determination == "meets-criteria"


@HOOKS
def test_prednisolone_for_more_than_three_months_needs_documentation(client, store, hook):
    chronic = steroid("pred", "prednisolone 5 mg tablet", authored="2026-05-02")
    cards, determination = call(client, store, hook, medications=[chronic])
    assert determination == "documentation-needed"
    assert "corticosteroid" in cards["coverage-info"]["detail"].lower()


@HOOKS
def test_a_recent_steroid_with_no_planned_end_needs_documentation_not_a_guess(client, store, hook):
    recent = steroid("pred-new", "prednisone 10 mg tablet", authored="2026-11-01")
    cards, determination = call(client, store, hook, medications=[recent])
    assert determination == "documentation-needed"


# --------------------------------------------------------------------- exclusions as written

@HOOKS
@pytest.mark.parametrize("reason", [
    ("E66.01", "Morbid (severe) obesity due to excess calories"),     # obesity in postmenopausal women only
    ("B20", "Human immunodeficiency virus [HIV] disease"),             # AIDS wasting needs wasting
    ("S06.0X0A", "Concussion without loss of consciousness, initial encounter"),
])
def test_conditions_the_policy_does_not_name_do_not_exclude(client, store, hook, reason):
    order = reason_order(("E34.321", "Primary insulin-like growth factor-1 (IGF-1) deficiency"), reason)
    _, determination = call(client, store, hook, order=order)
    assert determination == "meets-criteria"


@HOOKS
def test_hiv_disease_with_wasting_is_aids_associated_wasting(client, store, hook):
    order = reason_order(("B20", "Human immunodeficiency virus [HIV] disease"), ("R64", "Cachexia"))
    cards, determination = call(client, store, hook, conditions=[], order=order)
    assert determination == "does-not-meet" and "investigational" in cards["coverage-info"]["summary"]


@HOOKS
def test_postprocedural_hypothyroidism_beside_the_diagnosis_needs_documentation(client, store, hook):
    thyroid = coded("c-thy", ICD10, "E89.0", "Postprocedural hypothyroidism")
    _, determination = call(client, store, hook, extra_conditions=[thyroid])
    assert determination == "documentation-needed"


@HOOKS
def test_igf1_resistance_does_not_establish_primary_igfd(client, store, hook):
    order = reason_order(("E34.322", "Insulin-like growth factor-1 (IGF-1) resistance"))
    resistance = coded("c-res", ICD10, "E34.322", "Insulin-like growth factor-1 (IGF-1) resistance")
    cards, determination = call(client, store, hook, conditions=[resistance], order=order)
    assert determination == "documentation-needed"
    assert "Diagnosis code:" not in cards["coverage-info"]["detail"]


@HOOKS
@pytest.mark.parametrize("plan, policy_title", [
    ("Premera Blue Cross Medicare Advantage HMO", "FDA-approved indication"),
    ("Premera Medicare Supplement Plan G", "Premera Blue Cross"),
])
def test_only_medicare_advantage_plans_are_outside_the_primary_policy(client, store, hook, plan, policy_title):
    cards, _ = call(client, store, hook, payer="Premera Blue Cross", plan=plan)
    assert policy_title in cards["coverage-info"]["summary"] + cards["coverage-info"]["detail"]


# ------------------------------------------------------------------------------ the second payer

@HOOKS
def test_the_second_payer_says_only_what_its_note_supports(client, store, hook):
    cards, determination = call(client, store, hook, payer="Aetna")
    detail = cards["coverage-info"]["detail"]
    assert determination == "documentation-needed"
    assert "Aetna CPB 0711" in cards["coverage-info"]["summary"]
    # The HCPCS caveat ("not confirmed") is billing detail: in the SMART app, not on the card.
    assert "Criteria unverified" in detail and "Diagnosis code" not in detail
    assert "approval up to" not in detail                  # the note gives none


@HOOKS
@pytest.mark.parametrize("payer", ["Aetna Better Health of Illinois (Medicaid)", "Aetna Medicare Advantage"])
def test_the_second_payers_government_plans_are_not_matched(client, store, hook, payer):
    cards, _ = call(client, store, hook, payer=payer)
    assert "Aetna CPB 0711" not in cards["coverage-info"]["summary"]


# ---------------------------------------------------------------------- wording and coding help

@HOOKS
def test_coding_help_is_not_given_for_idiopathic_short_stature(client, store, hook):
    order = reason_order(("R62.52", "Short stature (child)"), text="Idiopathic short stature")
    cards, determination = call(client, store, hook, conditions=[coded("c-ss", ICD10, "R62.52", "Short stature (child)")],
                                order=order)
    assert determination == "does-not-meet"
    detail = cards["coverage-info"]["detail"]
    assert "Diagnosis code" not in detail and "code it as" not in detail


@HOOKS
def test_coding_help_is_given_when_the_diagnosis_is_met(client, store, hook):
    cards, _ = call(client, store, hook)
    assert "Diagnosis code: ICD-10-CM E34.321" in cards["coverage-info"]["detail"]


@HOOKS
def test_under_two_is_worded_as_the_label_words_it_and_stays_critical(client, store, hook):
    cards, _ = call(client, store, hook, patient=patient_resource(birth_date="2025-06-01"))
    safety = cards["contraindication"]
    assert safety["indicator"] == "critical"
    assert safety["summary"].startswith("Mecasermin outside the label")
    assert "indication starts at 2 years" in safety["detail"] and "gasping syndrome" in safety["detail"]
    assert "lists these as contraindications" not in safety["detail"]


# ---------------------------------------------------------------------------- IGF-1 wording

@HOOKS
def test_a_normal_igf1_is_criterion_not_met_never_less_severe_deficiency(client, store, hook):
    # 110 ng/mL with range 52–297 ng/mL: SDS about -0.55, within the laboratory's range.
    order = reason_order(("R62.52", "Short stature (child)"), text="Idiopathic short stature")
    cards, _ = call(client, store, hook, igf1=110.0, conditions=[], order=order)
    detail = cards["coverage-info"]["detail"]
    assert "\u2717 IGF-1 SDS" in detail and "less severe" not in detail.lower()


@HOOKS
def test_a_low_igf1_above_the_limit_is_less_severe_deficiency(client, store, hook):
    # 40 ng/mL with range 52–297 ng/mL: SDS about -2.6, below the range but above -3.
    cards, determination = call(client, store, hook, igf1=40.0)
    assert determination == "does-not-meet"
    assert "less severe" in cards["coverage-info"]["detail"].lower()


@HOOKS
def test_under_the_second_payer_the_labels_limitations_are_shown_as_the_labels(client, store, hook):
    # The note names only GH deficiency as a secondary cause; the label's limitation of use covers
    # hypothyroidism under every plan, and says so as the label's.
    thyroid = coded("c-thy", ICD10, "E03.9", "Hypothyroidism, unspecified")
    cards, _ = call(client, store, hook, payer="Aetna", extra_conditions=[thyroid])
    assert "**Secondary IGF-1 deficiency — hypothyroidism" not in cards["coverage-info"]["detail"]   # not the payer's
    safety = cards["contraindication"]
    assert safety["indicator"] == "warning" and "label's indication, whatever the plan" in safety["detail"]
    assert safety["source"]["label"].lower().startswith("increlex")        # the label's own title (label.yaml)


# ------------------------------------------------------------- the same answers when data are fetched

BASE = "http://127.0.0.1:9999/fhir"


@HOOKS
@responses.activate
def test_fetched_records_give_the_same_answers(client, store, hook):
    prefetch = laron_prefetch()
    prefetch["conditions"]["entry"] += fhir_bundle([coded("c-all", SNOMED, "91857003", "Acute lymphoid leukemia",
                                                          text="B-ALL", status="resolved")])["entry"]
    prefetch["allergies"] = fhir_bundle([allergy("al-inc", {"text": "Increlex"}, clinical="resolved")])
    routes = {"Patient/p1": prefetch["patient"], "Condition?": prefetch["conditions"],
              "Observation?": prefetch["observations"], "MedicationRequest?": prefetch["medications"],
              "AllergyIntolerance?": prefetch["allergies"], "Coverage?": prefetch["coverage"],
              "DiagnosticReport?": prefetch["reports"]}
    for path, body in routes.items():
        responses.add(responses.GET, re.compile(re.escape(f"{BASE}/{path}") + ".*"), json=body)
    body = order_select_request(prefetch=None, order=mecasermin_order(), hook=hook)
    body["fhirServer"] = BASE
    body["fhirAuthorization"] = {"access_token": "opaque-token-123", "token_type": "Bearer", "expires_in": 300,
                                 "scope": "patient/*.read", "subject": "mecasermin-cds"}
    response = client.post(SERVICES[hook], json=body)
    assert response.status_code == 200, response.get_json()
    (safety,) = [c for c in response.get_json()["cards"] if c["source"]["topic"]["code"] == "contraindication"]
    assert safety["indicator"] == "critical"
    assert "malignancy" in safety["summary"].lower() and "allergy to mecasermin" in safety["summary"].lower()


@HOOKS
def test_under_the_second_payer_gh_gene_deletion_is_unknown_not_gh_deficiency(client, store, hook):
    # The note names severe primary IGF-1 deficiency only: neither covered nor "GH deficiency, not covered".
    deletion = coded("c-gh1", ICD10, "E23.0", "Hypopituitarism",
                     text="GH1 gene deletion with neutralizing anti-GH antibodies")
    cards, determination = call(client, store, hook, payer="Aetna", conditions=[deletion],
                                order=reason_order(("E23.0", "Hypopituitarism")))
    assert determination == "documentation-needed"
    assert "not covered" not in cards["coverage-info"]["summary"].lower()
