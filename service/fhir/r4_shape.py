"""A fast, strict R4 check that vouches for the resources the fhir.resources models would accept.

Validating a resource with the fhir.resources (pydantic) models costs a tenth of a millisecond or
more, and was most of the time spent on a chart seen for the first time. Almost every resource a
real server sends is plain, well-formed JSON; for those, a walk over the JSON against a table
compiled from the same models (each element's type, cardinality, required elements, choice
groups) gives the same answer many times faster. Each table is generated into a Python function
of its own, once per type, so that the walk does no more than each element asks.

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

import itertools
import logging
import math
import re
import threading
import types
import typing
from datetime import date
from typing import Any, Callable

from fhir.resources.R4B import get_fhir_model_class
from fhir_core import constraints, types as fhir_types

Check = Callable[[Any], Any]       # a true value when it is sure the model accepts the value
log = logging.getLogger(__name__)


def surely_valid(resource: dict) -> bool:
    """True only if the R4B model of `resource["resourceType"]` surely accepts it, and no element of it
    holds a modifier extension."""
    resource_type = resource.get("resourceType")
    shape = _by_resource_type.get(resource_type) if type(resource_type) is str else None
    if shape is None:            # a type not met yet (or not a type): its table is made once
        shape = _resource_shape(resource_type)
    try:
        return shape is not None and shape.conforms(resource)
    except (KeyError, TypeError):    # an element the model lacks, a pattern given a number: not sure
        return False
    except RecursionError:           # a fetched resource nested hundreds deep: the models decide
        return False


# --- primitives -----------------------------------------------------------------------------------
# Each check accepts a subset of what the fhir_core type accepts, never more. A check may answer
# with any true value (a pattern's match), and may raise KeyError or TypeError (a pattern given a
# number) for a value it does not accept: `surely_valid` takes those for False. Most are C
# functions (a pattern's `fullmatch`, a lookup among remembered verdicts), which cost the walk
# less than a Python function.

_CODE = re.compile(r"[!-~]+(?: [!-~]+)*")                      # ASCII only: the models' \s is Unicode
_ID = re.compile(r"[A-Za-z0-9\-.]{1,%d}" % min(64, constraints.TYPES_ID_MAX_LENGTH))
_URI = re.compile(r"[!-~]+")
# The fhir_core patterns of date, dateTime and instant (year 0001 to 9999, day 01 to 31, hours to
# 23, zones to ±14:00), narrowed to a time to the second, at most microseconds and no leap second of
# 60 (rarities left to the models). Whether a 29th, 30th or 31st exists is asked of `datetime.date`.
_YEAR, _MONTH, _DAY = r"(?!0000)([0-9]{4})", r"(0[1-9]|1[0-2])", r"(0[1-9]|[12][0-9]|3[01])"
_TIME = r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?(?:Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_DATE = re.compile(rf"{_YEAR}(?:-{_MONTH}(?:-{_DAY})?)?")
_DATE_TIME = re.compile(rf"{_YEAR}(?:-{_MONTH}(?:-{_DAY}(?:{_TIME})?)?)?")
_INSTANT = re.compile(rf"{_YEAR}-{_MONTH}-{_DAY}{_TIME}")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _string(value: Any) -> bool:
    """Not empty, not only white space, and text: a lone surrogate (from a `\\ud800` escape in a
    fetched resource) is refused by the models. `isascii` is constant time in CPython."""
    return (type(value) is str and value != "" and not value.isspace()
            and (value.isascii() or _SURROGATE.search(value) is None))


def _boolean(value: Any) -> bool:
    return type(value) is bool


def _decimal(value: Any) -> bool:
    """An int, or a finite float: Python writes those as `-?(0|[1-9][0-9]*)(\\.[0-9]+)?(e[+-][0-9]+)?`,
    which the model's pattern accepts (tests/fhir/test_r4_shape.py)."""
    return type(value) is int or (type(value) is float and math.isfinite(value))


def _integer(low: int, high: int) -> Check:
    return lambda value: type(value) is int and low <= value <= high


def _temporal(pattern: re.Pattern) -> Check:
    match = pattern.fullmatch

    def check(value: Any) -> bool:
        found = match(value)
        if found is None:
            return False
        day = found.group(3)
        if day is None or day <= "28":
            return True
        try:
            date(int(found.group(1)), int(found.group(2)), int(day))
        except ValueError:
            return False
        return True
    return check


def _never(value: Any) -> bool:
    return False


class _Verdicts(dict):
    """A string check's verdicts by string, looked up in C: the systems, codes, statuses and dates of
    a chart recur in it and in every other chart. Bounded: emptied when full, and long strings are
    checked each time and not kept. Only codes, URIs and dates are remembered, never free text
    (`string`, `markdown`: names, identifiers, notes), which the plain check reads as fast and which
    would keep patients' words in memory past their call."""

    def __init__(self, check: Check, size: int = 4096, longest: int = 200):
        super().__init__()
        self.check, self.size, self.longest = check, size, longest

    def __missing__(self, value: Any) -> bool:
        verdict = bool(self.check(value))      # not a string: the check says False or raises TypeError
        if type(value) is str and len(value) <= self.longest:
            if len(self) >= self.size:
                self.clear()
            self[value] = verdict
        return verdict


def _remembered(check: Check) -> Check:
    return _Verdicts(check).__getitem__      # a list or an object is unhashable: TypeError


_URI_CHECK = _remembered(_URI.fullmatch)
_BY_RULE: dict[type, Check] = {
    fhir_types.String: _string,
    fhir_types.Markdown: _string,
    fhir_types.Xhtml: _string,
    fhir_types.Code: _remembered(_CODE.fullmatch),
    fhir_types.Id: _ID.fullmatch,              # a resource's own: seldom seen twice
    fhir_types.Uri: _URI_CHECK,
    fhir_types.Canonical: _URI_CHECK,
    fhir_types.Decimal: _decimal,
    fhir_types.Date: _remembered(_temporal(_DATE)),
    fhir_types.DateTime: _remembered(_temporal(_DATE_TIME)),
    fhir_types.Instant: _remembered(_temporal(_INSTANT)),
}


# --- complex types and resources ------------------------------------------------------------------

class _Shape:
    """One model class as a table: element name → (its check, or the _Shape of its complex type;
    whether it repeats; its choice group or None), the required names, and the choice groups one of
    which must be present. `conforms` is the table compiled into a function of its own (`_compile`)
    once every table it names is built (`_link`); until then, and when its compile failed, it
    answers False."""

    def __init__(self, resource_type: str | None, name: str):
        self.resource_type = resource_type
        self.name = name                        # of its function among the compiled ones
        self.elements: dict[str, tuple[Check | _Shape, bool, str | None]] = {}
        self.required: tuple[str, ...] = ()
        self.required_choices: tuple[str, ...] = ()
        self.complete = False                   # its table is built
        self.conforms: Check = _never
        self.by_key: dict[str, Check] = {}      # a long table's checks by name, filled by `_link`
        _compiled[name] = _never


# The compiled functions, by name: each calls the checks and the functions of the types it holds by
# their names here, looked up when it runs, so that types holding each other (Extension holds
# Extension) need no order. A name stays `_never` until its type is compiled.
_compiled: dict[str, Any] = {"__builtins__": {"type": type, "dict": dict, "list": list, "all": all, "map": map,
                                              "len": len, "set": set, "str": str, "int": int, "float": float,
                                              "False": False, "True": True}}
# Tables with at most this many elements are walked by comparing each key with each element's name
# (cheaper than a lookup and a call for the few keys a Coding or a Reference holds).
_LONGEST_CHAIN = 12


def _compile(shape: _Shape) -> Check:
    """`shape`'s check as the source of a function, run once: its elements' checks inlined, those of a
    repeating element in a loop, one branch per element name (or, for a long table, a lookup of a
    check by name)."""
    lines = [f"def {shape.name}(value):",
             "    if type(value) is not dict:",
             "        return False"]
    chained = len(shape.elements) <= _LONGEST_CHAIN
    lines.append("    for key, item in value.items():")
    if chained:
        # `id` and `extension` are in every type and seldom present: asked last.
        order = sorted(shape.elements, key=lambda key: key in ("id", "extension"))
        for index, key in enumerate(order):
            lines.append(f"        {'if' if index == 0 else 'elif'} key == {key!r}:")
            lines += _test(shape.elements[key], "            ")
        if shape.resource_type is not None:
            lines.append(f"        elif key == 'resourceType' and item == {shape.resource_type!r}:")
            lines.append("            pass")
        lines += ["        else:", "            return False"]
    else:
        lines += [f"        if not {_name(shape.by_key)}[key](item):", "            return False"]
    if shape.required:
        lines += [f"    if {' or '.join(f'{key!r} not in value' for key in shape.required)}:", "        return False"]
    lines += _choices(shape)
    lines.append("    return True")
    exec("\n".join(lines), _compiled)            # noqa: S102 — source made here from the models' tables
    return _compiled[shape.name]


# A type whose choice groups can be filled in at most this many ways is checked by looking the
# choice elements it holds up among those ways; one with more, group by group.
_MOST_CHOICES = 512


def _choices(shape: _Shape) -> list[str]:
    """Lines that return False unless the value holds at most one element of each choice group,
    and one of each required group."""
    groups = {choice: sorted(key for key, entry in shape.elements.items() if entry[2] == choice)
              for choice in sorted({entry[2] for entry in shape.elements.values()} - {None})}
    if not groups:
        return []
    group_of = {key: choice for choice, keys in groups.items() for key in keys}
    chosen = f"{_name(frozenset(group_of))}.intersection(value)"
    ways = [keys if choice in shape.required_choices else [None, *keys] for choice, keys in groups.items()]
    if math.prod(map(len, ways)) <= _MOST_CHOICES:
        allowed = frozenset(frozenset(key for key in way if key is not None) for way in itertools.product(*ways))
        return [f"    if {chosen} not in {_name(allowed)}:", "        return False"]
    lines = [f"    chosen = {chosen}",
             f"    if len(chosen) > 1 and len(set(map({_name(group_of.__getitem__)}, chosen))) < len(chosen):",
             "        return False         # two types of one choice (valueQuantity and valueString)"]
    for choice in shape.required_choices:
        lines += [f"    if {_name(frozenset(groups[choice]))}.isdisjoint(chosen):", "        return False"]
    return lines


def _test(entry: tuple[Check | _Shape, bool, str | None], indent: str) -> list[str]:
    """Lines that return False unless `item` passes the element's check."""
    check, repeats, _ = entry
    call = check.name if isinstance(check, _Shape) else _name(check)
    if not repeats:
        # The commonest checks, inlined: a call costs more than the test.
        if check is _string:
            return [f"{indent}if type(item) is not str or not item or item.isspace() or not (item.isascii() or "
                    f"{_name(_SURROGATE.search)}(item) is None):", f"{indent}    return False"]
        if check is _decimal:
            return [f"{indent}if type(item) is not int and (type(item) is not float "
                    f"or not {_name(math.isfinite)}(item)):", f"{indent}    return False"]
        return [f"{indent}if not {call}(item):", f"{indent}    return False"]
    if not isinstance(check, _Shape):
        return [f"{indent}if type(item) is not list or not all(map({call}, item)):", f"{indent}    return False"]
    return [f"{indent}if type(item) is not list:", f"{indent}    return False",
            f"{indent}for each in item:", f"{indent}    if not {call}(each):", f"{indent}        return False"]


def _single(entry: tuple[Check | _Shape, bool, str | None]) -> Check:
    """The element's check as one callable, for the lookup by name of a long table: the function of
    a type it holds is read when linking, once every table is compiled."""
    check, repeats, _ = entry
    if not isinstance(check, _Shape):
        return (lambda value: type(value) is list and all(map(check, value))) if repeats else check
    if not repeats:
        return _compiled[check.name]
    name = f"each_{check.name}"
    if name not in _compiled:
        exec("\n".join([f"def {name}(item):", *_test(entry, "    "), "    return True"]), _compiled)  # noqa: S102
    return _compiled[name]


_constants: dict[int, str] = {}


def _name(constant: Any) -> str:
    """The name a compiled function reads `constant` by (a check, a set of names)."""
    name = _constants.get(id(constant))
    if name is None:
        name = _constants[id(constant)] = f"c{len(_constants)}"
        _compiled[name] = constant
    return name


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
        with _lock:
            try:
                shape = _shape_of(model)
                _link()
            except Exception:  # noqa: BLE001 — a model this module cannot read: the models decide, as before
                log.warning("fast R4 check unavailable for a resource type", extra={"resource_type": resource_type})
                shape = None
        if shape is not None and shape.resource_type != resource_type:
            shape = None
        _by_resource_type[resource_type] = shape
    return shape


def _link() -> None:
    """Compiles every complete table not compiled yet, then fills the long ones' checks by name (a
    type may hold itself, or another that holds it: every function is made before one is read)."""
    new = [shape for shape in _shapes.values() if shape.complete and shape.conforms is _never]
    for shape in new:
        shape.conforms = _compiled[shape.name] = _compile(shape)
    for shape in new:
        if len(shape.elements) > _LONGEST_CHAIN:
            shape.by_key.update({key: _single(entry) for key, entry in shape.elements.items()})
            if shape.resource_type is not None:
                shape.by_key.setdefault("resourceType", frozenset({shape.resource_type}).__contains__)


def _shape_of(model: type) -> _Shape:
    """The table of `model`, compiled once (complex types refer to each other, Extension to itself)."""
    shape = _shapes.get(model)
    if shape is not None and shape.conforms is not _never:
        return shape
    with _lock:                          # held for the whole compile: other threads wait for it
        if model in _shapes:
            return _shapes[model]        # complete, or being compiled by this thread (a type holding itself)
        resource_type = getattr(model, "__resource_type__", None)
        shape = _Shape(resource_type if _is_resource(model) else None, f"s{len(_shapes)}")
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
        shape.complete = True
        return shape


def _is_resource(model: type) -> bool:
    return any(base.__name__ == "Resource" and base.__module__.endswith(".resource") for base in model.__mro__)


def _element_check(annotation: Any) -> tuple[Check | _Shape, bool]:
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


def _value_check(annotation: Any) -> Check | _Shape:
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
        return _shape_of(model)          # its `conforms`, once linked
    return _never


def _contained(value: Any) -> bool:
    """A contained (or any inline) resource: checked against the model its resourceType names."""
    return type(value) is dict and surely_valid(value)

