"""Strategic merge patch: Kubernetes' schema-aware variant of JSON merge patch, apply and create.

`kubectl apply`, `kubectl patch` (the default type) and Recon's own three-way apply send
`application/strategic-merge-patch+json`. It is RFC 7386 (maps merge, `null` deletes) plus
per-field behaviour from the schema (`PatchMeta`):

- a list whose patch strategy is `merge` and that has a merge key (containers by `name`,
  ports by `containerPort`, ...) merges element-wise by that key; other lists of objects are
  replaced whole;
- a list of primitives whose strategy is `merge` (`metadata.finalizers`) is merged as a set;
- a map whose strategy is `replace` is replaced whole; `retainKeys` is honoured through the
  `$retainKeys` directive;

and directives in the patch itself: `$patch: replace | delete` on a map or as a list
element, `$retainKeys`, `$setElementOrder/<field>` and `$deleteFromPrimitiveList/<field>`
(see the upstream design notes, kubernetes/community
contributors/devel/sig-api-machinery/strategic-merge-patch.md).

`apply_strategic_merge_patch` is what the API server does with such a patch;
`create_strategic_merge_patch` is the two-way diff kubectl computes (original -> modified),
the building block of the three-way apply. Both are pure: no I/O, inputs never mutated.

Where Kubernetes keeps a value from the patch verbatim (a field absent from the live object,
a `$patch: replace` map) and relies on decoding into Go structs to drop the nulls and stray
directives in it, this module applies the patch to an empty value instead, which has the same
effect on the stored object and keeps the result free of directives.

Ordering of a merged list (the upstream rule): the elements named in the patch come in patch
order (or `$setElementOrder` order), and the elements only the live list has keep their live
relative order, each placed before the first patch element that followed it in the live list.
Concrete example: live `[a, b, c]`, patch `[d, b]` gives `[d, a, b, c]`: `d` is new so it
leads, `a` preceded `b` in the live list so it stays ahead of `b`, `c` followed `b`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from reconciler.merge._json import JSONDict, deep_copy, describe, is_scalar, json_equal, scalar_key
from reconciler.merge.errors import PatchError
from reconciler.schema.patchmeta import PatchMeta

__all__ = [
    "DELETE_FROM_PRIMITIVE_LIST",
    "PATCH_DIRECTIVE",
    "RETAIN_KEYS",
    "SET_ELEMENT_ORDER",
    "apply_strategic_merge_patch",
    "create_strategic_merge_patch",
]

PATCH_DIRECTIVE: Final = "$patch"
RETAIN_KEYS: Final = "$retainKeys"
SET_ELEMENT_ORDER: Final = "$setElementOrder"
DELETE_FROM_PRIMITIVE_LIST: Final = "$deleteFromPrimitiveList"

_MERGE: Final = "merge"
_REPLACE: Final = "replace"
_DELETE: Final = "delete"
_RETAIN_KEYS_STRATEGY: Final = "retainKeys"

_Path: TypeAlias = tuple[str, ...]


class _Gone(enum.Enum):
    """Marks a map removed by `$patch: delete` (the caller drops its key)."""

    DELETED = enum.auto()


_DELETED: Final = _Gone.DELETED
_Merged: TypeAlias = JSONDict | Literal[_Gone.DELETED]


def _where(path: _Path) -> str:
    """`('spec', 'containers', '[0]', 'env')` -> `'spec.containers[0].env'`."""
    out = ""
    for part in path:
        if part.startswith("[") or not out:
            out += part
        else:
            out += "." + part
    return out


def _fail(reason: str, path: _Path) -> PatchError:
    return PatchError(reason, _where(path))


def _is_directive(key: str) -> bool:
    return key in (PATCH_DIRECTIVE, RETAIN_KEYS) or key.startswith(
        (SET_ELEMENT_ORDER, DELETE_FROM_PRIMITIVE_LIST)
    )


def _directive_field(key: str, prefix: str, path: _Path) -> str:
    """`$setElementOrder/containers` -> `containers`; anything else after the prefix is an error."""
    name = key[len(prefix) + 1 :]
    if key[len(prefix) : len(prefix) + 1] != "/" or not name:
        raise _fail(f"malformed directive {key!r}: expected {prefix}/<field>", path)
    return name


def _merge_key_of(item: Any, key: str, path: _Path, what: str) -> Hashable:
    """The identity of a list element by its merge key, validating the element."""
    if not isinstance(item, dict):
        raise _fail(f"{what} must be an object with merge key {key!r}, not {describe(item)}", path)
    if key not in item:
        raise _fail(f"{what} has no merge key {key!r}", path)
    value = item[key]
    if not is_scalar(value):
        raise _fail(f"merge key {key!r} must be a scalar, not {describe(value)}", path)
    return scalar_key(value)


def _identity(item: Any, key: str | None) -> Hashable | None:
    """An element's identity for ordering: its merge-key value, or the scalar itself."""
    if key is None:
        return scalar_key(item) if is_scalar(item) else None
    if isinstance(item, dict) and key in item and is_scalar(item[key]):
        return scalar_key(item[key])
    return None


def _interleave(
    server_only: list[Any],
    from_patch: list[Any],
    server_position: dict[Hashable, int],
    identity: Callable[[Any], Hashable | None],
) -> list[Any]:
    """Merge two already ordered lists, keeping each one's order (see the module docstring).

    An element from the live list goes before a patch element only when both were in the
    live list and it came first there; otherwise the patch element goes first.
    """
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(from_patch):
        if j >= len(from_patch):
            out.append(server_only[i])
            i += 1
            continue
        if i < len(server_only):
            left = server_position.get(identity(server_only[i]))
            right = server_position.get(identity(from_patch[j]))
            if left is not None and right is not None and left < right:
                out.append(server_only[i])
                i += 1
                continue
        out.append(from_patch[j])
        j += 1
    return out


def _positions(items: list[Any], key: str | None) -> dict[Hashable, int]:
    """Identity -> index of its first occurrence."""
    positions: dict[Hashable, int] = {}
    for index, item in enumerate(items):
        ident = _identity(item, key)
        if ident is not None:
            positions.setdefault(ident, index)
    return positions


def _ordered(
    merged: list[Any], order: dict[Hashable, int], server: list[Any], key: str | None
) -> list[Any]:
    """Elements named in `order` in that order, the others in live order around them."""

    def identity(item: Any) -> Hashable | None:
        return _identity(item, key)

    named = [item for item in merged if identity(item) in order]
    named.sort(key=lambda item: order[identity(item)])
    rest = [item for item in merged if identity(item) not in order]
    return _interleave(rest, named, _positions(server, key), identity)


# --------------------------------------------------------------------------------------------
# apply


def apply_strategic_merge_patch(original: JSONDict, patch: JSONDict, meta: PatchMeta) -> JSONDict:
    """Apply a strategic merge patch the way the Kubernetes API server does.

    `meta` is the patch metadata of the object's kind, e.g.
    `PatchMeta.for_definition(defs, "io.k8s.api.apps.v1.Deployment")`. Returns a new object;
    neither input is changed. Raises `PatchError` naming the field path for a patch that is
    malformed (a list element without its merge key, an unknown `$patch`, a directive of the
    wrong type, ...).
    """
    if not isinstance(original, dict):
        raise PatchError(f"the object to patch must be a JSON object, not {describe(original)}")
    if not isinstance(patch, dict):
        raise PatchError(f"a strategic merge patch must be a JSON object, not {describe(patch)}")
    merged = _merge_object(deep_copy(original), patch, meta, ())
    return {} if merged is _DELETED else merged


def _merge_object(target: JSONDict, patch: JSONDict, meta: PatchMeta, path: _Path) -> _Merged:
    """Merge `patch` into `target`, which this module owns and changes in place."""
    if PATCH_DIRECTIVE in patch:
        directive = patch[PATCH_DIRECTIVE]
        if directive == _DELETE:
            return _DELETED
        if directive == _REPLACE:
            rest = {key: value for key, value in patch.items() if key != PATCH_DIRECTIVE}
            return _merge_object({}, rest, meta, path)
        raise _fail(_unknown_directive(directive), (*path, PATCH_DIRECTIVE))

    if RETAIN_KEYS in patch:
        _apply_retain_keys(target, patch, path)

    ordered: set[str] = set()
    for key, value in patch.items():
        if key.startswith(SET_ELEMENT_ORDER):
            name = _directive_field(key, SET_ELEMENT_ORDER, (*path, key))
            _apply_element_order(target, patch, name, value, meta.field(name), path)
            ordered.add(name)

    deletions: list[tuple[str, Any]] = []
    for key, value in patch.items():
        if key in ordered:
            continue
        if _is_directive(key):
            if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
                name = _directive_field(key, DELETE_FROM_PRIMITIVE_LIST, (*path, key))
                deletions.append((name, value))
            continue
        if value is None:
            target.pop(key, None)
            continue
        child = meta.field(key)
        child_path = (*path, key)
        current = target.get(key)
        merged: Any
        if isinstance(current, dict) and isinstance(value, dict) and _REPLACE not in child.strategy:
            merged = _merge_object(current, value, child, child_path)
        elif isinstance(current, list) and isinstance(value, list):
            merged = _merge_list(current, value, child, child_path)
        else:
            merged = _fresh(value, child, child_path)
        if merged is _DELETED:
            target.pop(key, None)
        else:
            target[key] = merged

    for name, values in deletions:
        _delete_from_primitive_list(target, name, values, meta.field(name), path)
    return target


def _unknown_directive(directive: Any) -> str:
    shown = repr(directive) if isinstance(directive, str) else describe(directive)
    return f"unknown $patch directive {shown}: expected 'replace' or 'delete'"


def _fresh(value: Any, meta: PatchMeta, path: _Path) -> Any:
    """A patch value for a field the target does not have (or has with another type)."""
    if isinstance(value, dict):
        return _merge_object({}, value, meta, path)
    if isinstance(value, list):
        return _merge_list([], value, meta, path)
    return value


def _merge_list(current: list[Any], patch: list[Any], meta: PatchMeta, path: _Path) -> list[Any]:
    if _MERGE not in meta.strategy:
        replaced: list[Any] = deep_copy(patch)
        return replaced
    if meta.merge_key is None:
        return _merge_primitive_list(current, patch, path)
    return _merge_keyed_list(current, patch, meta, meta.merge_key, path)


def _check_primitives(items: list[Any], path: _Path, what: str) -> None:
    for index, item in enumerate(items):
        if not is_scalar(item):
            raise _fail(
                f"{what} of a list merged as a set must be a string, number, boolean or null, "
                f"not {describe(item)} (a list of objects needs a merge key)",
                (*path, f"[{index}]"),
            )


def _merge_primitive_list(current: list[Any], patch: list[Any], path: _Path) -> list[Any]:
    """Union of two lists of scalars, deduplicated, in the upstream order."""
    _check_primitives(current, path, "an element of the live value")
    _check_primitives(patch, path, "an element")
    if not current and not patch:
        return current
    seen: set[Hashable] = set()
    merged: list[Any] = []
    for item in (*current, *patch):
        ident = scalar_key(item)
        if ident not in seen:
            seen.add(ident)
            merged.append(item)
    return _ordered(merged, _positions(patch, None), current, None)


def _merge_keyed_list(
    current: list[Any], patch: list[Any], meta: PatchMeta, key: str, path: _Path
) -> list[Any]:
    """Element-wise merge of two lists of objects by their merge key."""
    for index, item in enumerate(current):
        _merge_key_of(item, key, (*path, f"[{index}]"), "an element of the live list")

    regular: list[tuple[_Path, JSONDict]] = []
    replace = False
    for index, element in enumerate(patch):
        element_path = (*path, f"[{index}]")
        if not isinstance(element, dict):
            raise _fail(
                f"a list element must be an object with merge key {key!r}, not {describe(element)}",
                element_path,
            )
        if PATCH_DIRECTIVE not in element:
            _merge_key_of(element, key, element_path, "the list element")
            regular.append((element_path, element))
            continue
        directive = element[PATCH_DIRECTIVE]
        if directive == _DELETE:
            gone = _merge_key_of(element, key, element_path, "a '$patch: delete' element")
            current = [item for item in current if scalar_key(item[key]) != gone]
        elif directive == _REPLACE:
            replace = True
        elif directive == _MERGE:
            raise _fail("'$patch: merge' is not supported in a list", element_path)
        else:
            raise _fail(_unknown_directive(directive), (*element_path, PATCH_DIRECTIVE))

    item_meta = meta.item()
    if replace:
        return [_merge_item({}, element, item_meta, where) for where, element in regular]

    merged = list(current)
    index_of = _positions(merged, key)
    for where, element in regular:
        ident = scalar_key(element[key])
        position = index_of.get(ident)
        if position is None:
            index_of[ident] = len(merged)
            merged.append(_merge_item({}, element, item_meta, where))
        else:
            merged[position] = _merge_item(merged[position], element, item_meta, where)
    order = _positions([element for _, element in regular], key)
    return _ordered(merged, order, current, key)


def _merge_item(target: JSONDict, element: JSONDict, meta: PatchMeta, path: _Path) -> JSONDict:
    merged = _merge_object(target, element, meta, path)
    # Elements carrying a `$patch` were handled by the caller, so nothing deletes the item.
    assert merged is not _DELETED
    return merged


def _apply_retain_keys(target: JSONDict, patch: JSONDict, path: _Path) -> None:
    """Clear the fields of `target` that `$retainKeys` does not list (union types)."""
    where = (*path, RETAIN_KEYS)
    keys = patch[RETAIN_KEYS]
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise _fail(f"$retainKeys must be a list of field names, not {describe(keys)}", where)
    retained = set(keys)
    for key, value in patch.items():
        if value is not None and not _is_directive(key) and key not in retained:
            raise _fail(f"the patch sets {key!r}, which $retainKeys does not list", where)
    for key in [key for key in target if key not in retained]:
        del target[key]


def _apply_element_order(
    target: JSONDict, patch: JSONDict, name: str, order: Any, meta: PatchMeta, path: _Path
) -> None:
    """Merge the list `name` (if the patch has it) and put it in `$setElementOrder` order."""
    where = (*path, f"{SET_ELEMENT_ORDER}/{name}")
    if not isinstance(order, list):
        raise _fail(f"must be a list, not {describe(order)}", where)
    key = meta.merge_key
    positions: dict[Hashable, int] = {}
    for index, entry in enumerate(order):
        entry_path = (*where, f"[{index}]")
        if key is not None:
            ident = _merge_key_of(entry, key, entry_path, "an entry")
        elif is_scalar(entry):
            ident = scalar_key(entry)
        else:
            raise _fail(
                f"an entry must be a string, number, boolean or null, not {describe(entry)}",
                entry_path,
            )
        positions.setdefault(ident, index)

    field_path = (*path, name)
    patch_list = patch.get(name)
    has_patch = name in patch
    if has_patch and not isinstance(patch_list, list):
        raise _fail(
            f"{SET_ELEMENT_ORDER}/{name} needs a list here, not {describe(patch_list)}", field_path
        )
    live = target.get(name)
    has_live = name in target and live is not None
    if has_live and not isinstance(live, list):
        raise _fail(f"the live value is {describe(live)}, not a list", field_path)
    if not has_patch and not has_live:
        return

    server: list[Any] = live if isinstance(live, list) else []
    merged = server
    if isinstance(patch_list, list):
        _check_order_matches(patch_list, positions, key, where)
        merged = _merge_list(server, patch_list, meta, field_path)
    target[name] = _ordered(merged, positions, server, key)


def _check_order_matches(
    patch_list: list[Any], positions: dict[Hashable, int], key: str | None, where: _Path
) -> None:
    """The patch list must name only entries of the order list, in the same relative order."""
    last = -1
    for index, element in enumerate(patch_list):
        if isinstance(element, dict) and PATCH_DIRECTIVE in element:
            continue  # `$patch: delete` / `replace` elements do not take part in the order
        position = positions.get(_identity(element, key))
        if position is None:
            raise _fail(f"element [{index}] of the patch list is not in this list", where)
        if position <= last:
            raise _fail(
                f"element [{index}] of the patch list is out of the order this list sets", where
            )
        last = position


def _delete_from_primitive_list(
    target: JSONDict, name: str, values: Any, meta: PatchMeta, path: _Path
) -> None:
    where = (*path, f"{DELETE_FROM_PRIMITIVE_LIST}/{name}")
    if not isinstance(values, list):
        raise _fail(f"must be a list, not {describe(values)}", where)
    if _MERGE not in meta.strategy or meta.merge_key is not None:
        raise _fail(
            f"{name!r} is not a list of primitives with patch strategy merge, "
            "so nothing can be deleted from it by value",
            where,
        )
    _check_primitives(values, where, "an element")
    live = target.get(name)
    if live is None:
        return
    if not isinstance(live, list):
        raise _fail(f"the live value is {describe(live)}, not a list", (*path, name))
    _check_primitives(live, (*path, name), "an element of the live value")
    dropped = {scalar_key(value) for value in values}
    target[name] = [item for item in live if scalar_key(item) not in dropped]


# --------------------------------------------------------------------------------------------
# create (two-way diff)


@dataclass(frozen=True, slots=True)
class _DiffOptions:
    ignore_deletions: bool
    ignore_changes_and_additions: bool


def create_strategic_merge_patch(
    original: JSONDict,
    modified: JSONDict,
    meta: PatchMeta,
    *,
    ignore_deletions: bool = False,
    ignore_changes_and_additions: bool = False,
) -> JSONDict:
    """The strategic merge patch that turns `original` into `modified`, as kubectl builds it.

    Removed fields become `null`; removed elements of merge-keyed lists become
    `{<key>: <value>, "$patch": "delete"}`; values removed from merged primitive lists are
    listed in `$deleteFromPrimitiveList/<field>`; a merged list whose content or order changed
    gets `$setElementOrder/<field>`; a map with the `retainKeys` strategy gets `$retainKeys`.
    Returns `{}` when the two are equal.

    `ignore_deletions` leaves out everything that removes (for the "changes from live" half of
    kubectl's three-way patch); `ignore_changes_and_additions` keeps only the removals (the
    "deletions from last-applied" half).
    """
    if not isinstance(original, dict):
        raise PatchError(f"the original must be a JSON object, not {describe(original)}")
    if not isinstance(modified, dict):
        raise PatchError(f"the modified object must be a JSON object, not {describe(modified)}")
    options = _DiffOptions(ignore_deletions, ignore_changes_and_additions)
    retain = _RETAIN_KEYS_STRATEGY in meta.strategy
    return _diff_objects(original, modified, meta, retain, options, ())


def _diff_objects(
    original: JSONDict,
    modified: JSONDict,
    meta: PatchMeta,
    retain: bool,
    options: _DiffOptions,
    path: _Path,
) -> JSONDict:
    patch: JSONDict = {}
    retained: list[str] = []
    changes = not options.ignore_changes_and_additions
    for key, new in modified.items():
        if retain and new is not None:
            retained.append(key)
        if key not in original:
            if changes:
                patch[key] = deep_copy(new)
            continue
        old = original[key]
        child = meta.field(key)
        child_path = (*path, key)
        if isinstance(old, dict) and isinstance(new, dict) and _REPLACE not in child.strategy:
            child_retain = _RETAIN_KEYS_STRATEGY in child.strategy
            sub = _diff_objects(old, new, child, child_retain, options, child_path)
            if sub:
                patch[key] = sub
        elif isinstance(old, list) and isinstance(new, list) and _MERGE in child.strategy:
            _diff_merged_lists(key, old, new, child, options, patch, child_path)
        elif changes and not json_equal(old, new):
            patch[key] = deep_copy(new)

    if not options.ignore_deletions:
        for key in original:
            if key not in modified:
                patch[key] = None
    # `$retainKeys` rides along when the patch changes something, or when a field must be
    # cleared that the patch itself does not mention (possible when deletions are ignored).
    if retained and (
        patch or any(value is not None and key not in modified for key, value in original.items())
    ):
        patch[RETAIN_KEYS] = sorted(retained)
    return patch


def _diff_merged_lists(
    name: str,
    old: list[Any],
    new: list[Any],
    meta: PatchMeta,
    options: _DiffOptions,
    patch: JSONDict,
    path: _Path,
) -> None:
    """Diff a list with patch strategy merge into `patch` (the list, and its directives)."""
    changes = not options.ignore_changes_and_additions
    deletions = not options.ignore_deletions
    if not old:
        if new and changes:
            patch[name] = deep_copy(new)
        return

    key = meta.merge_key
    if key is None:
        _check_primitives(old, path, "an element of the original")
        _check_primitives(new, path, "an element of the modified list")
        old_set = {scalar_key(item) for item in old}
        new_set = {scalar_key(item) for item in new}
        added = _unique(item for item in new if scalar_key(item) not in old_set) if changes else []
        removed = (
            _unique(item for item in old if scalar_key(item) not in new_set) if deletions else []
        )
        if added:
            patch[name] = added
        if removed:
            patch[f"{DELETE_FROM_PRIMITIVE_LIST}/{name}"] = removed
        if new and ((deletions and removed) or (changes and not json_equal(old, new))):
            patch[f"{SET_ELEMENT_ORDER}/{name}"] = deep_copy(new)
        return

    old_by_key: dict[Hashable, JSONDict] = {}
    old_keys: list[Hashable] = []
    for index, item in enumerate(old):
        ident = _merge_key_of(item, key, (*path, f"[{index}]"), "an element of the original")
        old_keys.append(ident)
        old_by_key.setdefault(ident, item)
    new_keys: list[Hashable] = [
        _merge_key_of(item, key, (*path, f"[{index}]"), "an element of the modified list")
        for index, item in enumerate(new)
    ]

    item_meta = meta.item()
    item_retain = _RETAIN_KEYS_STRATEGY in meta.strategy
    patch_list: list[Any] = []
    for index, (ident, item) in enumerate(zip(new_keys, new, strict=True)):
        before = old_by_key.get(ident)
        if before is None:
            if changes:
                patch_list.append(deep_copy(item))
            continue
        sub = _diff_objects(before, item, item_meta, item_retain, options, (*path, f"[{index}]"))
        if sub:
            patch_list.append({key: deep_copy(item[key]), **sub})
    if deletions:
        kept = set(new_keys)
        gone: set[Hashable] = set()
        for ident, item in zip(old_keys, old, strict=True):
            if ident not in kept and ident not in gone:
                gone.add(ident)
                patch_list.append({key: deep_copy(item[key]), PATCH_DIRECTIVE: _DELETE})

    reordered = old_keys != new_keys
    if new and ((changes and (patch_list or reordered)) or (deletions and patch_list)):
        patch[f"{SET_ELEMENT_ORDER}/{name}"] = [{key: deep_copy(item[key])} for item in new]
    if patch_list:
        patch[name] = patch_list


def _unique(items: Any) -> list[Any]:
    seen: set[Hashable] = set()
    out: list[Any] = []
    for item in items:
        ident = scalar_key(item)
        if ident not in seen:
            seen.add(ident)
            out.append(item)
    return out
