"""CDC 2000 stature-for-age LMS: the shipped table and the SDS computed from it."""
from __future__ import annotations

import csv
import io
from importlib import resources
from statistics import NormalDist

import pytest

from service.record.growth import centile, height_sds, lms_at, lms_z, sds_from_centile


def _rows():
    text = resources.files("service.record.data").joinpath("cdc_statage.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO("".join(l for l in text.splitlines(True) if not l.startswith("#")))))


ROWS = _rows()


def test_table_is_the_whole_cdc_file():
    assert len(ROWS) == 436
    for sex in ("1", "2"):
        ages = [float(r["Agemos"]) for r in ROWS if r["Sex"] == sex]
        assert ages[0] == 24.0 and ages[1] == 24.5 and ages[-2] == 239.5 and ages[-1] == 240.0
        assert len(ages) == 218 and all(b > a for a, b in zip(ages, ages[1:], strict=False))


def test_first_row_matches_the_published_values():
    # CDC statage.csv, males at 24 months: L 0.941523967, M 86.45220101, S 0.040321528.
    assert lms_at("male", 24.0) == (0.941523967, 86.45220101, 0.040321528)


@pytest.mark.parametrize("row", ROWS[::7], ids=lambda r: f"sex{r['Sex']}-{r['Agemos']}mo")
def test_every_row_is_internally_consistent(row):
    """Each row's published percentiles follow from its own L, M, S: no digit was mistyped."""
    l, m, s = float(row["L"]), float(row["M"]), float(row["S"])
    for column, p in (("P3", 0.03), ("P10", 0.10), ("P50", 0.50), ("P90", 0.90), ("P97", 0.97)):
        z = NormalDist().inv_cdf(p)
        assert m * (1 + l * s * z) ** (1 / l) == pytest.approx(float(row[column]), abs=0.01)


@pytest.mark.parametrize("row", ROWS[::5], ids=lambda r: f"sex{r['Sex']}-{r['Agemos']}mo")
def test_height_at_the_median_is_sds_zero(row):
    sex = "male" if row["Sex"] == "1" else "female"
    sds, cent, reason = height_sds(float(row["M"]), sex, float(row["Agemos"]) / 12)
    assert (sds, cent, reason) == (0.0, 50.0, None)


def test_spec_cross_check_six_year_old_boy_at_100_cm():
    sds, cent, reason = height_sds(100.0, "male", 6.0)
    assert reason is None
    assert sds == pytest.approx(-3.02, abs=0.02)
    assert cent == pytest.approx(0.12, abs=0.01)


@pytest.mark.parametrize("sex, months, lo_row, hi_row", [
    ("male", 72.0, 71.5, 72.5),
    ("female", 150.0, 149.5, 150.5),
])
def test_lms_interpolates_linearly_between_rows(sex, months, lo_row, hi_row):
    lo, hi = lms_at(sex, lo_row), lms_at(sex, hi_row)
    mid = lms_at(sex, months)
    for i in range(3):
        assert mid[i] == pytest.approx((lo[i] + hi[i]) / 2)


@pytest.mark.parametrize("age, expect_sds", [
    (2.0, True), (20.0, True), (1.999, False), (20.001, False), (0.5, False), (35.0, False),
])
def test_age_boundaries(age, expect_sds):
    sds, cent, reason = height_sds(150.0 if age >= 10 else 86.0, "female", age)
    if expect_sds:
        assert sds is not None and cent is not None and reason is None
    else:
        assert sds is None and cent is None
        assert ("under 2 years" if age < 2 else "over 20 years") in reason


@pytest.mark.parametrize("sex, age, height_cm, reason_part", [
    (None, 6.0, 100.0, "sex"),
    ("other", 6.0, 100.0, "sex"),
    ("male", None, 100.0, "age at measurement unknown"),
    ("male", 6.0, 0.0, "not positive"),
])
def test_sds_unknown_with_reason(sex, age, height_cm, reason_part):
    sds, cent, reason = height_sds(height_cm, sex, age)
    assert sds is None and cent is None and reason_part in reason


def test_sex_matters():
    boy, _, _ = height_sds(120.0, "male", 8.0)
    girl, _, _ = height_sds(120.0, "female", 8.0)
    assert boy != girl


@pytest.mark.parametrize("percentile, sds", [(3.0, -1.88), (1.2, -2.26), (0.13, -3.01), (50.0, 0.0), (97.0, 1.88)])
def test_centile_to_sds(percentile, sds):
    assert sds_from_centile(percentile) == pytest.approx(sds, abs=0.005)   # unrounded


@pytest.mark.parametrize("percentile", [0.0, 100.0, -1.0, 120.0])
def test_centile_without_finite_sds(percentile):
    assert sds_from_centile(percentile) is None


def test_sds_to_centile_keeps_small_centiles_readable():
    assert centile(-2.25) == pytest.approx(1.22, abs=0.01)
    assert centile(-4.0) == pytest.approx(0.00317, rel=0.01)


def test_lms_with_zero_l_uses_the_log_form():
    assert lms_z(110.0, 0.0, 100.0, 0.05) == pytest.approx(1.9062, abs=1e-4)


def test_the_sds_of_a_measured_height_is_computed_at_the_unrounded_age():
    # Rounding the age (to 3 decimals, ~9 hours) before the LMS look-up moved the SDS that decides
    # "< −2.25": the height's age and SDS must be those of the exact calendar age.
    from datetime import date

    from service.record import build_record
    from service.record.dates import age_years
    from tests.record import builders as b

    record = build_record([b.patient("2019-03-07"), b.height("h1", "2026-10-20", 104.3)], None, date(2026, 11, 21))
    (h,) = record.heights
    exact_age = age_years(date(2019, 3, 7), date(2026, 10, 20))
    assert h.age_years == exact_age
    assert h.sds == height_sds(104.3, "male", exact_age)[0]
