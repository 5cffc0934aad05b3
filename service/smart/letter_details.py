"""What the letter asks the plan for, and what the prescriber types in when the EHR lacks it.

`requested_supply` reads dose, frequency, quantity, duration and refills from the order under
review. `parse_entered` checks the letter page's form (prescriber name, NPI, contact; dose,
frequency, quantity, duration when no order was read): every field has a limit and a clear
error, nothing is guessed. Entered values only fill gaps; the EHR's values are never replaced.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from service.wording.numbers import number as fmt_number, unit_text
from service.smart.prescriber import npi_valid

FREQUENCIES = {"1": "once daily", "2": "twice daily"}
PRESCRIBER_FIELDS = ("name", "npi", "phone", "fax", "address")
REQUEST_FIELDS = ("dose_mg", "frequency", "quantity", "duration")
_PHONE = re.compile(r"^[0-9+() .\-x]{7,30}$")
MAX_TEXT = 200
MAX_DOSE_MG = 50.0      # far above any label dose (0.12 mg/kg × 100 kg = 12 mg): a typo guard only


class EnteredError(ValueError):
    """A form field that cannot be used; the message names it."""


@dataclass(frozen=True)
class Supply:
    dose_mg: float | None
    frequency: str | None
    quantity: str | None
    duration: str | None
    refills: int | None
    source: str                      # "order" | "entered" | "none"

    @property
    def missing(self) -> tuple[str, ...]:
        wanted = {"dose_mg": self.dose_mg, "frequency": self.frequency, "quantity": self.quantity,
                  "duration": self.duration}
        return tuple(key for key, value in wanted.items() if value in (None, ""))


def requested_supply(order_facts, order: Mapping[str, Any] | None, frequency_words,
                     entered: Mapping[str, str]) -> Supply:
    """The supply from the order when one was read, else what the prescriber entered."""
    if order_facts is None:
        dose = entered.get("dose_mg")
        supply = Supply(float(dose) if dose else None, FREQUENCIES.get(entered.get("frequency", "")),
                        entered.get("quantity") or None, entered.get("duration") or None, None,
                        "entered" if entered else "none")
        return supply
    dispense = (order or {}).get("dispenseRequest")
    dispense = dispense if isinstance(dispense, Mapping) else {}
    refills = dispense.get("numberOfRepeatsAllowed")
    return Supply(
        dose_mg=order_facts.dose_mg,
        frequency=frequency_words(order_facts.per_day, order_facts.frequency_text),
        quantity=_quantity(dispense.get("quantity")) or entered.get("quantity") or None,
        duration="; ".join(part for part in (_quantity(dispense.get("expectedSupplyDuration"), per_fill=True),
                                             _period(dispense)) if part) or entered.get("duration") or None,
        refills=refills if isinstance(refills, int) and not isinstance(refills, bool) and refills >= 0 else None,
        source="order")


def _quantity(value: Any, *, per_fill: bool = False) -> str | None:
    if not isinstance(value, Mapping):
        return None
    number = value.get("value")
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number) or number <= 0:
        return None
    unit = value.get("unit") if isinstance(value.get("unit"), str) else unit_text(value.get("code"))
    text = f"{fmt_number(float(number))} {unit}".strip()
    return f"{text} per fill" if per_fill else text


def _period(dispense: Mapping[str, Any]) -> str | None:
    period = dispense.get("validityPeriod")
    if isinstance(period, Mapping) and isinstance(period.get("start"), str) and isinstance(period.get("end"), str):
        return f"order valid {period['start'][:10]} to {period['end'][:10]}"
    return None


def parse_entered(form: Mapping[str, str], previous: Mapping[str, str]) -> dict[str, str]:
    """The form's non-empty fields, checked, over what was entered before; EnteredError names a bad one."""
    entered = dict(previous)
    for key in PRESCRIBER_FIELDS + REQUEST_FIELDS:
        raw = form.get(key)
        if raw is None:
            continue
        value = " ".join(raw.split())
        if not value:
            entered.pop(key, None)
            continue
        if len(value) > MAX_TEXT:
            raise EnteredError(f"{_LABELS[key]} is longer than {MAX_TEXT} characters")
        entered[key] = _checked(key, value)
    return entered


def _checked(key: str, value: str) -> str:
    if key == "npi" and not npi_valid(value):
        raise EnteredError("NPI must be the prescriber's 10-digit National Provider Identifier "
                           "(its last digit is a check digit, and this one does not match)")
    if key in ("phone", "fax") and not _PHONE.match(value):
        raise EnteredError(f"{_LABELS[key]} must be a telephone number (digits, spaces, + ( ) - .)")
    if key == "dose_mg":
        try:
            dose = float(value)
        except ValueError:
            raise EnteredError("Dose must be a number of milligrams, for example 0.8") from None
        if not math.isfinite(dose) or dose <= 0 or dose > MAX_DOSE_MG:
            raise EnteredError(f"Dose must be more than 0 and at most {fmt_number(MAX_DOSE_MG)} mg")
        return fmt_number(dose)
    if key == "frequency" and value not in FREQUENCIES:
        raise EnteredError("Frequency must be once or twice daily")
    return value


_LABELS = {"name": "Prescriber name", "npi": "NPI", "phone": "Phone", "fax": "Fax", "address": "Practice address",
           "dose_mg": "Dose", "frequency": "Frequency", "quantity": "Quantity", "duration": "Duration"}
