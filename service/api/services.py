"""The CDS services this server offers: their discovery entries and the hook each answers."""
from __future__ import annotations

from dataclasses import dataclass

from service import screening
from service.fhir.prefetch import templates


@dataclass(frozen=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str
    # A screening service (service.screening) reads less, answers with the short-stature card and
    # returns no coverage information, so it offers no CRD configuration options.
    screening: bool = False

    @property
    def prefetch(self) -> dict[str, str]:
        return screening.templates() if self.screening else templates()

    def discovery_entry(self) -> dict:
        entry = {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
            "prefetch": self.prefetch,
            "usageRequirements": (
                "Send fhirServer with fhirAuthorization (patient/*.read) or prefetch the listed keys; "
                "the service fetches any key that is missing."
            ),
        }
        if not self.screening:
            entry["extension"] = {"davinci-crd.configuration-options": CRD_CONFIGURATION_OPTIONS}
        return entry


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
        CdsService(
            id="mecasermin-screen",
            hook="patient-view",
            title="Short-stature screen for mecasermin (Increlex)",
            description=(
                "When a child's chart is opened, flags a latest height at or below -2.25 SD (age 2 years or "
                "more, no mecasermin on file), lists the work-up coverage asks for, and suggests a draft "
                "mecasermin order at the label's starting dose; the order services then check that order."
            ),
            screening=True,
        ),
        CdsService(
            id="mecasermin-screen-order-entry",
            hook="order-select",
            title="Short-stature screen on an empty medication order",
            description=(
                "For order-entry screens that call order-select before a drug is chosen (such as the CDS Hooks "
                "sandbox's Rx View): the same short-stature screen, whose suggestion fills the open order in as "
                "mecasermin at the starting dose. Silent once the order names a drug."
            ),
            screening=True,
        ),
    )
}
