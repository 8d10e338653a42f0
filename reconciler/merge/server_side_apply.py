"""Server-side apply: merge an applied configuration into the live object by field ownership.

What `kubectl apply --server-side`, Flux and Argo CD's `ServerSideApply=true` rely on, as
upstream's structured-merge-diff does it, on the field sets of `field_set.py`:

- the applier (its `fieldManager`) comes to own exactly the fields of its configuration;
- a field it applies with a value other than the live one, owned by another manager, is a
  conflict (409, each field named) unless it forces, which takes the field from the others;
  applying the value a field already has shares it without conflict;
- a field the applier applied last time and leaves out now is removed from the object,
  unless another manager owns it (or something below it);
- every other write (create, update, patch: operation `Update`) moves the fields it
  changes to its manager, taking them from the others, and drops fields it removed.

The live object's ownership is its `metadata.managedFields` (FieldsV1). An object that has
none yet (created before any apply) gets, at its first apply, one `before-first-apply`
entry owning everything it has, as upstream.

Pure: `apply` and `track_update` compute; the API server stores.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from reconciler.merge.field_set import (
    MISSING,
    Path,
    decode_fields,
    encode_fields,
    fields_of,
    item_key,
    list_keys,
    render_path,
    value_at,
)
from reconciler.schema.patchmeta import PatchMeta

__all__ = ["ApplyConflictError", "Conflict", "Manager", "apply", "track_update"]

JSONDict = dict[str, Any]

BEFORE_FIRST_APPLY = "before-first-apply"


@dataclass(frozen=True)
class Conflict:
    manager: str
    api_version: str
    path: Path
    subresource: str = ""

    @property
    def field(self) -> str:
        return render_path(self.path)

    @property
    def owner(self) -> str:
        """Upstream's words for the other manager: `conflict with "kubectl" with subresource
        "scale" using apps/v1`."""
        via = f' with subresource "{self.subresource}"' if self.subresource else ""
        return f'conflict with "{self.manager}"{via} using {self.api_version}'


class ApplyConflictError(Exception):
    """Fields the applier would change that other managers own."""

    def __init__(self, conflicts: Sequence[Conflict]) -> None:
        self.conflicts = list(conflicts)
        parts = [f"{c.owner}: {c.field}" for c in conflicts]
        count = len(conflicts)
        super().__init__(
            f"Apply failed with {count} conflict{'s' if count != 1 else ''}: " + "\n".join(parts)
        )


@dataclass
class Manager:
    """One entry of `metadata.managedFields`, its FieldsV1 decoded."""

    manager: str
    operation: str  # "Apply" or "Update"
    api_version: str
    time: str
    fields: set[Path]
    subresource: str = ""

    @staticmethod
    def parse(entry: Mapping[str, Any]) -> Manager:
        return Manager(
            str(entry.get("manager") or ""),
            str(entry.get("operation") or "Update"),
            str(entry.get("apiVersion") or ""),
            str(entry.get("time") or ""),
            decode_fields(entry.get("fieldsV1") or {}),
            str(entry.get("subresource") or ""),
        )

    def entry(self) -> JSONDict:
        out: JSONDict = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": encode_fields(self.fields),
        }
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def _managers(obj: Mapping[str, Any]) -> list[Manager]:
    entries = (obj.get("metadata") or {}).get("managedFields") or []
    return [Manager.parse(e) for e in entries if isinstance(e, Mapping)]


def _leaves(paths: set[Path]) -> set[Path]:
    """Paths with nothing below them in the set: the values that can differ."""
    parents = {p[:i] for p in paths for i in range(len(p))}
    return {p for p in paths if p not in parents}


def _store(obj: JSONDict, managers: list[Manager]) -> None:
    kept = [m.entry() for m in managers if m.fields]
    meta = obj.setdefault("metadata", {})
    if kept:
        meta["managedFields"] = kept
    else:
        meta.pop("managedFields", None)


def apply(
    live: Mapping[str, Any] | None,
    applied: Mapping[str, Any],
    meta: PatchMeta,
    *,
    manager: str,
    api_version: str,
    now: str,
    force: bool = False,
) -> JSONDict:
    """The object after `manager` applies `applied` to `live` (None: it does not exist
    yet), with its managedFields; raises ApplyConflictError."""
    applied_fields = fields_of(applied, meta)
    if live is None:
        result = copy.deepcopy(dict(applied))
        _store(result, [Manager(manager, "Apply", api_version, now, applied_fields)])
        return result
    managers = _managers(live)
    if not managers:
        managers = [Manager(BEFORE_FIRST_APPLY, "Update", api_version, now, fields_of(live, meta))]
    mine = next((m for m in managers if m.manager == manager and m.operation == "Apply"), None)
    others = [m for m in managers if m is not mine and m.subresource != "status"]
    changing = {p for p in _leaves(applied_fields) if value_at(live, p) != value_at(applied, p)}
    conflicts = [
        Conflict(m.manager, m.api_version, p, m.subresource)
        for m in others
        for p in sorted(m.fields & changing)
    ]
    if conflicts and not force:
        raise ApplyConflictError(conflicts)
    for m in others:
        m.fields -= changing
    result = cast(JSONDict, _merge(copy.deepcopy(dict(live)), applied, meta))
    dropped = (mine.fields if mine is not None else set()) - applied_fields
    kept = set().union(*(m.fields for m in managers if m is not mine))
    kept_prefixes = {p[:i] for p in kept for i in range(1, len(p) + 1)}
    for path in sorted(dropped, key=len):  # an item before its fields (found by its keys)
        if path not in kept_prefixes:
            _remove(result, path)
    if mine is None:
        mine = Manager(manager, "Apply", api_version, now, set())
        managers.append(mine)
    if mine.fields != applied_fields or not mine.time:
        mine.time = now
    mine.fields = applied_fields
    mine.api_version = api_version
    _store(result, managers)
    return result


def track_update(
    old: Mapping[str, Any],
    new: JSONDict,
    meta: PatchMeta,
    *,
    manager: str,
    api_version: str,
    now: str,
    subresource: str = "",
) -> None:
    """Record in `new`'s managedFields (those of `old`) that `manager` wrote `new` over
    `old`: the fields it changed become its own. Objects no one ever applied keep none."""
    managers = _managers(old)
    if not managers:
        new.get("metadata", {}).pop("managedFields", None)
        return
    status = subresource == "status"
    before = fields_of(old, meta, status=status)
    after = fields_of(new, meta, status=status)
    leaves = _leaves(after)
    changed = {
        p
        for p in after
        if p not in before or (p in leaves and value_at(old, p) != value_at(new, p))
    }
    gone = before - after
    for m in managers:
        if (m.subresource == "status") == status:  # the status's fields are apart
            m.fields -= changed
            m.fields -= gone
    if changed:
        mine = next(
            (
                m
                for m in managers
                if m.manager == manager and m.operation == "Update" and m.subresource == subresource
            ),
            None,
        )
        if mine is None:
            mine = Manager(manager, "Update", api_version, now, set(), subresource)
            managers.append(mine)
        mine.fields |= changed
        mine.time = now
        mine.api_version = api_version
    _store(new, managers)


def _merge(live: Any, applied: Any, meta: PatchMeta) -> Any:
    """`applied` over `live`: structs and maps field by field, associative lists item by
    item (live items not applied stay, in place; new ones follow), sets by union, anything
    else replaced."""
    if isinstance(live, dict) and isinstance(applied, Mapping) and meta.map_type != "atomic":
        for key, value in applied.items():
            if key == "managedFields":
                continue
            live[key] = (
                _merge(live[key], value, meta.field(key)) if key in live else copy.deepcopy(value)
            )
        return live
    if isinstance(live, list) and isinstance(applied, list):
        if (meta.list_type == "map" or meta.merge_key) and all(
            isinstance(i, Mapping) for i in [*live, *applied]
        ):
            keys = list_keys(meta)

            def key_of(item: Mapping[str, Any]) -> str:
                return json.dumps(item_key(item, keys), sort_keys=True)

            merged = list(live)
            index = {key_of(i): n for n, i in enumerate(merged)}
            for item in applied:
                at = index.get(key_of(item))
                if at is None:
                    index[key_of(item)] = len(merged)
                    merged.append(copy.deepcopy(item))
                else:
                    merged[at] = _merge(merged[at], item, meta.item())
            return merged
        if meta.list_type == "set" or (
            meta.list_type is None and meta.strategy and "merge" in meta.strategy
        ):
            return [*live, *(copy.deepcopy(v) for v in applied if v not in live)]
    return copy.deepcopy(applied)


def _remove(obj: Any, path: Path) -> None:
    """Remove what `path` names (a field, a keyed item, a set value); a struct or list left
    empty by it goes too, as its owner never set it empty."""
    if not path:
        return
    parent = value_at(obj, path[:-1])
    if parent is MISSING:
        return
    kind, _, rest = path[-1].partition(":")
    if kind == "f" and isinstance(parent, dict):
        parent.pop(rest, None)
    elif kind == "k" and isinstance(parent, list):
        wanted = json.loads(rest)
        parent[:] = [
            i
            for i in parent
            if not (isinstance(i, Mapping) and item_key(i, tuple(wanted)) == wanted)
        ]
    elif kind == "v" and isinstance(parent, list):
        value = json.loads(rest)
        parent[:] = [i for i in parent if i != value]
    if parent in ({}, []) and len(path) > 1:
        _remove(obj, path[:-1])
