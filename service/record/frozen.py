"""`@frozen`: a frozen dataclass that is quick to build.

`@dataclass(frozen=True)` sets each field in `__init__` through `object.__setattr__`, one call per
field: building a long chart's facts (a Height has 19 fields, a chart hundreds of heights) and their
evidence spent more time there than in reading the chart. `frozen` is that same dataclass — fields,
defaults, equality, hash, repr, `dataclasses.replace`, attributes that cannot be assigned — with an
`__init__` that gives the instance all its attributes in one step.

Only what that `__init__` can do exactly is accepted: a class with `__post_init__`, `InitVar`,
`init=False` or keyword-only fields is refused when it is defined, not built differently.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, TypeVar

T = TypeVar("T", bound=type)


def frozen(cls: T | None = None, /, **options: Any) -> T | Callable[[T], T]:
    """`@frozen` or `@frozen(eq=False, …)`: `dataclass(frozen=True, …)` with a one-step `__init__`."""
    def wrap(plain: T) -> T:
        made = dataclasses.dataclass(plain, frozen=True, **options)
        made.__init__ = _one_step_init(made)
        return made
    return wrap if cls is None else wrap(cls)


_FACTORY = object()     # the default of a field made by `default_factory`: make one per instance


def _one_step_init(cls: type) -> Callable[..., None]:
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    generated = inspect.signature(cls.__init__).parameters
    plain = all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in generated.values())
    if hasattr(cls, "__post_init__") or list(generated)[1:] != names or not plain:
        raise TypeError(f"{cls.__qualname__}: @frozen takes plain fields only (no __post_init__, InitVar, "
                        "init=False or keyword-only fields)")
    scope: dict[str, Any] = {"_set": object.__setattr__, "_FACTORY": _FACTORY}
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
    attributes = ", ".join(f"{name!r}: {name}" for name in names)
    source = (f"def __init__(self, {', '.join(parameters)}):\n" + "".join(making)
              + f"    _set(self, '__dict__', {{{attributes}}})\n")
    exec(source, scope)     # noqa: S102 — the source is made above from the class's own field names
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    return init
