"""A fast, strict R4 check that vouches for the resources the fhir.resources models would accept.

Validating a resource with the fhir.resources (pydantic) models costs a tenth of a millisecond or
more, and was most of the time spent on a chart seen for the first time. Almost every resource a
real server sends is plain, well-formed JSON; for those, a walk over the JSON against a table
compiled from the same models (each element's type, cardinality, required elements, choice
groups) gives the same answer many times faster.

`surely_valid` answers True only when it can be sure the models accept the resource and that it
carries no modifier extension (which refuses a resource whatever the models say, service/fhir/refusals.py:
so one walk tells the caller both): every key an
element of the model, every value of the exact JSON type the model reads without coercion, every
string of a type whose rule this module checks exactly (string, code, id, uri, dates, …), the
required elements present and at most one of each choice. Anything else (`_field` primitive
extensions, nulls, a number written as a string, a url, base64 data, a time, a date it cannot
check by its own rule, a `modifierExtension` that is not empty) gets False, and the caller asks the
models, whose verdict then stands.
So the verdict on every resource is the models' verdict (tests/fhir/test_validation_corpus.py).
"""
from __future__ import annotations

import logging
import re
import threading
import types
import typing
from datetime import date
from typing import Any, Callable

from fhir.resources.R4B import get_fhir_model_class
from fhir_core import constraints, types as fhir_types

Check = Callable[[Any], bool]
log = logging.getLogger(__name__)


def surely_valid(resource: dict) -> bool:
    """True only if the R4B model of `resource["resourceType"]` surely accepts it, and no element of it
    holds a modifier extension."""
    shape = _resource_shape(resource.get("resourceType"))
    try:
        return shape is not None and shape.conforms(resource)
    except RecursionError:           # a fetched resource nested hundreds deep: the models decide
        return False


# --- primitives -----------------------------------------------------------------------------------
# Each check accepts a subset of what the fhir_core type accepts, never more.

_CODE = re.compile(r"[!-~]+(?: [!-~]+)*")                      # ASCII only: the models' \s is Unicode
_ID = re.compile(r"[A-Za-z0-9\-.]{1,%d}" % min(64, constraints.TYPES_ID_MAX_LENGTH))
_URI = re.compile(r"[!-~]+")
# YYYY, YYYY-MM, YYYY-MM-DD, and for dateTime/instant a time to the second (at most microseconds)
# with its zone; seconds of 60 (leap seconds) and other rarities are left to the models.
_TEMPORAL = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(T[0-2]\d:[0-5]\d:[0-5]\d(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2}))?)?)?")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _string(value: Any) -> bool:
    """Not empty, not only white space, and text: a lone surrogate (from a `\\ud800` escape in a
    fetched resource) is refused by the models. `isascii` is constant time in CPython."""
    return (type(value) is str and value != "" and not value.isspace()
            and (value.isascii() or _SURROGATE.search(value) is None))


def _code(value: Any) -> bool:
    return type(value) is str and _CODE.fullmatch(value) is not None


def _id(value: Any) -> bool:
    return type(value) is str and _ID.fullmatch(value) is not None


def _uri(value: Any) -> bool:
    return type(value) is str and _URI.fullmatch(value) is not None


def _boolean(value: Any) -> bool:
    return type(value) is bool


def _decimal(value: Any) -> bool:
    return (type(value) is int or type(value) is float) and fhir_types.Decimal.pattern.fullmatch(str(value)) is not None


def _integer(low: int, high: int) -> Check:
    return lambda value: type(value) is int and low <= value <= high


def _temporal(rule: type, needs_time: bool, allows_time: bool) -> Check:
    def check(value: Any) -> bool:
        if type(value) is not str:
            return False
        match = _TEMPORAL.fullmatch(value)
        if match is None or rule.pattern.fullmatch(value) is None:
            return False
        year, month, day, time = match.groups()
        if (time is not None and not allows_time) or (needs_time and time is None):
            return False
        if day is None:
            return True
        try:
            date(int(year), int(month), int(day))
        except ValueError:
            return False
        return time is None or _zone_ok(time)
    return check


def _zone_ok(time: str) -> bool:
    if time.endswith("Z"):
        return True
    hours, minutes = int(time[-5:-3]), int(time[-2:])
    return hours < 14 or (hours == 14 and minutes == 0)


def _never(value: Any) -> bool:
    return False


_BY_RULE: dict[type, Check] = {
    fhir_types.String: _string,
    fhir_types.Markdown: _string,
    fhir_types.Xhtml: _string,
    fhir_types.Code: _code,
    fhir_types.Id: _id,
    fhir_types.Uri: _uri,
    fhir_types.Canonical: _uri,
    fhir_types.Decimal: _decimal,
    fhir_types.Date: _temporal(fhir_types.Date, needs_time=False, allows_time=False),
    fhir_types.DateTime: _temporal(fhir_types.DateTime, needs_time=False, allows_time=True),
    fhir_types.Instant: _temporal(fhir_types.Instant, needs_time=True, allows_time=True),
}


# --- complex types and resources ------------------------------------------------------------------

class _Shape:
    """One model class as a table: element name → (check, repeats, choice group or None), the
    required names, and the choice groups one of which must be present."""

    def __init__(self, resource_type: str | None):
        self.resource_type = resource_type
        self.elements: dict[str, tuple[Check, bool, str | None]] = {}
        self.required: tuple[str, ...] = ()
        self.required_choices: tuple[str, ...] = ()
        self.ready = False

    def conforms(self, value: Any) -> bool:
        if type(value) is not dict or not self.ready:     # not ready: its compile failed
            return False
        elements = self.elements
        chosen: set[str] | None = None
        for key, item in value.items():
            entry = elements.get(key)
            if entry is None:
                if key == "resourceType" and self.resource_type is not None and item == self.resource_type:
                    continue
                return False
            check, repeats, choice = entry
            if choice is not None:
                if chosen is None:
                    chosen = {choice}
                elif choice in chosen:
                    return False         # two types of one choice (valueQuantity and valueString)
                else:
                    chosen.add(choice)
            if repeats:
                if type(item) is not list:
                    return False
                for element in item:
                    if not check(element):
                        return False
            elif not check(item):
                return False
        for key in self.required:
            if key not in value:
                return False
        for choice in self.required_choices:
            if chosen is None or choice not in chosen:
                return False
        return True


_shapes: dict[type, _Shape] = {}
_by_resource_type: dict[str, _Shape | None] = {}
_lock = threading.RLock()


def _resource_shape(resource_type: Any) -> _Shape | None:
    if type(resource_type) is not str:
        return None
    shape = _by_resource_type.get(resource_type, False)
    if shape is False:
        try:
            model = get_fhir_model_class(resource_type)
        except (KeyError, ValueError, ImportError, AttributeError):
            return None                 # not a type name: not remembered, so the table cannot grow
        try:
            shape = _shape_of(model)
        except Exception:  # noqa: BLE001 — a model this module cannot read: the models decide, as before
            log.warning("fast R4 check unavailable for a resource type", extra={"resource_type": resource_type})
            shape = None
        if shape is not None and shape.resource_type != resource_type:
            shape = None
        _by_resource_type[resource_type] = shape
    return shape


def _shape_of(model: type) -> _Shape:
    """The table of `model`, compiled once (complex types refer to each other, Extension to itself)."""
    shape = _shapes.get(model)
    if shape is not None and shape.ready:
        return shape
    with _lock:                          # held for the whole compile: other threads wait for it
        if model in _shapes:
            return _shapes[model]        # ready, or being compiled by this thread (a type holding itself)
        resource_type = getattr(model, "__resource_type__", None)
        shape = _Shape(resource_type if _is_resource(model) else None)
        _shapes[model] = shape           # before the fields: a type may hold itself
        elements, required, required_choices = {}, [], set()
        for name, field in model.model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            if not extra.get("element_property"):
                continue                 # fhir_comments, `_field` extensions: left to the models
            key = field.alias or name
            choice = extra.get("one_of_many")
            check, repeats = _element_check(field.annotation)
            if key == "modifierExtension":
                check = _never           # a resource holding one is refused by its caller (refusals.py)
            elements[key] = (check, repeats, choice)
            if field.is_required() or extra.get("element_required"):
                required.append(key)
            if choice is not None and extra.get("one_of_many_required"):
                required_choices.add(choice)
        shape.elements = elements
        shape.required = tuple(required)
        shape.required_choices = tuple(sorted(required_choices))
        shape.ready = True
        return shape


def _is_resource(model: type) -> bool:
    return any(base.__name__ == "Resource" and base.__module__.endswith(".resource") for base in model.__mro__)


def _element_check(annotation: Any) -> tuple[Check, bool]:
    """(check of one value, whether the element repeats) for a field's type annotation."""
    inner, repeats = _unwrap(annotation)
    return _value_check(inner), repeats


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """Optional[...] and List[...] peeled off: (the item type, repeats)."""
    repeats = False
    while True:
        origin = typing.get_origin(annotation)
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin in (typing.Union, types.UnionType) and len(args) == 1:
            annotation = args[0]
        elif origin is list and len(args) == 1:
            annotation, repeats = args[0], True
        else:
            return annotation, repeats


def _value_check(annotation: Any) -> Check:
    if annotation is bool:
        return _boolean
    if typing.get_origin(annotation) is typing.Annotated:
        for rule in typing.get_args(annotation)[1:]:
            if isinstance(rule, fhir_types.Integer):        # also UnsignedInt and PositiveInt
                return _integer(rule.min_length, rule.max_length)
            check = _BY_RULE.get(type(rule))
            if check is not None:
                return check
        return _never                   # url, oid, uuid, time, base64Binary, integer64: the models decide
    if isinstance(annotation, type) and issubclass(annotation, fhir_types.FhirBase):
        model = annotation.get_model_klass()
        if model.__name__ == "Resource":
            return _contained
        shape = _shape_of(model)
        return shape.conforms
    return _never


def _contained(value: Any) -> bool:
    """A contained (or any inline) resource: checked against the model its resourceType names."""
    return type(value) is dict and surely_valid(value)

