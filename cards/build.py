"""The four cards: safety (contraindications), coverage, dose and monitoring.

Few, clear cards: one per concern, each saying why with its evidence. Indicators follow one
rule: critical only for patient harm (contraindication, dose above the maximum); payment is
never critical.
"""
from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from typing import Callable

from cards import suggestions as s
from cards.assessment import crd_key
from cards.markdown import plain_text
from cards import text
from service.policy.tests_to_order import TESTS
from service.record.frozen import frozen
from service.wording.decision import contraindicated, treatment_blocked

CARD_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/cdshooks-card-type"
OVERRIDE_SYSTEM = "urn:mecasermin-cds:CodeSystem:override-reason"
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@frozen
class Card:
    kind: str          # safety | coverage | dose | monitoring (for audit and feedback reports)
    body: dict


def _card(kind: str, summary: str, detail: str, indicator: str, source: dict, **extra) -> Card:
    body = {"uuid": str(uuid.uuid4()), "summary": plain_text(summary), "detail": detail, "indicator": indicator,
            "source": source}
    body.update({k: v for k, v in extra.items() if v})
    if body.get("suggestions"):
        body.setdefault("selectionBehavior", "at-most-one")
    else:
        body.pop("selectionBehavior", None)     # CDS Hooks: only alongside suggestions
    return Card(kind, body)


# Decisions whose card words were written lately: order-select resends the chart on every edit of an
# order, and the repeat is answered from the same frozen Decision object (service/pipeline.py, `_decide`).
_WORDS_KEPT = 64
_words_by_decision: OrderedDict[int, tuple[object, dict[str, tuple[str, str]]]] = OrderedDict()
_words_lock = threading.Lock()


def _words(kind: str, decision, write: Callable[[], tuple[str, str]]) -> tuple[str, str]:
    """A card's (summary, detail): they depend on the decision alone, which is frozen, so they are written
    once per decision. The entry holds the decision, so its id cannot name another one while it is kept."""
    key = id(decision)
    with _words_lock:
        entry = _words_by_decision.get(key)
        if entry is not None and entry[0] is decision and kind in entry[1]:
            _words_by_decision.move_to_end(key)
            return entry[1][kind]
    words = write()
    with _words_lock:
        entry = _words_by_decision.get(key)
        if entry is None or entry[0] is not decision:
            entry = _words_by_decision[key] = (decision, {})
        entry[1][kind] = words
        while len(_words_by_decision) > _WORDS_KEPT:
            _words_by_decision.popitem(last=False)
    return words


def _topic(code: str, display: str) -> dict:
    return {"system": CARD_TYPE_SYSTEM, "code": code, "display": display}


def _label_source(label, topic_code: str, topic_display: str) -> dict:
    return {"label": label.source_title, "url": label.source_url, "topic": _topic(topic_code, topic_display)}


def _label_link(label) -> dict:
    return {"label": label.source_title, "url": label.source_url, "type": "absolute"}


def _override(reasons) -> list[dict]:
    return [{"system": OVERRIDE_SYSTEM, "code": code, "display": display} for code, display in reasons]


def safety_card(decision, order_reference: str, order: dict) -> Card | None:
    findings = [f for f in decision.label_findings if f.category in ("contraindication", "indication", "warning")
                and f.severity in ("critical", "warning")]
    if not findings:
        return None
    critical = any(f.severity == "critical" for f in findings)
    options = [s.suggestion("Remove the mecasermin order", [s.delete_action(order_reference)], recommended=critical)]
    if any(f.id == "intravenous-route" for f in findings):
        also_dose = decision.dose is not None and decision.dose.proposed is not None
        description = "Change the route to subcutaneous" + (
            f" and the dose to {text.fmt_number(decision.dose.proposed.dose_mg)} mg" if also_dose else "")
        options.insert(0, s.suggestion("Give subcutaneously instead of intravenously", [{
            "type": "update", "description": description, "resource": s.corrected_order(order, decision)}]))
    return _card("safety", *_words("safety", decision, lambda: (text.safety_summary(findings),
                                                                text.safety_detail(findings))),
                 "critical" if critical else "warning",
                 _label_source(decision.label, "contraindication", "Contraindication"),
                 suggestions=options, selectionBehavior="at-most-one", links=[_label_link(decision.label)],
                 overrideReasons=_override(text.OVERRIDE_REASONS_SAFETY))


def coverage_card(decision, record, order_reference: str, order: dict, smart_link: dict | None,
                  dtr_link: dict | None = None) -> Card:
    policy = decision.policy
    subject = order.get("subject")
    patient_reference = record.patient.reference if record.patient else (
        subject.get("reference") if isinstance(subject, dict) else None)   # a draft's subject may be malformed
    # No work-up for a drug that cannot be given: while a critical safety finding stands, the red card's
    # "Remove the order" is the one action.
    options = [s.suggestion(TESTS[test].order_title,
                            [s.create_test_action(test, patient_reference, order.get("requester"), order_reference)])
               for test in decision.missing_tests] if patient_reference and not treatment_blocked(decision) else []
    links = [link for link in (smart_link, dtr_link) if link]
    links.append({"label": f"Policy: {policy.source_title}", "url": policy.source_url, "type": "absolute"})
    if decision.label.source_url != policy.source_url:       # under the label policy the policy is the label
        links.append(_label_link(decision.label))
    # A contraindication leads (red card): coverage is moot until it is resolved, never a second warning.
    moot = contraindicated(decision)
    indicator = "info" if moot or crd_key(decision) == "meets-criteria" else "warning"
    return _card("coverage", *_words("coverage", decision, lambda: (text.coverage_summary(decision),
                                                                    text.coverage_detail(decision))), indicator,
                 {"label": policy.title, "url": policy.source_url, "topic": _topic("coverage-info", "Coverage Information")},
                 suggestions=options, selectionBehavior="any", links=links,
                 overrideReasons=_override(text.OVERRIDE_REASONS_COVERAGE))


def dose_card(decision, record, order_reference: str, order: dict) -> Card | None:
    dose = decision.dose
    frequency = [f for f in decision.label_findings if f.category == "dose" and f.severity != "info"]
    if dose is None or (dose.status == "ok" and not frequency):
        return None
    options = []
    if dose.proposed:
        options.append(s.suggestion(text.proposed_dose_label(dose.proposed), [{
            "type": "update", "description": text.proposed_dose_label(dose.proposed),
            "resource": s.corrected_order(order, decision)}], recommended=True))
    elif dose.status == "unknown" and dose.dose_mg is not None and record.patient:   # the weight is what is missing
        options.append(s.suggestion(TESTS["weight"].order_title, [
            s.create_test_action("weight", record.patient.reference, order.get("requester"), order_reference)]))
    critical = dose.status in ("above-maximum", "above-daily-maximum") or any(f.severity == "critical" for f in frequency)
    indicator = "critical" if critical else "warning"
    return _card("dose", *_words("dose", decision, lambda: (text.dose_summary(dose, bool(frequency)),
                                                            text.dose_detail(dose, frequency))), indicator,
                 _label_source(decision.label, "off-guideline", "Off Guideline"), suggestions=options,
                 links=[_label_link(decision.label)],
                 overrideReasons=_override(text.OVERRIDE_REASONS_DOSE))


def monitoring_card(decision) -> Card | None:
    """What to watch once treatment starts: none while a contraindication stops treatment."""
    if treatment_blocked(decision):
        return None
    # Interactions first: they are specific to this child; the label's points follow.
    findings = sorted((f for f in decision.label_findings if f.category in ("monitoring", "interaction")
                       or (f.severity == "info" and f.category in ("warning", "dose"))),
                      key=lambda f: f.category == "monitoring")
    if not findings:
        return None
    return _card("monitoring", *_words("monitoring", decision, lambda: (text.monitoring_summary(findings),
                                                                        text.monitoring_detail(findings))), "info",
                 _label_source(decision.label, "guideline", "Guideline"), links=[_label_link(decision.label)])


def smart_app_link(base_url: str, order_reference: str) -> dict:
    """Opens the SMART app on this order: the full checklist, growth chart and prior-auth packet."""
    return {"label": "Review app: full checklist, billing, pharmacy, prior-authorization letter",
            "url": f"{base_url.rstrip('/')}/smart/launch", "type": "smart", "appContext": f"order={order_reference}"}


def dtr_app_link(base_url: str, order_reference: str) -> dict:
    """Opens the SMART app's DTR page on this order: the prior-authorization questionnaire (docs/dtr.md)."""
    return {"label": "Prior-authorization questionnaire: only what the chart lacks",
            "url": f"{base_url.rstrip('/')}/smart/dtr", "type": "smart", "appContext": f"order={order_reference}"}


def by_severity(cards: list[Card]) -> list[Card]:
    return sorted(cards, key=lambda c: SEVERITY_ORDER[c.body["indicator"]])
