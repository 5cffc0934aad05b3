"""The CDS services this server offers: their discovery entries and the hook each answers."""
from __future__ import annotations

from dataclasses import dataclass

from service.fhir.prefetch import templates


@dataclass(frozen=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str

    def discovery_entry(self) -> dict:
        return {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
            "prefetch": templates(),
            "usageRequirements": (
                "Send fhirServer with fhirAuthorization (patient/*.read) or prefetch the listed keys; "
                "the service fetches any key that is missing."
            ),
            "extension": {"davinci-crd.configuration-options": CRD_CONFIGURATION_OPTIONS},
        }


# Da Vinci CRD STU 2.2 configuration options: booleans per card type and max-cards.
CRD_CONFIGURATION_OPTIONS = [
    {"code": "coverage", "type": "boolean", "name": "Coverage information",
     "description": "Return the coverage card and the coverage-information systemAction.", "default": True},
    {"code": "contraindications", "type": "boolean", "name": "Contraindications",
     "description": "Return the card listing label contraindications.", "default": True},
    {"code": "dose", "type": "boolean", "name": "Dose check",
     "description": "Return the card checking the ordered dose against the label.", "default": True},
    {"code": "monitoring", "type": "boolean", "name": "Monitoring note",
     "description": "Return the consolidated monitoring note (label warnings, interactions).", "default": True},
    {"code": "max-cards", "type": "integer", "name": "Maximum cards",
     "description": "Return at most this many cards, the most severe first.", "default": 4},
]

SERVICES = {
    service.id: service
    for service in (
        CdsService(
            id="mecasermin-order-select",
            hook="order-select",
            title="Mecasermin (Increlex) coverage and safety check",
            description=(
                "When mecasermin is selected, checks the child's record against the payer's coverage "
                "criteria and the label's contraindications and dosing, and lists what documentation "
                "is missing for prior authorization."
            ),
        ),
        CdsService(
            id="mecasermin-order-sign",
            hook="order-sign",
            title="Mecasermin (Increlex) order review before signing",
            description=(
                "Before a mecasermin order is signed, re-checks coverage criteria, contraindications and "
                "the dose, returns Da Vinci CRD coverage information for prior authorization, and adds "
                "the label's monitoring points."
            ),
        ),
    )
}
