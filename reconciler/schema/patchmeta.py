"""Strategic-merge patch metadata, read from the upstream Kubernetes schemas.

Strategic merge patch needs to know, for every field it walks, how that field merges: the
`x-kubernetes-patch-strategy` (`merge`, `retainKeys`, `replace`, or a comma-separated mix),
the `x-kubernetes-patch-merge-key` of a list of objects, and the list type. Kubernetes keeps
these as Go struct tags; the published schemas carry the same information as extensions, so
the merge package reads them from `Definitions` instead of a hand-written table.

`PatchMeta` is an immutable cursor into that schema tree:

    meta = PatchMeta.for_definition(defs, "io.k8s.api.apps.v1.Deployment")
    containers = meta.field("spec").field("template").field("spec").field("containers")
    containers.strategy   # frozenset({'merge'})
    containers.merge_key  # 'name'
    containers.item().field("env").merge_key  # 'name'

The API server navigates it on every PATCH, so each step is a dictionary lookup after the
first visit: the nodes of the tree are built lazily and cached per (definitions, name).
A field the schema does not know yields `PatchMeta.empty()`: no strategy, so its lists are
replaced atomically and its maps merged key by key, as Kubernetes does for unknown fields.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from reconciler.schema.definitions import Definitions

JSONDict = dict[str, Any]

_REF_PREFIX = "#/$defs/"
_MAX_REF_DEPTH = 32


class _Node:
    """One schema (a named definition or an inline schema) and the cursors below it.

    The children are built on first use and kept, so walking the same path again costs only
    dictionary lookups. Only fields the schema declares are cached: unknown names (which come
    from user input) map to the shared empty cursor and never grow the cache.
    """

    __slots__ = ("_additional", "_defs", "_fields", "_item", "_schema", "name")

    @property
    def schema(self) -> JSONDict:
        return self._schema

    def __init__(self, defs: Definitions | None, schema: JSONDict, name: str | None) -> None:
        self._defs = defs
        self._schema = schema
        self.name = name
        self._fields: dict[str, PatchMeta] = {}
        self._item: PatchMeta | None = None
        self._additional: PatchMeta | None = None

    def field(self, name: str) -> PatchMeta:
        cached = self._fields.get(name)
        if cached is not None:
            return cached
        properties = self._schema.get("properties")
        prop = properties.get(name) if isinstance(properties, dict) else None
        if isinstance(prop, dict):
            meta = _meta_for(self._defs, prop)
            self._fields[name] = meta
            return meta
        return self._values()

    def _values(self) -> PatchMeta:
        """The cursor for the values of a map (`additionalProperties`), or the empty one."""
        if self._additional is None:
            additional = self._schema.get("additionalProperties")
            self._additional = (
                _meta_for(self._defs, additional) if isinstance(additional, dict) else _EMPTY
            )
        return self._additional

    def item(self) -> PatchMeta:
        if self._item is None:
            items = self._schema.get("items")
            self._item = _meta_for(self._defs, items) if isinstance(items, dict) else _EMPTY
        return self._item


@dataclass(frozen=True, slots=True)
class PatchMeta:
    """How one field merges, and the way down to the fields below it.

    `strategy` is the parsed `x-kubernetes-patch-strategy` (empty when the field has none),
    `merge_key` the `x-kubernetes-patch-merge-key` of a list of objects, `list_type` and
    `list_map_keys` the `x-kubernetes-list-type` / `-list-map-keys` (informational: strategic
    merge patch follows the patch strategy alone, as the Kubernetes API server does).
    """

    _node: _Node = field(repr=False, compare=True)
    strategy: frozenset[str] = frozenset()
    merge_key: str | None = None
    list_type: str | None = None
    list_map_keys: tuple[str, ...] = ()
    map_type: str | None = None  # x-kubernetes-map-type ("atomic": a map set as a whole)

    @staticmethod
    def for_definition(defs: Definitions, name: str) -> PatchMeta:
        """The cursor at the root of a definition, e.g. `io.k8s.api.apps.v1.Deployment`.

        Raises `KeyError` when the definitions have no schema of that name.
        """
        if name not in defs.defs:
            raise KeyError(f"no schema definition named {name!r} in Kubernetes {defs.version}")
        return _root_for(defs, name)

    @staticmethod
    def empty() -> PatchMeta:
        """The cursor of a field nothing is known about: lists replace, maps merge."""
        return _EMPTY

    @property
    def definition(self) -> str | None:
        """The name of the schema definition this cursor is at, if it is a named one."""
        return self._node.name

    def field(self, name: str) -> PatchMeta:
        """Descend into an object property, or into the values of a map."""
        return self._node.field(name)

    def item(self) -> PatchMeta:
        """Descend into the items of an array."""
        return self._node.item()

    @property
    def is_struct(self) -> bool:
        """The schema declares named fields (`properties`): a Go struct, whose fields are
        members of an object's field set one by one (server-side apply's field paths)."""
        return isinstance(self._node.schema.get("properties"), dict)

    @property
    def is_map(self) -> bool:
        """The schema is a map of any keys (`additionalProperties`), e.g. labels."""
        return isinstance(self._node.schema.get("additionalProperties"), dict)


def _strategy_set(value: Any) -> frozenset[str]:
    if not isinstance(value, str):
        return frozenset()
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def _meta_for(defs: Definitions | None, schema: JSONDict) -> PatchMeta:
    """The cursor for a property (or items / additionalProperties) schema.

    The patch extensions sit on the property itself, next to its `$ref`; the definition it
    refers to supplies the fields below. A named definition gets the shared cached node.
    """
    attrs: JSONDict = {}
    name: str | None = None
    current: JSONDict = schema
    for _ in range(_MAX_REF_DEPTH):
        for key in (
            "x-kubernetes-patch-strategy",
            "x-kubernetes-patch-merge-key",
            "x-kubernetes-list-type",
            "x-kubernetes-list-map-keys",
            "x-kubernetes-map-type",
        ):
            if key in current and key not in attrs:
                attrs[key] = current[key]
        target = _follow(current)
        if target is None:
            break
        if isinstance(target, str):
            if defs is None or target not in defs.defs:
                current = {}
                break
            name = target
            current = defs.defs[target]
        else:
            current = target
    node = _node_for(defs, name) if defs is not None and name is not None else None
    if node is None:
        node = _Node(defs, current, None)
    merge_key = attrs.get("x-kubernetes-patch-merge-key")
    list_type = attrs.get("x-kubernetes-list-type")
    map_keys = attrs.get("x-kubernetes-list-map-keys")
    return PatchMeta(
        node,
        strategy=_strategy_set(attrs.get("x-kubernetes-patch-strategy")),
        merge_key=merge_key if isinstance(merge_key, str) else None,
        list_type=list_type if isinstance(list_type, str) else None,
        list_map_keys=tuple(k for k in map_keys if isinstance(k, str))
        if isinstance(map_keys, list)
        else (),
        map_type=map_type
        if isinstance(map_type := attrs.get("x-kubernetes-map-type"), str)
        else None,
    )


def _follow(schema: JSONDict) -> str | JSONDict | None:
    """One indirection step: a local `$ref` (its definition name) or a single-entry `allOf`."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return ref[len(_REF_PREFIX) :] if ref.startswith(_REF_PREFIX) else None
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        return all_of[0]
    return None


# Nodes of named definitions, per Definitions object. `Definitions` holds a dict and is not
# hashable, so it is keyed by identity and kept alive by the entry (it is itself loaded once
# per process and version by `definitions.load`).
_NODES: dict[int, tuple[Definitions, dict[str, _Node], dict[str, PatchMeta]]] = {}
_NODES_LOCK = threading.Lock()


def _tables(defs: Definitions) -> tuple[dict[str, _Node], dict[str, PatchMeta]]:
    entry = _NODES.get(id(defs))
    if entry is None or entry[0] is not defs:
        with _NODES_LOCK:
            entry = _NODES.get(id(defs))
            if entry is None or entry[0] is not defs:
                entry = (defs, {}, {})
                _NODES[id(defs)] = entry
    return entry[1], entry[2]


def _node_for(defs: Definitions, name: str) -> _Node:
    nodes, _ = _tables(defs)
    node = nodes.get(name)
    if node is None:
        node = nodes.setdefault(name, _Node(defs, defs.defs[name], name))
    return node


def _root_for(defs: Definitions, name: str) -> PatchMeta:
    _, roots = _tables(defs)
    root = roots.get(name)
    if root is None:
        root = roots.setdefault(name, _meta_for(defs, {"$ref": _REF_PREFIX + name}))
    return root


_EMPTY = PatchMeta(_Node(None, {}, None))
