"""Loading before gunicorn forks what every worker would otherwise load on its first call.

fhir.resources imports each R4B model class, and each element type it holds, the first time a
resource of that type is validated: left to the workers, the first call after a start costs
hundreds of milliseconds, in every worker. Loaded once in the master, the classes, the fast R4
check's tables compiled from them and the request schemas' validators are shared by every worker
the fork makes. Nothing here opens a
file, a connection or a thread (those must not cross a fork).
"""
from __future__ import annotations

import gc
import typing

from fhir.resources.R4B import get_fhir_model_class

from service.fhir.r4_shape import surely_valid
from service.fhir.resources import READ_TYPES
from service.validation import SCHEMA_DIR, validator


def warm_up() -> int:
    """Loads the model classes of every type the service validates and every type they hold,
    and compiles every request schema; returns how many model classes are loaded."""
    loaded: set[type] = set()
    pending = [get_fhir_model_class(name) for name in sorted(READ_TYPES)]
    while pending:
        model = pending.pop()
        if model in loaded:
            continue
        loaded.add(model)
        pending.extend(_element_models(model))
    for name in READ_TYPES:
        surely_valid({"resourceType": name})      # compiles the tables of the type and all it holds
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        validator(path.name)
    # What is loaded now lives as long as the process: no collection needs to scan it again, and
    # a worker that leaves it unscanned leaves its pages shared with the master.
    gc.freeze()
    return len(loaded)


def _element_models(model: type) -> list[type]:
    """The model classes of `model`'s elements (fhir_core names them lazily, by import path)."""
    found = []
    for field in model.model_fields.values():
        stack = [field.annotation]
        while stack:
            annotation = stack.pop()
            if hasattr(annotation, "get_model_klass"):
                found.append(annotation.get_model_klass())
            stack.extend(typing.get_args(annotation))
    return found
