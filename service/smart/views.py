"""The SMART app's pages (blueprint `smart`, under /smart), for a signed-in session.

GET  /smart/app                  the criteria checklist, growth chart, labs, label findings
GET  /smart/packet               the letter of medical necessity, printable
GET  /smart/packet.json          the same letter as a FHIR R4 DocumentReference (download)
POST /smart/packet/write-back    writes that DocumentReference to the EHR (needs a write scope)

Launch, callback and sign-out are in `launch_views`; the write-back HTTP call is in `write_back`.
Every failure is an HTML page with its HTTP status; tokens, codes and patient ids are never logged.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from flask import current_app, render_template

from service.smart.blueprint import PageError, app_deps, blueprint, fhir_origin
from service.smart.browser_session import ActiveSession, active_session, check_csrf
from service.smart.chart import Point, growth_chart, limit_caption, policy_limit
from service.smart import present
from service.smart.oauth import can_write_documents
from service.smart.packet import (LETTER_TITLE, age_text, criterion_sentence, document_reference, evidence_text,
                                  letter_words, member_id, patient_name, requester_display, supporting_references)
from service.smart.workup import FhirUnavailable, Workup, work_up
from service.smart.write_back import post_document_reference

log = logging.getLogger(__name__)


def _work_up(active: ActiveSession) -> Workup:
    deps = app_deps()
    data = active.data
    try:
        return work_up(deps, data["iss"], data["access_token"], data["patient"], data.get("order"), deps.today())
    except FhirUnavailable as exc:
        log.warning("SMART work-up failed: FHIR server unavailable", extra={"fhir_origin": fhir_origin(data["iss"])})
        raise PageError(502, "The EHR's FHIR server did not answer",
                        f"The patient's record could not be read: {exc}.",
                        hint="Try again in a moment. If it keeps failing, the app may not have been granted "
                             "read access to this patient's record.") from None


def _page_context(active: ActiveSession, workup: Workup) -> dict[str, Any]:
    record, decision = workup.record, workup.decision
    patient_facts = record.patient
    points = [Point(h.age_years, h.value, h.date, h.sds, h.centile) for h in record.heights
              if h.usable and h.value is not None and h.age_years is not None]
    limit = policy_limit(app_deps().policies.get(decision.policy.id))
    chart = growth_chart(patient_facts.sex if patient_facts else None, points,
                         patient_facts.age_years if patient_facts else None, limit)
    unknown = [c for c in decision.criteria if c.status == "unknown"]
    return {
        "workup": workup,
        "record": record,
        "decision": decision,
        "patient_name": patient_name(workup.patient),
        "age_text": age_text(patient_facts.birth_date if patient_facts else None, record.today),
        "chart": chart,
        "chart_caption": limit_caption(limit),
        "letter": letter_words(decision),
        "determination_label": present.DETERMINATION_LABELS.get(decision.determination, decision.determination),
        "how_to_get": [(test, *present.HOW_TO_GET[test]) for test in decision.missing_tests
                       if test in present.HOW_TO_GET],
        "unknown_criteria": unknown,
        "order_reference": active.data.get("order") if workup.order is not None else None,
        "order_note": workup.order_note or active.data.get("order_note"),
        "order_source": active.data.get("order_source"),
        "can_write": can_write_documents(active.data.get("scope", "")),
        "need_patient_banner": active.data.get("need_patient_banner", True),
        "csrf": active.data["csrf"],
        "member_id": member_id(workup.coverage),
        "requester": requester_display(workup.order),
        "supporting": supporting_references(decision),
        "criterion_sentence": criterion_sentence,
        "evidence_text": evidence_text,
        "letter_title": LETTER_TITLE,
    }


def _letter_resource(active: ActiveSession, workup: Workup, context: dict[str, Any]) -> dict[str, Any]:
    """The letter as a FHIR R4 DocumentReference (the letter's HTML as its attachment), created now."""
    letter_html = render_template("smart/letter_document.html", **context)
    return document_reference(
        letter_html, patient_id=active.data["patient"], order_reference=context["order_reference"],
        created=datetime.now(timezone.utc), determination=workup.decision.determination)


@blueprint.get("/app")
def app_page():
    active = active_session()
    workup = _work_up(active)
    return render_template("smart/app.html", **_page_context(active, workup))


@blueprint.get("/packet")
def packet():
    active = active_session()
    workup = _work_up(active)
    return render_template("smart/packet.html", **_page_context(active, workup))


@blueprint.get("/packet.json")
def packet_json():
    active = active_session()
    workup = _work_up(active)
    resource = _letter_resource(active, workup, _page_context(active, workup))
    response = current_app.response_class(current_app.json.dumps(resource), mimetype="application/fhir+json")
    response.headers["Content-Disposition"] = 'attachment; filename="mecasermin-letter-of-medical-necessity.json"'
    return response


@blueprint.post("/packet/write-back")
def write_back():
    active = active_session()
    check_csrf(active)
    if not can_write_documents(active.data.get("scope", "")):
        raise PageError(403, "Writing to the EHR is not permitted",
                        "The EHR granted this app read access only, so it cannot save the letter in the chart. "
                        "You can still print it or download it as a FHIR DocumentReference.",
                        hint="Writing needs the scope patient/DocumentReference.c (SMART v2) or "
                             "patient/DocumentReference.write (v1); the service asks for it when "
                             "CDS_SMART_REQUEST_WRITE is on and the EHR approves it.",
                        relaunch=False)
    workup = _work_up(active)
    context = _page_context(active, workup)
    written = post_document_reference(app_deps(), active.data["iss"], active.data["access_token"],
                                      _letter_resource(active, workup, context))
    return render_template("smart/written.html", written=written, **context), 201
