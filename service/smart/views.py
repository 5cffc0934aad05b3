"""The SMART app's pages (blueprint `smart`, under /smart), for a signed-in session.

GET  /smart/app                      the checklist (clinician), or a plain-language view (patient launch)
GET  /smart/packet                   the letter of medical necessity, printable (clinician only)
POST /smart/packet/details           prescriber and request details the EHR lacks, kept in the session
GET  /smart/packet.pdf               the letter as a PDF (refused while a critical finding stands)
GET  /smart/packet.json              the letter as a FHIR R4 DocumentReference (download)
POST /smart/packet/write-back        writes that DocumentReference (and its completed DTR questionnaire) once
                                     per key, then redirects (PRG)
GET  /smart/packet/written/<key>     what that write did; reloading it writes nothing

A patient or related-person launch (fhirUser Patient/… or RelatedPerson/…) never reaches the
letter or the write-back. Launch, callback and sign-out are in `launch_views`; the write-back HTTP
call is in `write_back`. Tokens, codes and patient ids are never logged.
"""
from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime, timezone
from typing import Any

from flask import current_app, redirect, render_template, request, url_for

from service.smart import present
from service.smart.blueprint import PageError, app_deps, blueprint, fhir_origin, smart_sessions
from service.smart.browser_session import ActiveSession, active_session, check_csrf
from service.smart.chart import Point, growth_chart, limit_caption, policy_limit
from service.smart.letter_details import EnteredError, parse_entered, requested_supply
from service.smart.oauth import can_create, can_write_documents
from service.smart.packet import (ATTESTED_WORDS, IDENTIFIER_SYSTEM, LETTER_TITLE, age_text, attested_note,
                                  criterion_sentence, document_reference, evidence_text, frequency_words,
                                  letter_framing, member_id, patient_name, supporting_references)
from service.smart.prescriber import Prescriber, read_prescriber
from service.smart.workup import FhirUnavailable, Workup, answered_work_up, work_up
from service.smart.questionnaire_response import answer_groups, kept_response
from service.smart.write_back import create_resource
from service.wording.decision import kind_words, verdict
from service.wording.dtr import DETERMINATION_WORDS
from service.wording.policy import version_words
from service.wording.support import support_lines

log = logging.getLogger(__name__)
_KEY = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


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


def _clinician_only(active: ActiveSession) -> None:
    if active.data.get("role") == "patient":
        raise PageError(403, "This page is for the care team",
                        "The app was opened from a patient's or family member's account. The prior-authorization "
                        "letter is prepared and signed by the prescriber, so it is not shown here.",
                        hint="The overview of the coverage review is on the app's main page.", relaunch=False)


def _page_context(active: ActiveSession, workup: Workup) -> dict[str, Any]:
    record, decision = workup.record, workup.decision
    patient_facts = record.patient
    points = [Point(h.age_years, h.value, h.date, h.sds, h.centile) for h in record.heights
              if h.usable and h.value is not None and h.age_years is not None]
    rules = app_deps().policies.applied(decision.policy)
    limit = policy_limit(rules) if rules else None
    chart = growth_chart(patient_facts.sex if patient_facts else None, points,
                         patient_facts.age_years if patient_facts else None, limit)
    unknown = [c for c in decision.criteria if c.status == "unknown"]
    critical = present.critical_findings(decision)
    return {
        "workup": workup,
        "record": record,
        "decision": decision,
        "policy_version": version_words(decision.policy),
        "role": active.data.get("role", "unknown"),
        "fhir_user_note": active.data.get("fhir_user_note"),
        "critical": critical,
        "blocked": bool(critical),
        "patient_name": patient_name(workup.patient),
        "age_text": age_text(patient_facts, record.today),
        "chart": chart,
        "chart_caption": limit_caption(limit),
        "letter": letter_framing(decision),
        "determination_label": present.DETERMINATION_LABELS.get(decision.determination, decision.determination),
        "verdict": f"{verdict(decision)} ({kind_words(decision)})",
        "how_to_get": [(test, *present.HOW_TO_GET[test]) for test in decision.missing_tests
                       if test in present.HOW_TO_GET],
        "unknown_criteria": unknown,
        "order_reference": active.data.get("order") if workup.order is not None else None,
        "order_named": active.data.get("order"),
        "order_note": workup.order_note or active.data.get("order_note"),
        "order_source": present.ORDER_SOURCES.get(active.data.get("order_source"), None),
        "can_write": can_write_documents(active.data.get("scope", "")),
        "need_patient_banner": active.data.get("need_patient_banner", True),
        "csrf": active.data["csrf"],
        "member_id": member_id(workup.coverage),
        # The letter's list: what each record is and its date, once each (a payer cannot use FHIR ids);
        # a fact the completed questionnaire attests is not a record of the chart, and says so.
        "cited": list(dict.fromkeys(present.lab_words(present.letter_words(what))
                                    + (f" — {ATTESTED_WORDS}" if reference in workup.attested else "")
                                    for reference, what in supporting_references(decision))),
        "score_derivations": present.score_derivations(record),
        "support_lines": support_lines(decision, record),
        "criterion_sentence": lambda c: criterion_sentence(c, workup.attested),
        "attested_note": lambda evidence: attested_note(evidence, workup.attested),
        "evidence_text": evidence_text,
        "letter_title": LETTER_TITLE,
    }


def _letter_context(active: ActiveSession, workup: Workup) -> dict[str, Any]:
    """The page context plus who signs the letter and what it asks for (EHR first, then typed-in values).
    With a completed, checked DTR questionnaire for this order, the letter's criteria, evidence and
    conclusion are the ones its answers give (docs/smart-app.md, "DTR questionnaire")."""
    deps = app_deps()
    questionnaire = kept_response(active.data, active.data.get("order") if workup.order is not None else None)
    answered = answered_work_up(deps, workup, questionnaire) if questionnaire else None
    if answered is None:
        questionnaire = None
    context = _page_context(active, answered or workup)
    entered = active.data.get("entered") or {}
    prescriber = read_prescriber(deps, active.data["iss"], active.data["access_token"],
                                 active.data.get("fhir_user"), workup.order)
    supply = requested_supply(workup.record.order, workup.order, frequency_words, entered)
    context.update(prescriber=prescriber.filled_with(entered), prescriber_from_ehr=prescriber, supply=supply,
                   entered=entered, write_key=str(uuid.uuid4()), questionnaire=questionnaire,
                   questionnaire_groups=answer_groups(questionnaire) if questionnaire else [],
                   questionnaire_result=DETERMINATION_WORDS.get(context["decision"].determination)
                   if questionnaire else None,
                   can_write_questionnaire=can_create(active.data.get("scope", ""), "QuestionnaireResponse"))
    return context


def _author(active: ActiveSession, prescriber: Prescriber) -> tuple[str, str | None] | None:
    user = active.data.get("fhir_user")
    if not user or user.split("/")[0] not in ("Practitioner", "PractitionerRole"):
        return None
    return user, prescriber.name if prescriber.reference == user or user.startswith("PractitionerRole/") else None


def _letter_resource(active: ActiveSession, context: dict[str, Any],
                     identifier: str | None = None, questionnaire_reference: str | None = None) -> dict[str, Any]:
    """The letter as a FHIR R4 DocumentReference (the letter's HTML as its attachment), created now; its
    completed questionnaire related by `questionnaire_reference` when saved on its own, else attached."""
    letter_html = render_template("smart/letter_document.html", **context)
    return document_reference(
        letter_html, patient_id=active.data["patient"], order_reference=context["order_reference"],
        created=datetime.now(timezone.utc), determination=context["decision"].determination,
        author=_author(active, context["prescriber_from_ehr"]), identifier=identifier,
        questionnaire=context["questionnaire"], questionnaire_reference=questionnaire_reference)


def _questionnaire_resource(active: ActiveSession, context: dict[str, Any], identifier: str) -> dict[str, Any]:
    """The completed questionnaire as the EHR keeps it: with the write's key and the signed-in author."""
    resource = {**context["questionnaire"], "identifier": {"system": IDENTIFIER_SYSTEM, "value": identifier}}
    resource.pop("id", None)            # the EHR gives it its own id
    author = _author(active, context["prescriber_from_ehr"])
    if author:
        resource["author"] = {"reference": author[0], **({"display": author[1]} if author[1] else {})}
    return resource


@blueprint.get("/app")
def app_page():
    active = active_session()
    workup = _work_up(active)
    if active.data.get("role") == "patient":
        return render_template("smart/patient.html", **_page_context(active, workup))
    return render_template("smart/app.html", **_page_context(active, workup))


@blueprint.get("/packet")
def packet():
    active = active_session()
    _clinician_only(active)
    workup = _work_up(active)
    return render_template("smart/packet.html", **_letter_context(active, workup))


@blueprint.post("/packet/details")
def packet_details():
    active = active_session()
    _clinician_only(active)
    check_csrf(active)
    try:
        entered = parse_entered(request.form, active.data.get("entered") or {})
    except EnteredError as exc:
        raise PageError(422, "A letter detail could not be used", f"{exc}.",
                        hint="Go back to the letter, correct it and save the details again.", relaunch=False) \
            from None
    active.data["entered"] = entered
    smart_sessions().save(active.session_id, active.data, active.expires_at)
    return redirect(url_for("smart.packet"), 303)


def _refuse_while_blocked(context: dict[str, Any], what: str) -> None:
    if context["blocked"]:
        findings = "; ".join(f["title"] for f in context["critical"])
        raise PageError(409, f"The letter cannot be {what} yet",
                        f"The record holds a finding that stops this order as written ({findings}). A letter asking "
                        "the plan to approve it must not be sent until that is resolved.",
                        hint="The app's main page says what to change; reopen the app afterwards.", relaunch=False)


@blueprint.get("/packet.pdf")
def packet_pdf():
    active = active_session()
    _clinician_only(active)
    workup = _work_up(active)
    context = _letter_context(active, workup)
    _refuse_while_blocked(context, "exported as a PDF")
    try:
        from service.smart.pdf import letter_pdf   # WeasyPrint loads Pango on first use
    except (ImportError, OSError):
        log.error("SMART PDF export unavailable: WeasyPrint or its system libraries are missing")
        raise PageError(503, "PDF export is not available on this server",
                        "The PDF renderer (WeasyPrint with the Pango library) is not installed here.",
                        hint="Print the letter from the browser instead (Ctrl+P or ⌘P), or ask the administrator "
                             "to install libpango-1.0-0 and libpangoft2-1.0-0.", relaunch=False) from None
    pdf = letter_pdf(render_template("smart/letter_document.html", **context))
    response = current_app.response_class(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = 'attachment; filename="mecasermin-letter-of-medical-necessity.pdf"'
    return response


@blueprint.get("/packet.json")
def packet_json():
    active = active_session()
    _clinician_only(active)
    workup = _work_up(active)
    resource = _letter_resource(active, _letter_context(active, workup))
    response = current_app.response_class(current_app.json.dumps(resource), mimetype="application/fhir+json")
    response.headers["Content-Disposition"] = 'attachment; filename="mecasermin-letter-of-medical-necessity.json"'
    return response


@blueprint.post("/packet/write-back")
def write_back():
    active = active_session()
    _clinician_only(active)
    check_csrf(active)
    key = request.form.get("key", "")
    if not _KEY.match(key):
        raise PageError(400, "Form expired", "This form has no valid save key.",
                        hint="Go back to the letter, reload it and save again.", relaunch=False)
    written = active.data.setdefault("written", {})
    if key in written:        # a repeated POST (double click, back-and-resend): nothing is written again
        return redirect(url_for("smart.written", key=key), 303)
    if not can_write_documents(active.data.get("scope", "")):
        raise PageError(403, "Writing to the EHR is not permitted",
                        "The EHR granted this app read access only, so it cannot save the letter in the chart. "
                        "You can still print it or download it as a FHIR DocumentReference.",
                        hint="Writing needs the scope patient/DocumentReference.c (SMART v2) or "
                             "patient/DocumentReference.write (v1); the service asks for it when "
                             "CDS_SMART_REQUEST_WRITE is on and the EHR approves it.",
                        relaunch=False)
    if _author(active, Prescriber()) is None:
        raise PageError(403, "The letter cannot be saved without its author",
                        "The EHR did not say which practitioner is signed in"
                        + (f" ({active.data['fhir_user_note']})" if active.data.get("fhir_user_note") else "")
                        + ", so the document would have no author. You can still print or download it.",
                        hint="The app asks for the openid and fhirUser scopes; the EHR must grant them and "
                             "name a Practitioner or PractitionerRole.", relaunch=False)
    workup = _work_up(active)
    context = _letter_context(active, workup)
    _refuse_while_blocked(context, "saved to the chart")
    written[key] = {"status": "saving", "reference": None}
    smart_sessions().save(active.session_id, active.data, active.expires_at)
    identifier = f"urn:uuid:{key}"
    deps, iss, token = app_deps(), active.data["iss"], active.data["access_token"]
    questionnaire_reference = None
    try:
        # DTR: the completed QuestionnaireResponse is kept in the EHR as a resource of its own when the EHR
        # lets the app create one (docs/smart-app.md); the letter then refers to it, else carries it.
        if context["questionnaire"] and context["can_write_questionnaire"]:
            questionnaire_reference = create_resource(deps, iss, token,
                                                      _questionnaire_resource(active, context, identifier), identifier)
        reference = create_resource(deps, iss, token,
                                    _letter_resource(active, context, identifier, questionnaire_reference), identifier)
    except PageError:
        # Nothing more is recorded: the same form may be sent again, and a questionnaire already saved
        # under this key is found by its conditional create instead of being copied.
        written.pop(key, None)
        smart_sessions().save(active.session_id, active.data, active.expires_at)
        raise
    written[key] = {"status": "saved", "reference": reference, "questionnaire": questionnaire_reference,
                    "questionnaire_attached": bool(context["questionnaire"]) and questionnaire_reference is None}
    smart_sessions().save(active.session_id, active.data, active.expires_at)
    return redirect(url_for("smart.written", key=key), 303)


@blueprint.get("/packet/written/<key>")
def written(key: str):
    active = active_session()
    _clinician_only(active)
    result = (active.data.get("written") or {}).get(key) if _KEY.match(key) else None
    if result is None:
        raise PageError(404, "No such save", "This browser's session has no record of that save.",
                        hint="Open the letter and save it from there.", relaunch=False)
    return render_template("smart/written.html", result=result, csrf=active.data["csrf"])
