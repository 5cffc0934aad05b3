"""Data gathering: use what the EHR prefetched, fetch what it did not.

A prefetch key is usable when it holds a resource, a Bundle, or `null` ("no data"). An omitted
key or one holding an OperationOutcome is missing and is fetched from `fhirServer` with the
bearer token of `fhirAuthorization` — but only when that server is on the allowlist. A fetch
that fails is a technical gap the evaluation reports; it never becomes a 5xx.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

from service.fhir.client import Deadline, FhirClient
from service.fhir.prefetch import fill, templates
from service.fhir.resources import bundle_resources, screen
from service.security.fhir_allowlist import fhir_server_allowed
from service.settings import Settings

log = logging.getLogger(__name__)


class PatientUnavailable(Exception):
    """The Patient is needed but was neither prefetched nor fetchable (→ 412)."""


@dataclass(frozen=True)
class Gathered:
    resources: tuple[dict, ...]
    prefetched: tuple[str, ...]       # keys taken from prefetch
    fetched: tuple[str, ...]          # keys fetched from the FHIR server
    gaps: tuple[str, ...]             # keys that could not be had, with the reason
    invalid: int                      # resources skipped as invalid R4


def usable_prefetch(value: Any) -> bool:
    """`null` and resources/Bundles count; an OperationOutcome stands for a failed prefetch."""
    return value is None or (isinstance(value, dict) and value.get("resourceType") != "OperationOutcome")


def gather(request: Mapping, settings: Settings, client: FhirClient,
           wanted: Mapping[str, str] | None = None) -> Gathered:
    """`wanted`: the calling service's prefetch templates (default: the order services' ones)."""
    context = request.get("context") or {}
    prefetch = request.get("prefetch") or {}
    wanted = dict(wanted) if wanted is not None else templates()
    present = {key: prefetch[key] for key in wanted if key in prefetch and usable_prefetch(prefetch[key])}
    missing = [key for key in wanted if key not in present]

    fetched_bodies: dict[str, list] = {}
    gaps: list[str] = []
    if missing:
        fetched_bodies, gaps = _fetch_missing(request, context, missing, wanted, settings, client)

    candidates: list[Any] = []
    for value in list(present.values()) + [body for bodies in fetched_bodies.values() for body in bodies]:
        candidates.extend(bundle_resources(value))
    screened = screen(candidates)
    if screened.invalid:
        log.info("invalid FHIR resources skipped", extra={"invalid_count": screened.invalid})
    return Gathered(screened.resources, tuple(present), tuple(fetched_bodies), tuple(gaps), screened.invalid)


def _fetch_missing(request: Mapping, context: Mapping, missing: list[str], wanted: Mapping[str, str],
                   settings: Settings, client: FhirClient) -> tuple[dict[str, list], list[str]]:
    server = request.get("fhirServer")
    patient_missing = "patient" in missing
    if not isinstance(server, str) or not fhir_server_allowed(server, settings.fhir_allowlist):
        if patient_missing:
            reason = ("no fhirServer was given" if not isinstance(server, str)
                      else "fhirServer is not on this service's allowlist")
            raise PatientUnavailable(f"the Patient was not prefetched and cannot be fetched: {reason}")
        return {}, [f"{key}: not prefetched and no FHIR server may be called" for key in missing]

    queries = {}
    for key in missing:
        query = fill(wanted[key], context, context.get("userId"))
        if query is not None:
            queries[key] = query
    token = (request.get("fhirAuthorization") or {}).get("access_token")
    results = client.fetch_all(server, token, queries, Deadline(settings.fhir_deadline))
    bodies, gaps = {}, []
    for key in missing:
        result = results.get(key)
        if result is None:
            gaps.append(f"{key}: its query needs a context value the request lacks")
        elif result.error:
            gaps.append(f"{key}: {result.error}")
        elif isinstance(result.body, dict) and result.body.get("resourceType") == "OperationOutcome":
            gaps.append(f"{key}: the FHIR server answered with an OperationOutcome")
        else:
            bodies[key] = [result.body, *result.pages]
    log.info("FHIR fetch finished", extra={"fetched": len(bodies), "gaps": len(gaps)})
    return bodies, gaps
