"""Small helpers on decoded JSON values, shared by the patch modules of this package.

They exist because Python's own `==` and `copy.deepcopy` are a poor fit for JSON: `True == 1`
holds in Python but `true` and `1` are different JSON values, and a generic deep copy is much
slower than one that knows the only containers are `dict` and `list`.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

JSONDict = dict[str, Any]


def deep_copy(value: Any) -> Any:
    """A copy of a decoded JSON value that shares no container with the input."""
    if isinstance(value, dict):
        return {key: deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [deep_copy(item) for item in value]
    return value


def json_equal(left: Any, right: Any) -> bool:
    """Equality of JSON values: numbers by value (`1 == 1.0`), but `true` is not `1`."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, dict):
        return (
            isinstance(right, dict)
            and left.keys() == right.keys()
            and all(json_equal(item, right[key]) for key, item in left.items())
        )
    if isinstance(left, list):
        return (
            isinstance(right, list)
            and len(left) == len(right)
            and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
        )
    if isinstance(right, dict | list):
        return False
    return bool(left == right)


def is_scalar(value: Any) -> bool:
    """True for JSON strings, numbers, booleans and null."""
    return not isinstance(value, dict | list)


def scalar_key(value: Any) -> Hashable:
    """A hashable identity for a JSON scalar that keeps `true` apart from `1`.

    Used to look up merge-key values and members of primitive sets. Callers check
    `is_scalar` first; containers have no identity here.
    """
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    return (type(value).__name__, value)


def describe(value: Any) -> str:
    """The JSON type name of a value, for error messages (never the value: it may be secret)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
