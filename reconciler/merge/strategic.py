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
    sequence: list[Hashable] = []
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
        sequence.append(ident)

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
        _check_order_matches(patch_list, sequence, key, where)
        merged = _merge_list(server, patch_list, meta, field_path)
    target[name] = _ordered(merged, positions, server, key)


def _check_order_matches(
    patch_list: list[Any], order: list[Hashable], key: str | None, where: _Path
) -> None:
    """The patch list must follow the order list (upstream `validatePatchWithSetOrderList`).

    Both are walked together and an order entry is used up whether or not the next patch
    element matches it, so each patch element must be found further down the order list. A
    key that the order list repeats can be matched again, as kubectl's patches for lists with
    duplicate keys need: order `[A, B, A]` accepts the patch list `[A, A]`. An empty order
    list checks nothing.
    """
    if not order:
        return
    at = 0
    for index, element in enumerate(patch_list):
        if isinstance(element, dict) and PATCH_DIRECTIVE in element:
            continue  # `$patch: delete` / `replace` elements do not take part in the order
        ident = _identity(element, key)
        while at < len(order) and order[at] != ident:
            at += 1
        if at >= len(order):
            known = ident in order
            reason = "is out of the order this list sets" if known else "is not in this list"
            raise _fail(f"element [{index}] of the patch list {reason}", where)
        at += 1


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
        if isinstance(old, dict) and isinstance(new, dict):
            if _REPLACE in child.strategy:
                # kubectl sends a `replace` map whole even when it did not change (so a
                # PodDisruptionBudget's `spec.selector` is in every apply patch).
                if changes:
                    patch[key] = deep_copy(new)
                continue
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


# How kubectl diffs a list with patch strategy merge (upstream `diffLists`), which decides the
# exact patch bytes and, for lists with repeated keys, even its effect:
# - both lists are sorted by the text of each element's identity (its merge-key value, or the
#   scalar itself, as Go's `fmt.Sprint` writes it) and walked side by side; equal identities
#   are diffed, an identity only in the modified list is an addition, one only in the original
#   a deletion;
# - additions and changes are then put in modified order, and the `$patch: delete` elements
#   follow in sorted order; removed scalars go to `$deleteFromPrimitiveList/<field>`, sorted;
# - `$setElementOrder/<field>` is the modified order. For scalars it is sent whenever the
#   *sorted* original differs from the modified list (kubectl sorts the original in place
#   before comparing), so an unchanged but unsorted list still carries it.
# Concrete example: original finalizers `[b, a]`, modified `[b, a]`: nothing was added or
# removed, yet the patch is `{"$setElementOrder/finalizers": ["b", "a"]}`.


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
    if not old:
        if new and not options.ignore_changes_and_additions:
            patch[name] = deep_copy(new)
        return
    if meta.merge_key is None:
        _diff_primitive_lists(name, old, new, options, patch, path)
    else:
        _diff_keyed_lists(name, old, new, meta, meta.merge_key, options, patch, path)


def _diff_primitive_lists(
    name: str,
    old: list[Any],
    new: list[Any],
    options: _DiffOptions,
    patch: JSONDict,
    path: _Path,
) -> None:
    _check_primitives(old, path, "an element of the original")
    _check_primitives(new, path, "an element of the modified list")
    changes = not options.ignore_changes_and_additions
    deletions = not options.ignore_deletions
    old_sorted = _go_sorted(old, [go_sprint(item) for item in old])
    new_sorted = _go_sorted(new, [go_sprint(item) for item in new])
    added: list[Any] = []
    removed: list[Any] = []
    for side, _, item in _walk(old_sorted, new_sorted):
        if side == "added" and changes:
            added.append(item)
        elif side == "removed" and deletions:
            removed.append(item)
    removed = go_deduplicate(removed)
    if added:
        patch[name] = _in_order_of(added, new, None)
    if removed:
        patch[f"{DELETE_FROM_PRIMITIVE_LIST}/{name}"] = removed
    if new and (
        (deletions and removed)
        or (changes and not json_equal([item for _, item in old_sorted], new))
    ):
        patch[f"{SET_ELEMENT_ORDER}/{name}"] = deep_copy(new)


def _diff_keyed_lists(
    name: str,
    old: list[Any],
    new: list[Any],
    meta: PatchMeta,
    key: str,
    options: _DiffOptions,
    patch: JSONDict,
    path: _Path,
) -> None:
    changes = not options.ignore_changes_and_additions
    deletions = not options.ignore_deletions
    old_keys = [
        _merge_key_of(item, key, (*path, f"[{index}]"), "an element of the original")
        for index, item in enumerate(old)
    ]
    new_keys = [
        _merge_key_of(item, key, (*path, f"[{index}]"), "an element of the modified list")
        for index, item in enumerate(new)
    ]
    old_sorted = _go_sorted(list(enumerate(old)), [go_sprint(item[key]) for item in old])
    new_sorted = _go_sorted(list(enumerate(new)), [go_sprint(item[key]) for item in new])

    item_meta = meta.item()
    item_retain = _RETAIN_KEYS_STRATEGY in meta.strategy
    patch_list: list[Any] = []
    gone: list[Any] = []
    for side, before, (index, item) in _walk(old_sorted, new_sorted):
        if side == "both":
            _, previous = before
            where = (*path, f"[{index}]")
            sub = _diff_objects(previous, item, item_meta, item_retain, options, where)
            if sub:
                sub[key] = deep_copy(item[key])
                patch_list.append(sub)
        elif side == "added":
            if changes:
                patch_list.append(deep_copy(item))
        elif deletions:
            gone.append({key: deep_copy(item[key]), PATCH_DIRECTIVE: _DELETE})
    patch_list = _in_order_of(patch_list, new, key) + gone

    reordered = old_keys != new_keys
    if new and ((changes and (patch_list or reordered)) or (deletions and patch_list)):
        patch[f"{SET_ELEMENT_ORDER}/{name}"] = [{key: deep_copy(item[key])} for item in new]
    if patch_list:
        patch[name] = patch_list


def _walk(old: list[tuple[str, Any]], new: list[tuple[str, Any]]) -> Any:
    """Walk two lists sorted by text, as kubectl does: yields (side, old entry, entry).

    `side` is `both` (same text on both sides: the entry is the new one), `added` (only in
    the new list) or `removed` (only in the old one: the entry is the old one).
    """
    i = j = 0
    while i < len(old) or j < len(new):
        if i < len(old) and j < len(new) and old[i][0] == new[j][0]:
            yield "both", old[i][1], new[j][1]
            i += 1
            j += 1
        elif i >= len(old) or (j < len(new) and old[i][0] > new[j][0]):
            yield "added", None, new[j][1]
            j += 1
        else:
            yield "removed", None, old[i][1]
            i += 1


_INSERTION_SORT_MAX: Final = 12


def _go_sorted(items: list[Any], texts: list[str]) -> list[tuple[str, Any]]:
    """`items` paired with their texts and sorted by text the way Go's `sort.Sort` does it.

    Go sorts these short lists by insertion sort with a "less or equal" comparison, which
    reverses runs of equal texts; that decides which of two same-key elements kubectl pairs
    with which. Longer lists (Go's pattern-defeating quicksort) sort stably here: the result
    is the same unless keys repeat.
    """
    pairs = list(zip(texts, items, strict=True))
    if len(pairs) > _INSERTION_SORT_MAX:
        return sorted(pairs, key=lambda pair: pair[0])
    for i in range(1, len(pairs)):
        j = i
        while j > 0 and pairs[j][0] <= pairs[j - 1][0]:
            pairs[j], pairs[j - 1] = pairs[j - 1], pairs[j]
            j -= 1
    return pairs


def go_deduplicate(items: list[Any]) -> list[Any]:
    """kubectl's in-place de-duplication: a repeated value is replaced by the last element."""
    out = list(items)
    length = len(out) - 1
    i = 0
    while i < length:
        j = i + 1
        while j <= length:
            if scalar_key(out[i]) == scalar_key(out[j]):
                out[j] = out[length]
                out = out[:length]
                length -= 1
                j -= 1
            j += 1
        i += 1
    return out


def _in_order_of(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    """`items` stably sorted by where their identity first appears in `order`."""
    positions = _positions(order, key)
    ranked = sorted(
        enumerate(items),
        key=lambda pair: (positions.get(_identity(pair[1], key), -1), pair[0]),
    )
    return [deep_copy(item) for _, item in ranked]


def go_sprint(value: Any) -> str:
    """A JSON scalar as Go's `fmt.Sprint` writes it once kubectl has decoded it.

    kubectl decodes integral numbers as int64 and the others as float64 (`%v`: shortest
    digits, exponent form below 1e-4 and from 1e6); `null` is `<nil>`.
    """
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return str(value)
        value = float(value)  # beyond int64 kubectl decodes a float64
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**63:
            return str(int(value))
        return _go_float_g(value)
    return str(value)


def go_float_digits(value: float) -> tuple[str, str, int]:
    """(sign, shortest round-trip digits, decimal point position) of a finite float.

    Go's `strconv` and Python's `repr` both pick the shortest digits that read back as the
    same float, so the digits agree and only the layout differs. `1234.5` gives
    `("", "12345", 4)`, `-0.001` gives `("-", "1", -2)`, `0.0` gives `("", "0", 1)`.
    """
    text = repr(value)
    sign = "-" if text.startswith("-") else ""
    mantissa, _, exponent = text.lstrip("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    digits = all_digits.lstrip("0")
    if not digits.rstrip("0"):
        return sign, "0", 1
    point = len(whole) + int(exponent or 0) - (len(all_digits) - len(digits))
    return sign, digits.rstrip("0"), point


def go_float_text(value: float, exponent_form: bool) -> str:
    """Go's shortest `strconv.FormatFloat` layout: `%e` (two exponent digits) or `%f`."""
    sign, digits, point = go_float_digits(value)
    if exponent_form:
        exp = point - 1
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _go_float_g(value: float) -> str:
    """Go's `strconv.FormatFloat(value, 'g', -1, 64)`."""
    if value != value or value in (float("inf"), float("-inf")):
        return "NaN" if value != value else ("+Inf" if value > 0 else "-Inf")
    _, _, point = go_float_digits(value)
    exp = point - 1
    # `%v` is `%g` with the shortest digits, and then Go switches to `%e` at precision 6.
    return go_float_text(value, exp < -4 or exp >= 6)
