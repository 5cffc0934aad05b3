"""Three-valued comparison of censored values, and the score helpers."""
from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.policy.codesets import icd10_entry_matches
from service.policy import compare as compare_module
from service.policy.compare import centile_from_sds, compare, format_against, format_within, sds_from_centile
from service.wording.numbers import age as format_age


@pytest.mark.parametrize("value, comparator, op, threshold, expected", [
    (-3.0, None, "<=", -3.0, "met"),          # the boundary belongs to "<="
    (-2.25, None, "<", -2.25, "not_met"),     # and not to "<"
    (-4.41, "<", "<=", -3.0, "met"),          # IGF-1 "<15": at most -4.41
    (-2.66, "<", "<=", -3.0, "unknown"),      # "<30": at most -2.66 cannot decide
    (-3.0, "<", "<", -3.0, "met"),            # strictly below -3.0
    (-3.0, "<=", "<", -3.0, "unknown"),       # could be exactly -3.0
    (40.0, ">", ">=", 10.0, "met"),           # GH ">40"
    (0.5, "<", ">=", 10.0, "not_met"),        # GH "<0.5"
    (12.0, "<", ">=", 10.0, "unknown"),       # GH "<12"
    (10.0, ">=", ">=", 10.0, "met"),
    (10.0, "<", ">=", 10.0, "not_met"),
    (10.0, "<=", ">=", 10.0, "unknown"),
    (-2.999999, None, "<=", -3.0, "not_met"), # compared unrounded: just above -3
    (-3.0000000000000004, None, "<=", -3.0, "met"),   # compared as written: below -3.0
    (-2.2549, None, "<", -2.25, "met"),       # not rounded to -2.25 first
    (-2.9951, None, "<=", -3.0, "not_met"),   # not rounded to -3.00 first
    (Fraction(2) / Fraction("16.6"), None, ">", 0.12, "met"),     # 0.12048… mg/kg
    (Fraction("1.8") / Fraction(15), None, ">", 0.12, "not_met"),  # exactly 0.12 (0.12000000000000001 in floats)
    (1.997, None, ">=", 2.0, "not_met"),      # age 1.997 y is under 2, even though it rounds to 2.00
    (12.99, None, "<", 13.0, "met"),
])
def test_compare(value, comparator, op, threshold, expected):
    assert compare(value, comparator, op, threshold) == expected


_numbers = st.floats(min_value=-20, max_value=20, allow_nan=False).map(lambda x: round(x, 2))


@given(value=_numbers, threshold=_numbers, comparator=st.sampled_from([None, "<", "<=", ">", ">="]),
       op=st.sampled_from(["<", "<=", ">", ">="]), offset=st.floats(min_value=0, max_value=30, allow_nan=False))
def test_a_decided_bound_agrees_with_every_value_it_allows(value, threshold, comparator, op, offset):
    """met ⇒ every true value the bound allows meets the criterion; not_met ⇒ none does."""
    result = compare(value, comparator, op, threshold)
    if comparator is None:
        samples = [value]
    else:
        step = round(max(offset, 0.01), 2)
        below, above = round(value - step, 2), round(value + step, 2)
        samples = {"<": [below], "<=": [below, value], ">": [above], ">=": [above, value]}[comparator]
    truth = {"<": lambda x: x < threshold, "<=": lambda x: x <= threshold,
             ">": lambda x: x > threshold, ">=": lambda x: x >= threshold}[op]
    if result == "met":
        assert all(truth(x) for x in samples)
    elif result == "not_met":
        assert not any(truth(x) for x in samples)
    else:
        assert comparator is not None


def test_centiles_of_the_spec():
    assert centile_from_sds(-1.88) == pytest.approx(3.0, abs=0.01)
    assert centile_from_sds(-2.25) == pytest.approx(1.22, abs=0.01)
    assert centile_from_sds(-3.0) == pytest.approx(0.13, abs=0.01)
    assert sds_from_centile(3.0) == pytest.approx(-1.88, abs=0.01)
    assert sds_from_centile(0) is None and sds_from_centile(100) is None


@pytest.mark.parametrize("entry, code, expected", [
    ("E34.321", "E34.321", True), ("E34.3", "E34.321", False), ("E03*", "E03.9", True), ("E03*", "E04.1", False),
    ("C00-C96", "C7A.010", True), ("C00-C96", "D03.9", False), ("N18.4-N18.6", "N18.30", False),
    ("N18.4-N18.6", "N18.6", True), ("F50.0*", "F50.02", True), ("Z85*", "Z85.841", True),
])
def test_icd10_entries(entry, code, expected):
    assert icd10_entry_matches(entry, code) is expected


@pytest.mark.parametrize("value, op, threshold, digits, shown", [
    (12.99, "<", 13, 1, "12.99"),       # never "13" beside "meets (< 13)"
    (12.5, "<", 13, 1, "12.5"),
    (13.0, "<", 13, 1, "13"),           # exact: no decimals
    (14.96, ">=", 15, 1, "14.96"),
    (-2.2501, "<", -2.25, 2, "-2.2501"),
    (-3.95, "<=", -3.0, 2, "-3.95"),
    (4.5, None, None, 1, "4.5"),
])
def test_display_never_rounds_across_the_threshold(value, op, threshold, digits, shown):
    assert format_against(value, op, threshold, digits) == shown


@pytest.mark.parametrize("value, limits, shown", [
    (0.083, ((">", 0.08), ("<", 0.04)), "0.083"),                    # never "0.08 is above 0.04–0.08"
    (Fraction(2) / Fraction("16.6"), ((">", 0.12),), "0.1205"),
    (Fraction("0.12"), ((">", 0.12),), "0.12"),
    (Fraction("0.1200001"), ((">", 0.12),), "just above 0.12"),      # indistinguishable at 4 decimals
    (Fraction("0.0399999"), ((">", 0.08), ("<", 0.04)), "just below 0.04"),
])
def test_a_figure_shown_against_several_limits_keeps_every_verdict(value, limits, shown):
    assert format_within(value, limits, 2, 4) == shown


def test_ages_under_3_years_are_shown_in_years_and_months():
    from datetime import date
    assert format_age(1.997, birth_date=date(2023, 3, 5), today=date(2025, 3, 3)) == "1 y 11 mo"
    assert format_age(1.997) == "1 y 11 mo"
    assert format_age(2.5) == "2 y 6 mo"
    assert format_age(6.45) in ("6.4 years", "6.5 years")


# The figure a card shows is compared with its limits as a float where that is exact (compare._shown_number):
# the same figure as comparing its Fraction, whatever the value and limits, and the same errors.
_numbers = (st.floats(allow_nan=False, allow_infinity=False) | st.floats(min_value=-20, max_value=20)
            | st.integers(min_value=-10**20, max_value=10**20) | st.fractions(max_denominator=10**6)
            | st.sampled_from([0.12, 0.08, 0.04, -2.25, 13, 15, 10**15, 10**15 - 1, -10**16, 2**53 + 1, 1e15, 1e16,
                               123456789012345.6, 0.1 + 0.2, Fraction(1, 3), Fraction("0.1200001")]))


def _near(base):
    """A value at, just beside, or far from a limit: where the shown figure's side is at stake."""
    return st.sampled_from([0, 1e-5, -1e-5, 5e-3, -5e-3, 1e-9, 0.05, -0.049, 1]).map(
        lambda offset: base + offset if not isinstance(base, Fraction) else base + Fraction(offset))


@settings(max_examples=400, deadline=None)
@given(st.data(), st.integers(min_value=0, max_value=3), st.integers(min_value=0, max_value=2))
def test_the_figure_shown_is_the_one_fractions_choose(data, digits, extra):
    limits = tuple((data.draw(st.sampled_from(["<", "<=", ">", ">="])), data.draw(_numbers))
                   for _ in range(data.draw(st.integers(min_value=1, max_value=3))))
    value = data.draw(_numbers | _near(limits[0][1]))
    assert _shown_with(compare_module._shown_number, value, limits, digits, digits + extra) == \
        _shown_with(lambda text, limits: Fraction(text), value, limits, digits, digits + extra)


def test_non_finite_values_fail_as_before():
    for value in (float("inf"), float("-inf"), float("nan")):
        assert _shown_with(compare_module._shown_number, value, (("<", 1.0),), 1, 4) == \
            _shown_with(lambda text, limits: Fraction(text), value, (("<", 1.0),), 1, 4)


def _shown_with(reader, value, limits, digits, max_digits):
    """format_within's answer (or the error it raises) with the shown figure read by `reader`."""
    saved, compare_module._shown_number = compare_module._shown_number, reader
    try:
        return format_within(value, limits, digits, max_digits)
    except (ValueError, OverflowError, ZeroDivisionError) as error:
        return type(error).__name__
    finally:
        compare_module._shown_number = saved


@pytest.mark.parametrize("value, limits", [
    (2.0 ** 60, (("<", 2.0 ** 60),)),               # 19 digits: its float is not the decimal its repr names
    (2.0 ** 60, ((">=", 2.0 ** 60), ("<", 10 ** 19))),
    (1e16 + 2, ((">", 10 ** 16 + 1),)),
    (123456789012345.67, ((">", 123456789012345.67),)),
    (0.1 + 0.2, (("<=", 0.3),)),
])
def test_long_figures_are_compared_as_fractions(value, limits):
    for digits in range(4):
        assert _shown_with(compare_module._shown_number, value, limits, digits, 4) == \
            _shown_with(lambda text, limits: Fraction(text), value, limits, digits, 4)
