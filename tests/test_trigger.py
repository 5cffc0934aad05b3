"""Every way an order can name mecasermin (docs/clinical-rules.md), and the look-alikes that must not match."""
import pytest

from service.trigger import ndc_to_11, order_is_mecasermin

NDC = "http://hl7.org/fhir/sid/ndc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"


def request_with(concept=None, **extra):
    order = {"resourceType": "MedicationRequest", "id": "mr-1", "status": "draft", "intent": "order",
             "subject": {"reference": "Patient/p1"}}
    if concept is not None:
        order["medicationCodeableConcept"] = concept
    order.update(extra)
    return order


@pytest.mark.parametrize("concept", [
    {"text": "mecasermin 10 MG/ML Injectable Solution [Increlex]"},
    {"text": "INCRELEX 40 mg/4 mL vial"},
    {"text": "rhIGF-1 (recombinant IGF-1)"},
    {"coding": [{"system": RXNORM, "code": "999999", "display": "mecasermin 10 MG/ML Injectable Solution"}]},
    {"coding": [{"system": NDC, "code": "15054-1040-05"}]},
    {"coding": [{"system": NDC, "code": "15054-1040-5"}]},
    {"coding": [{"system": NDC, "code": "15054104005"}]},
    {"coding": [{"system": NDC, "code": "71863-0216-04"}]},
    {"coding": [{"system": NDC, "code": "71863-216-04"}]},
    {"coding": [{"system": HCPCS, "code": "J2170"}]},
    {"coding": [{"system": HCPCS, "code": "j2170"}]},
    # OID forms, as C-CDA-converted and older interfaces send them
    {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.69", "code": "15054-1040-05"}]},
    {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.285", "code": "J2170"}]},
    {"coding": [{"system": "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "code": "J2170"}]},
])
def test_names_of_mecasermin_match(concept):
    assert order_is_mecasermin(request_with(concept))


@pytest.mark.parametrize("concept", [
    {"text": "mecasermin rinfabate 36 mg/0.6 mL [Iplex]"},
    {"coding": [{"system": RXNORM, "code": "1", "display": "Iplex (mecasermin rinfabate)"}]},
    {"text": "somatropin 5 MG/1.5 ML Cartridge [Genotropin]"},
    {"coding": [{"system": NDC, "code": "15054-1040-06"}]},
    {"coding": [{"system": NDC, "code": "0015054104005"}]},
    {"coding": [{"system": HCPCS, "code": "J2941"}]},
    {"coding": [{"system": "http://example.org/local", "code": "J2170"}]},
    {"text": "amoxicillin 500 MG Oral Capsule"},
])
def test_look_alikes_and_other_drugs_do_not_match(concept):
    assert not order_is_mecasermin(request_with(concept))


def test_order_without_a_drug_yet_does_not_match():
    # The sandbox fires order-select before a drug is chosen.
    assert not order_is_mecasermin(request_with(None))


def test_configured_rxnorm_code_matches_only_when_configured():
    concept = {"coding": [{"system": RXNORM, "code": "1234567"}]}
    assert not order_is_mecasermin(request_with(concept))
    assert order_is_mecasermin(request_with(concept), rxnorm_codes=("1234567",))
    oid = {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.88", "code": "1234567"}]}
    assert order_is_mecasermin(request_with(oid), rxnorm_codes=("1234567",))


def test_contained_medication():
    order = request_with(None, medicationReference={"reference": "#med"},
                         contained=[{"resourceType": "Medication", "id": "med",
                                     "code": {"coding": [{"system": NDC, "code": "15054-1040-05"}]}}])
    assert order_is_mecasermin(order)


def test_referenced_medication_from_draft_orders_or_prefetch():
    order = request_with(None, medicationReference={"reference": "Medication/m1"})
    medication = {"resourceType": "Medication", "id": "m1", "code": {"text": "Increlex"}}
    assert order_is_mecasermin(order, {"Medication/m1": medication})
    assert order_is_mecasermin(
        request_with(None, medicationReference={"reference": "https://ehr.example/fhir/Medication/m1"}),
        {"Medication/m1": medication})
    assert not order_is_mecasermin(order, {})


def test_reference_display_names_the_drug():
    assert order_is_mecasermin(request_with(None, medicationReference={"display": "Increlex 10 mg/mL"}))


@pytest.mark.parametrize("raw,expected", [
    ("15054-1040-05", "15054104005"), ("15054-1040-5", "15054104005"), ("71863-216-04", "71863021604"),
    ("71863021604", "71863021604"), ("1505410405", None), ("abc-1040-05", None), ("123456-1-1", None),
])
def test_ndc_normalisation(raw, expected):
    assert ndc_to_11(raw) == expected
