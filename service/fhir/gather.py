"""Data gathering: use what the EHR prefetched, fetch what it did not.

A prefetch key is usable when it holds a resource, a Bundle, or `null` ("no data"). An omitted
key or one holding an OperationOutcome is missing and is fetched from `fhirServer` with the
bearer token of `fhirAuthorization` — but only when that server is on the allowlist. A
prefetched search that is incomplete (a `next` link, `total` above its matches) is fetched again
in full the same way. References the record needs and does not hold (the Medication of a
`medicationReference`, a Coverage's payor Organization without a name) are read by id.

What could not be had — a failed fetch, an incomplete search nobody may complete, a search cut
at the call's limits, a reference not read — is a technical gap the evaluation reports, named
by prefetch key or by the resource type it concerns; it never becomes a 5xx.

All fetching of one hook call shares one `Budget`: the deadline, and the bytes and resources it
may read (the prefetch and draftOrders count first).
"""
from __future__ import annotations

import logging
import re
from urllib.parse import quote
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from service.content_cache import ContentCache, digest, members_digest
from service.fhir.client import Budget, FetchResult, FhirClient, incomplete_search
from service.fhir.prefetch import applies, fill, templates
from service.fhir.refusals import Refused
from service.fhir.resources import Screened, bundle_resources, normalise_quirks, screen
from service.security.fhir_allowlist import fhir_server_allowed
from service.settings import Settings

log = logging.getLogger(__name__)

MEDICATION_SOURCES = ("MedicationRequest", "MedicationStatement", "MedicationDispense", "MedicationAdministration")
MAX_REFERENCES = 20       # references read by id per call; more are a gap
# The types a reference followed here names: a medication source's Medication, a Coverage's payor, a
# draft's requester.
_REFERRED = ("Medication", "Organization", "Practitioner", "PractitionerRole")
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# Charts being ordered for, per process, up to this many resources in all (a few tens of MB).
_screened: ContentCache = ContentCache(max_weight=10_000)


class PatientUnavailable(Exception):
    """The Patient is needed but was neither prefetched nor fetchable (→ 412)."""


@dataclass(frozen=True)
class Gathered:
    resources: tuple[dict, ...]
    prefetched: tuple[str, ...]       # keys taken from prefetch
    fetched: tuple[str, ...]          # keys fetched from the FHIR server (missing or incomplete in prefetch)
    gaps: tuple[str, ...]             # what could not be had, each with the reason
    invalid: int                      # resources refused (not valid R4, an unknown modifier extension)
    # Names `resources` when they come from the request body alone (no fetch, no reference read):
    # the decision cache reuses it instead of digesting the chart again.
    digest: bytes | None = None
    refused: tuple[Refused, ...] = ()     # those resources: what each could have changed (service/fhir/refusals.py)


def usable_prefetch(value: Any) -> bool:
    """`null` and resources/Bundles count; an OperationOutcome stands for a failed prefetch."""
    return value is None or (isinstance(value, dict) and value.get("resourceType") != "OperationOutcome")


def count_resources(body: Mapping) -> int:
    """Resources a hook call brings itself: its prefetch and its draftOrders."""
    prefetch = body.get("prefetch") or {}
    total = sum(len(bundle_resources(value)) for value in prefetch.values())
    return total + len(bundle_resources((body.get("context") or {}).get("draftOrders")))


def call_budget(request: Mapping, settings: Settings, resources_used: int | None = None) -> Budget:
    """`resources_used`: the request's `count_resources`, when the caller has counted them already."""
    return Budget(settings.fhir_deadline, settings.fhir_max_call_bytes, settings.max_resources,
                  resources_used=count_resources(request) if resources_used is None else resources_used)


class _Server:
    """The call's FHIR server, when this service may call it."""

    def __init__(self, request: Mapping, settings: Settings, client: FhirClient, budget: Budget):
        server = request.get("fhirServer")
        self.url = server if isinstance(server, str) else None
        self.allowed = self.url is not None and fhir_server_allowed(self.url, settings.fhir_allowlist)
        self.why_not = ("no fhirServer was given" if self.url is None
                        else "fhirServer is not on this service's allowlist")
        self.token = (request.get("fhirAuthorization") or {}).get("access_token")
        self.client, self.budget = client, budget

    def fetch(self, queries: Mapping[str, str]) -> dict[str, FetchResult]:
        return self.client.fetch_all(self.url, self.token, queries, self.budget) if queries else {}


def gather(request: Mapping, settings: Settings, client: FhirClient,
           wanted: Mapping[str, str] | None = None, budget: Budget | None = None) -> Gathered:
    """`wanted`: the calling service's prefetch templates (default: the order services' ones)."""
    context = request.get("context") or {}
    prefetch = request.get("prefetch") or {}
    wanted = dict(wanted) if wanted is not None else templates()
    server = _Server(request, settings, client, budget or call_budget(request, settings))
    user = context.get("userId")
    # A key asking for the user as another type than the user is (a Practitioner's roles, for a
    # PractitionerRole user) has nothing to fetch: it is not missing.
    wanted = {key: query for key, query in wanted.items() if applies(query, user) or key in prefetch}
    present = {key: prefetch[key] for key in wanted if key in prefetch and usable_prefetch(prefetch[key])}
    missing = [key for key in wanted if key not in present]
    incomplete = {key: why for key, value in present.items() if (why := incomplete_search(value))}
    if "patient" in missing and not server.allowed:
        raise PatientUnavailable(f"the Patient was not prefetched and cannot be fetched: {server.why_not}")

    fetched, gaps = _fetch_keys(server, context, missing + list(incomplete), wanted, incomplete)
    for key in fetched:
        present.pop(key, None)          # the complete search replaces the incomplete prefetch
    candidates: list[Any] = []
    for value in list(present.values()) + [body for bodies in fetched.values() for body in bodies]:
        candidates.extend(bundle_resources(value))
    # Straight from the request body, the candidates can be recognised by their digest (a resent chart):
    # the digest of the prefetch's text and of the keys taken from it, when the body reader kept it.
    chart_digest = None if fetched else (members_digest(prefetch, tuple(present))
                                         or digest(candidates, canonical=False))
    screened, held = _screened_chart(candidates) if fetched else _screened.get_or_compute(
        chart_digest, lambda: _screened_chart(candidates), weight=len(candidates))
    refusals = screened.refused
    references, reference_gaps = _follow_references(server, held, _requesters(context),
                                                    user if isinstance(user, str) else None)
    if references:
        screened, chart_digest = screen(list(screened.resources) + references), None
        refusals += screened.refused
    if refusals:
        # Counts by type only: a resource's id can be a patient's.
        log.info("FHIR resources refused", extra={"refused_count": len(refusals), "refused_types": sorted(
            {r.resource_type for r in refusals})})
    return Gathered(screened.resources, tuple(present), tuple(fetched), tuple(gaps + reference_gaps),
                    len(refusals), chart_digest, refusals)


def _screened_chart(candidates: list[Any]) -> tuple[Screened, _References]:
    screened = screen(candidates)
    return screened, _References(screened.resources)


def _fetch_keys(server: _Server, context: Mapping, keys: list[str], wanted: Mapping[str, str],
                incomplete: Mapping[str, str]) -> tuple[dict[str, list], list[str]]:
    def gap(key: str, reason: str) -> str:
        if key in incomplete:
            return f"{key}: the prefetched search is incomplete ({incomplete[key]}) and was not completed: {reason}"
        return f"{key}: {reason}"

    if not keys:
        return {}, []
    if not server.allowed:
        return {}, [gap(key, "no FHIR server may be called" if key in incomplete
                        else "not prefetched and no FHIR server may be called") for key in keys]
    queries = {key: query for key in keys if (query := fill(wanted[key], context, context.get("userId")))}
    results = server.fetch(queries)
    bodies, gaps = {}, []
    for key in keys:
        result = results.get(key)
        if result is None:
            gaps.append(gap(key, "its query needs a context value the request lacks"))
        elif result.error:
            gaps.append(gap(key, result.error))
        elif isinstance(result.body, dict) and result.body.get("resourceType") == "OperationOutcome":
            gaps.append(gap(key, "the FHIR server answered with an OperationOutcome"))
        else:
            bodies[key] = [result.body, *result.pages]
            if result.unread:
                gaps.append(f"{key}: the search was not read to the end: {result.unread}")
    log.info("FHIR fetch finished", extra={"fetched": len(bodies), "gaps": len(gaps)})
    return bodies, gaps


def roles_query(practitioner: str) -> str:
    """The search for a Practitioner's roles ("Practitioner/p1" → "PractitionerRole?practitioner=p1")."""
    return f"PractitionerRole?practitioner={quote(practitioner.split('/', 1)[1], safe='')}&_count=50"


def unresolved_references(resources: Iterable[Mapping], drafts: Iterable[Mapping] = (),
                          user: str | None = None) -> list[tuple[str, str, bool]]:
    """(referrer, "Type/id", named) for each reference the record reads but does not hold: the
    Medication of a medication source (`named`: its reference has a display to fall back on), the
    payor Organization of a Coverage that does not name it, and the requester (Practitioner or
    PractitionerRole) of a draft order, with a Practitioner's roles (a search) unless it is the hook's
    `user`, whose roles the prefetch key `prescriberroles` asks for; a gap in these is named `prescriber`."""
    return _References(resources).unresolved(drafts, user)


class _References:
    """What a chart holds, and the references of its own resources it does not hold: worked out once per
    screened chart (a resent chart shares it, service/content_cache.py), then each call's drafts are
    checked against it."""

    def __init__(self, resources: Iterable[Mapping]):
        resources = list(resources)
        # "Type/id" of what a reference followed here can name: a chart's Observations need no key.
        self.held = {f"{rtype}/{r.get('id')}" for r in resources if (rtype := r.get("resourceType")) in _REFERRED}
        self.with_roles: set[str | None] = set()
        self.of_resources: list[tuple[str, str, bool]] = []
        for resource in resources:      # only the few types that refer are looked into
            rtype = resource.get("resourceType")
            if rtype in MEDICATION_SOURCES:
                refs = [resource.get("medicationReference")]
            elif rtype == "Coverage":
                refs = [p for p in resource.get("payor") or () if isinstance(p, dict) and not p.get("display")]
            else:
                if rtype == "PractitionerRole":
                    self.with_roles.add(_relative(resource.get("practitioner"), "Practitioner"))
                continue
            referrer = f"{rtype}/{resource.get('id')}"
            for ref in refs:
                target = _relative(ref, "Organization" if rtype == "Coverage" else "Medication")
                named = bool(isinstance(ref, dict) and isinstance(ref.get("display"), str) and ref["display"].strip())
                if target and target not in self.held and all(w[:2] != (referrer, target) for w in self.of_resources):
                    self.of_resources.append((referrer, target, named))

    def unresolved(self, drafts: Iterable[Mapping], user: str | None) -> list[tuple[str, str, bool]]:
        """The drafts' requesters first (their referrer, `prescriber`, is never a resource's), then the
        chart's own references."""
        wanted: list[tuple[str, str, bool]] = []
        for draft in drafts:
            requester = draft.get("requester")
            rtype = str(requester.get("reference", "")).split("/_history/")[0].rstrip("/").split("/")[-2:-1]
            target = _relative(requester, rtype[0]) if rtype and rtype[0] in ("Practitioner", "PractitionerRole") else None
            if target and target != user and target not in self.held and all(w[1] != target for w in wanted):
                wanted.append(("prescriber", target, False))   # the user is the prefetch key `prescriber`
            if target and target.startswith("Practitioner/") and target != user and target not in self.with_roles:
                wanted.append(("prescriber", roles_query(target), False))
        return wanted + self.of_resources


def _relative(reference: Any, rtype: str) -> str | None:
    """ "Medication/m1" (or an absolute URL ending so) → "Medication/m1"; contained or other → None."""
    value = reference.get("reference") if isinstance(reference, dict) else None
    if not isinstance(value, str) or value.startswith("#"):
        return None
    parts = value.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == rtype and _FHIR_ID.fullmatch(parts[-1]):
        return f"{rtype}/{parts[-1]}"
    return None


def _requesters(context: Mapping) -> list[dict]:
    """The draft MedicationRequests' requesters: the prescriber, when it is not the hook's user."""
    return [r for r in bundle_resources(context.get("draftOrders"))
            if isinstance(r, dict) and r.get("resourceType") == "MedicationRequest" and isinstance(r.get("requester"), dict)]


def _follow_references(server: _Server, references: _References, drafts: Iterable[Mapping] = (),
                       user: str | None = None) -> tuple[list[dict], list[str]]:
    pending = references.unresolved(drafts, user)
    if not pending:
        return [], []
    if not server.allowed:
        return [], [f"{referrer}: {target} was not prefetched and no FHIR server may be called"
                    for referrer, target, named in pending if not named]
    targets = list(dict.fromkeys(target for _, target, _ in pending))
    results = server.fetch({target: target for target in targets[:MAX_REFERENCES]})
    found, gaps = [], []
    for referrer, target, _ in pending:
        result = results.get(target)
        if result is None:
            gaps.append(f"{referrer}: {target} was not read (more than {MAX_REFERENCES} references)")
        elif result.error:
            gaps.append(f"{referrer}: {target} could not be read: {result.error}")
        elif "?" in target:      # a search (a requester's roles): every page's resources
            found.extend(r for body in (result.body, *result.pages) for r in bundle_resources(body) if r not in found)
            if result.unread:
                gaps.append(f"{referrer}: the search {target} was not read to the end: {result.unread}")
        elif not (isinstance(result.body, dict) and f"{result.body.get('resourceType')}/{result.body.get('id')}" == target):
            gaps.append(f"{referrer}: the FHIR server did not answer {target} with that resource")
        elif result.body not in found:
            found.append(result.body)
    return found, gaps


def referenced_medications(request: Mapping, settings: Settings, client: FhirClient,
                           budget: Budget, drafts: list[dict] | None = None) -> dict[str, dict]:
    """The Medications the draft orders name by reference, "Medication/id" → resource: from
    draftOrders, the prefetch, or — when neither holds it — read from the FHIR server, so that the
    trigger can tell a mecasermin order it would otherwise not recognise. `drafts`: the draftOrders'
    resources with their quirks normalised, when the caller has them already."""
    context = request.get("context") or {}
    if drafts is None:
        drafts = [normalise_quirks(r) for r in bundle_resources(context.get("draftOrders"))]
    held = {f"Medication/{r.get('id')}": r for r in drafts if r.get("resourceType") == "Medication"}
    # A reference with a display names its drug already (the trigger reads it): only the bare
    # ones are worth a request, so an ordinary order-select keystroke makes none.
    wanted = [target for _, target, named in unresolved_references(
        [r for r in drafts if r.get("resourceType") == "MedicationRequest"] + list(held.values())) if not named]
    if wanted:
        for value in (request.get("prefetch") or {}).values():
            for resource in bundle_resources(value):
                if resource.get("resourceType") == "Medication":
                    held.setdefault(f"Medication/{resource.get('id')}", resource)
        wanted = [target for target in wanted if target not in held]
    server = _Server(request, settings, client, budget)
    if wanted and server.allowed:
        for target, result in server.fetch({target: target for target in wanted[:MAX_REFERENCES]}).items():
            body = result.body
            if isinstance(body, dict) and f"{body.get('resourceType')}/{body.get('id')}" == target:
                held[target] = body
    return held
