"""The exact number a chart value stands for, so that decisions at a limit are exact.

A JSON number such as 16.6 arrives as the nearest binary float (16.600000000000001421…), but the
chart wrote 16.6. `exact` recovers the decimal that was written — the shortest decimal that reads
back as the same float, which is what `repr` prints — as a `Fraction`. Then 2.0 mg / 16.6 kg is
compared with 0.12 mg/kg in rational arithmetic, and 1.2 mg / 15 kg is exactly 0.08. A computed
float (a logarithm, an SDS) has no shorter decimal: its `repr` is the float itself, compared as it is.
"""
from __future__ import annotations

import functools
from fractions import Fraction

Number = float | int | Fraction


def exact(value: Number) -> Fraction:
    """The decimal a finite float stands for (its shortest repr), as a Fraction."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    return _decimal_of(float(value))


@functools.lru_cache(maxsize=8192)
def _decimal_of(value: float) -> Fraction:
    # Cached: a chart and the limits repeat the same few hundred numbers across a call.
    return Fraction(repr(value))


def ordered(*values: Number) -> tuple[Number, ...]:
    """`values` ready to compare exactly: as they are when none is a Fraction — two floats compare
    as the decimals they stand for, since the shortest repr keeps their order — else all exact."""
    for value in values:        # a loop, not any(): called for every comparison of a decision
        if isinstance(value, Fraction):
            return tuple(exact(v) for v in values)
    return values
