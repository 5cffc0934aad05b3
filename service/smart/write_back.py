"""Writes the letter (a FHIR DocumentReference) and its DTR questionnaire (a QuestionnaireResponse) to the
EHR's FHIR server: POST [iss]/<resourceType>, conditional on the write's key."""
from __future__ import annotations

import logging
from typing import Any

import requests
from flask import current_app

from service.smart.blueprint import PageError
from service.smart.packet import IDENTIFIER_SYSTEM

log = logging.getLogger("service.smart.views")   # the name these log lines have always had

# How a refusal names what was not saved.
WHAT = {"DocumentReference": "letter", "QuestionnaireResponse": "questionnaire"}


def create_resource(deps, iss: str, access_token: str, resource: dict[str, Any], identifier: str | None = None) -> str | None:
    """Creates `resource` on the FHIR server at `iss`; returns "<type>/<id>" when the server's Location
    header names it, else None. A network failure or a status other than 200/201 is a 502 PageError.

    With `identifier` (the resource's masterIdentifier or identifier) the create is conditional
    (`If-None-Exist`): a server that supports it answers 200 with the one already saved under that key
    instead of a copy.
    """
    settings = deps.settings
    resource_type = resource["resourceType"]
    what = WHAT.get(resource_type, resource_type)
    try:
        answer = deps.fhir_client.session.post(
            f"{iss.rstrip('/')}/{resource_type}", data=current_app.json.dumps(resource).encode("utf-8"),
            headers={"Authorization": f"Bearer {access_token}",
                     "Content-Type": "application/fhir+json", "Accept": "application/fhir+json",
                     "Prefer": "return=minimal",
                     **({"If-None-Exist": f"identifier={IDENTIFIER_SYSTEM}|{identifier}"} if identifier else {})},
            timeout=(settings.fhir_connect_timeout, settings.fhir_read_timeout), allow_redirects=False)
        answer.close()
    except requests.RequestException as exc:
        log.warning("SMART write-back failed", extra={"reason": type(exc).__name__, "resource_type": resource_type})
        raise PageError(502, f"The {what} was not saved", "The EHR's FHIR server could not be reached.",
                        relaunch=False) from None
    if answer.status_code not in (200, 201):
        log.warning("SMART write-back refused", extra={"status": answer.status_code, "resource_type": resource_type})
        raise PageError(502, f"The {what} was not saved",
                        f"The EHR's FHIR server refused the {what} (HTTP {answer.status_code}).", relaunch=False)
    parts = answer.headers.get("Location", "").rstrip("/").split("/")
    written = None
    if resource_type in parts:
        index = parts.index(resource_type)
        written = "/".join(parts[index:index + 2])
    log.info("SMART write-back saved", extra={"resource_type": resource_type})
    return written
