"""Which FHIR resources the evaluation reads, and checking each against the R4 model.

Resources are first filtered on their raw JSON by type and, for Observations, by code. Each
survivor is validated on its own: an invalid resource is skipped and counted, never fatal. The
verdict is the fhir.resources R4B model's; `r4_shape.surely_valid` gives it without building the
model for the plain JSON nearly every server sends (the model costs a tenth of a millisecond or
more per resource), and the model decides everything else. The raw dicts (not the models) go on
to the record builder.
"""
from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterable

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from service.fhir.observation_codes import observation_is_relevant
from service.fhir.r4_shape import surely_valid

READ_TYPES = frozenset({
    "Patient", "Observation", "Condition", "MedicationRequest", "MedicationStatement", "MedicationDispense",
    "MedicationAdministration", "Medication",
    "AllergyIntolerance", "Coverage", "Organization", "DiagnosticReport", "Practitioner", "PractitionerRole",
})

# The public sandbox sends some 0..* elements as single objects; R4 needs arrays.
_LIST_ELEMENTS = ("category", "reasonCode", "reasonReference", "dosageInstruction", "note", "identifier",
                  "insurance", "basedOn", "supportingInformation")


# …except where that element is 0..1 in this resource type.
_SINGLE_ELEMENTS = {"MedicationStatement": ("category",), "MedicationDispense": ("category",),
                    "MedicationAdministration": ("category",)}


def normalise_quirks(resource: dict) -> dict:
    """A copy with single objects wrapped in lists where R4 expects arrays."""
    fixed = None
    single = _SINGLE_ELEMENTS.get(resource.get("resourceType"), ())
    for name in _LIST_ELEMENTS:
        if name not in single and isinstance(resource.get(name), dict):
            fixed = fixed if fixed is not None else dict(resource)
            fixed[name] = [resource[name]]
    return fixed if fixed is not None else resource


def is_read(resource: Any) -> bool:
    """Cheap pre-filter on raw JSON: only what the evaluation reads goes to validation."""
    if not isinstance(resource, dict):
        return False
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or resource_type not in READ_TYPES:
        return False
    return resource_type != "Observation" or observation_is_relevant(resource)


def _validates(resource: dict) -> bool:
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except (ValidationError, ValueError, TypeError, KeyError):
        return False
    return True


class _VerdictCache:
    """Remembers the models' verdicts by a digest of the resource's canonical JSON.

    Only the resources `surely_valid` cannot vouch for come here: hashing one costs a few
    microseconds, building its model a tenth of a millisecond or more.
    """

    def __init__(self, size: int):
        self.size = size
        self.verdicts: OrderedDict[bytes, bool] = OrderedDict()
        self.lock = threading.Lock()

    def is_valid(self, resource: dict) -> bool:
        try:
            canonical = json.dumps(resource, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):
            return False
        key = hashlib.blake2b(canonical.encode(), digest_size=16).digest()
        with self.lock:
            verdict = self.verdicts.get(key)
            if verdict is not None:
                self.verdicts.move_to_end(key)
                return verdict
        verdict = _validates(resource)
        with self.lock:
            self.verdicts[key] = verdict
            if len(self.verdicts) > self.size:
                self.verdicts.popitem(last=False)
        return verdict


_verdicts = _VerdictCache(size=50_000)   # about 4 MB at most


def is_valid_r4(resource: dict) -> bool:
    """The R4B model's verdict (for plain JSON, worked out without the model: as fast as a digest)."""
    return surely_valid(resource) or _verdicts.is_valid(resource)


@dataclass(frozen=True)
class Screened:
    resources: tuple[dict, ...]
    invalid: int          # failed R4 validation, skipped
    ignored: int          # not read by the evaluation


def screen(candidates: Iterable[Any]) -> Screened:
    """Filter, normalise, de-duplicate (by type/id) and validate resources."""
    kept: dict[str, dict] = {}
    anonymous: list[dict] = []
    invalid = ignored = 0
    for candidate in candidates:
        if not is_read(candidate):
            ignored += 1
            continue
        resource = normalise_quirks(candidate)
        if not is_valid_r4(resource):
            invalid += 1
            continue
        if isinstance(resource.get("id"), str):
            kept.setdefault(f"{resource['resourceType']}/{resource['id']}", resource)
        else:
            anonymous.append(resource)
    return Screened(tuple(kept.values()) + tuple(anonymous), invalid, ignored)


def bundle_resources(body: Any) -> list[Any]:
    """Resources of a Bundle (searchset or otherwise); a bare resource is a list of one."""
    if not isinstance(body, dict):
        return []
    if body.get("resourceType") != "Bundle":
        return [body]
    entries = body.get("entry")
    if not isinstance(entries, list):
        return []
    return [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
