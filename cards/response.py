"""From a Decision to the CDS Hooks response: which cards, in which order, and the CRD systemAction."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Mapping

from cards import build
from cards.coverage_information import annotated_order, coverage_information

CARD_OPTIONS = ("coverage", "contraindications", "dose", "monitoring")


@dataclass
class CardSet:
    cards: list[build.Card] = field(default_factory=list)
    system_actions: list[dict] = field(default_factory=list)


def crd_configuration(body: Mapping) -> dict[str, Any]:
    """The request's `davinci-crd.configuration`, keeping only options we support with valid values."""
    extension = body.get("extension") if isinstance(body.get("extension"), Mapping) else {}
    raw = extension.get("davinci-crd.configuration")
    if not isinstance(raw, Mapping):
        return {}
    options: dict[str, Any] = {k: raw[k] for k in CARD_OPTIONS if isinstance(raw.get(k), bool)}
    max_cards = raw.get("max-cards")
    if isinstance(max_cards, int) and not isinstance(max_cards, bool) and max_cards >= 0:
        options["max-cards"] = max_cards
    return options


def without_empty(value: Any) -> Any:
    """`value` without null, "", [] or {} anywhere (CDS Hooks forbids them in a response).

    Suggestions and the systemAction echo the client's own draft order, which may carry them."""
    if isinstance(value, dict):
        pruned = {key: without_empty(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item not in (None, "", [], {})}
    if isinstance(value, list):
        return [item for item in map(without_empty, value) if item not in (None, "", [], {})]
    return value


def build_response(decision, record, *, hook: str, options: Mapping[str, Any], monitoring_hooks: tuple[str, ...],
                   order: dict, today: date, assertion_id: str, smart_link: dict | None = None,
                   questionnaire: str | None = None, dtr_link: dict | None = None) -> CardSet:
    """`assertion_id`: the CRD answer's coverage-assertion-id (chosen by the caller, who seals the chart
    under it). `questionnaire`: the policy's DTR questionnaire canonical, with `dtr_link` the SMART page
    that fills it (docs/dtr.md); both only where the CRD answer says doc-needed."""
    order = without_empty(order)
    order_reference = f"MedicationRequest/{order.get('id')}"
    wanted = {
        "contraindications": options.get("contraindications", True),
        "coverage": options.get("coverage", True),
        "dose": options.get("dose", True),
        "monitoring": options.get("monitoring", hook in monitoring_hooks),
    }
    candidates = [
        build.safety_card(decision, order_reference, order) if wanted["contraindications"] else None,
        build.coverage_card(decision, record, order_reference, order, smart_link, dtr_link) if wanted["coverage"] else None,
        build.dose_card(decision, record, order_reference, order) if wanted["dose"] else None,
        build.monitoring_card(decision) if wanted["monitoring"] else None,
    ]
    cards = build.by_severity([c for c in candidates if c is not None])
    if "max-cards" in options:
        cards = cards[: options["max-cards"]]
    actions = []
    if wanted["coverage"] and record.coverage is not None and order.get("id"):
        extension = coverage_information(decision, record.coverage.reference, today, assertion_id, questionnaire)
        actions.append({"type": "update", "description": "Add coverage information to the draft mecasermin order",
                        "resource": annotated_order(order, extension)})
    return CardSet(cards, actions)
