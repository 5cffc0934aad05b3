"""Has the prescriber already removed a mecasermin order for this child? Then the screen never offers
it again (docs/clinical-rules.md, "Screening that earns its place"). Two signals, either suffices:

- the chart: a mecasermin MedicationRequest with status `cancelled` ("withdrawn before any
  administration"): an order written and then taken back;
- this service's own records: the prescriber accepted a suggestion of a safety card issued for this
  child (the one-click "Remove the mecasermin order", or a route change after a contraindication), or
  dismissed a screening card with an override reason (CDS Hooks feedback, stored with the card's type
  and the audit row's patient hash — no patient identifier is stored).

A draft simply deleted in the EHR without using a card leaves no trace a CDS service can see; it is
not a signal (the draft order itself never silences the screen, see service.screening).
"""
from __future__ import annotations

from typing import Iterable, Mapping

from service.trigger import order_is_mecasermin

_FEEDBACK_SQL = (
    "SELECT 1 FROM audit a, json_each(a.card_uuids) j "
    "JOIN card_issued c ON c.card_uuid = j.value JOIN feedback f ON f.card_uuid = j.value "
    "WHERE a.patient_hash = ? AND ((c.card_type = 'safety' AND f.outcome = 'accepted') "
    "OR (c.card_type = 'screening' AND f.outcome = 'overridden')) LIMIT 1")


def cancelled_in_chart(resources: Iterable[Mapping], rxnorm_codes: Iterable[str] = ()) -> bool:
    medications = {f"Medication/{r.get('id')}": r for r in resources
                   if isinstance(r, Mapping) and r.get("resourceType") == "Medication"}
    return any(isinstance(r, Mapping) and r.get("resourceType") == "MedicationRequest" and r.get("status") == "cancelled"
               and order_is_mecasermin(r, medications, rxnorm_codes) for r in resources)


def removed_at_a_card(store, patient_id: str | None) -> bool:
    if not patient_id:
        return False
    return bool(store.query(_FEEDBACK_SQL, (store.patient_hash(patient_id),)))


def order_removed(resources: Iterable[Mapping], store, patient_id: str | None, rxnorm_codes: Iterable[str] = ()) -> bool:
    resources = list(resources)
    return cancelled_in_chart(resources, rxnorm_codes) or removed_at_a_card(store, patient_id)
