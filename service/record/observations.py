"""Observations → measurements: height, weight, IGF-1, GH, bone age and reported scores.

Which codes mean what is data (the tables below); the reading of value, unit, date and status
is the same for every kind. A value that cannot be used is still returned, with `usable=False`
and the reason, so that the clinician sees why a number on file did not count.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Mapping

from . import units
from .codes import as_list, concept_text, concept_words, read_coding, system_uris
from . import radiology_text, reference_ranges
from .dates import age_span, effective_span
from .frozen import adopt, frozen, replace
from .growth import height_sds, height_sds_span, sds_from_centile
from .model import BoneAge, GhResult, Height, Igf1, Measurement

# GH (somatotropin) results: the LOINC codes of docs/clinical-rules.md. Every code is read as a
# stimulation-test result except the baseline (unstimulated) ones. Beyond 12253-1,
# LOINC names 40302-2 "pre dose arginine", 46408-1 "15 min pre dose arginine" and 40298-2
# "pre dose clonidine": samples drawn before the stimulus, so they cannot show a stimulated peak.
GH_LOINC = ("2963-7", "14146-5", "40301-4", "47760-4", "48128-3", "40302-2", "46408-1", "40298-2", "56571-3", "12253-1")
GH_BASELINE_LOINC = frozenset({"12253-1", "40302-2", "46408-1", "40298-2"})

# (system short name, code) → kind. Heights: body height (8302-2) and its standing form (8308-9),
# the measure the CDC stature reference is built on.
KIND_BY_CODE: dict[tuple[str, str], str] = {
    ("loinc", "8302-2"): "height",
    ("loinc", "8308-9"): "height",
    ("loinc", "29463-7"): "weight",
    ("loinc", "3141-9"): "weight",
    ("loinc", "2484-4"): "igf1",
    ("loinc", "73561-3"): "igf1_sds",
    ("snomed", "1153604005"): "height_sds",
    ("loinc", "8303-0"): "height_centile",
    ("snomed", "1153605006"): "height_centile",
    ("loinc", "85151-9"): "bone_age",
    ("loinc", "85150-1"): "bone_age_method",
    **{("loinc", code): "gh" for code in GH_LOINC},
}

# Normalised unit and conversion table per kind; scores are unitless.
_UNITS: dict[str, tuple[str, Mapping[str, float]]] = {
    "height": ("cm", units.LENGTH_CM),
    "weight": ("kg", units.MASS_KG),
    "igf1": ("ng/mL", units.IGF1_NG_ML),
    "gh": ("ug/L", units.GH_UG_L),
    "bone_age": ("a", units.AGE_YEARS),
}
_SCORE_UNITS = frozenset({"1", "{sd}", "sd", "{sds}", "sds", "{z-score}", "{zscore}", "z-score", "zscore", "{score}",
                          "{std_dev}"})
_CENTILE_UNITS = frozenset({"%", "{percentile}", "percentile", "{centile}", "centile"})

# Values outside these bounds are recording errors (usually a unit mix-up such as m entered as cm),
# and would give absurd SDS or doses.
_PLAUSIBLE = {"height": (30.0, 250.0), "weight": (0.5, 350.0), "bone_age": (0.0, 25.0), "igf1": (0.0, 5000.0),
              "gh": (0.0, 1000.0), "height_sds": (-15.0, 15.0), "igf1_sds": (-15.0, 15.0),
              "height_centile": (0.0, 100.0)}

# Comparators make sense for laboratory results ("<15"), not for a measured height or weight.
_COMPARATOR_OK = frozenset({"igf1", "gh", "igf1_sds", "height_sds", "height_centile"})
_IGNORED_STATUS = {"entered-in-error": "entered in error", "cancelled": "cancelled",
                   "registered": "registered, no result yet"}
_BASELINE_TEXT = re.compile(r"\b(baseline|basal|unstimulated|pre-?stimulation)\b", re.IGNORECASE)
# A number is written so that a regex engine cannot backtrack over a long run of digits
# (`[0-9]*\.?[0-9]+` is cubic on "1111…"); text longer than MAX_TEXT is not a value.
_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
_VALUE_STRING = re.compile(rf"^\s*(<=|>=|<|>|\u2264|\u2265)?\s*{_NUMBER}\s*([^\s0-9].*)?$")
MAX_TEXT = 100
_COMPARATORS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "\u2264": "<=", "\u2265": ">="}


@frozen
class Context:
    today: date
    birth_date: date | None
    sex: str | None
    birth_last: date | None = None     # the last day of a partial birth date, else None

    @property
    def birth_span(self) -> tuple[date, date] | None:
        return None if self.birth_date is None else (self.birth_date, self.birth_last or self.birth_date)

    def age_span(self, first: date | None, last: date | None) -> tuple[float, float] | None:
        """(youngest, oldest) age on a measurement date span, over the birth date's span."""
        if self.birth_date is None or first is None:
            return None
        return age_span((self.birth_date, self.birth_last or self.birth_date), (first, last or first))


@dataclass
class ObservationFacts:
    heights: list[Height] = dataclasses.field(default_factory=list)
    height_scores: list[Measurement] = dataclasses.field(default_factory=list)
    weights: list[Measurement] = dataclasses.field(default_factory=list)
    igf1: list[Igf1] = dataclasses.field(default_factory=list)
    igf1_scores: list[Measurement] = dataclasses.field(default_factory=list)
    gh_results: list[GhResult] = dataclasses.field(default_factory=list)
    bone_ages: list[BoneAge] = dataclasses.field(default_factory=list)
    bone_age_methods: list[tuple[date | None, str]] = dataclasses.field(default_factory=list)


# The same table keyed by a coding's system and code as sent ("http://loinc.org", "8302-2"), so that a coding
# written the usual way is known in one look-up (kind_of runs on every Observation and component); one sent
# otherwise (a padded code, "http://loinc.org/") is read by `read_coding`, which gives the same answer.
_KIND_AS_SENT: dict[tuple[str, str], str] = {
    (uri, code): kind for (system, code), kind in KIND_BY_CODE.items() for uri in system_uris(system)}


def kind_of(concept: Any) -> tuple[str, str, str | None] | None:
    """(kind, code, display) of the first coding this module knows, else None."""
    if not isinstance(concept, dict):
        return None
    for coding in as_list(concept.get("coding")):
        if not isinstance(coding, dict):
            continue
        system, code = coding.get("system"), coding.get("code")
        kind = _KIND_AS_SENT.get((system, code)) if isinstance(system, str) and isinstance(code, str) else None
        if kind is not None:
            display = coding.get("display")
            return kind, code, display if isinstance(display, str) else None
        read = read_coding(coding)
        kind = KIND_BY_CODE.get(read[:2]) if read is not None else None  # type: ignore[arg-type]
        if kind is not None:
            return kind, read[1], read[2]
    return None


def ignored_status(resource: Mapping) -> str | None:
    """Why a result must not be used at all (entered in error, cancelled, not yet resulted)."""
    status = resource.get("status")
    return _IGNORED_STATUS.get(status) if isinstance(status, str) else None


# Kinds whose Observations are numbers from a lab or a stadiometer, never a radiology narrative.
NUMERIC_KINDS = frozenset({"height", "weight", "igf1", "igf1_sds", "gh", "height_sds", "height_centile"})


def read_observation(resource: Mapping, reference: str, ctx: Context, out: ObservationFacts) -> set[str]:
    """Add the facts of one Observation (and of its components) to `out`; the kinds found."""
    kinds: set[str] = set()
    component = resource.get("component")
    holders = [resource] if component is None else \
        [resource] + [c for c in as_list(component) if isinstance(c, dict)]
    when: _When | None = None
    for holder in holders:
        identified = kind_of(holder.get("code"))
        if identified is None:
            continue
        kinds.add(identified[0])
        when = when or _When.of(resource, ctx)      # components share the Observation's date
        _read_value(resource, holder, identified, reference, when, ctx, out)
    return kinds


@frozen
class _When:
    """When an Observation was measured: its first and last day (`last` None for a full date), why it has
    no date, and the patient's (youngest, oldest) age over those days (None without a birth date)."""
    first: date | None
    last: date | None
    reason: str | None
    ages: tuple[float, float] | None

    @classmethod
    def of(cls, resource: Mapping, ctx: Context) -> "_When":
        first, last, reason = effective_span(resource)
        if last is not None and last > ctx.today >= first:
            last = ctx.today            # measured this month or year: not after today
        return cls(first, last if last != first else None, reason, ctx.age_span(first, last))

    @property
    def age(self) -> float | None:
        """The age on the measurement date, unrounded (it decides the SDS); None when partial dates leave
        it uncertain."""
        ages = self.ages
        return None if ages is None or ages[0] != ages[1] else ages[0]


def _read_value(resource: Mapping, holder: Mapping, identified: tuple[str, str, str | None],
                reference: str, when: _When, ctx: Context, out: ObservationFacts) -> None:
    kind, code, display = identified
    if kind == "bone_age_method":
        method = _method_text(holder)
        if method:
            out.bone_age_methods.append((when.first, method))
        return
    source_text = None
    if kind == "bone_age" and isinstance(holder.get("valueString"), str):
        raw, comparator, shown, unit_keys, value_reason = _duration_value(holder["valueString"])
        source_text = radiology_text.quote(holder["valueString"].strip())
    else:
        raw, comparator, shown, unit_keys, value_reason = _raw_value(holder)
    value, reason = None, value_reason
    normalised_unit = "1"
    if raw is not None:
        value, reason, normalised_unit = _normalise(kind, raw, unit_keys, shown)
    if reason is None and comparator and kind not in _COMPARATOR_OK:
        reason = f"value has comparator {comparator!r}"
    if reason is None and value is not None:
        low, high = _PLAUSIBLE[kind]
        if not low <= value <= high:
            reason = f"implausible value {value:g} {normalised_unit}"
    if reason is None and when.first is None:
        reason = when.reason or "no date"
    if reason is None and when.first is not None and when.first > ctx.today:
        reason = f"dated {when.first.isoformat()}, after today"
    # Every field of a Measurement, and then those of the kind's fact: the fact is made of this dict (adopt).
    base: dict[str, Any] = {
        "kind": kind, "reference": reference, "date": when.first, "code": code,
        "code_display": display or concept_text(holder.get("code")) or None,
        "preliminary": resource.get("status") == "preliminary",
        "age_years": when.age, "date_last": when.last,
        "comparator": comparator, "original_value": raw, "original_unit": shown,
        "value": value, "unit": normalised_unit, "usable": reason is None, "reason": reason,
    }
    if source_text is not None:
        base["source_text"] = source_text
    _store(kind, base, resource, holder, unit_keys, when, ctx, out)


def _store(kind: str, base: dict[str, Any], resource: Mapping, holder: Mapping, unit_keys: list[str],
           when: _When, ctx: Context, out: ObservationFacts) -> None:
    if kind == "height":
        base["sds"], base["centile"], base["sds_reason"], base["sds_range"] = _height_sds(base, when, ctx)
        out.heights.append(adopt(Height, base))
    elif kind == "weight":
        out.weights.append(adopt(Measurement, base))
    elif kind == "igf1":
        out.igf1.append(_igf1(base, holder, unit_keys, when, ctx))
    elif kind == "igf1_sds":
        out.igf1_scores.append(adopt(Measurement, base))
    elif kind == "gh":
        words = concept_words(holder.get("code"))
        base["stimulated"] = base["code"] not in GH_BASELINE_LOINC and not _BASELINE_TEXT.search(words)
        out.gh_results.append(adopt(GhResult, base))
    elif kind == "bone_age":
        base["method"] = _method_of(resource)
        base.setdefault("source_text", None)
        out.bone_ages.append(adopt(BoneAge, base))
    elif kind == "height_sds":
        out.height_scores.append(adopt(Measurement, base))
    elif kind == "height_centile":
        out.height_scores.append(adopt(Measurement, base))
        if base["usable"]:
            # The same result as an SDS, so that a reported centile can be compared with SDS thresholds.
            z = sds_from_centile(base["value"])
            out.height_scores.append(adopt(Measurement, {
                **base, "kind": "height_sds", "value": z, "unit": "1", "usable": z is not None,
                "reason": None if z is not None else "a centile of 0 or 100 has no finite SDS"}))


def _height_sds(base: dict[str, Any], when: _When, ctx: Context) -> tuple[float | None, float | None, str | None,
                                                                          tuple[float, float] | None]:
    """(SDS, centile, why there is none, SDS range) of a height."""
    if not base["usable"]:
        return None, None, "height not usable", None
    if when.ages is None:
        return None, None, "birth date unknown" if ctx.birth_date is None else "measured before the birth date", None
    youngest, oldest = when.ages
    if youngest == oldest:
        return (*height_sds(base["value"], ctx.sex, youngest), None)
    sds, centile, sds_range, reason = height_sds_span(base["value"], ctx.sex, youngest, oldest)
    if sds_range is not None:
        reason = (f"{_partial_dates(ctx, base)}: the height SDS is between {sds_range[0]:.2f} and {sds_range[1]:.2f} "
                  "depending on the day")
    elif reason is not None:
        reason = f"{_partial_dates(ctx, base)}; {reason}"
    return sds, centile, reason, sds_range


def _partial_dates(ctx: Context, base: dict[str, Any]) -> str:
    parts = []
    if ctx.birth_last is not None and ctx.birth_last != ctx.birth_date:
        parts.append(f"the birth date is known only from {ctx.birth_date.isoformat()} to {ctx.birth_last.isoformat()}")
    if base.get("date_last") is not None:
        parts.append(f"the measurement is dated only from {base['date'].isoformat()} to {base['date_last'].isoformat()}")
    return " and ".join(parts) or "the dates are partial"


def _igf1(base: dict[str, Any], holder: Mapping, value_units: list[str], when: _When, ctx: Context) -> Igf1:
    low, high, range_reason = reference_ranges.igf1_range(holder, value_units, base.get("original_unit"), ctx.sex,
                                                          when.ages)
    sds, sds_reason = None, None
    if not base["usable"]:
        sds_reason = "IGF-1 result not usable"
    elif range_reason:
        sds_reason = range_reason
    elif base["value"] <= 0:
        sds_reason = "IGF-1 value is not positive"
    else:
        # docs/clinical-rules.md: the reference range is read as ±2 SD of the log values. A result "<25" gets the
        # SDS of 25 and keeps its comparator: the true SDS is at most that, for the evaluator to weigh.
        mid = (math.log(low) + math.log(high)) / 2
        sd = (math.log(high) - math.log(low)) / 4
        sds = (math.log(base["value"]) - mid) / sd   # unrounded: compared exactly, rounded for display
    base.update(range_low=low, range_high=high, sds=sds, sds_reason=sds_reason)
    return adopt(Igf1, base)


def _raw_value(holder: Mapping) -> tuple[float | None, str | None, str | None, list[str], str | None]:
    """(number, comparator, unit as shown, unit keys, reason when there is no number)."""
    quantity = holder.get("valueQuantity")
    if isinstance(quantity, dict):
        value = units.number(quantity.get("value"))
        if value is None:
            return None, None, units.shown_unit(quantity), [], "quantity has no numeric value"
        symbol = quantity.get("comparator")
        comparator = _COMPARATORS.get(symbol) if isinstance(symbol, str) else None
        shown, keys = units.unit_of(quantity)
        return value, comparator, shown, keys, None
    for field in ("valueInteger", "valueDecimal"):
        value = units.number(holder.get(field))
        if value is not None:
            return value, None, None, [], None
    text = holder.get("valueString")
    if isinstance(text, str):
        match = _VALUE_STRING.match(text) if len(text) <= MAX_TEXT else None
        if not match:
            return None, None, None, [], "text value is not a number"
        comparator, digits, unit_text = match.groups()
        unit_text = unit_text.strip() if unit_text else None
        keys = [units.unit_key(unit_text)] if unit_text else []
        return float(digits), _COMPARATORS.get(comparator) if comparator else None, unit_text, keys, None
    absent = concept_text(holder.get("dataAbsentReason"))
    return None, None, None, [], f"no value ({absent})" if absent else "no value"


def _normalise(kind: str, raw: float, unit_keys: list[str], shown: str | None) -> tuple[float | None, str | None, str]:
    if kind in ("height_sds", "igf1_sds"):
        if unit_keys and not set(unit_keys) & _SCORE_UNITS:
            return None, f"unit {shown!r} is not a score unit", "1"
        return raw, None, "1"
    if kind == "height_centile":
        if unit_keys and not set(unit_keys) & _CENTILE_UNITS:
            return None, f"unit {shown!r} is not a percentile unit", "%"
        return raw, None, "%"
    unit, table = _UNITS[kind]
    value, reason = units.convert(raw, unit_keys, table, shown)
    return value, reason, unit


def _method_text(holder: Mapping) -> str | None:
    text = holder.get("valueString")
    if isinstance(text, str) and text.strip():
        return text.strip()
    return concept_text(holder.get("valueCodeableConcept")) or None


def _method_of(resource: Mapping) -> str | None:
    """Bone-age method on the same Observation: a 85150-1 component, else `Observation.method`."""
    for component in as_list(resource.get("component")):
        if isinstance(component, dict):
            identified = kind_of(component.get("code"))
            if identified and identified[0] == "bone_age_method":
                return _method_text(component)
    return concept_text(resource.get("method")) or None


def attach_methods(out: ObservationFacts) -> None:
    """Give a bone age without a method the one reported by a separate 85150-1 Observation of the
    same date (EHRs often file the method as its own result of the same study)."""
    if not out.bone_age_methods:
        return
    by_date = {}
    for when, method in out.bone_age_methods:
        by_date.setdefault(when, method)
    out.bone_ages = [b if b.method or b.date not in by_date else replace(b, method=by_date[b.date])
                     for b in out.bone_ages]


def _duration_value(text: str) -> tuple[float | None, str | None, str | None, list[str], str | None]:
    """A bone age written as text ("7 years 6 months", "7y6m", "90 months") in years."""
    years, reason = radiology_text.parse_duration(text)
    if years is None:
        return None, None, None, [], reason
    return years, None, None, ["a"], None
