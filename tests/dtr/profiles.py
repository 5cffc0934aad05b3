"""Checks of the Da Vinci DTR STU 2 / SDC profiles' required elements that the R4 models cannot see
(the R4 models check the base resources: `r4_valid`). Each returns the problems found, as text."""
from __future__ import annotations

from fhir.resources.R4B import get_fhir_model_class

DTR = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/"
ADAPTIVE = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-questionnaireAdaptive"
REQUEST_TYPES = ("MedicationRequest", "ServiceRequest", "DeviceRequest", "NutritionOrder", "Encounter", "Appointment")


def r4_valid(resource: dict) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def _walk_items(items):
    for item in items or ():
        yield item
        yield from _walk_items(item.get("item"))
        for answer in item.get("answer") or ():
            yield from _walk_items(answer.get("item"))


def adaptive_questionnaire_problems(q: dict) -> list[str]:
    """dtr-questionnaire-adapt / sdc-questionnaire-adapt: the adaptive extension, a narrative (text 1..1),
    no enableWhen / enableBehavior, unique linkIds."""
    problems = []
    if not any(e.get("url") == ADAPTIVE and ("valueBoolean" in e or "valueUrl" in e) for e in q.get("extension", ())):
        problems.append("no sdc-questionnaire-questionnaireAdaptive extension")
    if not (q.get("text") or {}).get("div"):
        problems.append("text (narrative) is required")
    links = [i["linkId"] for i in _walk_items(q.get("item"))]
    if len(links) != len(set(links)):
        problems.append("linkIds are not unique")
    if any("enableWhen" in i or "enableBehavior" in i for i in _walk_items(q.get("item"))):
        problems.append("enableWhen is 0..0 in adaptive questionnaires")
    if not q.get("url"):
        problems.append("url (canonical) missing")
    return problems


def questionnaire_response_problems(qr: dict) -> list[str]:
    """dtr-questionnaireresponse(-adapt): contained 1..1 adaptive Questionnaire referenced as '#id',
    qr-context to a Coverage and a request, intendedUse 1..*, subject and questionnaire 1..1, item 1..*,
    basedOn/partOf 0..0, every answer with information-origin (source 1..1); every answered linkId
    defined in the contained Questionnaire."""
    problems = []
    contained = qr.get("contained") or []
    if len(contained) != 1 or contained[0].get("resourceType") != "Questionnaire":
        return ["contained must be exactly one Questionnaire"]
    q = contained[0]
    problems += [f"contained Questionnaire: {p}" for p in adaptive_questionnaire_problems(q)]
    if qr.get("questionnaire") != f"#{q.get('id')}":
        problems.append("questionnaire must reference the contained Questionnaire")
    contexts = [e["valueReference"]["reference"] for e in qr.get("extension", ()) if e.get("url") == DTR + "qr-context"]
    if not any(c.startswith("Coverage/") for c in contexts):
        problems.append("qr-context: no Coverage")
    if not any(c.split("/")[0] in REQUEST_TYPES for c in contexts):
        problems.append("qr-context: no request")
    if not any(e.get("url") == DTR + "intendedUse" and e.get("valueCodeableConcept") for e in qr.get("extension", ())):
        problems.append("intendedUse missing")
    for key in ("subject", "questionnaire", "item", "status"):
        if not qr.get(key):
            problems.append(f"{key} is required")
    for key in ("basedOn", "partOf"):
        if key in qr:
            problems.append(f"{key} is 0..0")
    defined = {i["linkId"] for i in _walk_items(q.get("item"))}
    for item in _walk_items(qr.get("item")):
        if item["linkId"] not in defined:
            problems.append(f"{item['linkId']}: not defined in the contained Questionnaire")
        for answer in item.get("answer") or ():
            origin = [e for e in answer.get("extension", ()) if e.get("url") == DTR + "information-origin"]
            if len(origin) != 1 or not any(s.get("url") == "source" and s.get("valueCode") in ("auto", "override", "manual")
                                           for s in origin[0].get("extension", ())):
                problems.append(f"{item['linkId']}: answer without information-origin source")
    return problems


def package_bundle_problems(bundle: dict) -> list[str]:
    """DTR-QPackageBundle: type collection, first entry a Questionnaire (dtrb-1), one Questionnaire, at
    most one QuestionnaireResponse, nothing but Questionnaire, QuestionnaireResponse, ValueSet, Library."""
    problems = []
    if bundle.get("type") != "collection":
        problems.append("type must be collection")
    types = [e["resource"]["resourceType"] for e in bundle.get("entry", ())]
    if not types or types[0] != "Questionnaire":
        problems.append("dtrb-1: the first resource must be a Questionnaire")
    if types.count("Questionnaire") != 1 or types.count("QuestionnaireResponse") > 1:
        problems.append("one Questionnaire and at most one QuestionnaireResponse")
    if set(types) - {"Questionnaire", "QuestionnaireResponse", "ValueSet", "Library"}:
        problems.append("closed slicing: unexpected resource types")
    return problems
