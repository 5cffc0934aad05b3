"""The quicker readings of a coding and of an Observation's date give what the plain readings give.

`kind_of` looks a coding up as sent (one dict look-up) before reading it as `codings` does, `unit_of`
remembers the reading of a short unit, and
`effective_span` reads `effectiveDateTime` before gathering the other candidates. Each is compared
here with the plain definition it replaced, over messy shapes (hypothesis) and over every
Observation of the validation corpus.
"""
from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.record import units
from service.record.codes import _SYSTEMS, codings, read_coding
from service.record.dates import date_span, effective_span, parse_date
from service.record.observations import KIND_BY_CODE, kind_of
from tests.fhir.validation_corpus import CORPUS


def plain_kind_of(concept: Any) -> tuple[str, str, str | None] | None:
    """kind_of as it was: the first coding, as `codings` reads it, that the table knows."""
    for system, code, display in codings(concept):
        kind = KIND_BY_CODE.get((system, code))  # type: ignore[arg-type]
        if kind is not None:
            return kind, code, display
    return None


def plain_effective_span(resource: dict) -> tuple[Any, Any, str | None]:
    """effective_span as it was: every candidate gathered, then the first readable one."""
    candidates: list[Any] = [resource.get("effectiveDateTime"), resource.get("effectiveInstant")]
    period = resource.get("effectivePeriod")
    if isinstance(period, dict):
        candidates += [period.get("end"), period.get("start")]
    candidates.append(resource.get("issued"))
    reason = "no effective date or issued date"
    for candidate in candidates:
        if candidate is None:
            continue
        first, last = date_span(candidate)
        if first is not None:
            return first, last, None
        reason = parse_date(candidate)[1] or reason
    return None, None, reason


_JUNK = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.lists(st.text(max_size=3), max_size=2)
_URIS = sorted(_SYSTEMS) + ["http://example.org/local", ""]
_KIND_URIS = [uri for uri, name in _SYSTEMS.items() if name in {system for system, _ in KIND_BY_CODE}]
_PADDING = st.sampled_from(["", " ", "\t", "\n ", "\u00a0"])
_OTHER = st.text(max_size=6) | _JUNK
# A system as EHRs send it: mostly a URI of the table's systems, as sent or padded or with a trailing slash,
# else another system, another text or not text at all.
_SYSTEM = st.one_of(
    st.sampled_from(_KIND_URIS), st.sampled_from(_KIND_URIS),
    st.tuples(_PADDING, st.sampled_from(_KIND_URIS), st.sampled_from(["", "/", " /", "//"]), _PADDING).map("".join),
    st.sampled_from(_URIS), _OTHER)
_KNOWN_CODES = sorted({code for _, code in KIND_BY_CODE} | {"27113001", "8480-6"})
_CODE = st.one_of(
    st.sampled_from(_KNOWN_CODES), st.sampled_from(_KNOWN_CODES),
    st.tuples(_PADDING, st.sampled_from(_KNOWN_CODES), _PADDING).map("".join), _OTHER)
_CODING = st.fixed_dictionaries({}, optional={"system": _SYSTEM, "code": _CODE,
                                              "display": st.text(max_size=5) | _JUNK})
_CONCEPT = (st.fixed_dictionaries({}, optional={"coding": st.lists(_CODING | _JUNK, max_size=4) | _CODING | _JUNK,
                                                "text": st.text(max_size=5) | _JUNK})
            | _JUNK | st.text(max_size=4))


@settings(max_examples=3000, deadline=None)
@given(concept=_CONCEPT)
def test_kind_of_gives_what_reading_every_coding_gives(concept):
    assert kind_of(concept) == plain_kind_of(concept)


@settings(max_examples=500, deadline=None)
@given(coding=_CODING | _JUNK)
def test_codings_reads_one_coding_as_read_coding_does(coding):
    read = read_coding(coding)
    assert list(codings({"coding": [coding]})) == ([] if read is None else [read])


_WHEN = (st.sampled_from(["2024-03-05", "2024-03", "2024", "2024-02-30", "2024-03-05T23:30:00-05:00", " 2024-03-05 ",
                          "", " ", "05/03/2024", "2024-13", "2024-03-05T10:00:00Z"])
         | st.text(max_size=12) | _JUNK)
_WHEN_FIELDS = st.fixed_dictionaries({}, optional={
    "effectiveDateTime": _WHEN, "effectiveInstant": _WHEN, "issued": _WHEN,
    "effectivePeriod": st.fixed_dictionaries({}, optional={"start": _WHEN, "end": _WHEN}) | _JUNK})


@settings(max_examples=3000, deadline=None)
@given(resource=_WHEN_FIELDS)
def test_effective_span_gives_what_gathering_every_candidate_gives(resource):
    assert effective_span(resource) == plain_effective_span(resource)


def test_every_observation_of_the_corpus_is_read_as_before():
    observations = [resource for _, resource, _ in CORPUS if resource.get("resourceType") == "Observation"]
    assert len(observations) > 20
    for resource in observations:
        assert effective_span(resource) == plain_effective_span(resource)
        holders = [resource] + [c for c in resource.get("component") or () if isinstance(c, dict)]
        for holder in holders:
            assert kind_of(holder.get("code")) == plain_kind_of(holder.get("code"))


_UNIT = st.sampled_from(["cm", "kg", "[in_i]", "ng/mL", "nmol/L", "\u00b5g/L", " mcg / L ", "m[IU]/L", "", " ", "{score}",
                         "%", "a", "mo", "X" * 41, "Cm\u03bc"]) | st.text(max_size=8) | _JUNK
_QUANTITY = st.fixed_dictionaries({"value": st.floats(0, 300)}, optional={"code": _UNIT, "unit": _UNIT})


@settings(max_examples=2000, deadline=None)
@given(quantity=_QUANTITY)
def test_unit_of_gives_what_reading_the_quantity_gives(quantity):
    first = units.unit_of(quantity)
    assert first == (units.shown_unit(quantity), units.quantity_units(quantity))
    first[1].append("changed")      # the keys are the caller's own list: the remembered reading stays
    assert units.unit_of(quantity) == (units.shown_unit(quantity), units.quantity_units(quantity))
