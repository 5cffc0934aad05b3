"""Growth velocity and coverage."""
from __future__ import annotations

import pytest

from tests.record import builders as b


# --- growth velocity ------------------------------------------------------------------------------

def test_velocity_over_a_year(build):
    gv = build(b.height("h0", "2023-03-14", 95.0), b.height("h1", "2024-03-13", 99.0)).growth_velocity
    assert gv.cm_per_year == pytest.approx(4.0, abs=0.02) and gv.reason is None
    assert (gv.start.reference, gv.end.reference) == ("Observation/h0", "Observation/h1")


def test_velocity_prefers_the_span_closest_to_twelve_months(build):
    gv = build(b.height("a", "2021-03-01", 88.0),     # 3 years before
               b.height("b", "2023-02-20", 96.0),     # ~12.7 months before: chosen
               b.height("c", "2023-09-01", 98.0),     # ~6.4 months before
               b.height("d", "2024-03-10", 100.0)).growth_velocity
    assert gv.start.reference == "Observation/b" and gv.end.reference == "Observation/d"
    assert gv.cm_per_year == pytest.approx(4.0 / 384 * 365.25, abs=0.01)


def test_velocity_uses_the_most_recent_height_as_end(build):
    gv = build(b.height("old", "2022-03-01", 90.0), b.height("mid", "2023-03-01", 94.0),
               b.height("new", "2023-06-01", 95.0)).growth_velocity
    # "mid" is only 92 days before the newest height, so the pair is old → new.
    assert gv.end.reference == "Observation/new" and gv.start.reference == "Observation/old"


@pytest.mark.parametrize("dates, ok", [
    (("2023-09-14", "2024-03-14"), True),     # 182 days: six months
    (("2023-09-15", "2024-03-14"), False),    # 181 days
    (("2024-01-02", "2024-03-14"), False),
])
def test_velocity_minimum_span(build, dates, ok):
    gv = build(b.height("a", dates[0], 97.0), b.height("b", dates[1], 99.0)).growth_velocity
    assert (gv.cm_per_year is not None) is ok
    if not ok:
        assert "span only" in gv.reason and "182" in gv.reason


@pytest.mark.parametrize("heights, reason_part", [
    ((), "0 usable heights"),
    ((b.height("a", "2024-03-01", 99.0),), "1 usable height on"),
    ((b.height("a", "2024-03-01", 99.0), b.height("b", "2023-03-01", 9.4)), "1 usable height on"),   # implausible
    ((b.height("a", "2024-03-01", 99.0), b.height("b", None, 95.0)), "1 usable height on"),          # undated
])
def test_velocity_unknown_with_reason(build, heights, reason_part):
    gv = build(*heights).growth_velocity
    assert gv.cm_per_year is None and reason_part in gv.reason


# --- coverage -------------------------------------------------------------------------------------

def test_coverage_payer_identifiers_and_plan(build):
    org = b.organization("org-premera", "Premera Blue Cross", ("http://hl7.org/fhir/sid/us-npi", "1184630998"))
    cov = b.coverage("cov1", None, org_id="org-premera")
    cov["payor"][0]["identifier"] = {"system": "https://www.cms.gov/payer-id", "value": "47570"}
    facts = build(org, cov).coverage
    assert facts.reference == "Coverage/cov1" and facts.status == "active"
    assert facts.payer_names == ("Premera Blue Cross",)
    assert facts.payer_identifiers == ("https://www.cms.gov/payer-id|47570", "http://hl7.org/fhir/sid/us-npi|1184630998")
    assert facts.plan_names == ("Premera Heritage Plus PPO",) and facts.government_programme is None


def test_active_coverage_is_preferred(build):
    record = build(b.coverage("old", "Aetna", status="draft"), b.coverage("cur", "Premera Blue Cross"),
                   b.coverage("gone", "Cigna", status="cancelled"))
    assert record.coverage.reference == "Coverage/cur"
    assert [c.reference for c in record.other_coverages] == ["Coverage/old"]
    assert any(s.reference == "Coverage/gone" for s in record.skipped)


def test_current_period_and_order_decide_between_active_coverages(build):
    ended = b.coverage("ended", "Aetna", period={"start": "2020-01-01", "end": "2023-12-31"}, order=1)
    secondary = b.coverage("second", "Wisconsin Medicaid", order=2)
    primary = b.coverage("first", "Premera Blue Cross", order=1)
    record = build(ended, secondary, primary)
    assert [record.coverage.reference] + [c.reference for c in record.other_coverages] == \
        ["Coverage/first", "Coverage/second", "Coverage/ended"]
    assert record.other_coverages[0].government_programme == "Medicaid"


@pytest.mark.parametrize("payer, plan, type_coding, programme", [
    ("ForwardHealth Wisconsin Medicaid", None, None, "Medicaid"),
    ("Medi-Cal", None, None, "Medicaid"),
    ("Humana", "Humana Medicare Advantage HMO", None, "Medicare"),
    ("TRICARE East", None, None, "TRICARE"),
    ("Department of Veterans Affairs", None, None, "VA"),
    ("CHAMPVA", None, None, "VA"),
    ("BadgerCare Plus", "CHIP", None, "CHIP"),
    ("Premera Blue Cross", None, {"system": "https://nahdo.org/sopt", "code": "2", "display": "MEDICAID"}, "Medicaid"),
    ("Premera Blue Cross", None, {"system": "https://nahdo.org/sopt", "code": "121", "display": "Medicare HMO"}, "Medicare"),
    ("Humana Military", None, {"system": "https://nahdo.org/sopt", "code": "311", "display": "TRICARE (CHAMPUS)"}, "TRICARE"),
    ("Regional VA", None, {"system": "https://nahdo.org/sopt", "code": "32"}, "VA"),
    ("State plan", None, {"system": "https://nahdo.org/sopt", "code": "36"}, "government programme"),
    ("State plan", None, {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "SUBSIDIZ"},
     "government programme"),
    ("State plan", None, {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PUBLICPOL"},
     "government programme"),
    ("Premera Blue Cross", None, {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "MCPOL",
                                  "display": "managed care policy"}, None),
    ("Premera Blue Cross", "Heritage PPO", {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                            "code": "PPO"}, None),
    ("Chip's Insurance Agency", None, None, None),      # "chip" as a word is not CHIP
])
def test_government_programme(build, payer, plan, type_coding, programme):
    facts = build(b.coverage("cov1", payer, plan=plan, type_coding=type_coding)).coverage
    assert facts.government_programme == programme


def test_no_coverage(build):
    record = build()
    assert record.coverage is None and record.other_coverages == ()
