"""Which FHIR resources the evaluation reads, and checking each against the R4 model.

Resources are first filtered on their raw JSON by type and, for Observations, by code. Each
survivor is validated on its own: an invalid resource, or one carrying a modifier extension this
service does not understand, is not read and is *refused* (service/fhir/refusals.py): never fatal,
never silent — the checks it could change become unknown with the reason. The
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
from service.fhir.refusals import INVALID, MODIFIER, Refused, element_path, modifier_extension_at, refused

READ_TYPES = frozenset({
    "Patient", "Observation", "Condition", "MedicationRequest", "MedicationStatement", "MedicationDispense",
    "MedicationAdministration", "Medication",
    "AllergyIntolerance", "Coverage", "Organization", "DiagnosticReport", "Practitioner", "PractitionerRole",
})

# The public sandbox sends some 0..* elements as single objects; R4 needs arrays.
_LIST_ELEMENTS = frozenset({"category", "reasonCode", "reasonReference", "dosageInstruction", "note", "identifier",
                            "insurance", "basedOn", "supportingInformation"})


# …except where that element is 0..1 in this resource type.
_SINGLE_ELEMENTS = {"MedicationStatement": ("category",), "MedicationDispense": ("category",),
                    "MedicationAdministration": ("category",)}


def normalise_quirks(resource: dict) -> dict:
    """A copy with single objects wrapped in lists where R4 expects arrays."""
    fixed = None
    for name in _LIST_ELEMENTS.intersection(resource):      # the few of them a resource holds
        if isinstance(resource[name], dict) and name not in _SINGLE_ELEMENTS.get(resource.get("resourceType"), ()):
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
    return _refusal(resource) is None


# What the R4B models raise, besides ValidationError, on shapes their own validators cannot read: a
# primitive's extension element that is not an object (`"_status": "-0"`) is an AttributeError. Each is
# "not valid R4", never an HTTP 500.
MODEL_FAULTS = (ValueError, TypeError, KeyError, AttributeError)


def _refusal(resource: dict) -> str | None:
    """None when the R4B model accepts the resource, else the element it refused ("" when unnamed)."""
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except ValidationError as error:
        errors = error.errors()
        return (element_path(errors[0]["loc"]) or "") if errors else ""
    except MODEL_FAULTS:
        return ""
    return None


_VALID = None


class _VerdictCache:
    """Remembers the models' verdicts (None, or the element refused) by a digest of the resource's
    canonical JSON.

    Only the resources `surely_valid` cannot vouch for come here: hashing one costs a few
    microseconds, building its model a tenth of a millisecond or more.
    """

    def __init__(self, size: int):
        self.size = size
        self.verdicts: OrderedDict[bytes, str | None] = OrderedDict()
        self.lock = threading.Lock()

    def refusal(self, resource: dict) -> str | None:
        try:
            canonical = json.dumps(resource, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):
            return ""
        key = hashlib.blake2b(canonical.encode(), digest_size=16).digest()
        with self.lock:
            if key in self.verdicts:
                self.verdicts.move_to_end(key)
                return self.verdicts[key]
        verdict = _refusal(resource)
        with self.lock:
            self.verdicts[key] = verdict
            if len(self.verdicts) > self.size:
                self.verdicts.popitem(last=False)
        return verdict


_verdicts = _VerdictCache(size=50_000)   # about 4 MB at most


def r4_refusal(resource: dict) -> str | None:
    """None when the R4B model accepts the resource (for plain JSON, worked out without the model: as
    fast as a digest), else the element it refused, "" when it cannot be named."""
    return _VALID if surely_valid(resource) else _verdicts.refusal(resource)


def is_valid_r4(resource: dict) -> bool:
    """The R4B model's verdict."""
    return r4_refusal(resource) is None


@dataclass(frozen=True)
class Screened:
    resources: tuple[dict, ...]
    invalid: int          # refused (not valid R4, or an unknown modifier extension), not read
    ignored: int          # not read by the evaluation
    refused: tuple[Refused, ...] = ()      # the refused resources, with what each could have changed


def refusal_of(resource: dict) -> Refused | None:
    """Why a resource of a read type is not read, if it is not: not valid R4, or a modifier extension."""
    if surely_valid(resource):      # valid, and no modifier extension anywhere in it: one walk says both
        return None
    return _judged_refusal(resource)


def _judged_refusal(resource: dict) -> Refused | None:
    """`refusal_of` a resource the fast check could not vouch for: the models' word, then the modifiers'."""
    element = _verdicts.refusal(resource)
    if element is not None:
        return refused(resource, INVALID, element or None)
    modifier = modifier_extension_at(resource)
    return refused(resource, MODIFIER, modifier) if modifier is not None else None


def screen(candidates: Iterable[Any]) -> Screened:
    """Filter, normalise, de-duplicate (by type/id) and validate resources. A refused resource that is
    also sent in a form that can be read (a prefetch and a fetch of the same id) is read in that form."""
    kept: dict[str, dict] = {}
    anonymous: list[dict] = []
    refusals: dict[Any, Refused] = {}
    ignored = 0
    for candidate in candidates:
        if not is_read(candidate):
            ignored += 1
            continue
        if surely_valid(candidate):
            # Vouched for as it came: a list wherever R4 wants one, so no quirk to normalise (every
            # element normalise_quirks wraps repeats in a read type, or is in _SINGLE_ELEMENTS:
            # tests/fhir/test_validation_corpus.py), and valid with no modifier extension.
            resource = candidate
        else:
            resource = normalise_quirks(candidate)
            # Only a resource normalising changed can now be vouched for: the fast check is not run twice.
            why = refusal_of(resource) if resource is not candidate else _judged_refusal(resource)
            if why is not None:
                refusals.setdefault(why.reference or len(refusals), why)
                continue
        if isinstance(resource.get("id"), str):
            kept.setdefault(f"{resource['resourceType']}/{resource['id']}", resource)
        else:
            anonymous.append(resource)
    unread = tuple(r for r in refusals.values() if r.reference not in kept)
    return Screened(tuple(kept.values()) + tuple(anonymous), len(unread), ignored, unread)


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
