"""One hook call, start to finish: trigger → gather → record → decision → cards.

No Flask here: the HTTP layer hands in a validated body and the app's dependencies, and gets
back the response and the facts the audit log keeps.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from sqlalchemy.exc import SQLAlchemyError

from cards.build import dtr_app_link, smart_app_link
from cards.coverage_information import needs_documentation
from cards.response import build_response, crd_configuration
from cards.screening import create_action, draft_order, screening_card, update_action
from service.api.services import CdsService
from service.content_cache import ContentCache, digest
from service.dtr.questions import applied_policy, policy_questions, questionnaire_url
from service.fhir.gather import count_resources  # noqa: F401 — the HTTP layer's 413 check uses it from here
from service.fhir.gather import call_budget, gather, referenced_medications
from service.fhir.resources import bundle_resources, normalise_quirks
from service.policy import evaluate
from service.policy.decision import NO_VERSION_IN_FORCE
from service.wording import word
from service.record import build_record
from service.screening import screen
from service.screening_history import order_removed
from service.trigger import order_is_mecasermin


log = logging.getLogger(__name__)
_OWN_REASONS = ("not prefetched", "no FHIR server may be called", "its query needs", "unread", " references)")


def public_gap(gap: str) -> str:
    """What a hook's answer says of a failed fetch: which data, never how the network failed. The
    caller chooses `fhirServer`: "connection refused" against "timeout" against "HTTP 401" would tell
    it which ports are open behind this service."""
    what, _, why = gap.rpartition(": ")
    # This service's own reasons (no server may be called, a query it cannot fill, its limits) say what
    # is missing and tell nothing of the network: the gap texts of service/fhir/gather.py.
    if not what or any(own in why for own in _OWN_REASONS):
        return gap
    if what.endswith(" could not be read"):       # a reference: "Coverage/cov1: Organization/o could not be read"
        return f"{what} from the FHIR server"
    return f"{what}: could not be read from the FHIR server"



@dataclass
class HookOutcome:
    response: dict
    patient_id: str | None = None
    decisions: list = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    card_types: dict[str, str] = field(default_factory=dict)
    # The trigger declined the call (no order this service reviews): no card, no decision, so its
    # audit row may be written off the request path (service/deferred_audit.py).
    declined: bool = False
    # The DTR charts this answer sealed, written in its audit row's transaction (service/api/hooks.py).
    sealed_charts: list = field(default_factory=list)

    def audit(self, service_id: str, body: Mapping, elapsed_ms: float) -> dict[str, Any]:
        cards = self.response.get("cards", [])
        assertion_ids = [
            ext["valueString"]
            for action in self.response.get("systemActions", [])
            for info in action.get("resource", {}).get("extension", [])
            for ext in info.get("extension", [])
            if ext.get("url") == "coverage-assertion-id"
        ]
        return {
            "hook_instance": body.get("hookInstance"),
            "service": service_id,
            "patient_id": self.patient_id,
            "policy": ",".join(d.policy.id for d in self.decisions) or None,
            "determination": ",".join(d.determination for d in self.decisions) or None,
            "policy_version": ",".join(d.policy.version.name if d.policy.version else NO_VERSION_IN_FORCE
                                       for d in self.decisions) or None,
            "policy_digest": ",".join(d.policy.digest or "" for d in self.decisions) or None,
            "coverage_assertion_ids": assertion_ids,
            "card_uuids": [c["uuid"] for c in cards if "uuid" in c],
            "card_indicators": [c["indicator"] for c in cards],
            "timings_ms": {**self.timings_ms, "total": round(elapsed_ms, 2)},
            "counts": self.counts,
            "card_types": self.card_types,
        }


def draft_resources(context: Mapping) -> list[dict]:
    return [normalise_quirks(r) for r in bundle_resources(context.get("draftOrders"))]


def mecasermin_orders(hook: str, context: Mapping, rxnorm_codes,
                      medications: Mapping[str, dict] | None = None, drafts: list[dict] | None = None) -> list[dict]:
    """The draft orders this hook asks about that are mecasermin. `medications`: the Medications
    the drafts reference ("Medication/id" → resource), wherever they were found; `drafts`: the
    context's `draft_resources`, when the caller has them already."""
    drafts = draft_resources(context) if drafts is None else drafts
    medications = dict(medications or {})
    medications.update({f"Medication/{r.get('id')}": r for r in drafts if r.get("resourceType") == "Medication"})
    requests = [r for r in drafts if r.get("resourceType") == "MedicationRequest"]
    if hook == "order-select":
        selected = set(context.get("selections") or ())
        requests = [r for r in requests if f"MedicationRequest/{r.get('id')}" in selected]
    return [r for r in requests if order_is_mecasermin(r, medications, rxnorm_codes)]


def answer_hook(service: CdsService, body: Mapping, deps, base_url: str,
                resources_used: int | None = None) -> HookOutcome:
    """`resources_used`: the body's `count_resources`, when the caller has counted them already."""
    if service.screening:
        return answer_screening(service, body, deps)
    context = body["context"]
    settings = deps.settings
    budget = call_budget(body, settings, resources_used)
    drafts = draft_resources(context)
    # A draft that names its drug only by `Medication/{id}` is read before the trigger decides.
    medications = referenced_medications(body, settings, deps.fhir_client, budget, drafts)
    orders = mecasermin_orders(service.hook, context, settings.rxnorm_codes, medications, drafts)
    if not orders:
        return HookOutcome(response={"cards": []}, declined=True)

    timings: dict[str, float] = {}
    with _timed(timings, "gather"):
        gathered = gather(body, settings, deps.fhir_client, budget=budget)
    # The call's other drafts are part of the chart: a somatropin draft signed in the same
    # session is use in combination with GH. The order under review is left out by the record.
    chart = list(gathered.resources) + drafts + list(medications.values())
    # What names the chart in the decision cache: the gathered resources' digest (taken by gather)
    # and the drafts, or the whole chart when gather could not name its part.
    chart_name = (gathered.digest.hex(), drafts) if gathered.digest is not None else chart
    today = deps.today()
    options = crd_configuration(body)
    cards: list = []
    actions: list[dict] = []
    decisions = []
    sealed_charts = []
    with _timed(timings, "evaluate"):
        for order in orders:
            record, decision, inputs = _decide(chart, chart_name, order, today, deps,
                                               tuple(map(public_gap, gathered.gaps)), medications,
                                               context.get("userId"), gathered.refused)
            order_reference = f"MedicationRequest/{order.get('id')}"
            questionnaire = _questionnaire(deps.policies, decision)
            assertion_id, to_keep = _assertion_id(deps, inputs if questionnaire else None, bool(questionnaire))
            card_set = build_response(decision, record, hook=service.hook, options=options,
                                      monitoring_hooks=settings.monitoring_card_hooks, order=order, today=today,
                                      assertion_id=assertion_id, smart_link=smart_app_link(base_url, order_reference),
                                      questionnaire=questionnaire,
                                      dtr_link=dtr_app_link(base_url, order_reference) if questionnaire else None)
            if to_keep and card_set.system_actions:
                sealed_charts += _keep_for_dtr(deps, inputs, assertion_id, chart, order, decision.policy.id,
                                               context.get("userId"))
            decisions.append(decision)
            cards.extend(card_set.cards)
            actions.extend(card_set.system_actions)
    result = {"cards": [c.body for c in cards], **({"systemActions": actions} if actions else {})}
    counts = data_counts(gathered)
    card_types = {c.body["uuid"]: c.kind for c in cards}
    return HookOutcome(result, context.get("patientId"), decisions, counts, timings, card_types,
                       sealed_charts=sealed_charts)


def _questionnaire(policies, decision) -> str | None:
    """The DTR questionnaire canonical for a CRD answer that says doc-needed under a policy with questions."""
    if not needs_documentation(decision) or not policy_questions(applied_policy(policies, decision)):
        return None
    return questionnaire_url(decision.policy.id)


def _assertion_id(deps, inputs: bytes | None, with_questionnaire: bool) -> tuple[str, bool]:
    """The answer's coverage-assertion-id, and whether the chart must be kept under it for DTR: only an
    answer carrying a questionnaire is followed by DTR, and a repeat reuses the id of the chart it kept."""
    snapshots = getattr(deps, "snapshots", None)
    if not with_questionnaire or snapshots is None:
        return str(uuid.uuid4()), False
    return snapshots.assertion_id(inputs)


def _keep_for_dtr(deps, inputs: bytes | None, assertion_id: str, chart: list[dict], order: dict, policy_id: str,
                  user: Any) -> list:
    """The chart and the hook's user, sealed by the answer's coverage-assertion-id, for the DTR client that
    passes it back as `context` (service/dtr/snapshots.py): written with the answer's audit row."""
    try:
        return [deps.snapshots.seal_answer(inputs, assertion_id, chart, order, policy_id,
                                           user if isinstance(user, str) else None)]
    except (TypeError, ValueError, SQLAlchemyError) as exc:
        # The CRD answer stands without it; DTR then asks from what the client sends.
        log.warning("DTR chart snapshot not kept", extra={"error": type(exc).__name__})
        return []


_decided: ContentCache = ContentCache(max_weight=10_000)     # weighed by the chart's resources


def _decide(chart: list[dict], chart_name: Any, order: dict, today, deps, gaps: tuple[str, ...],
            medications: Mapping[str, dict], user: Any = None, refused=()):
    """(record, decision, inputs) for this order and chart, or the pair worked out from the same chart
    before: order-select resends it on every edit. Both are frozen, so sharing them is safe.
    `chart_name` stands for `chart` in the key; `inputs` is that key (None when the inputs could not
    be digested), which also names the DTR snapshot of the answer.

    Medications read from the FHIR server were not validated and may hold NaN, which the digest
    cannot tell from null: they are written with the standard encoder, which refuses it. The
    policy set is named by identity and kept in the entry, so its id cannot be reused while the
    entry lives."""
    settings, policies = deps.settings, deps.policies

    def work_out():
        record = build_record(chart, order, today, rxnorm_codes=settings.rxnorm_codes,
                              mg_per_ml=policies.label.dosing.concentration_mg_per_ml,
                              categories=policies.label.medication_categories,
                              user=user if isinstance(user, str) else None)
        decision = word(evaluate(record, policies, today, default_policy=settings.default_policy,
                                 technical_gaps=gaps, refused=refused))
        return policies, record, decision

    try:
        fetched_part = json.dumps(medications, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        key = None
    else:
        key = digest((chart_name, order, today.isoformat(), list(settings.rxnorm_codes), settings.default_policy,
                      list(gaps), list(refused), fetched_part, id(policies), user if isinstance(user, str) else None))
    _, record, decision = _decided.get_or_compute(key, work_out, weight=len(chart))
    return record, decision, key


def empty_selected_order(context: Mapping) -> dict | None:
    """The selected draft MedicationRequest that names no drug yet (an order form just opened), if any."""
    selected = set(context.get("selections") or ())
    for resource in bundle_resources(context.get("draftOrders")):
        order = normalise_quirks(resource)
        if (order.get("resourceType") == "MedicationRequest" and f"MedicationRequest/{order.get('id')}" in selected
                and "medicationCodeableConcept" not in order and "medicationReference" not in order):
            return order
    return None


def answer_screening(service: CdsService, body: Mapping, deps) -> HookOutcome:
    """The short-stature screen: patient-view, or order-select on an order that names no drug yet."""
    context = body["context"]
    settings = deps.settings
    base_order = None
    if service.hook == "order-select":
        base_order = empty_selected_order(context)
        if base_order is None:
            return HookOutcome(response={"cards": []})
    timings: dict[str, float] = {}
    with _timed(timings, "gather"):
        gathered = gather(body, settings, deps.fhir_client, service.prefetch)
    today = deps.today()
    counts = data_counts(gathered)
    patient_id = context.get("patientId")
    if gathered.gaps:
        # Without every key (a mecasermin order could be the one missing) the screen stays silent.
        return HookOutcome({"cards": []}, patient_id, counts=counts, timings_ms=timings)
    with _timed(timings, "evaluate"):
        record = build_record(list(gathered.resources), None, today, rxnorm_codes=settings.rxnorm_codes,
                              categories=deps.policies.label.medication_categories)
        removed = order_removed(gathered.resources, deps.store, patient_id, settings.rxnorm_codes)
        finding = screen(record, today, deps.policies, default_policy=settings.default_policy, removed=removed)
    if finding is None:
        return HookOutcome({"cards": []}, patient_id, counts=counts, timings_ms=timings)
    action = None
    if finding.ready:       # a qualifying IGF-1 and a normal GH on file: the draft order
        order = draft_order(finding, today, context.get("userId"), base_order)
        action = update_action(order) if base_order else create_action(order)
    card = screening_card(finding, action, requester=context.get("userId"))
    return HookOutcome({"cards": [card]}, patient_id, counts=counts, timings_ms=timings,
                       card_types={card["uuid"]: "screening"})


def data_counts(gathered) -> dict[str, int]:
    """How much data a call used, for the audit log (counts only: no patient data)."""
    return {"resources": len(gathered.resources), "invalid": gathered.invalid, "gaps": len(gathered.gaps),
            "prefetched_keys": len(gathered.prefetched), "fetched_keys": len(gathered.fetched)}


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[name] = round((time.perf_counter() - start) * 1000, 2)
