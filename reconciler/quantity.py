"""Kubernetes resource quantities (`500m`, `1.5`, `128Mi`, `1G`, `1e3`) as numbers.

The node agent turns `resources.limits` into engine limits and the scheduler weighs
`resources.requests` against a node's allocatable, so both read quantities here. Pure.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

__all__ = [
    "QuantityError",
    "cpu_millis",
    "cpu_nanos",
    "format_quantity",
    "is_binary",
    "memory_bytes",
    "parse_quantity",
]

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$"
)


class QuantityError(ValueError):
    """A quantity that is not in Kubernetes' notation."""


def parse_quantity(value: str | int | float) -> Decimal:
    """The exact value of a quantity (`"250m"` -> 0.25, `"1Gi"` -> 1073741824)."""
    if isinstance(value, bool):
        raise QuantityError(f"quantity {value!r} is not a number")
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.match(value.strip())
    if not match:
        raise QuantityError(
            f"quantity {value!r} must match the regular expression "
            r"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        )
    try:
        number = Decimal(match["number"])
    except InvalidOperation:
        raise QuantityError(f"quantity {value!r} is not a number") from None
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * (Decimal(10) ** int(suffix[1:]))


def cpu_nanos(value: str | int | float) -> int:
    """CPU in billionths of a core, rounded up (Docker's NanoCpus)."""
    return math.ceil(parse_quantity(value) * 10**9)


def memory_bytes(value: str | int | float) -> int:
    """Memory in bytes, rounded up."""
    return math.ceil(parse_quantity(value))


def cpu_millis(value: str | int | float) -> int:
    """CPU in thousandths of a core, rounded up (how the scheduler adds requests)."""
    return math.ceil(parse_quantity(value) * 1000)


def is_binary(value: str | int | float) -> bool:
    """Written with a binary suffix (`Ki` ... `Ei`): sums of it are shown that way too."""
    return isinstance(value, str) and value.strip()[-2:] in _BINARY


_DECIMAL_STEPS = [("E", 18), ("P", 15), ("T", 12), ("G", 9), ("M", 6), ("k", 3), ("", 0)]
_SMALL_STEPS = [("m", -3), ("u", -6), ("n", -9)]


def format_quantity(value: Decimal, binary: bool = False) -> str:
    """A quantity as Kubernetes prints it canonically: the largest suffix that keeps the
    number whole (`1.5` -> `1500m`, `2000m` -> `2`, `3Gi` stays `3Gi` when `binary`,
    `1536Mi` for 1.5Gi)."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if binary and value == value.to_integral_value():
        for suffix, factor in sorted(_BINARY.items(), key=lambda kv: -kv[1]):
            if value >= factor and value % factor == 0:
                return f"{sign}{int(value // factor)}{suffix}"
    for suffix, exponent in _DECIMAL_STEPS + _SMALL_STEPS:
        scaled = value / (Decimal(10) ** exponent)
        if scaled == scaled.to_integral_value() and scaled >= 1:
            return f"{sign}{int(scaled)}{suffix}"
    nanos = math.ceil(value * 10**9)  # finer than a nano: rounded up, as upstream
    return f"{sign}{nanos}n"
