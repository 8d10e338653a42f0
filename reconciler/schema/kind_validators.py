"""Compiled schemas of built-in kinds, each given only what it refers to: the API server's
(every write) and `recon validate`'s / a sync's render (every manifest).

`schema.validation.DefinitionValidators` compiles `{"$ref": "#/$defs/<kind>", "$defs":
<all 862 definitions>}` for each kind, and jsonschema-rs keeps its own converted copy of
every definition it is handed, per validator. Here each kind's schema carries only the
definitions its `$ref`s reach (≈120 for a Deployment, 6 for a ConfigMap): the same
verdicts, and the validators a first sync of Deployments, ReplicaSets, Pods, Services,
ConfigMaps, Endpoints, EndpointSlices and Events compiles take ≈8 MB instead of ≈14 MB
(measured as the process's RSS), and compile faster. A render validates against the strict
definitions of any served version (alpha and beta included), which the API server's set
does not cover, so the two keep their own instances.
"""

from __future__ import annotations

import threading
from typing import Any

from reconciler.schema.definitions import Definitions
from reconciler.schema.validation import Validator

__all__ = ["KindValidators", "reachable"]

JSONDict = dict[str, Any]

_PREFIX = "#/$defs/"


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_PREFIX):
                out.add(value[len(_PREFIX) :])
            else:
                _refs(value, out)  # (a dict under "$ref" is a property of that name)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)


def reachable(defs: dict[str, JSONDict], name: str) -> dict[str, JSONDict]:
    """The definitions `name` refers to, directly or not, itself included."""
    found: dict[str, JSONDict] = {}
    waiting = [name]
    while waiting:
        current = waiting.pop()
        if current in found or current not in defs:
            continue
        found[current] = defs[current]
        refs: set[str] = set()
        _refs(defs[current], refs)
        waiting.extend(refs - found.keys())
    return found


class KindValidators:
    """Lazily compiled validators for the built-in kinds of one definitions set (the
    interface of `schema.validation.DefinitionValidators`)."""

    def __init__(self, defs: Definitions) -> None:
        self._defs = defs
        self._cache: dict[str, Validator] = {}
        self._lock = threading.Lock()

    def for_definition(self, name: str) -> Validator:
        with self._lock:
            validator = self._cache.get(name)
            if validator is None:
                schema = {"$ref": f"{_PREFIX}{name}", "$defs": reachable(self._defs.defs, name)}
                validator = self._cache[name] = Validator(schema)
            return validator
