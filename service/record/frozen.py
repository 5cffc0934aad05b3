"""`@frozen`: a frozen dataclass that is quick to build.

`@dataclass(frozen=True)` sets each field in `__init__` through `object.__setattr__`, one call per
field: building a long chart's facts (a Height has 19 fields, a chart hundreds of heights) and their
evidence spent more time there than in reading the chart. `frozen` is that same dataclass — fields,
defaults, equality, hash, repr, `dataclasses.replace`, attributes that cannot be assigned — with an
`__init__` that writes the instance's attributes straight into its dict, and a `replace` that copies an
instance's fields in one step (`dataclasses.replace` reads each back and passes them all as keywords).
`adopt` makes an instance of a dict of its fields, for facts gathered field by field: unpacking and
binding a dozen keywords costs as much as the rest of building the instance.

Only what that `__init__` can do exactly is accepted: a class with `__post_init__`, `InitVar`,
`init=False` or keyword-only fields is refused when it is defined, not built differently.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, TypeVar

T = TypeVar("T", bound=type)
C = TypeVar("C")


def frozen(cls: T | None = None, /, **options: Any) -> T | Callable[[T], T]:
    """`@frozen` or `@frozen(eq=False, …)`: `dataclass(frozen=True, …)` with a one-step `__init__`."""
    def wrap(plain: T) -> T:
        made = dataclasses.dataclass(plain, frozen=True, **options)
        made.__init__ = _one_step_init(made)
        _FIELDS[made] = tuple(f.name for f in dataclasses.fields(made))
        _NAMES[made] = frozenset(_FIELDS[made])
        return made
    return wrap if cls is None else wrap(cls)


_FIELDS: dict[type, tuple[str, ...]] = {}     # each @frozen class's field names, in order
_NAMES: dict[type, frozenset[str]] = {}
_FACTORY = object()     # the default of a field made by `default_factory`: make one per instance


def _one_step_init(cls: type) -> Callable[..., None]:
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    generated = inspect.signature(cls.__init__).parameters
    plain = all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in generated.values())
    if hasattr(cls, "__post_init__") or list(generated)[1:] != names or not plain:
        raise TypeError(f"{cls.__qualname__}: @frozen takes plain fields only (no __post_init__, InitVar, "
                        "init=False or keyword-only fields)")
    scope: dict[str, Any] = {"_FACTORY": _FACTORY}
    parameters, making = [], []
    for f in fields:
        if f.default is not dataclasses.MISSING:
            scope[f"_default_{f.name}"] = f.default
            parameters.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not dataclasses.MISSING:
            scope[f"_factory_{f.name}"] = f.default_factory
            parameters.append(f"{f.name}=_FACTORY")
            making.append(f"    if {f.name} is _FACTORY: {f.name} = _factory_{f.name}()\n")
        else:
            parameters.append(f.name)
    # Stored straight into the instance's own dict (as `object.__setattr__` would, bypassing the frozen
    # `__setattr__`): 40 % quicker than handing it a new dict, which Python then has to adopt as `__dict__`.
    source = (f"def __init__(self, {', '.join(parameters)}):\n" + "".join(making) + "    _own = self.__dict__\n"
              + "".join(f"    _own[{name!r}] = {name}\n" for name in names))
    exec(source, scope)     # noqa: S102 — the source is made above from the class's own field names
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    return init


def replace(instance: C, /, **changes: Any) -> C:
    """`dataclasses.replace`, in one step for a `@frozen` instance (the wording replaces every criterion,
    finding and piece of evidence once). A name that is not a field is a TypeError, as there."""
    names = _FIELDS.get(type(instance))
    if names is None:
        return dataclasses.replace(instance, **changes)
    current = instance.__dict__
    attributes = {name: current[name] for name in names}     # fields only, not what a cached_property kept
    attributes.update(changes)
    if len(attributes) != len(names):
        raise TypeError(f"{type(instance).__qualname__} has no field {sorted(set(changes) - set(names))}")
    made = object.__new__(type(instance))
    object.__setattr__(made, "__dict__", attributes)
    return made


def adopt(cls: type[C], fields: dict[str, Any]) -> C:
    """The `@frozen` instance whose attributes are `fields` itself: every field named, no other name (a
    TypeError otherwise, as `cls(**fields)` would raise). The dict becomes the instance's: whoever hands
    it over does not change it afterwards."""
    names = _NAMES.get(cls)
    if names is None or fields.keys() != names:
        wanted = names or frozenset()
        raise TypeError(f"{cls.__qualname__}: not a @frozen class, or fields unknown "
                        f"{sorted(fields.keys() - wanted)} or missing {sorted(wanted - fields.keys())}")
    made = object.__new__(cls)
    object.__setattr__(made, "__dict__", fields)
    return made
