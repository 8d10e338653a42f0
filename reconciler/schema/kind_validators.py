"""Compiled schemas of built-in kinds, each given only what it refers to: the API server's
(every write) and `recon validate`'s / a sync's render (every manifest).

`schema.validation.DefinitionValidators` compiles `{"$ref": "#/$defs/<kind>", "$defs":
<all 862 definitions>}` for each kind, and jsonschema-rs keeps its own converted copy of
every definition it is handed, per validator. Here each kind's schema carries only the
definitions its `$ref`s reach (≈120 for a Deployment, 6 for a ConfigMap): the same
verdicts, and the validators a first sync of Deployments, ReplicaSets, Pods, Services,
ConfigMaps, Endpoints, EndpointSlices and Events compiles take ≈8 MB instead of ≈14 MB
(measured as the process's RSS), and compile faster.

Instances over the same `Definitions` (`definitions.load` hands out one per version and
flavour) share what they compiled: in `recon serve` the API server and the GitOps render
both validate Deployments, Services and ConfigMaps against the strict definitions, and a
second compiled set of those three is ≈1.6 MB of RSS for the same verdicts. A render may
ask for kinds the server does not serve (alpha and beta versions): they are compiled on
first use like any other.
"""

from __future__ import annotations

import threading
import weakref
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


class _Compiled:
    """The validators compiled so far for one definitions set, and the lock that keeps two
    threads from compiling the same one twice."""

    def __init__(self) -> None:
        self.validators: dict[str, Validator] = {}
        self.lock = threading.Lock()


# id(definitions) -> what was compiled for them; an entry goes with its definitions.
_SHARED: dict[int, _Compiled] = {}
_SHARED_LOCK = threading.Lock()


def _compiled_for(defs: Definitions) -> _Compiled:
    with _SHARED_LOCK:
        found = _SHARED.get(id(defs))
        if found is None:
            found = _SHARED[id(defs)] = _Compiled()
            weakref.finalize(defs, _SHARED.pop, id(defs), None)
        return found


class KindValidators:
    """Lazily compiled validators for the built-in kinds of one definitions set (the
    interface of `schema.validation.DefinitionValidators`), shared by every instance over
    the same set (see the module docstring)."""

    def __init__(self, defs: Definitions) -> None:
        self._defs = defs
        compiled = _compiled_for(defs)
        self._cache = compiled.validators
        self._lock = compiled.lock

    def for_definition(self, name: str) -> Validator:
        with self._lock:
            validator = self._cache.get(name)
            if validator is None:
                schema = {"$ref": f"{_PREFIX}{name}", "$defs": reachable(self._defs.defs, name)}
                validator = self._cache[name] = Validator(schema)
            return validator
