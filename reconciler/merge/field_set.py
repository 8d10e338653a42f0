"""Field sets: which fields of an object a manager owns, as server-side apply counts them.

A field path is a tuple of upstream's FieldsV1 path elements: `f:name` (a field of a
struct or a key of a map), `k:{"name":"web"}` (the item of an associative list with those
key values, `x-kubernetes-list-type: map`), `v:"x"` (a value of a set list) and `i:3` (an
index, for lists whose items have no keys). The schema decides the shape, as
structured-merge-diff does from the OpenAPI: a struct's fields are walked one by one, a
map's keys and an associative list's items are members of the set themselves (upstream's
`.` entry) and walked, a set list's values are members, and everything else — scalars,
atomic lists and maps (`x-kubernetes-map-type: atomic`, e.g. label selectors), empty
objects — is a leaf owned as a whole.

Worked example (a Deployment's `spec.template.spec.containers: [{name: web, image: x}]`):
paths `spec.template.spec.containers[k:{"name":"web"}]` (the item),
`...[k:{"name":"web"}].f:name` and `...f:image`; in FieldsV1 the item's entry is
`{".": {}, "f:image": {}, "f:name": {}}`.

Pure; `fields_of` and `value_at` are the only walks (a manager's set is stored as FieldsV1).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.schema.patchmeta import PatchMeta

__all__ = [
    "MISSING",
    "Path",
    "decode_fields",
    "encode_fields",
    "fields_of",
    "item_key",
    "list_keys",
    "render_path",
    "value_at",
]

Path = tuple[str, ...]
JSONDict = dict[str, Any]

MISSING: Any = object()
"""`value_at` of a path the object does not have."""

# Never managed: the server sets them, or they name the object itself.
_UNMANAGED_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
        "generateName",
    }
)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# Key fields the API defaults, so an item applied without one is the live item with it
# (upstream's structured-merge-diff reads these defaults from the OpenAPI).
KEY_DEFAULTS = {"protocol": "TCP"}


def list_keys(meta: PatchMeta) -> tuple[str, ...]:
    return meta.list_map_keys or ((meta.merge_key,) if meta.merge_key else ())


def item_key(item: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """An associative list item's key values, defaulted ones filled in."""
    out = {}
    for k in keys:
        if k in item:
            out[k] = item[k]
        elif k in KEY_DEFAULTS:
            out[k] = KEY_DEFAULTS[k]
    return out


def _keys_of(item: Mapping[str, Any], meta: PatchMeta) -> dict[str, Any] | None:
    keys = list_keys(meta)
    return item_key(item, keys) if keys else None


def _list_shape(items: list[Any], meta: PatchMeta) -> str:
    """How a list's members are named: "map" (by keys), "set" (by value) or "atomic"."""
    if meta.list_type == "atomic":
        return "atomic"
    if meta.list_type == "set":
        return "set"
    if (meta.list_type == "map" or meta.merge_key) and all(isinstance(i, Mapping) for i in items):
        return "map"
    if meta.strategy and "merge" in meta.strategy and meta.list_type is None:
        return "set"  # a merging list of scalars (e.g. finalizers)
    return "atomic"


def fields_of(obj: Mapping[str, Any], meta: PatchMeta, *, status: bool = False) -> set[Path]:
    """Every managed path of `obj` (a whole object). `status`: the status alone (a status
    subresource write); otherwise everything but the status and what the server sets."""
    out: set[Path] = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if (key == "status") != status:
            continue
        if key == "metadata" and isinstance(value, Mapping):
            for mkey, mvalue in value.items():
                if mkey not in _UNMANAGED_METADATA:
                    _walk(
                        mvalue,
                        meta.field("metadata").field(mkey),
                        ("f:metadata", f"f:{mkey}"),
                        out,
                        False,
                    )
            continue
        _walk(value, meta.field(key), (f"f:{key}",), out, False)
    return out


def _walk(value: Any, meta: PatchMeta, path: Path, out: set[Path], member: bool) -> None:
    """Add `path` (when it is a leaf, or a member of its parent) and what is below it."""
    if isinstance(value, Mapping) and value and meta.map_type != "atomic":
        if member or meta.is_map:
            out.add(path)
        for key, child in value.items():
            _walk(
                child, meta.field(key), (*path, f"f:{key}"), out, meta.is_map and not meta.is_struct
            )
        return
    if isinstance(value, list) and value:
        shape = _list_shape(value, meta)
        if shape == "map":
            item_meta = meta.item()
            for index, item in enumerate(value):
                keys = _keys_of(item, meta)
                element = f"k:{_compact(keys)}" if keys else f"i:{index}"
                _walk(item, item_meta, (*path, element), out, True)
            if member:
                out.add(path)
            return
        if shape == "set":
            for item in value:
                out.add((*path, f"v:{_compact(item)}"))
            if member:
                out.add(path)
            return
    out.add(path)


def value_at(obj: Any, path: Path) -> Any:
    """The value at `path` in `obj`, or MISSING."""
    current = obj
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            if not isinstance(current, Mapping) or rest not in current:
                return MISSING
            current = current[rest]
        elif kind == "k":
            if not isinstance(current, list):
                return MISSING
            wanted = json.loads(rest)
            keys = tuple(wanted)
            current = next(
                (i for i in current if isinstance(i, Mapping) and item_key(i, keys) == wanted),
                MISSING,
            )
            if current is MISSING:
                return MISSING
        elif kind == "v":
            wanted = json.loads(rest)
            if not isinstance(current, list) or wanted not in current:
                return MISSING
            current = wanted
        elif kind == "i":
            index = int(rest)
            if not isinstance(current, list) or index >= len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return current


def encode_fields(paths: Iterable[Path]) -> JSONDict:
    """FieldsV1: nested path elements; `.` marks a member that also has members below."""
    tree: JSONDict = {}
    ordered = sorted(paths, key=len)
    for path in ordered:
        node = tree
        for element in path:
            node = node.setdefault(element, {})
        node.setdefault(".", {})
    return _drop_lone_dots(tree)


def _drop_lone_dots(node: JSONDict) -> JSONDict:
    out: JSONDict = {}
    for key, child in sorted(node.items()):
        if key == ".":
            continue
        sub = _drop_lone_dots(child)
        if "." in child and sub:
            out[key] = {".": {}, **sub}
        else:
            out[key] = sub
    return out


def decode_fields(tree: Mapping[str, Any], prefix: Path = ()) -> set[Path]:
    """The paths of a FieldsV1 tree (the inverse of `encode_fields`)."""
    out: set[Path] = set()
    for key, child in tree.items():
        if key == ".":
            out.add(prefix)
            continue
        path = (*prefix, str(key))
        if isinstance(child, Mapping) and child:
            out |= decode_fields(child, path)
        else:
            out.add(path)
    return out


def render_path(path: Path) -> str:
    """A path as upstream's conflict messages write it: `.spec.containers[name="web"].image`."""
    out = []
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            out.append(f".{rest}")
        elif kind == "k":
            keys = json.loads(rest)
            out.append("[" + ",".join(f"{k}={_compact(v)}" for k, v in keys.items()) + "]")
        elif kind == "v":
            out.append(f"[={rest}]")
        else:
            out.append(f"[{rest}]")
    return "".join(out)
