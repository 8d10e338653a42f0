"""Defaulting of custom resources from their CRD's structural schema (`default:` values).

The apiserver fills in `default` values of a CRD schema on every write (and on read), for
fields that are absent where their parent object is present; users and operators rely on
it (`interval: 60s` in an Application without one). Pure: mutates the object it is given.
"""

from __future__ import annotations

import copy
from typing import Any

JSONDict = dict[str, Any]


def apply_defaults(schema: JSONDict, value: Any) -> None:
    """Fill `default`s of `schema` into `value` (a dict or list), recursively, in place."""
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name, sub in properties.items():
            if not isinstance(sub, dict):
                continue
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                apply_defaults(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                if name not in properties:
                    apply_defaults(extra, item)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for item in value:
                apply_defaults(items, item)
