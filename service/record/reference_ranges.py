"""Which reference range of a laboratory result applies to this patient, and its bounds in ng/mL
(docs/clinical-rules.md, "Reading chart text, dates and ranges").

Labs send one range, or bands by age and sex (`referenceRange.age`, `referenceRange.appliesTo`).
The band is chosen by the patient's sex and age on the sample date; a band written in whole years
("6–8 years") covers every age whose completed years fall in it, when no band contains the exact
age. Only normal ranges count (no `type`, or type `normal`). A range given only as `text`
("53 - 331 ng/mL") is read when the whole text is one range. Whenever the band cannot be told —
sex not recorded, age unknown or straddling two bands because of a partial date, two bands that
disagree, a condition this module cannot check (Tanner stage, …) — there is no range, and the
reason says why; the SDS is then unknown, never computed from the wrong band.
"""
from __future__ import annotations

import math
import re
from typing import Any, Mapping, Sequence

from . import units
from .codes import as_list, codings

_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
_RANGE_TEXT = re.compile(rf"^\s*{_NUMBER}\s*(?:-|\u2013|to)\s*{_NUMBER}\s*([^\s0-9][^\n]*)?$")
MAX_TEXT = 100
_AGE_UNITS = {**units.AGE_YEARS, "wk": 7 / 365.25, "d": 1 / 365.25}
_SEX_CODES = {("administrative-gender", "male"): "male", ("administrative-gender", "female"): "female",
              ("snomed", "248153007"): "male", ("snomed", "248152002"): "female"}
_SEX_WORDS = {"male": "male", "males": "male", "boy": "male", "boys": "male", "men": "male", "m": "male",
              "female": "female", "females": "female", "girl": "female", "girls": "female", "women": "female",
              "f": "female"}
_GENDER_SYSTEMS = ("http://hl7.org/fhir/administrative-gender", "http://hl7.org/fhir/gender")

# A bound recorded without a unit is read in the result's unit only when the range this gives is one
# an IGF-1 assay could have (ng/mL): labs that report in nmol/L often keep their range in ng/mL
# numbers ("57-316"), which read as nmol/L would be 436-2417 ng/mL.
IGF1_PLAUSIBLE_LOW = (5.0, 400.0)
IGF1_PLAUSIBLE_HIGH = (50.0, 1500.0)


def igf1_range(holder: Mapping, value_units: list[str], value_shown: str | None, sex: str | None,
               ages: tuple[float, float] | None) -> tuple[float | None, float | None, str | None]:
    """(low, high, None) in ng/mL, or (low, high, reason) / (None, None, reason) when unusable.
    `ages` is the patient's (youngest, oldest) age on the sample date, None when unknown."""
    ranges = [r for r in as_list(holder.get("referenceRange")) if isinstance(r, dict)]
    if not ranges:
        return None, None, "no reference range on the result"
    normal = [r for r in ranges if _is_normal(r)]
    if not normal:
        return None, None, "the result has no normal reference range (only other kinds of range)"
    entry, reason = choose(normal, sex, ages)
    if entry is None:
        return None, None, reason
    return _bounds(entry, value_units, value_shown)


def choose(ranges: Sequence[Mapping], sex: str | None,
           ages: tuple[float, float] | None) -> tuple[Mapping | None, str | None]:
    """The one range that applies, or (None, reason)."""
    general = [r for r in ranges if not r.get("age") and not as_list(r.get("appliesTo"))]
    banded = [r for r in ranges if r not in general]
    if not banded:
        # The first range with bounds; failing that the first one, whose bounds will say what is wrong.
        return next((r for r in general if _has_bounds(r)), general[0]), None
    fitting: list[Mapping] = []
    for whole_years in (False, True):
        fitting, straddling, undecided = [], [], []
        for entry in banded:
            fit, why = _fits(entry, sex, ages, whole_years)
            if fit == "yes":
                fitting.append(entry)
            elif fit == "partly":
                straddling.append(entry)
            elif fit is None:
                undecided.append(why)
        if straddling:
            return None, (f"the patient's age on the sample date ({_ages(ages)}, from a partial date) falls in more "
                          f"than one of the result's age bands ({_describe(straddling + fitting)})")
        if undecided:
            return None, f"the result's reference ranges depend on {undecided[0]}"
        if fitting:
            break
    if fitting:
        distinct = {(_key(r.get("low")), _key(r.get("high")), r.get("text")) for r in fitting}
        if len(distinct) > 1:
            return None, f"more than one of the result's reference ranges applies ({_describe(fitting)})"
        return fitting[0], None
    if general and any(_has_bounds(r) for r in general):
        return next(r for r in general if _has_bounds(r)), None
    who = " ".join(p for p in (sex, f"aged {_ages(ages)}" if ages else None) if p) or "this patient"
    return None, f"no reference range of the result applies to a {who} ({_describe(banded)})"


def _fits(entry: Mapping, sex: str | None, ages: tuple[float, float] | None,
          whole_years: bool) -> tuple[str | None, str | None]:
    """("yes" | "no" | "partly" | None, why undecided)."""
    for concept in as_list(entry.get("appliesTo")):
        wanted = _sex_of(concept)
        if wanted is None:
            return None, f"a condition this service does not check ({_concept_text(concept)!r})"
        if sex not in ("female", "male"):
            return None, "the patient's sex, which is not recorded as female or male"
        if wanted != sex:
            return "no", None
    band = entry.get("age")
    if not band:
        return "yes", None
    if not isinstance(band, dict):
        return None, "an age band that cannot be read"
    low, high = _age_bound(band.get("low")), _age_bound(band.get("high"))
    if low == "unreadable" or high == "unreadable":
        return None, "an age band in units that cannot be read"
    if ages is None:
        return None, "the patient's age on the sample date, which is unknown"
    inside = [_in_band(age, low, high, whole_years) for age in ages]
    return ("yes" if all(inside) else "partly" if any(inside) else "no"), None


def _in_band(age: float, low: Any, high: Any, whole_years: bool) -> bool:
    if low is not None and age < low[0]:
        return False
    if high is None:
        return True
    value, in_years = high
    if whole_years and in_years and value == int(value):
        return math.floor(age) <= value
    return age <= value


def _age_bound(quantity: Any) -> tuple[float, bool] | None | str:
    """(years, given in whole-year units) or None (no bound) or "unreadable"."""
    if not isinstance(quantity, dict) or units.number(quantity.get("value")) is None:
        return None
    keys = units.quantity_units(quantity) or ["a"]
    for key in keys:
        factor = _AGE_UNITS.get(key)
        if factor is not None:
            return units.number(quantity["value"]) * factor, factor == 1.0
    return "unreadable"


def _sex_of(concept: Any) -> str | None:
    if not isinstance(concept, dict):
        return None
    for coding in as_list(concept.get("coding")):
        if isinstance(coding, dict) and coding.get("system") in _GENDER_SYSTEMS:
            found = _SEX_CODES.get(("administrative-gender", str(coding.get("code") or "").lower()))
            if found:
                return found
    for system, code, _ in codings(concept):
        found = _SEX_CODES.get((system, code))  # type: ignore[arg-type]
        if found:
            return found
    text = _concept_text(concept).strip().lower()
    return _SEX_WORDS.get(text)


def _concept_text(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    if isinstance(concept.get("text"), str):
        return concept["text"]
    for coding in as_list(concept.get("coding")):
        if isinstance(coding, dict):
            return str(coding.get("display") or coding.get("code") or "")
    return ""


def _is_normal(entry: Mapping) -> bool:
    kind = entry.get("type")
    if not kind:
        return True
    codes = {str(c.get("code") or "").lower() for c in as_list(kind.get("coding")) if isinstance(c, dict)} \
        if isinstance(kind, dict) else set()
    text = str(kind.get("text") or "").lower() if isinstance(kind, dict) else ""
    return "normal" in codes or (not codes and text in ("normal", "normal range", "reference"))


def _has_bounds(entry: Mapping) -> bool:
    has = [isinstance(b, dict) and units.number(b.get("value")) is not None for b in (entry.get("low"), entry.get("high"))]
    return all(has) or (isinstance(entry.get("text"), str) and _RANGE_TEXT.match(entry["text"][:MAX_TEXT + 1]) is not None)


def _key(bound: Any) -> Any:
    return (bound.get("value"), bound.get("unit"), bound.get("code")) if isinstance(bound, dict) else None


def _ages(ages: tuple[float, float] | None) -> str:
    if ages is None:
        return "unknown"
    young, old = ages
    return f"{young:.1f} y" if round(young, 1) == round(old, 1) else f"{young:.1f}–{old:.1f} y"


def _describe(entries: Sequence[Mapping]) -> str:
    parts = []
    for entry in entries[:4]:
        bits = [_concept_text(c) for c in as_list(entry.get("appliesTo"))]
        band = entry.get("age")
        if isinstance(band, dict):
            low, high = band.get("low") or {}, band.get("high") or {}
            bits.append(f"{low.get('value', '')}–{high.get('value', '')} {high.get('unit') or low.get('unit') or 'y'}")
        if entry.get("text"):
            bits.append(str(entry["text"])[:40])
        parts.append(" ".join(b for b in bits if b) or "a band")
    return "; ".join(parts)


def _bounds(entry: Mapping, value_units: list[str],
            value_shown: str | None) -> tuple[float | None, float | None, str | None]:
    bounds, raw, assumed = [], [], False
    for bound in (entry.get("low"), entry.get("high")):
        if isinstance(bound, dict) and units.number(bound.get("value")) is not None:
            own = units.quantity_units(bound)
            assumed = assumed or not own
            raw.append(units.number(bound["value"]))
            bounds.append(units.convert(units.number(bound["value"]), own or value_units, units.IGF1_NG_ML,
                                        units.shown_unit(bound)))
    if len(bounds) < 2 and isinstance(entry.get("text"), str):
        text = entry["text"]
        match = _RANGE_TEXT.match(text) if len(text) <= MAX_TEXT else None
        if not match:
            return None, None, f"reference range text is not one range: {text[:MAX_TEXT]!r}"
        unit_text = match.group(3).strip() if match.group(3) else None
        keys = [units.unit_key(unit_text)] if unit_text else value_units
        assumed = not unit_text
        raw = [float(match.group(i)) for i in (1, 2)]
        bounds = [units.convert(value, keys, units.IGF1_NG_ML, unit_text) for value in raw]
    if len(bounds) < 2:
        return None, None, "reference range has no low and high"
    (low, low_reason), (high, high_reason) = bounds
    if low is None or high is None:
        return None, None, f"reference range unusable: {low_reason or high_reason}"
    if assumed and not _plausible_igf1_range(low, high):
        shown = value_shown or next(iter(value_units), "no unit")
        return None, None, (f"reference range units unclear: the range {raw[0]:g}–{raw[1]:g} has no unit of its own, "
                            f"and read in the result's unit ({shown}) it would be {low:.0f}–{high:.0f} ng/mL, "
                            f"which is not a plausible IGF-1 range")
    if not 0 < low < high:
        return low, high, f"reference range {low:g}–{high:g} ng/mL is not a positive interval"
    return low, high, None


def _plausible_igf1_range(low: float, high: float) -> bool:
    return (IGF1_PLAUSIBLE_LOW[0] <= low <= IGF1_PLAUSIBLE_LOW[1]
            and IGF1_PLAUSIBLE_HIGH[0] <= high <= IGF1_PLAUSIBLE_HIGH[1] and low < high)
