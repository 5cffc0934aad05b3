"""The DTR questionnaire in the SMART app (docs/smart-app.md, "DTR questionnaire"): the payer's adaptive
questionnaire (service/dtr) rendered by LHC-Forms, for an EHR with no DTR client of its own.

GET  /smart/dtr                  the page (with iss or launch: an EHR launch that lands on it)
POST /smart/dtr/next             the session's QuestionnaireResponse grown by one group (JSON in and out);
                                 without a response, the one kept in the session (a reload resumes it),
                                 or a new one (the first step, or `"restart": true`)
GET  /smart/renderer/<file>      LHC-Forms' prebuilt files (CDS_SMART_RENDERER_DIR), an allow-list

The chart is the session's, gathered from the EHR on every step as the other pages do; the response
kept in the session is the service's own, and the browser contributes only the answers to its
question groups. The completed response, once its checks pass, goes into the letter.
"""
from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any, Mapping

from flask import jsonify, make_response, render_template, request, send_from_directory

from service.api.errors import ApiError
from service.api.request_body import read_json
from service.dtr import DtrError, next_question, questionnaire_package
from service.record.resources import reference_of
from service.smart.blueprint import PageError, app_deps, blueprint, content_security_policy, smart_sessions
from service.smart.browser_session import ActiveSession, active_session, check_csrf
from service.smart.launch_views import start_launch
from service.smart.questionnaire_response import QUESTION_PREFIX, completed_problems, determination_of, kept_entry
from service.smart.views import _clinician_only, _page_context, _work_up
from service.smart.workup import questionnaire_chart
from service.wording.dtr import DETERMINATION_WORDS

log = logging.getLogger("service.smart.views")   # the name these log lines have always had

# The renderer's files the page loads (README "Using the LHC-Forms Web Component"), the two images its
# stylesheet names, and its licence (NLM's terms: the notice goes with every redistribution, and the
# page links it). Nothing else under the folder is served.
RENDERER_FILES = ("webcomponent/styles.css", "webcomponent/assets/lib/zone.min.js", "webcomponent/runtime.js",
                  "webcomponent/polyfills.js", "webcomponent/main.js", "fhir/R4/lformsFHIR.min.js",
                  "webcomponent/down_arrow_gray_10_10.png", "webcomponent/magnifying_glass.png", "LICENSE.md")


@blueprint.get("/renderer/<path:filename>")
def renderer(filename: str):
    if filename not in RENDERER_FILES:
        raise PageError(404, "Not found", "The renderer has no such file.", relaunch=False)
    folder = Path(app_deps().settings.smart_renderer_dir)
    if not (folder / filename).is_file():
        log.error("SMART DTR renderer missing", extra={"renderer_file": filename})
        raise PageError(503, "The questionnaire renderer is not installed",
                        "LHC-Forms, which draws the questionnaire, is missing on this server.", relaunch=False,
                        hint="Run `make run` (it installs service/smart/web with npm ci), or set "
                             "CDS_SMART_RENDERER_DIR to lforms' dist/lforms folder.")
    response = send_from_directory(folder, filename, max_age=None)
    response.headers["Cache-Control"] = "no-cache"     # revalidated (ETag): a new lforms pin is seen at once
    return response


def _renderer_installed() -> bool:
    folder = Path(app_deps().settings.smart_renderer_dir)
    return all((folder / name).is_file() for name in RENDERER_FILES)


@blueprint.get("/dtr")
def dtr_page():
    if request.args.get("iss") or request.args.get("launch"):
        return start_launch("dtr")        # the CDS card's DTR link is a SMART launch URL
    active = active_session()
    _clinician_only(active)
    workup = _work_up(active)
    nonce = secrets.token_urlsafe(18)
    context = _page_context(active, workup)
    context.update(nonce=nonce, renderer_installed=_renderer_installed(),
                   chart_determination=DETERMINATION_WORDS[workup.decision.determination],
                   chart_determination_code=workup.decision.determination)
    response = make_response(render_template("smart/dtr.html", **context))
    response.headers["Content-Security-Policy"] = content_security_policy(style_nonce=nonce, connect=True)
    return response


class _JsonError(Exception):
    def __init__(self, status: int, message: str, expression: str | None = None):
        super().__init__(message)
        self.status, self.message, self.expression = status, message, expression


@blueprint.post("/dtr/next")
def dtr_next():
    try:
        return jsonify(_next_step())
    except _JsonError as exc:
        return jsonify({"error": exc.message, **({"expression": exc.expression} if exc.expression else {})}), exc.status
    except PageError as exc:              # the session ended, wrong role, EHR down: said in JSON to the script
        return jsonify({"error": f"{exc.title}. {exc.message}", **({"hint": exc.hint} if exc.hint else {})}), exc.status


def _next_step() -> dict[str, Any]:
    active = active_session()
    _clinician_only(active)
    check_csrf(active)
    if request.mimetype != "application/json":
        raise _JsonError(415, f"Content-Type must be application/json, not {request.mimetype or 'missing'}")
    body = _read_body()
    if not isinstance(body, dict):
        raise _JsonError(400, "The body must be a JSON object")
    sent = body.get("questionnaireResponse")
    if sent is not None and (not isinstance(sent, dict) or sent.get("resourceType") != "QuestionnaireResponse"):
        raise _JsonError(400, "questionnaireResponse must be a QuestionnaireResponse", "questionnaireResponse")
    workup = _work_up(active)
    if workup.order is None:
        raise _JsonError(409, "The questionnaire documents one mecasermin order, and this session has none: "
                              + (workup.order_note or "the launch named no order") + ". Open it from the order's card.")
    chart = questionnaire_chart(workup)
    deps = app_deps()
    settings = deps.settings
    options = {"default_policy": settings.default_policy, "rxnorm_codes": settings.rxnorm_codes}
    order = reference_of(workup.order)
    entry = active.data.get("dtr") or {}
    kept = entry.get("response") if entry.get("order") == order else None
    if body.get("restart") is True:
        kept = None
    elif sent is None and kept is not None:     # a reload: the questionnaire resumes where it stood
        return _step_answer(kept, completed_problems(kept) if kept.get("status") == "completed" else [], True)
    try:
        if sent is None or kept is None:          # the first step (or a restart): the package's started response
            bundle = questionnaire_package(chart, workup.order, deps.policies, deps.today(), **options)
            grown = bundle["entry"][1]["resource"]
        else:
            grown = next_question(chart, workup.order, deps.policies, with_answers(kept, sent), deps.today(), **options)
    except DtrError as exc:
        raise _JsonError(exc.status, exc.message, exc.expression) from None
    problems = completed_problems(grown) if grown.get("status") == "completed" else []
    active.data["dtr"] = kept_entry(grown, order, problems)
    smart_sessions().save(active.session_id, active.data, active.expires_at)
    return _step_answer(grown, problems, False)


def _read_body() -> Any:
    """The body read as the CDS services read theirs (size, syntax, NaN, nesting depth): a body too big,
    too deep or not JSON is a specific JSON error, never the HTML error page or a RecursionError's 500."""
    settings = app_deps().settings
    try:
        return read_json(request, settings.max_body_bytes, settings.max_json_depth)
    except ApiError as exc:
        raise _JsonError(exc.status, exc.message) from None


def _step_answer(qr: dict[str, Any], problems: list[str], resumed: bool) -> dict[str, Any]:
    log.info("SMART DTR step", extra={"groups": len(qr.get("item") or ()), "status": qr.get("status"),
                                      "problems": len(problems), "resumed": resumed})
    return {"questionnaireResponse": qr, "status": qr.get("status"), "problems": problems,
            "determination": _determination_words(qr), "resumed": resumed}


def with_answers(kept: Mapping[str, Any], sent: Mapping[str, Any]) -> dict[str, Any]:
    """The kept response, its question groups' answers taken from the browser's (by linkId, in the kept
    order); next_question checks them. A group the browser left out (LHC-Forms omits an unanswered one)
    stays as asked, unanswered. Everything else is the service's own."""
    items = sent.get("item")
    by_link = {i.get("linkId"): i for i in items if isinstance(i, dict)} if isinstance(items, list) else {}
    merged = []
    for group in kept.get("item") or ():
        if not group["linkId"].startswith(QUESTION_PREFIX):
            merged.append(group)
            continue
        asked = {key: value for key, value in group.items() if key != "item"}
        answered = by_link.get(group["linkId"])
        if isinstance(answered, dict) and "item" in answered:
            asked["item"] = answered["item"]
        merged.append(asked)
    return {**kept, "item": merged}


def _determination_words(qr: Mapping[str, Any]) -> dict[str, str] | None:
    code = determination_of(qr)
    return {"code": code, "text": DETERMINATION_WORDS.get(code, code)} if code else None
