"""The SMART app's wording helpers: clinical notation, no FHIR ids, LOINC names, NPI, letter details."""
from __future__ import annotations

import pytest

from service.smart.letter_details import EnteredError, parse_entered
from service.smart.prescriber import npi_valid
from service.smart.present import clinical_notation, lab_words, without_fhir_ids


@pytest.mark.parametrize("raw, shown", [
    ("IGF-1 SDS <= -3", "IGF-1 SDS \u2264 \u22123.0"),
    ("peak stimulated GH >= 10 ug/L", "peak stimulated GH \u2265 10 \u00b5g/L"),
    ("meets the limit (>= 10 ug/L).", "meets the limit (\u2265 10 \u00b5g/L)."),
    ("SDS -4.83 on 2026-05-12 meets the limit (<= -3).", "SDS \u22124.83 on 2026-05-12 meets the limit (\u2264 \u22123.0)."),
    ("height SDS < -2.25 (centile 1.2)", "height SDS < \u22122.25 (centile 1.2)"),
    ("Bone age 5.5 y meets the limit (< 15).", "Bone age 5.5 y meets the limit (< 15)."),
    ("dates stay 2026-05-12 and ranges 60-300", "dates stay 2026-05-12 and ranges 60-300"),
    ("", ""),
])
def test_clinical_notation(raw, shown):
    assert clinical_notation(raw) == shown


@pytest.mark.parametrize("raw, shown", [
    ("E34.321 establishes it (see Condition/demo-1, Observation/h-13).", "E34.321 establishes it."),
    ("confirm: 'x' (Condition/abc) names a malignancy", "confirm: 'x' names a malignancy"),
    ("order reason MedicationRequest/mr-1#reasonCode", "order reason"),
    ("0.12 mg/kg and/or 10 ug/L stay", "0.12 mg/kg and/or 10 ug/L stay"),
])
def test_without_fhir_ids(raw, shown):
    assert without_fhir_ids(raw) == shown


def test_linear_on_long_text():
    text = "Observation/x " * 20000 + "(see " * 20000
    assert len(without_fhir_ids(text)) < len(text) and len(clinical_notation(text)) >= len(text) - 1


def test_lab_words():
    assert lab_words("Somatotropin [Mass/volume] in Serum or Plasma --1 hour post XXX challenge") == \
        "Growth hormone (serum), 1 hour after a stimulation test (agent not stated in the result)"
    assert lab_words("Insulin-like growth factor-I [Mass/volume] in Serum or Plasma: 20 ng/mL") == "IGF-1 (serum): 20 ng/mL"
    assert lab_words("Somatotropin [Mass/volume] in Serum or Plasma, 2026-08-12") == "Growth hormone (serum), 2026-08-12"
    assert lab_words("Somatotropin [Mass/volume] in Serum or Plasma --pre dose arginine: 0.4 ug/L") == \
        "Growth hormone (serum), pre dose arginine: 0.4 ug/L"
    assert lab_words("Body height") == "Body height" and lab_words(None) is None


def test_npi_check_digit():
    assert npi_valid("1234567893")                 # the CMS worked example
    assert not npi_valid("1234567890") and not npi_valid("123456789") and not npi_valid("12345678a3")


def test_parse_entered():
    assert parse_entered({"npi": " 1234567893 ", "dose_mg": "0.80", "frequency": "2", "quantity": "  4   vials "},
                         {}) == {"npi": "1234567893", "dose_mg": "0.8", "frequency": "2", "quantity": "4 vials"}
    assert parse_entered({"quantity": ""}, {"quantity": "4 vials", "npi": "1234567893"}) == {"npi": "1234567893"}
    for form in ({"npi": "1234567890"}, {"dose_mg": "abc"}, {"dose_mg": "0"}, {"dose_mg": "nan"}, {"dose_mg": "51"},
                 {"frequency": "3"}, {"phone": "call me"}, {"quantity": "x" * 201}):
        with pytest.raises(EnteredError):
            parse_entered(form, {})
