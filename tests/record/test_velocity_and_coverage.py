"""Growth velocity and coverage."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.record.model import Height
from service.record.velocity import far_enough_apart, growth_velocity
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
    (("2023-09-14", "2024-03-14"), True),     # six calendar months
    (("2023-09-15", "2024-03-14"), False),    # a day short
    (("2023-01-01", "2023-07-01"), True),     # 181 days, but six calendar months
    (("2023-01-01", "2023-06-30"), False),
    (("2023-08-31", "2024-02-29"), True),     # 31 August + 6 months = the last day of February
    (("2023-08-31", "2024-02-28"), False),
    (("2022-08-31", "2023-02-28"), True),     # not a leap year: 28 February is the last day
    (("2024-01-02", "2024-03-14"), False),
])
def test_velocity_minimum_span_is_six_calendar_months(build, dates, ok):
    gv = build(b.height("a", dates[0], 97.0), b.height("b", dates[1], 99.0)).growth_velocity
    assert (gv.cm_per_year is not None) is ok
    if not ok:
        assert "span only" in gv.reason and "6 calendar months are needed" in gv.reason


@pytest.mark.parametrize("heights, reason_part", [
    ((), "0 usable heights"),
    ((b.height("a", "2024-03-01", 99.0),), "1 usable height on"),
    ((b.height("a", "2024-03-01", 99.0), b.height("b", "2023-03-01", 9.4)), "1 usable height on"),   # implausible
    ((b.height("a", "2024-03-01", 99.0), b.height("b", None, 95.0)), "1 usable height on"),          # undated
])
def test_velocity_unknown_with_reason(build, heights, reason_part):
    gv = build(*heights).growth_velocity
    assert gv.cm_per_year is None and reason_part in gv.reason


# --- growth velocity on treatment (re-authorization) ----------------------------------------------

def _prior_mecasermin(start: str, resource_type: str = "MedicationRequest", **extra) -> dict:
    """A previous Increlex prescription (or a statement that the child takes it) since `start`."""
    if resource_type == "MedicationRequest":
        return b.medication_request("mr-incr-2023", dict(b.MECASERMIN_CONCEPT), status="active",
                                    route="subcutaneous", authored=start, **extra)
    return b.medication_statement("ms-incr", dict(b.MECASERMIN_CONCEPT), status="active", route="subcutaneous",
                                  effective=start, **extra)


HEIGHTS_AROUND_START = (
    b.height("pre-1", "2022-03-10", 94.0),     # a year before treatment: growth 3 cm/year
    b.height("pre-2", "2023-03-02", 97.0),     # the height taken at the start visit (before the start)
    b.height("on-1", "2023-09-14", 100.5),     # ~6 months on treatment
    b.height("on-2", "2024-03-12", 104.0),     # ~12 months on treatment
)


@pytest.mark.parametrize("start, heights, velocity, pair, reason_part", [
    # on treatment since 2023-03-06: only on-1 → on-2 (180 days) … too short: not yet measurable
    ("2023-03-06", HEIGHTS_AROUND_START, None, ("on-1", "on-2"),
     "response not yet measurable: fewer than 6 months of heights on mecasermin since 2023-03-06"),
    # started 2023-03-02: the start-visit height counts (on or after the start), a year on treatment
    ("2023-03-02", HEIGHTS_AROUND_START, 7.0 / 376 * 365.25, ("pre-2", "on-2"), None),
    # started 2023-09-14: a single height on treatment
    ("2023-09-14", HEIGHTS_AROUND_START, None, (None, "on-1"),
     "fewer than 6 months of heights on mecasermin since 2023-09-14 (2 usable heights"),
    # started after every height on file
    ("2024-03-13", HEIGHTS_AROUND_START, None, (None, None), "(0 usable heights on or after that date"),
    # started long before: the usual pair closest to a year
    ("2021-01-04", HEIGHTS_AROUND_START, 7.0 / 376 * 365.25, ("pre-2", "on-2"), None),
])
def test_velocity_uses_only_heights_since_the_treatment_start(build, start, heights, velocity, pair, reason_part):
    record = build(_prior_mecasermin(start), *heights)
    gv = record.growth_velocity
    assert record.treatment_start.isoformat() == start
    if velocity is None:
        assert gv.cm_per_year is None and reason_part in gv.reason
    else:
        assert gv.cm_per_year == pytest.approx(velocity, abs=0.01) and gv.reason is None
    refs = tuple(h.reference.split("/")[1] if h else None for h in (gv.start, gv.end))
    if pair[0] is None and pair[1] is not None:
        assert refs[0] == pair[1] or refs[1] == pair[1]
    elif pair != (None, None):
        assert refs == pair


def test_velocity_one_on_treatment_height_reason(build):
    gv = build(_prior_mecasermin("2023-09-14"), *HEIGHTS_AROUND_START).growth_velocity
    assert gv.reason == ("response not yet measurable: fewer than 6 months of heights on mecasermin since 2023-09-14 "
                         "(2 usable heights on or after that date, 180 days apart at most; 6 calendar months are needed)")


def test_velocity_start_from_a_medication_statement_period(build):
    statement = _prior_mecasermin("2023-09-01", "MedicationStatement", effectivePeriod={"start": "2023-03-02"},
                                  effectiveDateTime=b.DROP, dateAsserted="2024-01-15")
    record = build(statement, *HEIGHTS_AROUND_START)
    assert record.treatment_start.isoformat() == "2023-03-02"
    assert record.growth_velocity.start.reference == "Observation/pre-2"


def test_velocity_with_an_undated_prior_mecasermin_notes_the_unknown_start(build):
    undated = _prior_mecasermin("2023-03-02", authoredOn=b.DROP)
    record = build(undated, *HEIGHTS_AROUND_START)
    gv = record.growth_velocity
    assert record.reauthorization and record.treatment_start is None
    assert gv.cm_per_year is not None and gv.end.reference == "Observation/on-2"   # as without a start
    assert "mecasermin start date is unknown" in gv.reason


def test_velocity_without_prior_mecasermin_has_no_start_note(build):
    gv = build(*HEIGHTS_AROUND_START).growth_velocity
    assert gv.cm_per_year is not None and gv.reason is None


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


@settings(max_examples=150, deadline=None)
@given(days=st.lists(st.integers(min_value=0, max_value=4000), min_size=2, max_size=60))
def test_velocity_pairs_as_a_scan_of_every_earlier_height_would(days):
    """The heights far enough before the newest are found by bisection: the pair is the one a scan of
    every height finds (at least 6 calendar months apart, closest to a year, on a tie the longer span)."""
    start = date(2015, 1, 31)
    heights = [Height(kind="height", value=90.0 + n, unit="cm", reference=f"Observation/h{n}",
                      date=start + timedelta(days=d)) for n, d in enumerate(days)]
    newest_first = sorted(heights, key=lambda h: h.date, reverse=True)
    found = growth_velocity(heights)
    end = newest_first[0]
    far = [h for h in newest_first[1:] if far_enough_apart(h.date, end.date)]
    if not far:
        assert found.cm_per_year is None and found.end is end
        return
    expected = min(far, key=lambda h: (abs((end.date - h.date).days - 365.25), -(end.date - h.date).days))
    assert (found.start, found.end) == (expected, end)
