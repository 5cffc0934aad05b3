"""`@frozen`: the same dataclass as `dataclass(frozen=True)`, built in one step."""
from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import InitVar, dataclass, field
from datetime import date

import pytest

from service.policy.decision import Reason
from service.record.frozen import adopt, frozen, replace
from service.record.model import Height, Measurement, PatientRecord


@frozen
class Sample:
    name: str
    when: date | None
    count: int = 0
    tags: tuple[str, ...] = ()
    facts: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Reference:
    name: str
    when: date | None
    count: int = 0
    tags: tuple[str, ...] = ()
    facts: dict = field(default_factory=dict)


@frozen
class Child(Sample):
    extra: str | None = None


def test_it_builds_what_the_standard_frozen_dataclass_builds():
    args = ("a", date(2024, 3, 1))
    made, reference = Sample(*args, 2, tags=("x",)), Reference(*args, 2, tags=("x",))
    assert dataclasses.asdict(made) == dataclasses.asdict(reference)
    assert list(vars(made).items()) == list(vars(reference).items())     # the same attributes, in field order
    assert repr(made) == repr(reference).replace("Reference", "Sample")
    assert made == Sample("a", date(2024, 3, 1), count=2, tags=("x",)) and made != Sample("b", None)
    assert Sample("a", None).count == 0 and Sample("a", None).tags == ()


def test_fields_stay_frozen_and_a_factory_default_is_made_per_instance():
    one, two = Sample("a", None), Sample("b", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.name = "c"          # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del one.name            # type: ignore[misc]
    assert one.facts == {} and one.facts is not two.facts


def test_arguments_are_checked_as_a_dataclass_checks_them():
    with pytest.raises(TypeError):
        Sample("a")             # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Sample("a", None, nonsense=1)   # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Sample("a", None, 1, (), {}, 5)  # type: ignore[call-arg]


def test_a_subclass_takes_its_parents_fields_first():
    child = Child("a", None, 3, extra="e")
    assert (child.name, child.count, child.extra) == ("a", 3, "e")
    assert [f.name for f in dataclasses.fields(Child)] == ["name", "when", "count", "tags", "facts", "extra"]


def test_replace_copy_pickle_and_hash_work_on_the_model():
    height = Height(kind="height", value=101.5, unit="cm", reference="Observation/h1", date=date(2024, 3, 1),
                    sds=-3.1, sds_range=(-3.2, -3.0))
    moved = dataclasses.replace(height, value=102.0)
    assert moved.value == 102.0 and moved.sds == -3.1 and height.value == 101.5
    assert pickle.loads(pickle.dumps(height)) == height
    assert copy.deepcopy(height) == height and copy.copy(height) == height
    assert hash(height) == hash(Height(**dataclasses.asdict(height) | {"sds_range": (-3.2, -3.0)}))
    assert height != Measurement(**{f.name: getattr(height, f.name) for f in dataclasses.fields(Measurement)})
    assert Reason("x").facts == {} and Reason("x").facts is not Reason("y").facts
    assert PatientRecord(today=date(2024, 3, 1), patient=None).heights == ()


def test_what_it_cannot_build_exactly_is_refused_when_defined():
    with pytest.raises(TypeError, match="plain fields only"):
        @frozen
        class Later:
            name: str

            def __post_init__(self):
                pass
    with pytest.raises(TypeError, match="plain fields only"):
        @frozen
        class Hidden:
            name: str
            cached: int = field(default=0, init=False)
    with pytest.raises(TypeError, match="plain fields only"):
        @frozen(kw_only=True)
        class Named:
            name: str
    with pytest.raises(TypeError, match="plain fields only"):
        @frozen
        class WithInitVar:
            name: str
            seed: InitVar[int] = 0


def test_replace_copies_the_fields_and_changes_the_ones_named():
    height = Height(kind="height", value=101.5, unit="cm", reference="Observation/h1", date=date(2024, 3, 1), sds=-3.1)
    moved = replace(height, value=102.0, sds_reason="remeasured")
    assert moved == dataclasses.replace(height, value=102.0, sds_reason="remeasured")
    assert type(moved) is Height and height.value == 101.5 and height.sds_reason is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        moved.value = 1.0       # type: ignore[misc]
    with pytest.raises(TypeError, match="no field"):
        replace(height, nonsense=1)


def test_replace_does_not_carry_what_a_cached_property_kept():
    from service.policy.judging import Candidate
    from service.policy.decision import Evidence

    first = Evidence(kind="height", value=100.0, unit="cm", date=date(2024, 3, 1), reference="Observation/a")
    second = Evidence(kind="height", value=101.0, unit="cm", date=date(2024, 3, 1), reference="Observation/b")
    candidate = Candidate(date(2024, 3, 1), -2.0, None, lambda: first)
    assert candidate.evidence is first
    assert replace(candidate, given=lambda: second).evidence is second


def test_replace_takes_a_plain_dataclass_too():
    assert replace(Reference("a", None), count=3) == Reference("a", None, 3)


def test_adopt_makes_the_instance_the_constructor_makes():
    fields = {"kind": "weight", "value": 15.2, "unit": "kg", "reference": "Observation/w1", "date": date(2024, 3, 1),
              "code": "29463-7", "code_display": "Body weight", "comparator": None, "original_value": 15.2,
              "original_unit": "kg", "age_years": 5.5, "preliminary": False, "usable": True, "reason": None,
              "date_last": None}
    made = adopt(Measurement, dict(fields))
    assert made == Measurement(**fields) and type(made) is Measurement and hash(made) == hash(Measurement(**fields))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.value = 1.0        # type: ignore[misc]


def test_adopt_refuses_a_field_missing_or_unknown_and_a_plain_dataclass():
    with pytest.raises(TypeError, match=r"missing \['count', 'facts', 'tags'\]"):
        adopt(Sample, {"name": "a", "when": None})
    with pytest.raises(TypeError, match=r"unknown \['nonsense'\]"):
        adopt(Sample, {"name": "a", "when": None, "count": 0, "tags": (), "facts": {}, "nonsense": 1})
    with pytest.raises(TypeError, match="not a @frozen class"):
        adopt(Reference, {"name": "a", "when": None, "count": 0, "tags": (), "facts": {}})
