"""Observations: heights with SDS, reported scores, IGF-1, GH, bone age, and every way a result
can be unusable."""
from __future__ import annotations

from datetime import date

import pytest

from service.record import peak_gh
from tests.record import builders as b
from tests.record.conftest import TODAY


# --- heights --------------------------------------------------------------------------------------

def test_height_has_age_sds_and_centile(build):
    (h,) = build(b.height("h1", "2024-03-14", 100.0)).heights
    assert h.age_years == 6.0 and h.sds == pytest.approx(-3.02, abs=0.02) and h.centile == pytest.approx(0.12, abs=0.01)
    assert h.reference == "Observation/h1" and h.date == date(2024, 3, 14) and h.code == "8302-2"


@pytest.mark.parametrize("birth, measured, has_sds, reason_part", [
    ("2018-03-14", "2020-03-14", True, None),             # second birthday: 2.0 y exactly
    ("2018-03-14", "2020-03-13", False, "under 2 years"),  # the day before
    ("2004-03-14", "2024-03-14", True, None),             # twentieth birthday: 20.0 y exactly
    ("2004-03-13", "2024-03-14", False, "over 20 years"),
])
def test_height_sds_age_boundaries(build, birth, measured, has_sds, reason_part):
    record = build(b.patient(birth_date=birth), b.height("h1", measured, 86.0 if measured < "2021" else 170.0))
    (h,) = record.heights
    assert h.usable
    assert (h.sds is not None) is has_sds
    if reason_part:
        assert reason_part in h.sds_reason


def test_girl_by_birthsex_extension_uses_female_table(build):
    boy = build(b.height("h1", "2024-03-14", 110.0)).heights[0]
    girl = build(b.patient(gender="male", birthsex="F"), b.height("h1", "2024-03-14", 110.0)).heights[0]
    assert boy.sds != girl.sds


def test_height_without_patient_has_no_sds(build):
    record = build(b.height("h1", "2024-03-14", 100.0), with_patient=False)
    (h,) = record.heights
    assert h.usable and h.sds is None and h.sds_reason == "birth date unknown"
    assert record.patient is None and any("no Patient" in n for n in record.notes)


def test_height_before_birth_has_no_sds(build):
    (h,) = build(b.height("h1", "2017-01-10", 50.0)).heights
    assert h.sds is None and "before the birth date" in h.sds_reason


def test_standing_height_code_is_a_height(build):
    resource = b.height("h1", "2024-03-01", 104.0)
    resource["code"] = b.concept(b.LOINC, "8308-9", "Body height --standing")
    assert len(build(resource).heights) == 1


def test_heights_newest_first(build):
    record = build(b.height("a", "2022-03-01", 92.0), b.height("c", "2024-03-01", 100.0),
                   b.height("b", "2023-03-01", 96.0))
    assert [h.reference for h in record.heights] == ["Observation/c", "Observation/b", "Observation/a"]


# --- reported height scores -----------------------------------------------------------------------

def test_reported_height_zscore_is_kept(build):
    (score,) = build(b.height_zscore("z1", "2024-03-01", -3.4)).height_scores
    assert (score.kind, score.value, score.unit, score.usable, score.code) == ("height_sds", -3.4, "1", True, "1153604005")


@pytest.mark.parametrize("code", ["8303-0", "1153605006"])
def test_reported_percentile_is_kept_and_converted(build, code):
    scores = build(b.height_percentile("p1", "2024-03-01", 1.2, code=code)).height_scores
    kinds = {s.kind: s for s in scores}
    assert kinds["height_centile"].value == 1.2 and kinds["height_centile"].unit == "%"
    z = kinds["height_sds"]
    assert z.value == pytest.approx(-2.257, abs=0.001) and z.unit == "1" and z.original_value == 1.2 and z.original_unit == "%"
    assert z.reference == "Observation/p1" and z.code == code


def test_percentile_with_comparator_keeps_it_on_the_sds(build):
    resource = b.height_percentile("p1", "2024-03-01", 1)
    resource["valueQuantity"]["comparator"] = "<"
    z = [s for s in build(resource).height_scores if s.kind == "height_sds"][0]
    assert z.comparator == "<" and z.value == pytest.approx(-2.326, abs=0.001)


def test_percentile_of_zero_has_no_sds(build):
    scores = build(b.height_percentile("p1", "2024-03-01", 0)).height_scores
    z = [s for s in scores if s.kind == "height_sds"][0]
    assert not z.usable and "no finite SDS" in z.reason


def test_zscore_with_a_concentration_unit_is_unusable(build):
    (score,) = build(b.height_zscore("z1", "2024-03-01", -3.4, valueQuantity=b.quantity(-3.4, "cm"))).height_scores
    assert not score.usable and "not a score unit" in score.reason


# --- IGF-1 ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, unit, low, high, range_unit, sds", [
    (25.0, "ng/mL", 60, 300, None, -4.18),          # docs/clinical-rules.md example: ≈ −4.2
    (3.27, "nmol/L", 60, 300, "ng/mL", -4.18),      # value in nmol/L, range in ng/mL
    (3.27, "nmol/L", 7.84, 39.22, None, -4.18),     # both in nmol/L
    (134.16, "ng/mL", 60, 300, None, 0.0),          # geometric middle of the range
    (300.0, "ng/mL", 60, 300, None, 2.0),
])
def test_igf1_sds_from_reference_range(build, value, unit, low, high, range_unit, sds):
    (i,) = build(b.igf1("i1", "2024-01-05", value, unit=unit, low=low, high=high, range_unit=range_unit)).igf1
    assert i.usable and i.sds == pytest.approx(sds, abs=0.01) and i.sds_reason is None
    assert i.range_low == pytest.approx(60, abs=0.05) and i.range_high == pytest.approx(300, abs=0.05)


def test_igf1_range_bound_without_unit_takes_the_value_unit(build):
    resource = b.igf1("i1", "2024-01-05", 3.27, unit="nmol/L", low=None)
    resource["referenceRange"] = [{"low": {"value": 7.84}, "high": {"value": 39.22}}]
    (i,) = build(resource).igf1
    assert i.range_low == pytest.approx(59.97, abs=0.01) and i.sds == pytest.approx(-4.18, abs=0.01)


@pytest.mark.parametrize("value, unit, reference_range, low, high, sds, reason_part", [
    # nmol/L result, bounds without a unit that are ng/mL numbers: 57–316 "nmol/L" = 436–2417 ng/mL, absurd
    (3.27, "nmol/L", [{"low": {"value": 57}, "high": {"value": 316}}], None, None, None,
     "reference range units unclear"),
    (3.27, "nmol/L", [{"text": "57-316"}], None, None, None, "reference range units unclear"),
    # nmol/L result with nmol/L numbers and no unit: 7.84–39.22 nmol/L = 60–300 ng/mL, plausible
    (3.27, "nmol/L", [{"low": {"value": 7.84}, "high": {"value": 39.22}}], 59.97, 300.0, -4.18, None),
    (3.27, "nmol/L", [{"text": "7.84 - 39.22"}], 59.97, 300.0, -4.18, None),
    # ng/mL result, bounds without a unit
    (25.0, "ng/mL", [{"low": {"value": 60}, "high": {"value": 300}}], 60.0, 300.0, -4.18, None),
    (25.0, "ng/mL", [{"low": {"value": 0.5}, "high": {"value": 3}}], None, None, None, "reference range units unclear"),
    (25.0, "ng/mL", [{"low": {"value": 600}, "high": {"value": 3000}}], None, None, None, "reference range units unclear"),
    # one bound with a unit, one without (read in the result's unit, then checked)
    (25.0, "ng/mL", [{"low": b.quantity(60, "ng/mL"), "high": {"value": 300}}], 60.0, 300.0, -4.18, None),
    # bounds with their own unit are not second-guessed
    (3.27, "nmol/L", [{"low": b.quantity(57, "ng/mL"), "high": b.quantity(316, "ng/mL")}], 57.0, 316.0, None, None),
])
def test_igf1_range_bounds_without_a_unit_must_be_plausible(build, value, unit, reference_range, low, high, sds,
                                                           reason_part):
    resource = b.igf1("i1", "2024-01-05", value, unit=unit, low=None)
    resource["referenceRange"] = reference_range
    (i,) = build(resource).igf1
    assert i.usable
    if reason_part:
        assert i.sds is None and i.range_low is None and i.range_high is None and reason_part in i.sds_reason
    else:
        assert i.range_low == pytest.approx(low, abs=0.01) and i.range_high == pytest.approx(high, abs=0.01)
        assert i.sds_reason is None
        if sds is not None:
            assert i.sds == pytest.approx(sds, abs=0.01)


def test_igf1_range_units_unclear_names_the_numbers(build):
    resource = b.igf1("i1", "2024-01-05", 3.27, unit="nmol/L", low=None)
    resource["referenceRange"] = [{"low": {"value": 57}, "high": {"value": 316}, "text": "57-316"}]
    (i,) = build(resource).igf1
    assert i.sds_reason == ("reference range units unclear: the range 57–316 has no unit of its own, and read in the "
                            "result's unit (nmol/L) it would be 436–2417 ng/mL, which is not a plausible IGF-1 range")


def test_igf1_range_as_text(build):
    resource = b.igf1("i1", "2024-01-05", 25, low=None)
    resource["referenceRange"] = [{"text": "60 - 300 ng/mL"}]
    (i,) = build(resource).igf1
    assert (i.range_low, i.range_high) == (60.0, 300.0) and i.sds == pytest.approx(-4.18, abs=0.01)


def test_overlong_range_text_and_value_string_are_not_parsed(build):
    # A hostile or garbled text must not be read (nor cost seconds of regex backtracking).
    resource = b.igf1("i1", "2024-01-05", 25, low=None)
    resource["referenceRange"] = [{"text": "1" * 5000 + " - 300 ng/mL"}]
    (i,) = build(resource).igf1
    assert i.range_low is None and i.sds is None
    text_value = b.igf1("i2", "2024-01-05", None, low=None)
    text_value.pop("valueQuantity", None)
    text_value["valueString"] = "<" + "1" * 5000 + " ng/mL"
    (j,) = [x for x in build(text_value).igf1 if x.reference == "Observation/i2"]
    assert j.usable is False


@pytest.mark.parametrize("reference_range, reason_part", [
    (None, "no reference range"),
    ([{"low": b.quantity(60, "ng/mL")}], "no low and high"),
    ([{"low": b.quantity(300, "ng/mL"), "high": b.quantity(60, "ng/mL")}], "not a positive interval"),
    ([{"low": b.quantity(60, "mg/dL"), "high": b.quantity(300, "mg/dL")}], "not recognised"),
])
def test_igf1_without_usable_range_has_no_sds(build, reference_range, reason_part):
    resource = b.igf1("i1", "2024-01-05", 25, low=None)
    if reference_range is not None:
        resource["referenceRange"] = reference_range
    (i,) = build(resource).igf1
    assert i.usable and i.sds is None and reason_part in i.sds_reason


@pytest.mark.parametrize("value_field, comparator, value", [
    ({"valueQuantity": {"value": 15, "comparator": "<", "unit": "ng/mL", "system": b.UCUM, "code": "ng/mL"}}, "<", 15.0),
    ({"valueString": "<15"}, "<", 15.0),
    ({"valueString": "< 15 ng/mL"}, "<", 15.0),
    ({"valueString": "\u226415 ng/mL"}, "<=", 15.0),
])
def test_igf1_comparator_is_kept(build, value_field, comparator, value):
    resource = b.igf1("i1", "2024-01-05", None)
    resource.update(value_field)
    (i,) = build(resource).igf1
    assert i.comparator == comparator and i.original_value == value


def test_igf1_value_string_with_unit_is_usable(build):
    resource = b.igf1("i1", "2024-01-05", None)
    resource["valueString"] = "<15 ng/mL"
    (i,) = build(resource).igf1
    assert i.usable and i.value == 15.0 and i.sds is not None


def test_igf1_value_string_without_unit_is_unusable(build):
    resource = b.igf1("i1", "2024-01-05", None)
    resource["valueString"] = "<15"
    (i,) = build(resource).igf1
    assert not i.usable and i.reason == "no unit" and i.comparator == "<"


def test_explicit_igf1_zscore(build):
    record = build(b.igf1_zscore("iz", "2024-01-05", -3.6), b.igf1("i1", "2024-01-05", 25))
    (z,) = record.igf1_scores
    assert (z.kind, z.value, z.unit, z.usable, z.code) == ("igf1_sds", -3.6, "1", True, "73561-3")
    assert len(record.igf1) == 1


# --- GH -------------------------------------------------------------------------------------------

def test_peak_gh_across_units_and_codes(build):
    record = build(
        b.gh("g0", "2024-01-20", 2.1, code="12253-1"),                  # baseline: never the peak
        b.gh("g1", "2024-01-20", 8.4, code="40301-4"),
        b.gh("g2", "2024-01-20", 33.0, code="47760-4", unit="mIU/L"),   # 11.0 ug/L
        b.gh("g3", "2024-01-20", 10.6, code="2963-7", unit="ug/L"),
    )
    peak = peak_gh(record)
    assert peak.reference == "Observation/g2" and peak.value == pytest.approx(11.0) and peak.original_unit == "mIU/L"
    baseline = [g for g in record.gh_results if g.code == "12253-1"][0]
    assert baseline.stimulated is False


def test_baseline_named_in_text_is_not_stimulated(build):
    resource = b.gh("g1", "2024-01-20", 25.0, code="2963-7")
    resource["code"]["text"] = "Growth hormone, basal"
    record = build(resource)
    assert record.gh_results[0].stimulated is False and peak_gh(record) is None


@pytest.mark.parametrize("code", ["2963-7", "14146-5", "40301-4", "47760-4", "48128-3", "56571-3"])
def test_every_stimulation_code_is_read(build, code):
    record = build(b.gh("g1", "2024-01-20", 12.0, code=code))
    assert peak_gh(record).code == code


@pytest.mark.parametrize("code", ["12253-1", "40302-2", "46408-1", "40298-2"])
def test_pre_dose_codes_are_baseline_not_a_peak(build, code):
    # LOINC: 40302-2 / 46408-1 pre dose arginine, 40298-2 pre dose clonidine.
    record = build(b.gh("g1", "2024-01-20", 12.0, code=code))
    assert record.gh_results[0].stimulated is False and peak_gh(record) is None


def test_peak_gh_prefers_exact_over_less_than_and_ignores_unusable(build):
    less_than = b.gh("g1", "2024-01-20", 12.0, code="40301-4")
    less_than["valueQuantity"]["comparator"] = "<"
    record = build(less_than, b.gh("g2", "2024-01-20", 12.0, code="47760-4"),
                   b.gh("g3", "2024-01-20", 99.0, code="48128-3", unit="pmol/L"))
    assert peak_gh(record).reference == "Observation/g2"


def test_peak_gh_none_without_results(build):
    assert peak_gh(build()) is None


def test_gh_panel_components_are_each_read(build):
    panel = b.observation("gp", "2024-01-20", "GHSTIM", "Arginine/clonidine GH stimulation panel",
                          system="urn:oid:1.2.840.114350.1.13.0.1.7.2.768282")
    panel["component"] = [
        {"code": b.concept(b.LOINC, "12253-1", "Somatotropin baseline"), "valueQuantity": b.quantity(1.2, "ng/mL")},
        {"code": b.concept(b.LOINC, "47760-4", "Somatotropin 1 Hr post dose arginine"), "valueQuantity": b.quantity(9.1, "ng/mL")},
        {"code": b.concept(b.LOINC, "40301-4", "Somatotropin 2 Hr post dose clonidine"), "valueQuantity": b.quantity(13.5, "ng/mL")},
    ]
    record = build(panel)
    assert len(record.gh_results) == 3
    assert peak_gh(record).value == 13.5 and peak_gh(record).reference == "Observation/gp"


# --- bone age -------------------------------------------------------------------------------------

def test_bone_age_in_months_with_method_component(build):
    (ba,) = build(b.bone_age("ba1", "2024-02-01", 51, unit="mo", method="Greulich and Pyle")).bone_ages
    assert ba.value == 4.25 and ba.unit == "a" and ba.method == "Greulich and Pyle" and ba.age_years == pytest.approx(5.885, abs=0.001)


def test_bone_age_method_from_separate_observation(build):
    method = b.observation("bm1", "2024-02-01", "85150-1", "Bone age method", category="imaging",
                           valueCodeableConcept={"text": "Tanner-Whitehouse 3"})
    (ba,) = build(b.bone_age("ba1", "2024-02-01", 4.5), method).bone_ages
    assert ba.method == "Tanner-Whitehouse 3"


def test_bone_age_method_from_method_field(build):
    resource = b.bone_age("ba1", "2024-02-01", 4.5, method=None)
    resource["method"] = {"text": "Greulich and Pyle atlas"}
    (ba,) = build(resource).bone_ages
    assert ba.method == "Greulich and Pyle atlas"


# --- status, dates and unusable values ------------------------------------------------------------

@pytest.mark.parametrize("status, reason", [
    ("entered-in-error", "status entered in error"),
    ("cancelled", "status cancelled"),
    ("registered", "status registered, no result yet"),
])
def test_ignored_statuses_are_skipped(build, status, reason):
    record = build(b.igf1("i1", "2024-01-05", 25, status=status))
    assert record.igf1 == () and any(s.reference == "Observation/i1" and s.reason == reason for s in record.skipped)


@pytest.mark.parametrize("status", ["final", "amended", "corrected"])
def test_final_statuses_are_used(build, status):
    (i,) = build(b.igf1("i1", "2024-01-05", 25, status=status)).igf1
    assert i.usable and not i.preliminary


def test_preliminary_is_kept_and_marked(build):
    (i,) = build(b.igf1("i1", "2024-01-05", 25, status="preliminary")).igf1
    assert i.usable and i.preliminary


@pytest.mark.parametrize("dates, expected", [
    ({"effectiveDateTime": "2024-01-05T08:30:00-05:00"}, date(2024, 1, 5)),
    ({"effectiveDateTime": "2024-01-05T23:30:00-08:00"}, date(2024, 1, 5)),   # local date, not UTC
    ({"effectiveDateTime": "2024-01-05T08:30:00Z"}, date(2024, 1, 5)),
    ({"effectiveDateTime": "2024-01-05T08:30:00"}, date(2024, 1, 5)),
    ({"effectiveDateTime": "2024-01-05"}, date(2024, 1, 5)),
    ({"effectivePeriod": {"start": "2024-01-05T08:00:00Z", "end": "2024-01-06T10:00:00Z"}}, date(2024, 1, 6)),
    ({"effectivePeriod": {"start": "2024-01-05T08:00:00Z"}}, date(2024, 1, 5)),
    ({"issued": "2024-01-07T14:22:05.123+00:00"}, date(2024, 1, 7)),
    ({"effectiveInstant": "2024-01-08T09:00:00Z"}, date(2024, 1, 8)),
])
def test_observation_dates(build, dates, expected):
    resource = b.igf1("i1", None, 25)
    resource.update(dates)
    (i,) = build(resource).igf1
    assert i.usable and i.date == expected


@pytest.mark.parametrize("change, reason_part", [
    ({"effectiveDateTime": b.DROP, "issued": b.DROP}, "no effective date"),
    ({"effectiveDateTime": "Jan 2024", "issued": b.DROP}, "unreadable date"),
    ({"effectiveDateTime": "05/01/2024", "issued": b.DROP}, "unreadable date"),
    ({"effectiveDateTime": "2024-02-30", "issued": b.DROP}, "invalid date"),
    ({"effectiveDateTime": "2024-04-01", "issued": b.DROP}, "after today"),
    ({"valueQuantity": b.DROP}, "no value"),
    ({"valueQuantity": b.DROP, "dataAbsentReason": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                                                                 "code": "error", "display": "Error"}]}}, "no value (Error)"),
    ({"valueQuantity": {"value": None, "unit": "ng/mL"}}, "no numeric value"),
    ({"valueQuantity": {"value": "25", "unit": "ng/mL"}}, "no numeric value"),
    ({"valueQuantity": b.DROP, "valueString": "hemolysed, not reported"}, "not a number"),
    ({"valueQuantity": b.quantity(25, "IU/mL")}, "not recognised"),
    ({"valueQuantity": b.quantity(-4, "ng/mL")}, "implausible"),
])
def test_unusable_results_are_kept_with_reason_and_listed_in_skipped(build, change, reason_part):
    resource = b.igf1("i1", "2024-01-05", 25)
    for key, value in change.items():
        if value is b.DROP:
            resource.pop(key, None)
        else:
            resource[key] = value
    record = build(resource)
    (i,) = record.igf1
    assert not i.usable and reason_part in i.reason
    assert any(s.reference == "Observation/i1" and reason_part in s.reason for s in record.skipped)


@pytest.mark.parametrize("builder, reason_part", [
    (lambda: b.height("h1", "2024-03-01", 1.04), "implausible"),     # metres typed as cm
    (lambda: b.weight("w1", "2024-03-01", 2040), "implausible"),     # grams typed as kg
    (lambda: b.height("h1", "2024-03-01", 104, valueQuantity={"value": 104, "comparator": ">", "unit": "cm",
                                                              "system": b.UCUM, "code": "cm"}), "comparator"),
])
def test_implausible_or_qualified_body_measures_are_unusable(build, builder, reason_part):
    record = build(builder())
    fact = (record.heights or record.weights)[0]
    assert not fact.usable and reason_part in fact.reason


def test_unrelated_observations_are_ignored_silently(build):
    bp = b.observation("bp1", "2024-03-01", "85354-9", "Blood pressure panel", category="vital-signs")
    record = build(bp)
    assert record.skipped == () and record.heights == ()


@pytest.mark.parametrize("malformed", [
    {"resourceType": "Observation", "id": "m1", "status": "final", "code": "8302-2"},
    {"resourceType": "Observation", "id": "m2", "status": "final", "code": {"coding": "8302-2"}},
    {"resourceType": "Observation", "id": "m3", "status": "final",
     "code": {"coding": [{"system": b.LOINC, "code": "8302-2"}]}, "valueQuantity": [104.2],
     "effectiveDateTime": "2024-03-01"},
    {"resourceType": "Observation", "id": "m4", "status": "final",
     "code": {"coding": [{"system": b.LOINC, "code": "2484-4"}]}, "valueQuantity": {"value": 25, "unit": "ng/mL"},
     "effectiveDateTime": "2024-01-01", "referenceRange": [{"low": {"value": 60, "unit": ["ng/mL"]}, "high": 7}]},
    {"resourceType": "Observation", "id": "m5", "status": ["final"], "code": {"coding": [None, 5, {"code": 7}]},
     "component": [None, {"code": None}], "effectivePeriod": "2024", "note": "closed epiphyses"},
    {"resourceType": "Observation", "id": "m6", "status": "final", "effectiveDateTime": 20240101,
     "code": {"coding": [{"system": b.LOINC, "code": "85151-9"}]}, "valueQuantity": {"value": 4, "unit": "a"},
     "component": {"code": {"coding": [{"system": b.LOINC, "code": "85150-1"}]}, "valueString": 5}},
])
def test_malformed_observations_never_raise(build, malformed):
    record = build(malformed, b.height("ok", "2024-03-01", 104.0))
    ok = [h for h in record.heights if h.reference == "Observation/ok"]
    assert len(ok) == 1 and ok[0].usable and ok[0].sds is not None
    reference = f"Observation/{malformed['id']}"
    for fact in record.heights + record.bone_ages:
        assert fact.reference != reference or not fact.usable


def test_igf1_with_malformed_range_keeps_the_value_without_sds(build):
    resource = b.igf1("i1", "2024-01-05", 25, low=None)
    resource["referenceRange"] = [{"low": {"value": 60, "unit": ["ng/mL"]}, "high": 7}]
    (i,) = build(resource).igf1
    assert i.usable and i.value == 25 and i.sds is None and "no low and high" in i.sds_reason


def test_today_bounds_use_the_given_date(build):
    resource = b.igf1("i1", "2024-03-15", 25)
    assert not build(resource, today=TODAY).igf1[0].usable
    assert build(resource, today=date(2024, 3, 15)).igf1[0].usable


# --- every kind, as one pass reads it -------------------------------------------------------------

def test_every_kind_becomes_its_fact_with_every_field_set(build):
    """Each fact is made of the dict its fields were gathered in (frozen.adopt): a field a kind left out
    would make the reader fail, and its guard would set the Observation aside as malformed."""
    record = build(
        b.height("h", "2024-03-14", 100.0), b.height("h-month", "2023-09", 96.0), b.weight("w", "2024-03-14", 15.2),
        b.igf1("i", "2024-03-01", 18, low=52, high=297), b.igf1_zscore("iz", "2024-03-01", -3.1),
        b.gh("g", "2024-02-01", 12.0, code="40301-4"), b.gh("g0", "2024-02-01", 2.0, code="12253-1"),
        b.bone_age("ba", "2024-02-10", 4.5, method="Greulich and Pyle"),
        b.observation("ba-text", "2024-02-11", "85151-9", "Bone age", valueString="4 years 6 months"),
        b.height_zscore("hz", "2024-03-14", -3.0), b.height_percentile("hp", "2024-03-14", 0.2),
        b.height("h-bad", "2024-03-14", 1.0, unit="furlong"))
    assert not [s for s in record.skipped if "malformed" in s.reason]
    assert {h.reference: (h.kind, h.usable, h.sds is not None or h.sds_range is not None) for h in record.heights} == {
        "Observation/h": ("height", True, True), "Observation/h-month": ("height", True, True),
        "Observation/h-bad": ("height", False, False)}
    assert [(w.kind, w.value) for w in record.weights] == [("weight", 15.2)]
    assert record.igf1[0].sds is not None and record.igf1[0].range_low == 52
    assert [s.kind for s in record.igf1_scores] == ["igf1_sds"]
    assert sorted((g.code, g.stimulated) for g in record.gh_results) == [("12253-1", False), ("40301-4", True)]
    by_ref = {a.reference: a for a in record.bone_ages}
    assert by_ref["Observation/ba"].method == "Greulich and Pyle" and by_ref["Observation/ba"].source_text is None
    assert by_ref["Observation/ba-text"].value == 4.5 and by_ref["Observation/ba-text"].source_text == "4 years 6 months"
    assert sorted((s.reference, s.kind) for s in record.height_scores) == [
        ("Observation/hp", "height_centile"), ("Observation/hp", "height_sds"), ("Observation/hz", "height_sds")]
