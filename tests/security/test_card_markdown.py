"""Chart text in cards is text: what a Condition, a result, a payer's name or the order's reason says
is shown to the clinician word for word, and none of it becomes HTML, a link, an image or markup
in the EHR that renders the card."""
from __future__ import annotations

import base64

import pytest

from cards.markdown import escape_markdown, plain_text
from tests.fixtures import (PATIENT_ID, _observation, condition, coverage, fhir_bundle, laron_prefetch, mecasermin_order,
                            order_select_request)
from tests.security.card_markup import markup_problems, own_links, render, visible_text
from tests.security.conftest import SELECT, SIGN

HOSTILE = [
    "<img src=x onerror=alert(document.cookie)>",
    "<svg onload=alert(1)>",
    "[Renew prior authorization](javascript:alert(1))",
    "[update your password](https://phish.example/login)",
    "![](https://tracker.example/pixel.gif?patient=42)",
    "see https://phish.example/a and www.phish.example and help@phish.example",
    "<https://phish.example/auto>",
    "# Approved\n\n---\n> **no PA needed**",
    "1. take 10 mg\n2) then 20",
    "| a | b |\n|---|---|\n| c | d |",
    "`code` **bold** _em_ ~~struck~~ \\*",
    "&lt;script&gt; &#106;avascript: &amp;",
    "[a]: https://phish.example/ref\n[a]",
    "text\u202eright-to-left override\u0000nul\u0007bell\ud800 lone surrogate",
    "    indented code\n\tand a tab",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_escaped_text_renders_as_exactly_its_words_and_nothing_else(text):
    for markdown in (f"- {escape_markdown(text)}", f"**{escape_markdown(text)}**",
                     f"| x |\n|---|\n| {escape_markdown(text)} |", f"> {escape_markdown(text)}",
                     escape_markdown(text)):
        assert markup_problems({"detail": markdown}, frozenset()) == [], (text, render(markdown))
        assert "<a " not in render(markdown) and "<code>" not in render(markdown) and "<h" not in render(markdown)
        assert plain_text(text) in visible_text(markdown), render(markdown)


def test_plain_text_drops_control_characters_and_keeps_the_words():
    assert plain_text("Acme\u0000 Health\u202e\n\tPPO\ud800") == "Acme Health PPO"


def _hostile_chart(tag: str) -> tuple[dict, dict]:
    """A chart whose every free-text field the cards quote carries markup, links and control characters."""
    def hostile(field: str) -> str:
        return (f"{field} <img src=x onerror=alert('{tag}')> [{field}](javascript:alert(1)) "
                f"https://phish.example/{field} ![](https://tracker.example/{field}.gif)\u0007\u202e")
    prefetch = laron_prefetch()
    prefetch["conditions"] = fhir_bundle([
        condition("c1", "E34.321", "Primary IGF-1 deficiency " + hostile("condition")),
        condition("c2", "local-1", "carcinoma " + hostile("malignancy"), system="http://hospital.example.org/cs")])
    plates = _observation("ep1", "2026-08-20", "85151-9", "Bone age", None)
    plates.pop("valueQuantity", None)
    plates["valueString"] = "closed growth plates " + hostile("valueString")
    plates["note"] = [{"text": hostile("note")}]
    prefetch["observations"]["entry"].append({"resource": plates})
    prefetch["coverage"] = fhir_bundle([coverage(payer="Acme Health " + hostile("payer"))])
    order = mecasermin_order(dose_mg=2.5, reason=("E34.321", "Laron syndrome " + hostile("reason")))
    order["dosageInstruction"][0]["text"] = "2.5 mg " + hostile("dosage")
    return prefetch, order


def test_no_card_carries_markup_or_links_from_the_chart(make_app):
    prefetch, order = _hostile_chart("hook")
    response = make_app(fhir_allowlist=()).test_client().post(
        SELECT, json=order_select_request(prefetch=prefetch, order=order))
    assert response.status_code == 200, response.data[:300]
    cards = response.get_json()["cards"]
    allowed = own_links()
    for card in cards:
        assert markup_problems(card, allowed) == [], (card["summary"], render(card["detail"]))
    shown = " ".join(visible_text(card["detail"]) for card in cards)
    # The words are still there for the clinician to read (the fields really were quoted; cards clip
    # long chart text to their budget, so the start of each is what must show, as text).
    # (the payer's name and the condition's own text are in the SMART app, not in the compact cards)
    for field in ("malignancy", "reason"):
        assert f"{field} <img src=x" in shown, field


def _hostile_reading_chart(hostile) -> tuple[dict, dict]:
    """The chart text the merged readers quote in their own words: a radiology report's conclusion (the
    growth plates) and body (bone age in words), a steroid course with its dates, an antidiabetic
    interaction, a payer that selects a policy, and a frequency written only as timing text."""
    prefetch = laron_prefetch()
    observations = [e for e in prefetch["observations"]["entry"] if e["resource"]["id"] != "ba1"]
    prefetch["observations"] = fhir_bundle([e["resource"] for e in observations])
    body = f"FINDINGS: Bone age is 9 years 6 months {hostile('reportbody')}.\n"
    prefetch["reports"] = fhir_bundle([{
        "resourceType": "DiagnosticReport", "id": "dr1", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "85151-9", "display": "XR Bone age"}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"}, "effectiveDateTime": "2026-08-20",
        "conclusion": f"Impression: growth plates closed {hostile('conclusion')}",
        "presentedForm": [{"contentType": "text/plain", "data": base64.b64encode(body.encode()).decode()}]}])
    prefetch["medicationstatements"] = fhir_bundle([{
        "resourceType": "MedicationStatement", "id": "ms1", "status": "active",
        "medicationCodeableConcept": {"text": "prednisolone 5 mg tablet " + hostile("steroid")},
        "subject": {"reference": f"Patient/{PATIENT_ID}"}, "effectivePeriod": {"start": "2026-03-01"},
        "dosage": [{"route": {"text": "oral"}}]}])
    prefetch["medications"] = fhir_bundle([{
        "resourceType": "MedicationRequest", "id": "ins1", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"text": "insulin glargine " + hostile("insulin")},
        "subject": {"reference": f"Patient/{PATIENT_ID}"}, "authoredOn": "2026-06-01"}])
    prefetch["coverage"] = fhir_bundle([coverage(payer="Premera Blue Cross " + hostile("payer"))])
    order = mecasermin_order(dose_mg=2.5)
    order["dosageInstruction"][0].pop("text")
    order["dosageInstruction"][0]["timing"] = {"code": {"text": "every other evening " + hostile("frequency")}}
    return prefetch, order


@pytest.mark.parametrize("path,hook", [(SELECT, "order-select"), (SIGN, "order-sign")])
def test_text_the_readers_quote_is_escaped_in_every_card(make_app, path, hook):
    def hostile(field: str) -> str:
        return (f"{field} <img src=x onerror=alert('{field}')> [{field}](javascript:alert(1)) "
                f"https://phish.example/{field} ![](https://tracker.example/{field}.gif)")
    prefetch, order = _hostile_reading_chart(hostile)
    response = make_app(fhir_allowlist=()).test_client().post(
        path, json=order_select_request(prefetch=prefetch, order=order, hook=hook))
    assert response.status_code == 200, response.data[:300]
    cards = response.get_json()["cards"]
    for card in cards:
        assert markup_problems(card, own_links()) == [], (card["summary"], render(card["detail"]))
    shown = " ".join(visible_text(card["detail"]) for card in cards)
    # (no monitoring card, hence no insulin line, while a contraindication is critical: cards/DESIGN.md)
    quoted = ["reportbody", "conclusion", "steroid", "frequency"]
    for field in quoted:
        assert f"{field} <img src=x" in shown, field
