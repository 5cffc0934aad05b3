"""The draft order: dose, frequency, route, mg/kg and dispense."""
from __future__ import annotations

import pytest

from tests.record import builders as b

GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
FRESH_WEIGHT = b.weight("w1", "2024-03-01", 20.0)


def _order(build, *resources, **order_fields):
    order = b.mecasermin_order(**order_fields)
    return build(*resources, order=order).order


@pytest.mark.parametrize("dose, unit, mg, note_part", [
    (0.8, "mg", 0.8, None),
    (800, "mcg", 0.8, "800 mcg = 0.8 mg"),
    (800, "ug", 0.8, "800 ug = 0.8 mg"),
    (800, "\u00b5g", 0.8, "= 0.8 mg"),
    (0.08, "mL", 0.8, "0.08 mL × 10 mg/mL = 0.8 mg"),
    (0.08, "ml", 0.8, "10 mg/mL"),
])
def test_dose_in_mg(build, dose, unit, mg, note_part):
    order = _order(build, FRESH_WEIGHT, dose=(dose, unit))
    assert order.dose_mg == pytest.approx(mg) and order.dose_reason is None
    assert order.dose_original_value == dose and order.dose_original_unit == unit
    assert order.mg_per_kg == pytest.approx(0.04)
    if note_part:
        assert note_part in order.dose_note
    else:
        assert order.dose_note is None


def test_weight_based_dose_is_converted_with_the_weight(build):
    order = _order(build, FRESH_WEIGHT, dose=(0.04, "mg/kg"))
    assert order.mg_per_kg == 0.04 and order.dose_mg == pytest.approx(0.8)
    assert "ordered as 0.04 mg/kg" in order.dose_note and "20 kg of 2024-03-01" in order.dose_note


def test_weight_based_dose_without_weight(build):
    order = _order(build, dose=(0.04, "mg/kg"))
    assert order.mg_per_kg == 0.04 and order.dose_mg is None and "no usable weight" in order.dose_reason


@pytest.mark.parametrize("dose, reason_part", [
    ((1, "{pill}"), "'{pill}' cannot be converted"),     # the CDS Hooks sandbox's dose unit
    ((1, "vial"), "cannot be converted"),
    ((0, "mg"), "no positive numeric value"),
    (None, "no dose quantity"),
])
def test_unknown_dose(build, dose, reason_part):
    order = _order(build, FRESH_WEIGHT, dose=dose)
    assert order.dose_mg is None and reason_part in order.dose_reason
    assert order.mg_per_kg is None and order.mg_per_kg_reason.startswith("dose unknown")


def test_dose_range_uses_the_upper_bound(build):
    order = b.mecasermin_order(dose=None)
    order["dosageInstruction"][0]["doseAndRate"] = [{"doseRange": {"low": b.quantity(0.8, "mg"), "high": b.quantity(1.6, "mg")}}]
    facts = build(FRESH_WEIGHT, order=order).order
    assert facts.dose_mg == 1.6 and "upper bound" in facts.dose_note and facts.mg_per_kg == 0.08


def test_dose_and_rate_as_single_object(build):
    order = b.mecasermin_order()
    order["dosageInstruction"][0]["doseAndRate"] = {"doseQuantity": b.quantity(1.2, "mg")}
    assert build(order=order).order.dose_mg == 1.2


@pytest.mark.parametrize("timing, per_day", [
    ({"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}, 2),
    ({"repeat": {"frequency": 1, "period": 12, "periodUnit": "h"}}, 2),
    ({"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}}, 3),
    ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}, 1),
    ({"repeat": {"frequency": 14, "period": 1, "periodUnit": "wk"}}, 2),
    ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}}, None),
    ({"repeat": {"when": ["CM", "CV"]}}, 2),
    ({"repeat": {"timeOfDay": ["07:30:00", "18:00:00"]}}, 2),
    ({"code": {"coding": [{"system": GTS, "code": "BID", "display": "BID"}]}}, 2),
    ({"code": {"coding": [{"system": GTS, "code": "TID"}]}}, 3),
    ({"code": {"coding": [{"system": GTS, "code": "QD"}]}}, 1),
    ({"code": {"coding": [{"system": GTS, "code": "Q12H"}]}}, 2),
    ({"code": {"text": "b.i.d. with meals"}}, 2),
    ({"code": {"text": "Twice daily"}}, 2),
    ({"code": {"text": "three times a day"}}, 3),
    ({"code": {"text": "every 12 hours"}}, 2),
    ({"code": {"text": "once daily"}}, 1),
])
def test_administrations_per_day(build, timing, per_day):
    order = b.mecasermin_order(timing=timing)
    order["dosageInstruction"][0].pop("text")
    facts = build(order=order).order
    assert facts.per_day == per_day and facts.frequency_text


def test_frequency_from_dosage_text(build):
    order = b.mecasermin_order(timing={})
    assert build(order=order).order.per_day == 2        # "… twice a day within 20 minutes of a meal"


def test_no_frequency(build):
    order = b.mecasermin_order(timing={})
    order["dosageInstruction"][0].pop("text")
    facts = build(order=order).order
    assert facts.per_day is None and facts.frequency_text is None


@pytest.mark.parametrize("route, expected", [
    ("subcutaneous", "subcutaneous"),
    ("intravenous", "intravenous"),
    ({"coding": [{"system": "http://ncithesaurus-stage.nci.nih.gov", "code": "C38299", "display": "SUBCUTANEOUS"}]},
     "subcutaneous"),
    ({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration", "code": "IVINJ"}]},
     "intravenous"),
    ({"text": "SubQ"}, "subcutaneous"),
    ({"text": "subcutaneous injection"}, "subcutaneous"),
    ({"text": "IV push"}, "intravenous"),
    ({"text": "Intravenous"}, "intravenous"),
    ({"coding": [{"system": b.SNOMED, "code": "78421000", "display": "Intramuscular route"}]}, "other"),
])
def test_route(build, route, expected):
    order = b.mecasermin_order(route=route)
    order["dosageInstruction"][0].pop("text")
    facts = build(order=order).order
    assert facts.route == expected and facts.route_text


def test_route_not_stated(build):
    order = b.mecasermin_order(route=None)
    order["dosageInstruction"][0].pop("text")
    assert build(order=order).order.route is None


def test_route_from_dosage_text_when_no_route_field(build):
    assert _order(build, route=None).route == "subcutaneous"     # "inject … under the skin"


@pytest.mark.parametrize("weight_date, mg_per_kg, reason_part", [
    ("2024-03-01", 0.04, None),
    ("2023-12-15", 0.04, None),            # 90 days before today: still usable
    ("2023-12-14", None, "91 days old"),
])
def test_weight_staleness(build, weight_date, mg_per_kg, reason_part):
    order = _order(build, b.weight("w1", weight_date, 20.0))
    assert order.mg_per_kg == mg_per_kg
    assert order.weight_reference == "Observation/w1" and order.weight_kg == 20.0
    if reason_part:
        assert reason_part in order.mg_per_kg_reason


def test_latest_usable_weight_is_used(build):
    order = _order(build, b.weight("old", "2024-01-10", 19.0), b.weight("new", "2024-03-10", 16.0),
                   b.weight("bad", "2024-03-12", 16.0, unit="stone"))
    assert order.weight_reference == "Observation/new" and order.mg_per_kg == 0.05


def test_no_weight(build):
    order = _order(build)
    assert order.mg_per_kg is None and order.mg_per_kg_reason == "no usable weight on file"


def test_order_identity_dispense_and_text(build):
    order = _order(build, FRESH_WEIGHT)
    assert order.reference == "MedicationRequest/medrx-draft-1" and order.resource_id == "medrx-draft-1"
    assert order.medication_text == "mecasermin 10 MG/ML Injectable Solution [Increlex]"
    assert (order.dispense_value, order.dispense_unit) == (4.0, "vial")


def test_sandbox_shaped_order(build):
    """category and reasonCode as single objects, no dispense, no timing."""
    order = b.mecasermin_order(timing={}, reason=b.concept(b.ICD10CM, "E34.321", "Primary IGF-1 deficiency"))
    order["category"] = order["category"][0]
    order.pop("dispenseRequest")
    facts = build(FRESH_WEIGHT, order=order).order
    assert facts.reasons[0].code == "E34.321" and facts.dispense_value is None and facts.dose_mg == 0.8


def test_malformed_order_does_not_break_the_record(build):
    order = {"resourceType": "MedicationRequest", "id": "x", "dosageInstruction": "0.8 mg BID",
             "reasonCode": 5, "dispenseRequest": {"quantity": "four"}}
    record = build(b.height("h1", "2024-03-01", 104.0), order=order)
    assert record.heights and record.order is not None and record.order.dose_mg is None
