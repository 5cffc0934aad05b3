"""The dose check in words (service.policy.dosing decides; `DoseFinding.why` and the dose findings'
`why` carry the exact mg/kg as shown beside its limits, the label's dosing rules, and the offer).

The dose finding whose limit the status names ends with the offer: the proposed dose, or why none is.
"""
from __future__ import annotations

from typing import Callable

from service.policy.compare import format_number
from service.policy.decision import DoseFinding, ProposedDose, Reason

MEAL = "within 20 minutes of a meal or snack"


def times_a_day(per_day) -> str:
    """'once daily', 'twice daily', '3 times a day', '2.4 times a day'."""
    return {1: "once daily", 2: "twice daily"}.get(per_day, f"{format_number(per_day)} times a day")


def start_range(rules) -> str:
    return f"{format_number(rules.start_low)}–{format_number(rules.start_high)} mg/kg"


def _dose(f: Reason) -> str:
    """'0.8 mg per dose = 0.058 mg/kg for 13.8 kg', or the ordered mg/kg."""
    per_kg = f["per_kg_text"]
    if f["per_kg_order"] and not f["weight_ok"]:
        return f"{per_kg} mg/kg per dose (ordered in mg/kg)"
    if f["per_kg_order"]:
        return (f"{per_kg} mg/kg per dose (ordered in mg/kg; {format_number(f['dose_mg'])} mg "
                f"for {format_number(f['weight_kg'], 1)} kg)")
    return f"{format_number(f['dose_mg'])} mg per dose = {per_kg} mg/kg for {format_number(f['weight_kg'], 1)} kg"


WHY_UNKNOWN: dict[str, Callable[[Reason], str]] = {
    "dose-unit": lambda r: r.get("record_reason") or "the dose is not stated in mg, mcg or mL",
    "weight-stale": lambda r: f"the latest weight ({r['date'].isoformat()}) is older than {r['days']} days",
    "no-weight": lambda r: r.get("record_reason") or "no weight is on file",
    "no-usable-weight": lambda r: "no usable weight is on file",
    "weight-unreadable": lambda r: f"a weight record could not be read ({'; '.join(r['gaps'])})",
}


def _unchecked(f: Reason) -> str:
    advice = ("Record a current weight to check it against the label." if f["dose_stated"] else
              f"State the dose in mg, or in mL of the {format_number(f['rules'].concentration_mg_per_ml)} mg/mL solution.")
    why = f["why_unknown"]
    return f"The dose per kg cannot be checked: {WHY_UNKNOWN[why.code](why)}. {advice}"


def _daily(f: Reason) -> str:
    rules, often = f["rules"], times_a_day(f["rate"])
    return (f"Ordered {f['frequency_text'] or often} ({often}) at {f['per_kg_text']} mg/kg per dose = "
            f"{f['per_day_text']} mg/kg per day, above the label maximum of {format_number(rules.daily_maximum)} "
            f"mg/kg per day ({format_number(rules.maximum)} mg/kg {times_a_day(rules.doses_per_day)}): risk of "
            f"hypoglycaemia. Give mecasermin {times_a_day(rules.doses_per_day)}, {MEAL}.")


def _ok(f: Reason) -> str:
    rules = f["rules"]
    if f["setting"] == "continuing" and f["weight_ok"]:
        step = f.get("step")
        return f"{_dose(f)}: within the label limit" + (
            f" ({format_number(step)} mg/kg step)." if step else
            f", between the {format_number(rules.titration_step)} mg/kg titration steps.")
    return f"{_dose(f)}: within the {'label limit' if f['setting'] == 'continuing' else 'starting range'}."


# status → the sentence for it
SENTENCES: dict[str, Callable[[Reason], str]] = {
    "unknown": _unchecked,
    "above-maximum": lambda f: (f"{_dose(f)} is above the label maximum of {format_number(f['rules'].maximum)} mg/kg "
                                f"per dose (risk of hypoglycaemia)."),
    "above-daily-maximum": _daily,
    "above-start-range": lambda f: (f"{_dose(f)} is above the starting range ({start_range(f['rules'])}); raise by "
                                    f"{format_number(f['rules'].titration_step)} mg/kg only after a week without "
                                    f"hypoglycaemia."),
    "below-range": lambda f: f"{_dose(f)} is below the usual {format_number(f['rules'].start_low)} mg/kg per dose.",
    "ok": _ok,
}
# dose finding id → the status it words
FINDING_STATUS = {"dose-unchecked": "unknown", "dose-above-maximum": "above-maximum",
                  "dose-above-daily-maximum": "above-daily-maximum", "dose-above-start-range": "above-start-range",
                  "dose-below-range": "below-range"}
FINDING_TITLES = {"dose-unchecked": "Dose not checked", "dose-above-maximum": "Dose above the maximum",
                  "dose-above-daily-maximum": "Daily dose above the maximum",
                  "dose-above-start-range": "Starting dose above range", "dose-below-range": "Dose below range",
                  "dose-frequency-unknown": "Frequency not stated", "dose-frequency": "Not twice daily"}


def _offer(f: Reason) -> str:
    offer = f.get("offer")
    if offer is None:
        return ""
    if offer.code == "no-weight-for-proposal":
        why = offer["why"]
        return f" No dose in mg is proposed: {WHY_UNKNOWN[why.code](why)}; record a current weight to compute one."
    if offer.code == "none-fits":
        return (f" No measurable dose fits within {format_number(offer['cap'])} mg/kg for "
                f"{format_number(offer['weight_kg'])} kg.")
    p, rules = f["proposed"], f["rules"]
    label = "Proposed start" if f["setting"] == "new-start" else "Proposed"
    return (f" {label}: {format_number(p.dose_mg)} mg ({format_number(p.volume_ml, 3)} mL) "
            f"{times_a_day(rules.doses_per_day)} = {p.mg_per_kg_text} mg/kg per dose.")


def message(dose: DoseFinding) -> str:
    return SENTENCES[dose.status](dose.why) + _offer(dose.why)


def finding_message(why: Reason) -> str:
    """A dose finding's message; the one whose limit the dose's status names carries the offer."""
    if why.code == "dose-frequency-unknown":
        return f"The dosing frequency is not stated; the label gives mecasermin {times_a_day(why['doses_per_day'])}."
    if why.code == "dose-frequency":
        ordered = why["frequency_text"] or times_a_day(why["rate"])
        return f"Ordered {ordered}; the label gives mecasermin {times_a_day(why['doses_per_day'])}, {MEAL}."
    status = FINDING_STATUS[why.code]
    return SENTENCES[status](why) + (_offer(why) if why.get("status") == status else "")


def allowed(dose: DoseFinding) -> str:
    rules = dose.why["rules"]
    text = (f"{start_range(rules)} per dose to start" if dose.setting == "new-start" else
            f"{format_number(rules.titration_step)} mg/kg steps up to {format_number(rules.maximum)} mg/kg per dose")
    return text + (f", {times_a_day(rules.doses_per_day)}; never above {format_number(rules.maximum)} mg/kg per dose "
                   f"or {format_number(rules.daily_maximum)} mg/kg per day")


LIMITS: dict[str, Callable[[object], str]] = {
    "above-maximum": lambda r: f"{format_number(r.maximum)} mg/kg per dose maximum",
    "above-daily-maximum": lambda r: f"{format_number(r.daily_maximum)} mg/kg per day maximum",
    "above-start-range": lambda r: f"{start_range(r)} starting range",
    "below-range": lambda r: f"usual {format_number(r.start_low)} mg/kg per dose",
}


def crossed_limit(dose: DoseFinding) -> str | None:
    return LIMITS[dose.status](dose.why["rules"]) if dose.status in LIMITS else None


def proposed_rule(p: ProposedDose, dose: DoseFinding) -> str:
    """'top of the label starting range 0.04–0.08 mg/kg per dose, twice daily, rounded down to 0.01 mL (0.1 mg)'."""
    rules = dose.why["rules"]
    text = {"start-range-top": f"top of the label starting range {start_range(rules)} per dose",
            "maximum": f"label maximum {format_number(rules.maximum)} mg/kg per dose",
            "ordered": f"the ordered {dose.why['per_kg_text']} mg/kg per dose"}[p.cap]
    return text + (f", {times_a_day(rules.doses_per_day)}, rounded down to {format_number(rules.measurable_step_ml)} mL "
                   f"({format_number(rules.step_mg)} mg)")
