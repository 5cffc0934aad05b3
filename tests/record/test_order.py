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


# --- several dosage lines: the highest dose per administration is checked -------------------------

def _line(sequence: int, dose: dict | None, timing: dict, text: str, route: str | None = "subcutaneous",
          dose_range: bool = False) -> dict:
    """One dosageInstruction as an EHR sends it for a titration or a split morning/evening dose."""
    line: dict = {"sequence": sequence, "text": text, "timing": timing}
    if route is not None:
        line["route"] = b.ROUTES[route]
    if dose is not None:
        kind = "doseRange" if dose_range else "doseQuantity"
        line["doseAndRate"] = [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/dose-rate-type",
                                                     "code": "ordered", "display": "Ordered"}]}, kind: dose}]
    return line


def _bid(weeks: int | None = None) -> dict:
    timing = b.bid_timing()
    if weeks:
        timing = {**timing, "repeat": {**timing["repeat"], "boundsDuration": {
            "value": weeks, "unit": "wk", "system": b.UCUM, "code": "wk"}}}
    return timing


MORNING = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["CM"]}}
EVENING = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["CV"]}}


@pytest.mark.parametrize("lines, weight, mg, mg_per_kg, per_day, used, note_parts", [
    # titration: 0.04 mg/kg twice a day for a week, then 0.08 mg/kg twice a day
    ([_line(1, b.quantity(0.04, "mg/kg"), _bid(1), "0.04 mg/kg subcut BID with meals for 1 week"),
      _line(2, b.quantity(0.08, "mg/kg"), _bid(), "then 0.08 mg/kg subcut BID with meals")],
     FRESH_WEIGHT, 1.6, 0.08, 2, 2, ["2 dosage lines", "line 2", "compared in mg/kg", "ordered as 0.08 mg/kg"]),
    # mg/kg lines without a weight are still compared (in mg/kg); mg stays unknown
    ([_line(1, b.quantity(0.08, "mg/kg"), _bid(), "0.08 mg/kg BID"),
      _line(2, b.quantity(0.04, "mg/kg"), _bid(), "0.04 mg/kg BID")],
     None, None, 0.08, 2, 1, ["2 dosage lines", "line 1,"]),
    # split dose: 0.8 mg at breakfast, 1.2 mg at dinner — each line once a day
    ([_line(1, b.quantity(0.8, "mg"), MORNING, "0.8 mg with breakfast"),
      _line(2, b.quantity(1.2, "mg"), EVENING, "1.2 mg with dinner")],
     FRESH_WEIGHT, 1.2, 0.06, 1, 2, ["line 1: 0.8 mg", "line 2: 1.2 mg", "compared in mg"]),
    # mixed units: 0.12 mL (1.2 mg) beats 800 mcg (0.8 mg)
    ([_line(1, b.quantity(800, "mcg"), _bid(), "800 mcg BID"),
      _line(2, b.quantity(0.12, "mL"), _bid(), "0.12 mL BID")],
     FRESH_WEIGHT, 1.2, 0.06, 2, 2, ["line 2,", "0.12 mL × 10 mg/mL"]),
    # mg against mg/kg with a current weight: 0.1 mg/kg × 20 kg = 2 mg beats 1 mg
    ([_line(1, b.quantity(1.0, "mg"), _bid(), "1 mg BID"),
      _line(2, b.quantity(0.1, "mg/kg"), _bid(), "0.1 mg/kg BID")],
     FRESH_WEIGHT, 2.0, 0.1, 2, 2, ["line 2,", "compared in mg"]),
    # a dose range on the second line is checked at its top
    ([_line(1, b.quantity(0.8, "mg"), _bid(), "0.8 mg BID"),
      _line(2, {"low": b.quantity(0.8, "mg"), "high": b.quantity(1.6, "mg")}, _bid(), "0.8-1.6 mg BID", dose_range=True)],
     FRESH_WEIGHT, 1.6, 0.08, 2, 2, ["line 2,", "upper bound"]),
    # an instruction-only line (no dose) is passed over
    ([_line(1, None, {}, "Give within 20 minutes of a meal or snack; skip the dose if the meal is skipped"),
      _line(2, b.quantity(1.0, "mg"), _bid(), "1 mg BID")],
     FRESH_WEIGHT, 1.0, 0.05, 2, 2, ["line 1: no dose", "line 2,"]),
    # equal doses: the first line is used
    ([_line(1, b.quantity(1.0, "mg"), _bid(), "1 mg BID"),
      _line(2, b.quantity(1.0, "mg"), {"code": {"text": "three times a day"}}, "1 mg TID")],
     FRESH_WEIGHT, 1.0, 0.05, 2, 1, ["line 1,"]),
])
def test_several_dosage_lines_use_the_highest_dose(build, lines, weight, mg, mg_per_kg, per_day, used, note_parts):
    order = b.mecasermin_order()
    order["dosageInstruction"] = lines
    facts = build(*([weight] if weight else []), order=order).order
    assert facts.dose_mg == (pytest.approx(mg) if mg is not None else None)
    assert facts.mg_per_kg == pytest.approx(mg_per_kg)
    assert facts.per_day == per_day
    assert f"line {used}" in facts.dose_note
    for part in note_parts:
        assert part in facts.dose_note


@pytest.mark.parametrize("lines, weight, reason_part", [
    # a line with a dose that cannot be read: the highest dose on the order is unknown
    ([_line(1, b.quantity(0.8, "mg"), _bid(), "0.8 mg BID"),
      _line(2, b.quantity(1, "{pill}"), _bid(), "1 pill BID")],
     FRESH_WEIGHT, "dosage line 2 of 2: dose unit '{pill}' cannot be converted"),
    # mg against mg/kg without a weight cannot be compared
    ([_line(1, b.quantity(1.0, "mg"), _bid(), "1 mg BID"),
      _line(2, b.quantity(0.08, "mg/kg"), _bid(), "0.08 mg/kg BID")],
     None, "ordered in mg and in mg/kg and cannot be compared: no usable weight"),
])
def test_several_dosage_lines_that_cannot_be_compared(build, lines, weight, reason_part):
    order = b.mecasermin_order()
    order["dosageInstruction"] = lines
    facts = build(*([weight] if weight else []), order=order).order
    assert facts.dose_mg is None and facts.mg_per_kg is None
    assert reason_part in facts.dose_reason and facts.mg_per_kg_reason.startswith("dose unknown")
    assert "the order has 2 dosage lines" in facts.dose_note


def test_single_dosage_line_has_no_lines_note(build):
    assert _order(build, FRESH_WEIGHT).dose_note is None


@pytest.mark.parametrize("routes, route, text_part", [
    (("subcutaneous", "subcutaneous"), "subcutaneous", "Subcutaneous"),
    (("subcutaneous", "intravenous"), "intravenous", "Intravenous"),          # the line used (1.2 mg) is IV
    (("intravenous", "subcutaneous"), "intravenous", "dosage line 1 of 2"),   # IV on another line is reported too
    (("intravenous", None), "intravenous", "Intravenous (dosage line 1 of 2)"),  # used line: route only in text
    ((None, None), "subcutaneous", "subcutaneous"),                           # from the line's text
])
def test_route_across_dosage_lines(build, routes, route, text_part):
    order = b.mecasermin_order()
    order["dosageInstruction"] = [_line(1, b.quantity(0.8, "mg"), _bid(), "0.8 mg", route=routes[0]),
                                  _line(2, b.quantity(1.2, "mg"), _bid(), "1.2 mg subcutaneously", route=routes[1])]
    facts = build(FRESH_WEIGHT, order=order).order
    assert facts.route == route and text_part in facts.route_text
