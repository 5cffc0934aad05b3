"""The SMART app's DTR page (/smart/dtr): the renderer's files, the session-bound steps through
service/dtr's next_question, the completed QuestionnaireResponse checked, in the letter and written back."""
from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path

import pytest
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from service.settings import Settings
from service.smart.dtr_views import RENDERER_FILES, with_answers
from service.smart.questionnaire_response import answer_groups, completed_problems, determination_of

RENDERER_INSTALLED = all((Path(Settings().smart_renderer_dir) / name).is_file() for name in RENDERER_FILES)
BONE_AGE_LOINC = "85151-9"


def _signed_in(ehr, make_app, flow_for, **settings):
    ehr.app_context = "order=MedicationRequest/mr-1"
    client = make_app(**settings).test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    return client


def _csrf(client) -> str:
    page = client.get("/smart/dtr").get_data(as_text=True)
    return re.search(r'data-csrf="([^"]+)"', page).group(1)


def _step(client, csrf, qr=None, restart=False, **headers):
    body = {"questionnaireResponse": qr} if qr else {"restart": True} if restart else {}
    return client.post("/smart/dtr/next", json=body, headers={"X-CSRF-Token": csrf, **headers})


def _without_bone_age(ehr):
    entries = ehr.prefetch["observations"]["entry"]
    ehr.prefetch["observations"]["entry"] = [e for e in entries
                                             if e["resource"]["code"]["coding"][0]["code"] != BONE_AGE_LOINC]


def _answer_bone_age(qr, years, day="2026-11-02"):
    """What LHC-Forms sends back: the whole form's items, the open group answered."""
    sent = copy.deepcopy(qr)
    group = sent["item"][-1]
    assert group["linkId"] == "q-bone-age"
    group["item"] = [{"linkId": "q-bone-age.value", "text": "Bone age", "answer": [{"valueDecimal": years}]},
                     {"linkId": "q-bone-age.date", "text": "Date of the radiograph", "answer": [{"valueDate": day}]}]
    return {"resourceType": "QuestionnaireResponse", "status": "in-progress", "item": sent["item"]}


def _walk_to_the_end(client, csrf, answer=None):
    step = _step(client, csrf, restart=True).get_json()
    steps = [step]
    while step["status"] != "completed" and len(steps) < 8:
        qr = step["questionnaireResponse"]
        sent = answer(qr) if answer and qr["item"][-1]["linkId"].startswith("q-") else qr
        response = _step(client, csrf, sent)
        assert response.status_code == 200, response.get_json()
        step = response.get_json()
        steps.append(step)
    return steps


# ----------------------------------------------------------------------------- the page

def test_the_page_loads_the_renderer_under_a_nonce_policy(ehr, make_app, flow_for):
    client = _signed_in(ehr, make_app, flow_for)
    response = client.get("/smart/dtr")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    policy = response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    assert f'ngCspNonce="{nonce}"' in page               # LHC-Forms stamps its injected <style> with it
    assert "script-src 'self';" in policy and "connect-src 'self';" in policy and "unsafe" not in policy
    assert client.get("/smart/dtr").headers["Content-Security-Policy"] != policy     # a fresh nonce each time
    for name in ("webcomponent/main.js", "fhir/R4/lformsFHIR.min.js", "webcomponent/styles.css"):
        assert f"/smart/renderer/{name}" in page
    assert "More documentation needed" not in page and "Meets the criteria" in page   # the chart's own result
    assert client.get("/smart/app").get_data(as_text=True).count('href="/smart/dtr"') == 1


@pytest.mark.skipif(not RENDERER_INSTALLED, reason="make test installs service/smart/web (npm ci)")
def test_the_renderer_serves_only_its_listed_files(ehr, make_app):
    client = make_app().test_client()
    main = client.get("/smart/renderer/webcomponent/main.js")
    assert main.status_code == 200 and main.mimetype in ("text/javascript", "application/javascript")
    assert main.headers["Cache-Control"] == "no-cache" and main.headers.get("ETag")
    assert client.get("/smart/renderer/webcomponent/main.js",
                      headers={"If-None-Match": main.headers["ETag"]}).status_code == 304
    for other in ("webcomponent/main.js.map", "../package.json", "webcomponent/index.html", "../LICENSE.md"):
        assert client.get(f"/smart/renderer/{other}").status_code == 404, other
    assert "National Library of Medicine" in client.get("/smart/renderer/LICENSE.md").get_data(as_text=True)


def test_a_missing_renderer_is_said_not_hidden(ehr, make_app, flow_for, tmp_path):
    client = _signed_in(ehr, make_app, flow_for, smart_renderer_dir=str(tmp_path))
    assert "renderer (LHC-Forms) is not installed" in client.get("/smart/dtr").get_data(as_text=True)
    missing = client.get("/smart/renderer/webcomponent/main.js")
    assert missing.status_code == 503 and "npm ci" in missing.get_data(as_text=True)


def test_the_cards_dtr_link_is_a_launch_that_lands_on_the_page(ehr, make_app, flow_for):
    ehr.app_context = "order=MedicationRequest/mr-1"
    client = make_app().test_client()
    flow = flow_for(client, ehr)
    launched = client.get(f"/smart/dtr?iss={ehr.iss}&launch=card-1")
    signed_in = flow.callback(flow.authorize(launched))
    assert signed_in.status_code == 303 and signed_in.headers["Location"].endswith("/smart/dtr")
    assert client.get("/smart/dtr").status_code == 200


def test_the_page_needs_a_session_and_the_care_team(ehr, make_app):
    client = make_app().test_client()
    assert client.get("/smart/dtr").status_code == 401
    answer = client.post("/smart/dtr/next", json={})
    assert answer.status_code == 401 and "session has ended" in answer.get_json()["error"]


# ----------------------------------------------------------------------------- the steps

def test_the_chart_settled_criteria_come_first_read_only_then_the_determination(ehr, make_app, flow_for):
    client = _signed_in(ehr, make_app, flow_for)
    steps = _walk_to_the_end(client, _csrf(client))
    first = steps[0]["questionnaireResponse"]
    assert [g["linkId"] for g in first["item"]] == ["on-file"]
    on_file = first["contained"][0]["item"][0]
    assert on_file["readOnly"] is True and all(i.get("readOnly") for i in on_file["item"] if i["type"] != "display")
    assert steps[0]["determination"] is None
    last = steps[-1]
    assert [g["linkId"] for g in last["questionnaireResponse"]["item"]] == ["on-file", "determination"]
    assert last["determination"] == {"code": "meets-criteria", "text": "Meets the criteria"}
    assert last["problems"] == []


def test_an_open_question_is_answered_and_changes_the_determination(ehr, make_app, flow_for):
    _without_bone_age(ehr)
    client = _signed_in(ehr, make_app, flow_for)
    csrf = _csrf(client)
    page = client.get("/smart/dtr").get_data(as_text=True)
    assert 'data-determination="documentation-needed"' in page and "Documentation needed" in page
    unanswered = _walk_to_the_end(client, csrf)
    assert [g["linkId"] for g in unanswered[-1]["questionnaireResponse"]["item"]] == \
        ["on-file", "q-bone-age", "determination"]
    assert unanswered[-1]["determination"]["code"] == "documentation-needed"
    answered = _walk_to_the_end(client, csrf, lambda qr: _answer_bone_age(qr, 4.5))
    assert answered[-1]["determination"]["code"] == "meets-criteria"
    completed = answered[-1]["questionnaireResponse"]
    QuestionnaireResponse.model_validate(completed)
    assert completed_problems(completed) == []
    given = completed["item"][1]["item"]
    assert given[0]["answer"][0]["valueDecimal"] == 4.5
    assert given[0]["answer"][0]["extension"][0]["extension"][0]["valueCode"] == "manual"


def test_the_browser_contributes_answers_only(ehr, make_app, flow_for):
    _without_bone_age(ehr)
    client = _signed_in(ehr, make_app, flow_for)
    csrf = _csrf(client)
    first = _step(client, csrf).get_json()["questionnaireResponse"]
    asked = _step(client, csrf, first).get_json()["questionnaireResponse"]
    forged = _answer_bone_age(asked, 4.5)
    forged["contained"] = [{"resourceType": "Questionnaire", "id": "x", "status": "active"}]
    forged["item"][0]["item"][0]["answer"][0]["valueCoding"]["code"] = "met"        # the chart's answers are its own
    grown = _step(client, csrf, forged).get_json()["questionnaireResponse"]
    assert grown["contained"][0]["id"] == asked["contained"][0]["id"]
    assert grown["item"][0] == asked["item"][0]


def test_bad_steps_get_specific_json_errors(ehr, make_app, flow_for):
    _without_bone_age(ehr)
    client = _signed_in(ehr, make_app, flow_for)
    csrf = _csrf(client)
    no_token = client.post("/smart/dtr/next", json={})
    assert no_token.status_code == 400 and "Form expired" in no_token.get_json()["error"]
    form = client.post("/smart/dtr/next", data="{}", content_type="text/plain", headers={"X-CSRF-Token": csrf})
    assert form.status_code == 415
    listed = client.post("/smart/dtr/next", json=[1], headers={"X-CSRF-Token": csrf})
    assert listed.status_code == 400 and "JSON object" in listed.get_json()["error"]
    other = _step(client, csrf, {"resourceType": "Patient"})
    assert other.status_code == 400 and other.get_json()["expression"] == "questionnaireResponse"
    first = _step(client, csrf).get_json()["questionnaireResponse"]
    asked = _step(client, csrf, first).get_json()["questionnaireResponse"]
    half = _answer_bone_age(asked, 4.5)
    half["item"][-1]["item"][0]["answer"] = [{"valueString": "about four"}]
    refused = _step(client, csrf, half)
    assert refused.status_code == 422 and "q-bone-age" in refused.get_json()["error"]


def test_without_an_order_the_page_says_so(ehr, make_app, flow_for):
    client = make_app().test_client()
    flow_for(client, ehr).sign_in(iss=ehr.iss, launch="abc")
    page = client.get("/smart/dtr").get_data(as_text=True)
    assert 'id="dtr-no-order"' in page and 'id="dtr-form"' not in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    refused = _step(client, csrf)
    assert refused.status_code == 409 and "order" in refused.get_json()["error"]


def test_with_answers_keeps_an_unanswered_group_as_asked():
    kept = {"resourceType": "QuestionnaireResponse", "item": [
        {"linkId": "on-file", "item": [{"linkId": "on-file.x"}]}, {"linkId": "q-bone-age", "text": "Bone age"}]}
    assert with_answers(kept, {"item": [{"linkId": "on-file", "item": []}]})["item"] == kept["item"]
    sent = {"item": [{"linkId": "q-bone-age", "item": [{"linkId": "q-bone-age.value"}]}]}
    assert with_answers(kept, sent)["item"][1] == {"linkId": "q-bone-age", "text": "Bone age",
                                                   "item": [{"linkId": "q-bone-age.value"}]}


# ----------------------------------------------------------------------------- checks of the completed response

@pytest.fixture
def completed(ehr, make_app, flow_for):
    _without_bone_age(ehr)
    client = _signed_in(ehr, make_app, flow_for)
    return _walk_to_the_end(client, _csrf(client), lambda qr: _answer_bone_age(qr, 4.5))[-1]["questionnaireResponse"]


@pytest.mark.parametrize("break_it, problem", [
    (lambda qr: qr.update(status="in-progress"), "not 'completed'"),
    (lambda qr: qr.update(authored="last Tuesday"), "not valid FHIR R4"),
    (lambda qr: qr.update(_status="-0"), "not valid FHIR R4"),      # the model raised AttributeError: was a 500
    (lambda qr: qr.update(questionnaire="#other"), "does not reference the contained"),
    (lambda qr: qr.update(contained=[]), "exactly one Questionnaire"),
    (lambda qr: qr["item"][1]["item"][0].update(linkId="q-bone-age.guess"), "not an item of the contained"),
    (lambda qr: qr["item"].reverse(), "out of the Questionnaire's order"),
    (lambda qr: qr["item"][1]["item"][0].update(answer=[{"valueString": "4.5"}]), "not a decimal answer"),
    (lambda qr: qr["item"][1]["item"][0].update(answer=[{"valueDecimal": 4.5}, {"valueDecimal": 5}]),
     "more than one answer"),
    (lambda qr: qr["item"][1]["item"].pop(1), "required item q-bone-age.date is not answered"),
    (lambda qr: qr["item"][0]["item"][0]["answer"][0]["valueCoding"].update(code="probably"), "not one of the item's"),
    (lambda qr: qr["item"][1].update(answer=[{"valueBoolean": True}]), "a group item has no answers"),
    (lambda qr: qr["item"][1].update(text="Something else"), "text differs"),
])
def test_a_completed_response_is_checked_against_its_questionnaire(completed, break_it, problem):
    assert completed_problems(completed) == []
    broken = copy.deepcopy(completed)
    break_it(broken)
    assert any(problem in p for p in completed_problems(broken)), completed_problems(broken)


def test_an_unanswered_group_is_allowed(ehr, make_app, flow_for):
    _without_bone_age(ehr)
    client = _signed_in(ehr, make_app, flow_for)
    last = _walk_to_the_end(client, _csrf(client))[-1]
    assert last["problems"] == [] and determination_of(last["questionnaireResponse"]) == "documentation-needed"


def test_a_reload_resumes_the_questionnaire_and_start_again_restarts_it(ehr, make_app, flow_for):
    _without_bone_age(ehr)
    client = _signed_in(ehr, make_app, flow_for)
    csrf = _csrf(client)
    first = _step(client, csrf).get_json()
    asked = _step(client, csrf, first["questionnaireResponse"]).get_json()
    assert [g["linkId"] for g in asked["questionnaireResponse"]["item"]] == ["on-file", "q-bone-age"]
    assert asked["resumed"] is False
    resumed = _step(client, _csrf(client)).get_json()                  # the page reloaded: no response sent
    assert resumed["resumed"] is True and resumed["questionnaireResponse"] == asked["questionnaireResponse"]
    done = _step(client, csrf, _answer_bone_age(resumed["questionnaireResponse"], 6.5)).get_json()
    assert done["status"] == "completed" and done["determination"]["code"] == "meets-criteria"
    again = _step(client, csrf).get_json()                              # reloaded once completed: still completed
    assert again["resumed"] is True and again["status"] == "completed" and again["problems"] == []
    assert again["determination"] == {"code": "meets-criteria", "text": "Meets the criteria"}
    restarted = _step(client, csrf, restart=True).get_json()
    assert restarted["resumed"] is False and restarted["status"] == "in-progress"
    assert [g["linkId"] for g in restarted["questionnaireResponse"]["item"]] == ["on-file"]
    assert 'id="letter-questionnaire"' not in client.get("/smart/packet").get_data(as_text=True)   # no longer completed


# ----------------------------------------------------------------------------- the letter and the write-back

def test_the_completed_questionnaire_goes_into_the_letter(ehr, make_app, flow_for):
    _without_bone_age(ehr)
    client = _signed_in(ehr, make_app, flow_for)
    assert 'id="letter-questionnaire"' not in client.get("/smart/packet").get_data(as_text=True)
    _walk_to_the_end(client, _csrf(client), lambda qr: _answer_bone_age(qr, 4.5))
    page = client.get("/smart/packet").get_data(as_text=True)
    section = re.search(r'<section class="letter-questionnaire".*?</section>', page, re.S).group(0)
    assert "result under the plan's criteria is: <strong>Meets the criteria</strong>" in section
    assert "<caption>Determination</caption>" not in section          # stated once, in the sentence
    bone_age = re.search(r"<tr[^>]*><th[^>]*>Bone age</th><td>(.*?)</td><td[^>]*>(.*?)</td>", section).groups()
    assert bone_age == ("4.5 years", "prescriber")
    assert re.search(r"<th[^>]*>Date of the radiograph</th><td>2026-11-02</td>", section)
    assert "<td class=\"origin\">chart</td>" in section
    for programmer in ("Observation/", "Condition/", "QuestionnaireResponse/"):
        assert programmer not in section


def _letter_criterion(page: str, title: str) -> str:
    return re.search(rf'<li data-status="[^"]+"><strong>{title}[^<]*</strong>(.*?)</li>', page, re.S).group(0)


def test_the_letter_says_what_the_completed_questionnaire_decides(ehr, make_app, flow_for):
    """The answered determination (service/dtr's, the one the questionnaire's last step states) is the
    letter's: its criteria list, records cited and conclusion; the answered bone age is marked as the
    prescriber's attestation, not chart data. Before the questionnaire, the letter reads the chart alone."""
    _without_bone_age(ehr)
    client = _signed_in(ehr, make_app, flow_for)
    before = client.get("/smart/packet").get_data(as_text=True)
    assert 'data-status="unknown"' in _letter_criterion(before, "Bone age")
    assert "To complete before sending" in before and "Once the items listed above are documented" in before
    assert "attested by the prescriber" not in before
    _walk_to_the_end(client, _csrf(client), lambda qr: _answer_bone_age(qr, 6.5))
    for escaped in (client.get("/smart/packet").get_data(as_text=True),
                    base64.b64decode(client.get("/smart/packet.json").get_json()["content"][0]["attachment"]["data"])
                    .decode()):
        page = escaped.replace("&#39;", "'")
        bone_age = _letter_criterion(page, "Bone age")
        assert 'data-status="met"' in bone_age and "Met: Bone age 6.5" in bone_age and "2026-11-02" in bone_age
        assert "(attested by the prescriber in the plan's questionnaire, not read from the chart)" in bone_age
        assert "attested by the prescriber" not in _letter_criterion(page, "Baseline IGF-1")     # chart data stays chart data
        assert "To complete before sending" not in page and "Once the items listed above" not in page
        assert "mecasermin is medically necessary for this patient's growth failure, and I ask that it be approved" \
            in page
        cited = re.search(r'<ul class="supporting">(.*?)</ul>', page, re.S).group(1)
        assert re.search(r"<li>Bone age, 2026-11-02 — attested by the prescriber in the plan's questionnaire, "
                         r"not read from the chart</li>", cited), cited
        assert "Observation/dtr-" not in page and "QuestionnaireResponse/" not in page
    assert client.get("/smart/packet.json").get_json()["description"].endswith("(policy check: meets-criteria).")


def test_a_failing_answer_makes_the_letter_say_does_not_meet(ehr, make_app, flow_for):
    _without_bone_age(ehr)
    client = _signed_in(ehr, make_app, flow_for)
    _walk_to_the_end(client, _csrf(client), lambda qr: _answer_bone_age(qr, 15.5))
    page = client.get("/smart/packet").get_data(as_text=True)
    bone_age = _letter_criterion(page, "Bone age")
    assert 'data-status="not_met"' in bone_age and "attested by the prescriber" in bone_age
    assert "This letter does not ask for approval" in page
    assert "result under the plan's criteria is: <strong>Does not meet the criteria</strong>" in page


def test_chart_text_in_the_letters_questionnaire_is_escaped(completed):
    hostile = copy.deepcopy(completed)
    hostile["item"][0]["item"][0]["answer"][0]["item"][0]["answer"][0]["valueString"] = "<img src=x onerror=alert(1)>"
    lines = [line for group in answer_groups(hostile) for line in group.lines]
    assert "<img src=x onerror=alert(1)>" in lines[1].answers
    from flask import Flask, render_template_string
    with Flask(__name__).app_context():
        html = render_template_string("{% for a in answers %}<td>{{ a }}</td>{% endfor %}", answers=lines[1].answers)
    assert "<img" not in html and "&lt;img" in html


def test_written_back_as_its_own_resource_then_the_letter_that_refers_to_it(ehr, make_app, flow_for):
    _without_bone_age(ehr)
    client = _signed_in(ehr, make_app, flow_for, smart_request_write=True)
    _walk_to_the_end(client, _csrf(client), lambda qr: _answer_bone_age(qr, 4.5))
    page = client.get("/smart/packet").get_data(as_text=True)
    form = {"csrf": re.search(r'name="csrf" value="([^"]+)"', page).group(1),
            "key": re.search(r'name="key" value="([^"]+)"', page).group(1)}
    response = client.post("/smart/packet/write-back", data=form)
    assert response.status_code == 303
    assert client.post("/smart/packet/write-back", data=form).status_code == 303     # resent: nothing more
    assert len(ehr.questionnaire_responses) == 1 and len(ehr.documents) == 1
    saved = ehr.questionnaire_responses[0]
    QuestionnaireResponse.model_validate(saved)
    assert saved["status"] == "completed" and "id" not in saved
    assert saved["identifier"] == {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{form['key']}"}
    assert saved["author"]["reference"] == "Practitioner/dr-7"
    posts = [(p, h) for m, p, h in ehr.requests if m == "POST" and p.startswith("/fhir/")]
    assert [p for p, _ in posts] == ["/fhir/QuestionnaireResponse", "/fhir/DocumentReference"]
    assert posts[0][1]["If-None-Exist"] == f"identifier=urn:ietf:rfc:3986|urn:uuid:{form['key']}"
    letter = ehr.documents[0]
    DocumentReference.model_validate(letter)
    assert {"reference": "QuestionnaireResponse/qr-1", "display": "Prior-authorization questionnaire (Da Vinci DTR)"} \
        in letter["context"]["related"]
    assert len(letter["content"]) == 1
    html = base64.b64decode(letter["content"][0]["attachment"]["data"]).decode()
    assert 'class="letter-questionnaire"' in html
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "QuestionnaireResponse/qr-1" in shown


def test_without_the_questionnaire_scope_it_travels_inside_the_letter(ehr, make_app, flow_for):
    _without_bone_age(ehr)
    ehr.grant_scope = "launch openid fhirUser patient/*.rs patient/DocumentReference.c"
    client = _signed_in(ehr, make_app, flow_for, smart_request_write=True)
    _walk_to_the_end(client, _csrf(client), lambda qr: _answer_bone_age(qr, 4.5))
    page = client.get("/smart/packet").get_data(as_text=True)
    form = {"csrf": re.search(r'name="csrf" value="([^"]+)"', page).group(1),
            "key": re.search(r'name="key" value="([^"]+)"', page).group(1)}
    assert client.post("/smart/packet/write-back", data=form).status_code == 303
    assert ehr.questionnaire_responses == [] and len(ehr.documents) == 1
    letter = ehr.documents[0]
    DocumentReference.model_validate(letter)
    attached = letter["content"][1]["attachment"]
    assert attached["contentType"] == "application/fhir+json"
    carried = json.loads(base64.b64decode(attached["data"]))
    assert carried["resourceType"] == "QuestionnaireResponse" and determination_of(carried) == "meets-criteria"
