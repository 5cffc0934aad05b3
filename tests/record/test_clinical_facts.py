"""Patient, diagnoses, allergies, other medications and epiphyseal evidence."""
from __future__ import annotations

from datetime import date

import pytest

from service.policy.context import treatment_start as policy_treatment_start
from tests.record import builders as b


# --- patient --------------------------------------------------------------------------------------

@pytest.mark.parametrize("gender, birthsex, sex, source", [
    ("male", None, "male", "gender"),
    ("female", None, "female", "gender"),
    ("male", "F", "female", "birthsex-extension"),
    ("female", "M", "male", "birthsex-extension"),
    ("female", "UNK", "female", "gender"),          # only F/M override
    ("other", None, None, "gender"),
    ("unknown", "ASKU", None, "gender"),
    (None, None, None, None),
])
def test_sex(build, gender, birthsex, sex, source):
    facts = build(b.patient(gender=gender, birthsex=birthsex)).patient
    assert (facts.sex, facts.sex_source) == (sex, source)


def test_age_today(build):
    facts = build(b.patient(birth_date="2018-03-14")).patient
    assert facts.age_years == 6.0 and facts.birth_date == date(2018, 3, 14) and facts.reference == f"Patient/{b.PATIENT_ID}"


@pytest.mark.parametrize("birth_date, reason_part", [
    ("March 2018", "unreadable date"), (None, "no date"), ("2025-01-01", "after today"), ("2025-02", "after today"),
])
def test_unusable_birth_date(build, birth_date, reason_part):
    record = build(b.patient(birth_date=birth_date))
    assert record.patient.birth_date is None and record.patient.age_years is None
    assert any(reason_part in s.reason for s in record.skipped if s.reference.startswith("Patient/"))


def test_second_patient_is_set_aside(build):
    record = build(b.patient(), b.patient(patient_id="other", birth_date="2010-01-01"))
    assert record.patient.reference == f"Patient/{b.PATIENT_ID}"
    assert any(s.reference == "Patient/other" for s in record.skipped)


# --- diagnoses ------------------------------------------------------------------------------------

def test_condition_gives_one_diagnosis_per_coding_and_its_text(build):
    diagnoses = build(b.laron_condition()).diagnoses
    assert [(d.system, d.code) for d in diagnoses] == [("icd10cm", "E34.321"), ("snomed", "38196001"), ("text", None)]
    assert all(d.source == "condition" and d.active and d.clinical_status == "active" for d in diagnoses)
    assert diagnoses[0].onset == date(2021, 6, 2) and diagnoses[0].recorded == date(2022, 1, 18)
    assert diagnoses[0].verification_status == "confirmed"


def test_text_same_as_display_is_not_repeated(build):
    cond = b.condition("c1", icd10=("R62.52", "Short stature (child)"), text="short stature (child)")
    assert [d.system for d in build(cond).diagnoses] == ["icd10cm"]


def test_undotted_icd10_is_normalised(build):
    cond = b.condition("c1", icd10=("E34321", "Primary IGF-1 deficiency"))
    assert build(cond).diagnoses[0].code == "E34.321"


@pytest.mark.parametrize("clinical, active", [
    ("active", True), ("recurrence", True), ("relapse", True),
    ("inactive", False), ("remission", False), ("resolved", False), (None, True),
])
def test_clinical_status(build, clinical, active):
    cond = b.condition("c1", icd10=("C91.00", "Acute lymphoblastic leukemia not having achieved remission"),
                       clinical=clinical)
    (d,) = build(cond).diagnoses
    assert d.active is active and d.clinical_status == clinical


@pytest.mark.parametrize("verification", ["refuted", "entered-in-error"])
def test_refuted_conditions_are_skipped(build, verification):
    record = build(b.condition("c1", icd10=("C71.9", "Malignant neoplasm of brain, unspecified"),
                               verification=verification))
    assert record.diagnoses == () and any(s.reference == "Condition/c1" for s in record.skipped)


def test_unconfirmed_condition_is_kept_with_its_status(build):
    (d,) = build(b.condition("c1", icd10=("E23.0", "Hypopituitarism"), verification="provisional")).diagnoses
    assert d.verification_status == "provisional"


def test_text_only_condition(build):
    (d,) = build(b.condition("c1", text="Idiopathic short stature")).diagnoses
    assert (d.system, d.code, d.display) == ("text", None, "Idiopathic short stature")


def test_condition_coded_only_in_an_unknown_system_keeps_its_display(build):
    cond = b.condition("c1")
    cond["code"] = {"coding": [{"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.696784", "code": "128",
                                "display": "Idiopathic short stature"}]}
    (d,) = build(cond).diagnoses
    assert (d.system, d.display) == ("text", "Idiopathic short stature")


@pytest.mark.parametrize("reason", [
    [b.concept(b.ICD10CM, "E34.321", "Primary IGF-1 deficiency")],
    b.concept(b.ICD10CM, "E34.321", "Primary IGF-1 deficiency"),          # sandbox: a single object
])
def test_order_reason_code(build, reason):
    order = b.mecasermin_order(reason=reason)
    record = build(order=order)
    (d,) = record.order.reasons
    assert (d.system, d.code, d.source, d.reference) == ("icd10cm", "E34.321", "order-reason",
                                                         "MedicationRequest/medrx-draft-1#reasonCode")
    assert d in record.diagnoses


def test_order_reason_reference_resolves_conditions(build):
    laron = b.laron_condition()
    order = b.mecasermin_order(reason=[], reasonReference=[{"reference": "Condition/cond-laron"}])
    record = build(laron, order=order)
    assert {(d.code, d.source) for d in record.order.reasons} == {("E34.321", "order-reason"), ("38196001", "order-reason"),
                                                                 (None, "order-reason")}
    assert all(d.reference == "Condition/cond-laron" for d in record.order.reasons)


def test_order_reason_reference_absolute_contained_and_display(build):
    contained = b.condition("r1", text="Growth hormone insensitivity syndrome")
    order = b.mecasermin_order(reason=[], contained=[contained], reasonReference=[
        {"reference": "https://ehr.example.org/fhir/R4/Condition/cond-laron"},
        {"reference": "#r1"},
        {"reference": "Condition/not-fetched", "display": "Laron syndrome"},
        {"reference": "Condition/missing"},
    ])
    record = build(b.laron_condition(), order=order)
    displays = {d.display for d in record.order.reasons}
    assert {"Laron syndrome", "Growth hormone insensitivity syndrome",
            "Primary insulin-like growth factor-1 (IGF-1) deficiency"} <= displays
    assert any(d.reference == "MedicationRequest/medrx-draft-1#r1" for d in record.order.reasons)
    assert any(s.reference == "Condition/missing" for s in record.skipped)


def test_refuted_order_reason_reference_is_skipped(build):
    refuted = b.condition("c9", icd10=("E34.321", "Primary IGF-1 deficiency"), verification="refuted")
    order = b.mecasermin_order(reason=[], reasonReference=[{"reference": "Condition/c9"}])
    record = build(refuted, order=order)
    assert record.order.reasons == ()


# --- allergies ------------------------------------------------------------------------------------

@pytest.mark.parametrize("code, substance", [
    (b.concept(b.SNOMED, "418157000", "Mecasermin (substance)"), "mecasermin"),
    (b.concept(b.UNII, "7GR9I2683O", "MECASERMIN"), "mecasermin"),
    ({"text": "Increlex"}, "mecasermin"),
    (b.concept(b.UNII, "LKG8494WBH", "BENZYL ALCOHOL"), "benzyl-alcohol"),
    ({"text": "Benzyl alcohol (preservative)"}, "benzyl-alcohol"),
])
def test_relevant_allergies(build, code, substance):
    (a,) = build(b.allergy("al1", code=code)).allergies
    assert a.substance == substance and a.reference == "AllergyIntolerance/al1" and a.criticality == "high"
    assert a.recorded == date(2023, 2, 7)


def test_allergy_named_only_in_the_reaction_substance(build):
    resource = b.allergy("al1", code={"text": "Injectable preservative"})
    resource["reaction"][0]["substance"] = b.concept(b.UNII, "LKG8494WBH", "BENZYL ALCOHOL")
    assert build(resource).allergies[0].substance == "benzyl-alcohol"


MILD = {"criticality": "low", "reaction": [{"manifestation": [{"text": "local redness"}], "severity": "mild"}]}


@pytest.mark.parametrize("clinical, verification, extra", [
    ("active", "refuted", {}), ("active", "entered-in-error", {}),
    ("inactive", "confirmed", MILD), ("resolved", "confirmed", MILD),
])
def test_ignored_allergies(build, clinical, verification, extra):
    record = build(b.allergy("al1", code={"text": "mecasermin"}, clinical=clinical, verification=verification,
                             **extra))
    assert record.allergies == () and any(s.reference == "AllergyIntolerance/al1" for s in record.skipped)


@pytest.mark.parametrize("clinical", ["resolved", "inactive"])
def test_a_past_severe_reaction_counts_whatever_its_clinical_status(build, clinical):
    # The label contraindicates a previous severe hypersensitivity to Increlex (anaphylaxis here).
    (allergy,) = build(b.allergy("al1", code={"text": "Increlex"}, clinical=clinical)).allergies
    assert allergy.substance == "mecasermin" and allergy.severe and allergy.clinical_status == clinical


def test_unrelated_allergy_is_ignored_silently(build):
    record = build(b.allergy("al1", code=b.concept(b.SNOMED, "91936005", "Allergy to penicillin")))
    assert record.allergies == () and record.skipped == ()


# --- other medications ----------------------------------------------------------------------------

@pytest.mark.parametrize("name, category", [
    ("somatropin 5 MG/1.5ML Cartridge [Genotropin]", "somatropin"),
    ("Norditropin FlexPro 10 mg/1.5 mL pen", "somatropin"),
    ("lonapegsomatropin-tcgd 11 MG [Skytrofa]", "somatropin"),
    ("Sogroya (somapacitan-beco) 10 mg/1.5 mL", "somatropin"),
    ("Ngenla 24 mg/1.2 mL pen", "somatropin"),
    ("human growth hormone injection", "somatropin"),
    ("insulin glargine 100 UNT/ML Pen Injector", "antidiabetic"),
    ("metformin hydrochloride 500 MG Oral Tablet", "antidiabetic"),
    ("glipizide 5 MG Oral Tablet", "antidiabetic"),
    ("Humalog KwikPen", "antidiabetic"),
    ("prednisone 5 MG Oral Tablet", "systemic-corticosteroid"),
    ("dexamethasone 4 MG Oral Tablet", "systemic-corticosteroid"),
    ("hydrocortisone 10 MG Oral Tablet", "systemic-corticosteroid"),
])
def test_medication_categories(build, name, category):
    (m,) = build(b.medication_request("mr1", name, route=None)).medications
    assert (m.category, m.text, m.active, m.status) == (category, name, True, "active")


@pytest.mark.parametrize("name, route", [
    ("fluticasone propionate 44 MCG/ACTUAT Metered Dose Inhaler", "inhaled"),
    ("budesonide 0.5 MG/2ML Inhalation Suspension", None),
    ("hydrocortisone 1 % Topical Cream", None),
    ("dexamethasone 0.1 % Ophthalmic Suspension", None),
    ("prednisolone acetate 1 % Ophthalmic Suspension", None),
    ("growth hormone releasing factor", None),
    ("acetaminophen 160 MG/5ML Oral Suspension", "oral"),
])
def test_not_counted_as_therapy_of_interest(build, name, route):
    record = build(b.medication_request("mr1", name, route=route))
    assert record.medications == () and record.skipped == ()


def test_systemic_route_code_wins_over_a_local_sounding_name(build):
    (m,) = build(b.medication_request("mr1", "methylprednisolone sodium succinate 125 MG Injection",
                                      route="intravenous")).medications
    assert m.category == "systemic-corticosteroid"


@pytest.mark.parametrize("status, active", [
    ("active", True), ("on-hold", True), ("completed", False), ("stopped", False), ("unknown", False),
])
def test_somatropin_status(build, status, active):
    (m,) = build(b.medication_request("mr1", "Genotropin 12 MG Cartridge", status=status)).medications
    assert m.active is active and m.date == date(2023, 11, 2)


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled"])
def test_somatropin_not_taken_is_skipped(build, status):
    record = build(b.medication_request("mr1", "Genotropin 12 MG Cartridge", status=status))
    assert record.medications == () and any(s.reference == "MedicationRequest/mr1" for s in record.skipped)


def test_medication_statement_is_read(build):
    (m,) = build(b.medication_statement("ms1", "Humatrope 6 MG Cartridge", status="completed")).medications
    assert (m.category, m.active, m.date) == ("somatropin", False, date(2023, 9, 1))


@pytest.mark.parametrize("status, prior", [
    ("active", True), ("completed", True), ("stopped", True), ("on-hold", True),
    ("draft", False), ("entered-in-error", False), ("cancelled", False),
])
def test_prior_mecasermin_marks_reauthorization(build, status, prior):
    previous = b.medication_request("mr-old", dict(b.MECASERMIN_CONCEPT), status=status, route="subcutaneous",
                                    authored="2023-03-01")
    order = b.mecasermin_order()
    record = build(previous, order, order=order)
    assert record.reauthorization is prior
    if not prior:
        assert any(s.reference == "MedicationRequest/mr-old" for s in record.skipped)


def test_the_draft_order_itself_is_not_prior_therapy(build):
    order = b.mecasermin_order(status="active")
    record = build(order, order=dict(order))      # the same order, as a copy from draftOrders
    assert record.reauthorization is False and record.medications == ()


def test_prior_mecasermin_through_a_medication_reference(build):
    medication = {"resourceType": "Medication", "id": "med-incr",
                  "code": {"coding": [{"system": b.NDC, "code": "15054-1040-05", "display": "Increlex 40 MG in 4 ML"}]}}
    previous = b.medication_statement("ms1", "x", status="completed", route=None)
    del previous["medicationCodeableConcept"]
    previous["medicationReference"] = {"reference": "Medication/med-incr"}
    record = build(medication, previous)
    assert record.reauthorization and record.medications[0].text == "Increlex 40 MG in 4 ML"


def test_rxnorm_codes_are_passed_to_the_trigger(build):
    previous = b.medication_request("mr-old", b.concept(b.RXNORM, "999999", "Product 999999"), status="completed")
    assert not build(previous).reauthorization
    assert build(previous, rxnorm_codes=["999999"]).reauthorization


# --- therapy dates and the treatment start --------------------------------------------------------

INCRELEX = b.MECASERMIN_CONCEPT


@pytest.mark.parametrize("resource, expected", [
    # MedicationStatement: the period taken wins over when the statement was recorded
    (b.medication_statement("ms1", dict(INCRELEX), route="subcutaneous", effective="2023-09-01",
                            effectiveDateTime=b.DROP, effectivePeriod={"start": "2022-11-07", "end": "2023-11-07"},
                            dateAsserted="2024-01-20"), "2022-11-07"),
    (b.medication_statement("ms1", dict(INCRELEX), route="subcutaneous", effective="2022-11-07",
                            dateAsserted="2024-01-20"), "2022-11-07"),
    (b.medication_statement("ms1", dict(INCRELEX), route="subcutaneous", effective="2022-11",   # partial date
                            dateAsserted="2024-01-20"), "2022-11-01"),
    (b.medication_statement("ms1", dict(INCRELEX), route="subcutaneous", effectiveDateTime=b.DROP,
                            dateAsserted="2024-01-20"), "2024-01-20"),                         # last resort
    # MedicationRequest: authoredOn, else the start of the dispense validity period
    (b.medication_request("mr1", dict(INCRELEX), route="subcutaneous", authored="2022-11-03",
                          dispenseRequest={"validityPeriod": {"start": "2022-11-10", "end": "2023-11-10"}}), "2022-11-03"),
    (b.medication_request("mr1", dict(INCRELEX), route="subcutaneous", authoredOn=b.DROP,
                          dispenseRequest={"validityPeriod": {"start": "2022-11-10", "end": "2023-11-10"}}), "2022-11-10"),
    (b.medication_request("mr1", dict(INCRELEX), route="subcutaneous", authoredOn=b.DROP), None),
])
def test_therapy_date_prefers_when_it_was_taken(build, resource, expected):
    record = build(resource)
    (m,) = record.medications
    assert m.category == "mecasermin"
    assert (m.date.isoformat() if m.date else None) == expected
    assert (record.treatment_start.isoformat() if record.treatment_start else None) == expected


def test_treatment_start_is_the_earliest_prior_mecasermin(build):
    renewal = b.medication_request("mr-2024", dict(INCRELEX), status="active", route="subcutaneous", authored="2024-02-01")
    first = b.medication_statement("ms-2022", dict(INCRELEX), status="completed", route="subcutaneous",
                                   effectiveDateTime=b.DROP, effectivePeriod={"start": "2022-11-07", "end": "2023-02-01"},
                                   dateAsserted="2023-02-01")
    somatropin = b.medication_request("mr-gh", "Genotropin 12 MG Cartridge", status="stopped", authored="2020-05-01")
    order = b.mecasermin_order()
    record = build(renewal, first, somatropin, order=order)
    assert record.treatment_start == date(2022, 11, 7)
    assert policy_treatment_start(record) == record.treatment_start     # the policy layer's reading agrees


def test_no_treatment_start_without_prior_mecasermin(build):
    record = build(b.medication_request("mr-gh", "Genotropin 12 MG Cartridge", authored="2020-05-01"),
                   order=b.mecasermin_order())
    assert record.treatment_start is None and not record.reauthorization


# --- epiphyses ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, status", [
    ("Bone age 15 years. Epiphyses are closed.", "closed"),
    ("Fused epiphyses of the distal radius and ulna.", "closed"),
    ("Complete epiphyseal fusion at the wrist.", "closed"),
    ("Physeal closure noted.", "closed"),
    ("Growth plates have fused.", "closed"),
    ("Closure of the epiphyses at the knee.", "closed"),
    ("Open epiphyses. Bone age 4 years.", "open"),
    ("The growth plates remain open.", "open"),
    ("No evidence of epiphyseal fusion.", "open"),
    ("Epiphyses not yet closed.", "open"),
    ("Epiphyseal closure: not yet.", "open"),
])
def test_epiphyses_in_report_conclusion(build, text, status):
    (e,) = build(b.diagnostic_report("dr1", "2024-02-01", text)).epiphyses
    assert (e.status, e.reference, e.date) == (status, "DiagnosticReport/dr1", date(2024, 2, 1))


@pytest.mark.parametrize("text", [
    "Partially fused epiphyses.", "Near complete epiphyseal fusion.",
    "Bone age 9 years, consistent with chronological age.",
])
def test_hedged_or_absent_phrases_give_no_evidence(build, text):
    assert build(b.diagnostic_report("dr1", "2024-02-01", text)).epiphyses == ()


@pytest.mark.parametrize("text", [
    # a hedge after the phrase: closure is not complete
    "Bone age 14 years 6 months (Greulich and Pyle). Epiphyseal closure is nearly complete.",
    "Epiphyseal closure is almost complete at the distal radius.",
    "Epiphyseal fusion appears to be nearly complete.",
    "Epiphyseal fusion is incomplete.",
    "Epiphyseal fusion in progress at the distal ulna.",
    "The growth plates are partially fused.",
    "Growth plates: partially fused.",
    "Distal radial and ulnar epiphyses closing.",
    "Near-complete epiphyseal fusion.",
])
def test_hedge_after_the_phrase_gives_no_closed_evidence(build, text):
    epiphyses = build(b.diagnostic_report("dr1", "2024-02-01", text)).epiphyses
    assert all(e.status != "closed" for e in epiphyses)


@pytest.mark.parametrize("text, status", [
    # structured report lines: a colon or a dash between the growth plates and the finding
    ("FINDINGS:\nBone age: 16 years.\nGrowth plates: closed.", "closed"),
    ("Epiphyses - fused.", "closed"),
    ("Epiphyses \u2013 fused.", "closed"),
    ("Physes: fused", "closed"),
    ("Growth plates: open.", "open"),
    ("Epiphyses: open", "open"),
    ("Growth plates: not fused.", "open"),
    ("Epiphyseal closure is complete.", "closed"),
])
def test_report_lines_with_a_colon_or_dash(build, text, status):
    (e,) = build(b.diagnostic_report("dr1", "2024-02-01", text)).epiphyses
    assert e.status == status and e.reference == "DiagnosticReport/dr1"


def test_epiphyses_in_observation_note_and_condition(build):
    bone = b.bone_age("ba1", "2024-02-01", 15.5, note=[{"text": "Closed growth plates at the knee."}])
    cond = b.condition("c1", text="Closure of epiphyses (premature)", onset="2023-12-01")
    cond["code"]["text"] = "Premature epiphyseal closure"
    record = build(bone, cond)
    assert {(e.status, e.reference) for e in record.epiphyses} == {("closed", "Observation/ba1"), ("closed", "Condition/c1")}


def test_epiphyses_in_refuted_condition_or_cancelled_report_are_ignored(build):
    cond = b.condition("c1", text="Closed epiphyses", verification="refuted")
    report = b.diagnostic_report("dr1", "2024-02-01", "Closed epiphyses.", status="cancelled")
    assert build(cond, report).epiphyses == ()


def test_epiphyses_in_an_imaging_observation_with_another_code(build):
    finding = b.observation("xr1", "2024-02-01", "36572-6", "XR Hand Left Views", category="imaging",
                            valueString="Distal radial and ulnar physes are fused.")
    (e,) = build(finding).epiphyses
    assert (e.status, e.reference, e.text) == ("closed", "Observation/xr1", "Distal radial and ulnar physes are fused")


def test_height_notes_are_not_read_for_epiphyses(build):
    """Only results that can describe the growth plates are read: not a stadiometer height."""
    height = b.height("h1", "2024-03-01", 104.0, note=[{"text": "closed epiphyses per parent"}])
    assert build(height).epiphyses == ()
