"""The DTR operations' Parameters, in and out, as DTR STU 2 and SDC define them.

`$questionnaire-package` in (dtr-qpackage-input-parameters): coverage 1..* (Coverage), order 0..*
(the draft orders), referenced 0..* (resources the orders reference), questionnaire 0..*
(canonical), context 0..1 (string: the CRD coverage-assertion-id), changedsince 0..1 (instant); at
least one of order, questionnaire and context (dtr-1). Out (dtr-qpackage-output-parameters):
PackageBundle 1..*. `$next-question` in: `in` (SDC; DTR 2.1 calls it `questionnaire-response`),
the QuestionnaireResponse with its contained Questionnaire; out: `return`.

Every problem is a DtrError naming the parameter: 400 when the body is not the resource asked for,
422 when it is one but does not fit the operation, 413 for more resources than the service reads.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from service.dtr.outcome import DtrError
from service.fhir.resources import MODEL_FAULTS

ORDER_TYPES = frozenset({"MedicationRequest", "ServiceRequest", "DeviceRequest", "NutritionOrder",
                         "CommunicationRequest", "SupplyRequest", "VisionPrescription", "Appointment", "Encounter"})
PACKAGE_NAMES = {"coverage": "resource", "order": "resource", "referenced": "resource",
                 "questionnaire": "valueCanonical", "context": "valueString", "changedsince": "valueInstant"}
NEXT_NAMES = ("in", "questionnaire-response")
MAX_CONTEXT = 200


@dataclass
class PackageRequest:
    coverages: list[dict] = field(default_factory=list)
    orders: list[dict] = field(default_factory=list)
    referenced: list[dict] = field(default_factory=list)
    questionnaires: list[str] = field(default_factory=list)
    context: str | None = None


def _parameters(body: Any, operation: str) -> list[dict]:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        kind = body.get("resourceType") if isinstance(body, dict) else type(body).__name__
        raise DtrError(400, f"{operation} takes a Parameters resource, not {str(kind)[:60]}", "Parameters",
                       code="structure")
    parameters = body.get("parameter")
    if not isinstance(parameters, list) or not parameters:
        raise DtrError(400, "Parameters.parameter must be a non-empty list", "Parameters.parameter", code="required")
    for index, parameter in enumerate(parameters):
        where = f"Parameters.parameter[{index}]"
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            raise DtrError(400, f"{where} must be an object with a name", where, code="structure")
        carried = [k for k in parameter if k.startswith("value") or k in ("resource", "part")]
        if len(carried) != 1:       # inv-1
            raise DtrError(422, f"{where} ({parameter['name'][:40]}) must have one and only one of value[x], "
                           "resource or part", where)
    return parameters


def validated(resource: Any, where: str) -> dict:
    """The resource, if the R4 model accepts it; else a 422 naming the first element at fault
    (its path and the kind of error, never the value)."""
    rtype = resource.get("resourceType") if isinstance(resource, dict) else None
    try:
        model = get_fhir_model_class(rtype) if isinstance(rtype, str) else None
    except KeyError:
        model = None
    if model is None:
        raise DtrError(422, f"{where}: not a FHIR resource (resourceType {str(rtype)[:40]!r})", where)
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")[:200]
        raise DtrError(422, f"{where}: not a valid R4 {rtype}: {path or 'the resource'}: {first.get('type')}",
                       where) from None
    except MODEL_FAULTS:
        raise DtrError(422, f"{where}: not a valid R4 {rtype}", where) from None
    return resource


def package_request(body: Any, max_resources: int) -> PackageRequest:
    request = PackageRequest()
    parameters = _parameters(body, "$questionnaire-package")
    resources = sum(1 for p in parameters if "resource" in p)
    if resources > max_resources:
        raise DtrError(413, f"The Parameters hold {resources} resources; this service reads at most {max_resources}",
                       "Parameters.parameter", code="too-costly")
    for index, parameter in enumerate(parameters):
        name, where = parameter["name"], f"Parameters.parameter[{index}]"
        expected = PACKAGE_NAMES.get(name)
        if expected is None:
            raise DtrError(422, f"{where}: $questionnaire-package has no parameter {name[:40]!r} (coverage, order, "
                           "referenced, questionnaire, context, changedsince)", f"{where}.name", code="not-supported")
        if expected not in parameter:
            raise DtrError(422, f"{where} ({name}) must carry {expected}", where)
        value = parameter[expected]
        if expected == "resource":
            resource = validated(value, f"{where}.resource")
            if name == "coverage" and resource["resourceType"] != "Coverage":
                raise DtrError(422, f"{where}.resource: coverage must be a Coverage, not {resource['resourceType']}",
                               f"{where}.resource")
            if name == "order" and resource["resourceType"] not in ORDER_TYPES:
                raise DtrError(422, f"{where}.resource: order must be a request (MedicationRequest, ServiceRequest, "
                               f"…), not {resource['resourceType']}", f"{where}.resource")
            {"coverage": request.coverages, "order": request.orders, "referenced": request.referenced}[name].append(resource)
        elif name == "questionnaire":
            if not isinstance(value, str) or not value or len(value) > 500:
                raise DtrError(422, f"{where}.valueCanonical must be a canonical URL", f"{where}.valueCanonical")
            request.questionnaires.append(value)
        elif name == "context":
            if request.context is not None:
                raise DtrError(422, f"{where}: context may be given once", where)
            if not isinstance(value, str) or not value or len(value) > MAX_CONTEXT:
                raise DtrError(422, f"{where}.valueString: context must be the CRD coverage-assertion-id "
                               f"(at most {MAX_CONTEXT} characters)", f"{where}.valueString")
            request.context = value
        elif not isinstance(value, str):
            raise DtrError(422, f"{where}.valueInstant must be an instant", f"{where}.valueInstant")
    if not request.coverages:
        raise DtrError(422, "coverage is required (1..*): the Coverage the documentation is for",
                       "Parameters.parameter", code="required")
    if not (request.orders or request.questionnaires or request.context):
        raise DtrError(422, "dtr-1: at least one of order, questionnaire and context must be present",
                       "Parameters.parameter", code="required")
    return request


def next_question_request(body: Any) -> dict:
    """The QuestionnaireResponse of a $next-question call: the `in` parameter, or the resource itself."""
    if isinstance(body, dict) and body.get("resourceType") == "QuestionnaireResponse":
        response, where = body, "QuestionnaireResponse"
    else:
        parameters = _parameters(body, "$next-question")
        found = [(i, p) for i, p in enumerate(parameters) if p["name"] in NEXT_NAMES]
        if len(found) != 1:
            raise DtrError(422, "$next-question takes exactly one parameter `in`: the QuestionnaireResponse with "
                           "its contained Questionnaire", "Parameters.parameter", code="required")
        index, parameter = found[0]
        where = f"Parameters.parameter[{index}].resource"
        response = parameter.get("resource")
        if not isinstance(response, dict) or response.get("resourceType") != "QuestionnaireResponse":
            raise DtrError(422, f"{where}: `in` must be a QuestionnaireResponse", where)
    return validated(response, where)


def package_out(bundles: list[dict]) -> dict:
    return {"resourceType": "Parameters", "parameter": [{"name": "PackageBundle", "resource": b} for b in bundles]}


def next_question_out(response: Mapping) -> dict:
    return {"resourceType": "Parameters", "parameter": [{"name": "return", "resource": dict(response)}]}
