"""The fast R4 check's own pieces: the compiled functions, the primitive checks and their remembered
verdicts, each held to the fhir.resources models (tests/fhir/test_validation_corpus.py holds the
whole check to them on the corpus and on mutations)."""
from __future__ import annotations

import itertools
import math
import random
import struct
from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st
from fhir_core import types as fhir_types

from service.fhir import r4_shape
from service.fhir.r4_shape import surely_valid
from service.fhir.resources import _validates
from tests.fixtures import height_observation, patient_resource

YEARS = ["0000", "0001", "1999", "2024", "9999", "202", "20245", "２０２４"]    # the last: full-width digits
MONTHS = ["00", "01", "02", "04", "12", "13", "1"]
DAYS = ["00", "01", "28", "29", "30", "31", "32", "3"]
TIMES = ["T00:00:00", "T23:59:59", "T24:00:00", "T12:60:00", "T12:00:60", "T12:00", "T12:00:00.1",
         "T12:00:00.123456", "T12:00:00.1234567", "T12:00:00.", "t12:00:00"]
ZONES = ["", "Z", "+00:00", "-13:59", "+14:00", "+14:01", "-14:30", "+15:00", "+05:60", "z", "+0530"]


def _temporal_strings():
    for year in YEARS:
        yield year
        for month in MONTHS:
            yield f"{year}-{month}"
            for day in DAYS:
                yield f"{year}-{month}-{day}"
    for year, month, day in itertools.product(["2024", "2026", "0001"], ["02", "04", "12"], ["28", "29", "30", "31"]):
        for time, zone in itertools.product(TIMES, ZONES):
            yield f"{year}-{month}-{day}{time}{zone}"


TEMPORAL = sorted(set(_temporal_strings()))


def _with_date(element: str, value: str) -> dict:
    if element == "birthDate":
        return {**patient_resource(), "birthDate": value}
    return {**height_observation("h1", "2024-01-01", 100.0), element: value}


@pytest.mark.parametrize("element", ["birthDate", "effectiveDateTime", "issued"])   # date, dateTime, instant
def test_a_date_is_vouched_for_only_when_the_model_accepts_it(element):
    vouched = 0
    for value in TEMPORAL:
        resource = _with_date(element, value)
        if surely_valid(resource):
            vouched += 1
            assert _validates(resource), value
    assert vouched > 30


@pytest.mark.parametrize("element,value", [
    ("birthDate", "2024"), ("birthDate", "2024-02"), ("birthDate", "2024-02-29"), ("birthDate", "0001-01-01"),
    ("effectiveDateTime", "2026-12-31"), ("effectiveDateTime", "2026-01-01T10:00:00Z"),
    ("effectiveDateTime", "2026-01-31T23:59:59.123456+05:30"), ("effectiveDateTime", "2026-03-31T00:00:00-14:00"),
    ("issued", "2026-04-30T10:00:00+14:00"),
])
def test_the_dates_servers_send_are_vouched_for(element, value):
    assert surely_valid(_with_date(element, value))


@pytest.mark.parametrize("element,value", [
    ("birthDate", "2026-02-29"), ("birthDate", "2026-04-31"), ("birthDate", "0000"), ("birthDate", "2024-01-01T10:00:00Z"),
    ("effectiveDateTime", "2026-01-01T10:00:00"), ("effectiveDateTime", "2016-12-31T23:59:60Z"),
    ("effectiveDateTime", "2026-01-01T10:00:00.1234567Z"), ("issued", "2026-01-01"), ("issued", "2026-06-31T10:00:00Z"),
])
def test_a_date_the_check_is_not_sure_of_goes_to_the_models(element, value):
    assert not surely_valid(_with_date(element, value))


def test_a_decimal_is_an_int_or_a_finite_float_the_model_pattern_accepts():
    rng = random.Random(19)
    floats = [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(20_000)]
    floats += [rng.uniform(-1e6, 1e6) for _ in range(5_000)] + [0.0, -0.0, 1e16, 1e-4, 9.999e-5, 5e-324]
    for value in floats:
        assert bool(r4_shape._decimal(value)) is (fhir_types.Decimal.pattern.fullmatch(str(value)) is not None), value
    assert [r4_shape._decimal(v) for v in (0, -5, 2 ** 70, True, False, "1.5", None)] == [True] * 3 + [False] * 4


def test_a_remembered_verdict_is_the_checks_and_the_memory_stays_bounded():
    verdicts = r4_shape._Verdicts(r4_shape._CODE.fullmatch, size=3, longest=10)
    check = verdicts.__getitem__
    assert [check(v) for v in ("final", "final", " final", "final")] == [True, True, False, True]
    assert set(verdicts) == {"final", " final"}
    for value in ("a", "b", "c", "d"):
        assert check(value) is True
    assert len(verdicts) <= 3
    assert check("x" * 11) is True and "x" * 11 not in verdicts          # long text: checked, not kept
    with pytest.raises(TypeError):
        check(5)                  # not a string: surely_valid takes it for "not sure"
    with pytest.raises(TypeError):
        check(["final"])
    assert 5 not in verdicts


def test_a_bool_and_an_int_are_never_taken_for_each_other():
    """1 == True in Python: remembered verdicts are kept by string only, so neither vouches for the other."""
    observation = height_observation("h1", "2024-01-01", 100.0)
    observation["valueQuantity"]["value"] = 1
    assert surely_valid(observation)
    observation["valueQuantity"]["value"] = True
    assert not surely_valid(observation) and not _validates(observation)
    coding = observation["code"]["coding"][0]
    observation["valueQuantity"]["value"] = 1
    for value, vouched in ((True, True), (1, False), (True, True), (0, False)):
        coding["userSelected"] = value             # the models take 1 for true: the check is not sure of it
        assert surely_valid(observation) is vouched
        assert _validates(observation)


def _structure_definition(**element) -> dict:
    """ElementDefinition has more ways to fill its choice groups than the lookup holds: the other path."""
    return {"resourceType": "StructureDefinition", "id": "sd1", "url": "http://example.org/sd", "name": "X",
            "status": "draft", "kind": "resource", "abstract": False, "type": "Observation",
            "snapshot": {"element": [{"id": "Observation", "path": "Observation", **element}]}}


@pytest.mark.parametrize("element,accepted", [
    ({"defaultValueString": "x"}, True),
    ({"defaultValueString": "x", "fixedCode": "a", "minValueInteger": 1}, True),
    ({"defaultValueString": "x", "defaultValueCode": "a"}, False),
    ({"fixedCode": "a", "patternCode": "b", "fixedString": "c"}, False),
])
def test_a_type_with_many_choice_groups_is_checked_group_by_group(element, accepted):
    from fhir.resources.R4B.elementdefinition import ElementDefinition
    resource = _structure_definition(**element)
    assert surely_valid(resource) is accepted
    assert _validates(resource) is accepted
    shape = r4_shape._shapes[ElementDefinition]
    sizes = Counter(entry[2] for entry in shape.elements.values() if entry[2] is not None)
    assert math.prod(size + 1 for size in sizes.values()) > r4_shape._MOST_CHOICES


def test_every_read_type_is_compiled_into_a_function_of_its_own():
    from service.fhir.resources import READ_TYPES
    for resource_type in READ_TYPES:
        shape = r4_shape._resource_shape(resource_type)
        assert shape.conforms is r4_shape._compiled[shape.name] is not r4_shape._never
    for shape in r4_shape._shapes.values():
        assert shape.complete and shape.conforms is not r4_shape._never


def test_an_element_the_model_lacks_or_a_value_of_another_type_is_not_vouched_for():
    observation = height_observation("h1", "2024-01-01", 100.0)
    assert surely_valid(observation)
    for change in ({"foo": 1}, {"status": 5}, {"status": ["final"]}, {"code": []}, {"category": {}},
                   {"subject": {"reference": {"x": 1}}}, {"valueString": "x"}, {"modifierExtension": [{}]},
                   {"resourceType": "Patient"}):
        assert not surely_valid({**observation, **change}), change
    assert surely_valid({**observation, "modifierExtension": []})      # empty: nothing modified


_TEXTS = ["", " ", "\t\n", "\u00a0", "\u2003", "x", " x ", "Body height", "abc\u00e9", "a\ud800", "\udfff",
          "\u00e9\udc00", "x" * 10_000, "\u00e9" * 10_000 + "\ud800", 0, 1.5, True, None, [], ["x"], {}, {"x": 1}]


@given(st.one_of(st.text(), st.sampled_from(_TEXTS)))
@settings(max_examples=300, deadline=None)
def test_a_string_inlined_in_a_compiled_walk_gets_the_string_checks_verdict(text):
    """The generated functions test a `string` element inline; it must say what `_string` says."""
    observation = height_observation("h1", "2024-01-01", 100.0)
    observation["code"]["text"] = text                        # CodeableConcept: a chained table
    observation["code"]["coding"][0]["display"] = "Body height"
    assert surely_valid(observation) is r4_shape._string(text)
    observation["code"]["text"] = "Body height"
    observation["code"]["coding"][0]["display"] = text        # Coding
    assert surely_valid(observation) is r4_shape._string(text)


@given(st.one_of(st.integers(), st.floats(), st.sampled_from([True, False, None, "1", "1.5", [], {}, 2 ** 70, -0.0,
                                                              float("inf"), float("-inf"), float("nan")])))
@settings(max_examples=300, deadline=None)
def test_a_decimal_inlined_in_a_compiled_walk_gets_the_decimal_checks_verdict(value):
    observation = height_observation("h1", "2024-01-01", 100.0)
    observation["valueQuantity"]["value"] = value             # Quantity: a chained table
    assert surely_valid(observation) is r4_shape._decimal(value)


def test_a_resource_type_is_looked_up_the_same_way_first_and_after():
    for value in ("Observation", "Observation", "NotAType", "NotAType", 5, None, ["Observation"], {"a": 1}):
        assert surely_valid({**height_observation("h1", "2024-01-01", 100.0), "resourceType": value}) is (
            value == "Observation")
