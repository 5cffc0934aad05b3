"""Partial dates (year, year-month) for the birth date and for measurements, and reference ranges
chosen by the patient's age and sex on the sample date."""
from __future__ import annotations

from datetime import date

import pytest

from tests.record import builders as b

# --- partial birth dates ----------------------------------------------------------------------------


def test_year_month_birth_date_keeps_its_span(build):
    facts = build(b.patient(birth_date="2018-03")).patient
    assert (facts.birth_date, facts.birth_date_last, facts.birth_date_text) == (date(2018, 3, 1), date(2018, 3, 31), "2018-03")
    assert facts.age_years is None
    young, old = facts.age_range
    assert young == pytest.approx(5.95, abs=0.01) and old == pytest.approx(6.04, abs=0.01)


def test_full_birth_date_has_a_single_age(build):
    facts = build(b.patient(birth_date="2018-03-14")).patient
    assert facts.age_range == (6.0, 6.0) and facts.birth_date_last is None and facts.birth_date_text is None


def test_birth_this_month_is_not_after_today(build):
    facts = build(b.patient(birth_date="2024-03")).patient
    assert facts.birth_date_last == date(2024, 3, 14) and facts.age_range[0] == 0.0


def test_year_month_birth_date_does_not_make_heights_unusable(build):
    """A month of uncertainty moves a 6-year-old's SDS by a few hundredths: the height still counts."""
    record = build(b.patient(birth_date="2018-03"), b.height("h1", "2024-03-01", 104.0))
    (h,) = record.heights
    assert h.usable
    assert h.sds is not None or h.sds_range is not None
    low, high = h.sds_range if h.sds is None else (h.sds, h.sds)
    assert -3.0 < low <= high < -1.0 and high - low < 0.15
    assert "known only from 2018-03-01 to 2018-03-31" in (h.sds_reason or "") or h.sds is not None


def test_year_only_birth_date_gives_a_wide_sds_range(build):
    (h,) = build(b.patient(birth_date="2018"), b.height("h1", "2024-03-01", 104.0)).heights
    low, high = h.sds_range
    assert h.sds is None and high - low > 0.5
    assert "the height SDS is between" in h.sds_reason


def test_partial_birth_date_that_may_be_under_two_gives_no_sds(build):
    (h,) = build(b.patient(birth_date="2022-03"), b.height("h1", "2024-03-10", 84.0)).heights
    assert h.sds is None and h.sds_range is None and "under 2 years" in h.sds_reason


def test_height_dated_to_the_month(build):
    height = b.height("h1", None, 104.0)
    height["effectiveDateTime"] = "2024-02"
    (h,) = build(height).heights
    assert (h.usable, h.date, h.date_last, h.age_years) == (True, date(2024, 2, 1), date(2024, 2, 29), None)
    assert h.sds is not None or h.sds_range is not None


def test_measurement_dated_this_month_is_not_after_today(build):
    height = b.height("h1", None, 104.0)
    height["effectiveDateTime"] = "2024-03"
    (h,) = build(height).heights
    assert h.usable and h.date_last == date(2024, 3, 14)


def test_heights_dated_to_the_month_are_not_paired_for_velocity(build):
    older = b.height("h1", None, 98.0)
    older["effectiveDateTime"] = "2023-03"
    record = build(older, b.height("h2", "2024-03-01", 104.0))
    assert record.growth_velocity.cm_per_year is None


def test_report_bone_age_dated_to_the_month(build):
    report = b.diagnostic_report("dr1", "2024-02-01", "Bone age 5 years.")
    report["effectiveDateTime"] = "2024-02"
    report.pop("issued")
    (ba,) = build(report).bone_ages
    assert (ba.value, ba.date, ba.date_last, ba.usable) == (5.0, date(2024, 2, 1), date(2024, 2, 29), True)


# --- reference ranges -------------------------------------------------------------------------------

def band(low, high, *, sex=None, age=None, unit="ng/mL", age_unit="a", **extra):
    entry = b.reference_range(low, high, unit, **extra)
    if sex:
        entry["appliesTo"] = [{"coding": [{"system": "http://hl7.org/fhir/administrative-gender", "code": sex}]}]
    if age:
        entry["age"] = {"low": b.quantity(age[0], age_unit), "high": b.quantity(age[1], age_unit)}
    return entry


def igf1_with(*ranges, value=60):
    return b.igf1("i1", "2024-01-05", value, referenceRange=list(ranges))


BOYS_AND_GIRLS = (band(100, 400, sex="female", age=(5, 6)), band(39, 191, sex="male", age=(5, 6)))


def test_a_boy_is_judged_by_the_boys_band(build):
    (i,) = build(igf1_with(*BOYS_AND_GIRLS, value=35)).igf1
    assert (i.range_low, i.range_high) == (39, 191) and i.sds == pytest.approx(-2.27, abs=0.01)


def test_a_girl_is_judged_by_the_girls_band(build):
    (i,) = build(b.patient(gender="female"), igf1_with(*BOYS_AND_GIRLS, value=35)).igf1
    assert (i.range_low, i.range_high) == (100, 400) and i.sds < -3


def test_sex_coded_in_snomed_or_as_text(build):
    ranges = [band(100, 400, age=(5, 6)), band(39, 191, age=(5, 6))]
    ranges[0]["appliesTo"] = [{"coding": [{"system": "http://snomed.info/sct", "code": "248152002", "display": "Female"}]}]
    ranges[1]["appliesTo"] = [{"text": "Boys"}]
    (i,) = build(igf1_with(*ranges)).igf1
    assert (i.range_low, i.range_high) == (39, 191)


def test_whole_year_bands_cover_the_completed_years(build):
    """5.8 years old: "5–5 years" is the band, though 5.8 > 5."""
    ranges = [band(30, 180, sex="male", age=(3, 4)), band(39, 191, sex="male", age=(5, 5)),
              band(60, 290, sex="male", age=(6, 8))]
    (i,) = build(igf1_with(*ranges)).igf1
    assert (i.range_low, i.range_high) == (39, 191)


def test_bands_in_months(build):
    ranges = [band(30, 180, age=(24, 60), age_unit="mo"), band(39, 191, age=(60, 84), age_unit="mo")]
    (i,) = build(igf1_with(*ranges)).igf1
    assert (i.range_low, i.range_high) == (39, 191)


@pytest.mark.parametrize("ranges, patient, reason", [
    ((band(60, 290, sex="male", age=(8, 9)), band(80, 350, sex="male", age=(10, 11))), b.patient(),
     "no reference range of the result applies to a male aged 5.8 y"),
    (BOYS_AND_GIRLS, b.patient(gender="unknown"), "the patient's sex"),
    ((band(39, 191, age=(5, 6)),), b.patient(birth_date=None), "age on the sample date, which is unknown"),
    ((band(39, 191, age=(4, 5)), band(60, 290, age=(6, 7))), b.patient(birth_date="2018"),
     "falls in more than one of the result's age bands"),
    ((band(39, 191, age=(5, 6)), band(50, 250, age=(5, 6))), b.patient(), "more than one of the result's reference ranges"),
    ((dict(band(39, 191), appliesTo=[{"text": "Tanner stage II"}]),), b.patient(), "'Tanner stage II'"),
    ((band(39, 191, age=(5, 6), age_unit="decades"),), b.patient(), "units that cannot be read"),
    ((band(39, 191, unit="IU/mL"),), b.patient(), "unit 'IU/mL' not recognised"),
    ((dict(band(39, 191), type={"coding": [{"code": "therapeutic"}]}),), b.patient(), "no normal reference range"),
])
def test_no_applicable_range_is_unknown_with_the_reason(build, ranges, patient, reason):
    (i,) = build(patient, igf1_with(*ranges)).igf1
    assert i.usable and i.sds is None and reason in i.sds_reason


def test_a_general_range_is_the_fallback_when_no_band_applies(build):
    ranges = [band(60, 290, sex="male", age=(8, 9)), {"low": b.quantity(39, "ng/mL"), "high": b.quantity(191, "ng/mL")}]
    (i,) = build(igf1_with(*ranges)).igf1
    assert (i.range_low, i.range_high) == (39, 191)


@pytest.mark.parametrize("text, bounds, reason", [
    ("53 - 331 ng/mL", (53, 331), None),
    ("53-331", (53, 331), None),
    ("53 to 331 ug/L", (53, 331), None),
    ("6.93 \u2013 43.27 nmol/L", (53.0, 331.0), None),
    ("Male 6-8 y: 53-331 ng/mL", None, "not one range"),
    ("<331 ng/mL", None, "not one range"),
    ("53 - 331 mg/dL", None, "not recognised"),
])
def test_range_given_only_as_text(build, text, bounds, reason):
    (i,) = build(igf1_with({"text": text})).igf1
    if bounds:
        assert (round(i.range_low), round(i.range_high)) == bounds and i.sds_reason is None
    else:
        assert i.sds is None and reason in i.sds_reason
