"""Writes the letter, as a FHIR DocumentReference, to the EHR's FHIR server (POST [iss]/DocumentReference)."""
from __future__ import annotations

import logging
from typing import Any

import requests
from flask import current_app

from service.smart.blueprint import PageError
from service.smart.packet import IDENTIFIER_SYSTEM

log = logging.getLogger("service.smart.views")   # the name these log lines have always had


def post_document_reference(deps, iss: str, access_token: str, resource: dict[str, Any],
                            identifier: str | None = None) -> str | None:
    """Creates `resource` on the FHIR server at `iss`; returns "DocumentReference/<id>" when the server's
    Location header names it, else None. A network failure or a status other than 200/201 is a 502 PageError.

    With `identifier` (the resource's masterIdentifier) the create is conditional (`If-None-Exist`): a
    server that supports it answers 200 with the letter already saved under that key instead of a copy.
    """
    settings = deps.settings
    url = iss.rstrip("/") + "/DocumentReference"
    try:
        answer = deps.fhir_client.session.post(
            url, data=current_app.json.dumps(resource).encode("utf-8"),
            headers={"Authorization": f"Bearer {access_token}",
                     "Content-Type": "application/fhir+json", "Accept": "application/fhir+json",
                     "Prefer": "return=minimal",
                     **({"If-None-Exist": f"identifier={IDENTIFIER_SYSTEM}|{identifier}"} if identifier else {})},
            timeout=(settings.fhir_connect_timeout, settings.fhir_read_timeout), allow_redirects=False)
        answer.close()
    except requests.RequestException as exc:
        log.warning("SMART write-back failed", extra={"reason": type(exc).__name__})
        raise PageError(502, "The letter was not saved", "The EHR's FHIR server could not be reached.",
                        relaunch=False) from None
    if answer.status_code not in (200, 201):
        log.warning("SMART write-back refused", extra={"status": answer.status_code})
        raise PageError(502, "The letter was not saved",
                        f"The EHR's FHIR server refused the document (HTTP {answer.status_code}).", relaunch=False)
    location = answer.headers.get("Location", "")
    parts = location.rstrip("/").split("/")
    written = None
    if "DocumentReference" in parts:
        index = parts.index("DocumentReference")
        written = "/".join(parts[index:index + 2])
    log.info("SMART write-back saved a DocumentReference")
    return written
