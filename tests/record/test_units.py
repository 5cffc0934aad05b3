"""Every unit conversion, through the Observation reader as an EHR would send it."""
from __future__ import annotations

import pytest

from service.record import units
from tests.record import builders as b


@pytest.mark.parametrize("value, unit, ucum, cm", [
    (104.2, "cm", "cm", 104.2),
    (1.042, "m", "m", 104.2),
    (1042, "mm", "mm", 104.2),
    (41.0, "in", "[in_i]", 104.14),
    (41.0, "in", "in", 104.14),            # free-text "in" as the code
    (41.0, "inches", "inches", 104.14),
    (104.2, "CM", "CM", 104.2),            # case as typed by a clinician
])
def test_height_units(build, value, unit, ucum, cm):
    record = build(b.height("h1", "2024-03-01", value, unit=unit, ucum=ucum))
    (h,) = record.heights
    assert h.usable and h.unit == "cm" and h.value == pytest.approx(cm)
    assert h.original_value == value and h.original_unit == unit


@pytest.mark.parametrize("value, unit, ucum, kg", [
    (20.4, "kg", "kg", 20.4),
    (20400, "g", "g", 20.4),
    (45.0, "lb", "[lb_av]", 20.4117),
    (45.0, "lbs", "lbs", 20.4117),
])
def test_weight_units(build, value, unit, ucum, kg):
    (w,) = build(b.weight("w1", "2024-03-01", value, unit=unit, ucum=ucum)).weights
    assert w.usable and w.unit == "kg" and w.value == pytest.approx(kg, abs=1e-4)


@pytest.mark.parametrize("value, unit, ng_ml", [
    (25.0, "ng/mL", 25.0),
    (25.0, "ug/L", 25.0),
    (25.0, "\u00b5g/L", 25.0),       # micro sign
    (25.0, "\u03bcg/L", 25.0),       # Greek mu
    (25.0, "mcg/L", 25.0),
    (3.27, "nmol/L", 25.0122),
])
def test_igf1_units(build, value, unit, ng_ml):
    (i,) = build(b.igf1("i1", "2024-01-05", value, unit=unit, low=None)).igf1
    assert i.usable and i.unit == "ng/mL" and i.value == pytest.approx(ng_ml, abs=1e-4)


@pytest.mark.parametrize("value, unit, ug_l", [
    (12.0, "ng/mL", 12.0),
    (12.0, "ug/L", 12.0),
    (36.0, "m[IU]/L", 12.0),
    (36.0, "mIU/L", 12.0),
    (36.0, "mU/L", 12.0),
    (36.0, "u[IU]/mL", 12.0),
    (36.0, "\u00b5IU/mL", 12.0),
])
def test_gh_units(build, value, unit, ug_l):
    (g,) = build(b.gh("g1", "2024-01-20", value, unit=unit)).gh_results
    assert g.usable and g.unit == "ug/L" and g.value == pytest.approx(ug_l)


@pytest.mark.parametrize("value, unit, years", [
    (4.5, "a", 4.5), (54, "mo", 4.5), (4.5, "yr", 4.5), (54, "months", 4.5), (4.5, "years", 4.5),
])
def test_bone_age_units(build, value, unit, years):
    (ba,) = build(b.bone_age("ba1", "2024-02-01", value, unit=unit)).bone_ages
    assert ba.usable and ba.unit == "a" and ba.value == pytest.approx(years)


@pytest.mark.parametrize("kind, builder", [
    ("height", lambda: b.height("x", "2024-03-01", 41, unit="ft", ucum="[ft_i]")),
    ("weight", lambda: b.weight("x", "2024-03-01", 3, unit="stone", ucum="stone")),
    ("igf1", lambda: b.igf1("x", "2024-01-05", 25, unit="mg/dL", low=None)),
    ("gh", lambda: b.gh("x", "2024-01-05", 25, unit="pmol/L")),
    ("bone_age", lambda: b.bone_age("x", "2024-01-05", 200, unit="wk")),
])
def test_unknown_units_are_unusable_with_reason(build, kind, builder):
    record = build(builder())
    facts = {"height": record.heights, "weight": record.weights, "igf1": record.igf1,
             "gh": record.gh_results, "bone_age": record.bone_ages}[kind]
    (fact,) = facts
    assert not fact.usable and fact.value is None and "not recognised" in fact.reason
    assert any(s.reference == "Observation/x" and "not recognised" in s.reason for s in record.skipped)


def test_quantity_without_unit_is_unusable(build):
    resource = b.height("h1", "2024-03-01", 104.2)
    resource["valueQuantity"] = {"value": 104.2}
    (h,) = build(resource).heights
    assert not h.usable and h.reason == "no unit"


def test_ucum_code_wins_over_display_text(build):
    resource = b.height("h1", "2024-03-01", 41)
    resource["valueQuantity"] = {"value": 41, "unit": "inches (in)", "system": b.UCUM, "code": "[in_i]"}
    (h,) = build(resource).heights
    assert h.value == pytest.approx(104.14) and h.original_unit == "inches (in)"


@pytest.mark.parametrize("raw, expected", [(True, None), ("12", None), (float("nan"), None), (float("inf"), None),
                                           (12, 12.0), (1.5, 1.5)])
def test_number_accepts_only_finite_json_numbers(raw, expected):
    assert units.number(raw) == expected
