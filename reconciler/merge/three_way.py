"""kubectl's three-way apply: (last applied, desired, live) → the patch, and the object after it.

This is what makes Recon and `kubectl apply` interchangeable on one object. The rules users
rely on, from `kubectl apply` (client-side apply, `--overwrite`, the default):

- fields you stop declaring (in last-applied, gone from desired) are removed from live;
- fields you declare win over what live has;
- fields others set (in live, never in last-applied) are kept.

`three_way_patch` builds the exact patch kubectl sends:

- built-in kinds (strategic merge patch, upstream `strategicpatch.CreateThreeWayMergePatch`):
  the *delta* is the patch from live to desired without deletions, the *deletions* the patch
  from last-applied to desired with deletions only; the delta is then merged into the
  deletions as one patch (`$setElementOrder`, `$retainKeys` and `$deleteFromPrimitiveList`
  directives are kept, lists with merge keys are merged element by element);
- custom resources (JSON merge patch, upstream `jsonmergepatch.CreateThreeWayJSONMergePatch`):
  the non-null part of the patch from live to desired merged into the null part of the patch
  from last-applied to desired.

"Desired" here always carries its own `kubectl.kubernetes.io/last-applied-configuration`
annotation (`desired_with_annotation`), written byte for byte as kubectl writes it
(`last_applied_annotation`): the object without the annotation, JSON with sorted keys, no
spaces, `<`, `>` and `&` escaped, Go's number formatting, and a trailing newline; an object
without annotations gets `"annotations":{}` in it, as kubectl's own encoding does.

`apply_three_way` applies the patch to live the way the API server does, for diffs and dry
runs without a server. Everything here is pure: no I/O, inputs never changed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Hashable, Iterator
from typing import Any, Final

from reconciler.merge._json import JSONDict, deep_copy, describe, is_scalar, json_equal, scalar_key
from reconciler.merge.errors import PatchError
from reconciler.merge.json_merge import apply_merge_patch, create_merge_patch
from reconciler.merge.strategic import (
    DELETE_FROM_PRIMITIVE_LIST,
    PATCH_DIRECTIVE,
    RETAIN_KEYS,
    SET_ELEMENT_ORDER,
    apply_strategic_merge_patch,
    create_strategic_merge_patch,
    go_deduplicate,
    go_float_text,
)
from reconciler.schema.patchmeta import PatchMeta

__all__ = [
    "LAST_APPLIED",
    "MERGE_PATCH",
    "STRATEGIC_MERGE_PATCH",
    "apply_three_way",
    "desired_with_annotation",
    "go_json",
    "last_applied_annotation",
    "last_applied_of",
    "three_way_patch",
]

LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"
STRATEGIC_MERGE_PATCH: Final = "application/strategic-merge-patch+json"
MERGE_PATCH: Final = "application/merge-patch+json"

# --------------------------------------------------------------------------------------------
# the annotation: Go's encoding/json, byte for byte

_HTML_ESCAPES: Final = str.maketrans(
    {"&": "\\u0026", "<": "\\u003c", ">": "\\u003e", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)
_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_INT64: Final = range(-(2**63), 2**63)
_EXACT_FLOAT_INT: Final = 2**53


def go_json(value: Any) -> str:
    """`value` as Go's `json.Encoder.Encode` writes it after kubectl decoded it.

    Keys sorted, no spaces, HTML-sensitive characters escaped, a newline at the end. Numbers
    as kubectl holds them: integral ones are int64 (`2.0` is written `2`), others float64 in
    Go's shortest form (`1e-7`, `1e+21`, `0.5`). A string that is not valid Unicode reads
    back as U+FFFD in Go, so lone surrogates are written as U+FFFD.
    """
    if _plain_numbers(value):
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    else:
        text = "".join(_go_encode(value))
    if _LONE_SURROGATE.search(text):
        text = _LONE_SURROGATE.sub("\ufffd", text)
    return text.translate(_HTML_ESCAPES) + "\n"


def _plain_numbers(value: Any) -> bool:
    """True when `json.dumps` writes every number in `value` as Go would (no floats)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) or (isinstance(item, int) and item not in _INT64):
            return False
    return True


def _go_encode(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        yield "{"
        for index, key in enumerate(sorted(value)):
            if index:
                yield ","
            yield json.dumps(key, ensure_ascii=False)
            yield ":"
            yield from _go_encode(value[key])
        yield "}"
    elif isinstance(value, list):
        yield "["
        for index, item in enumerate(value):
            if index:
                yield ","
            yield from _go_encode(item)
        yield "]"
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        yield json.dumps(value, ensure_ascii=False)
    elif isinstance(value, int) and value in _INT64:
        yield str(value)
    elif isinstance(value, int | float):
        yield _go_json_float(float(value))
    else:
        raise PatchError(f"a {describe(value)} value cannot be written as JSON")


def _go_json_float(value: float) -> str:
    """Go's `encoding/json` float64 encoder (int64 when integral, as kubectl decodes it)."""
    if value != value or value in (float("inf"), float("-inf")):
        raise PatchError("NaN and infinite numbers cannot be written as JSON")
    if value.is_integer() and abs(value) < _EXACT_FLOAT_INT:
        return str(int(value))
    magnitude = abs(value)
    exponent_form = magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21)
    text = go_float_text(value, exponent_form)
    # Go writes `1e-07` as `1e-7` (and keeps `1e+21`).
    if exponent_form and len(text) >= 4 and text[-4:-1] == "e-0":
        text = text[:-2] + text[-1]
    return text


def last_applied_annotation(desired: JSONDict) -> str:
    """The annotation value kubectl writes for `desired`: the object itself without the
    annotation, whose `annotations` map stays (empty if nothing else is in it)."""
    obj = dict(desired)
    meta = dict(obj.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    meta["annotations"] = annotations
    obj["metadata"] = meta
    return go_json(obj)


def desired_with_annotation(desired: JSONDict) -> JSONDict:
    """What kubectl sends as the "modified" object: desired plus its own last-applied."""
    obj = deep_copy(desired)
    annotation = last_applied_annotation(desired)
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    meta["annotations"] = {**(meta.get("annotations") or {}), LAST_APPLIED: annotation}
    result: JSONDict = obj
    return result


def last_applied_of(live: JSONDict) -> JSONDict | None:
    """The configuration last applied to `live`, or None when it was never applied.

    An annotation that is not a JSON object counts as none (kubectl would refuse to apply).
    """
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


# --------------------------------------------------------------------------------------------
# the three-way patch


def three_way_patch(
    last_applied: JSONDict | None, desired: JSONDict, live: JSONDict, meta: PatchMeta | None
) -> tuple[JSONDict, str]:
    """The patch `kubectl apply` sends for `desired` over `live`, and its content type.

    `last_applied` is the parsed annotation of `live` (`last_applied_of(live)`; None for an
    object never applied), `meta` the kind's strategic-merge metadata, None for a custom
    resource. The patch sets the new last-applied annotation too. `{}` means no change.
    Raises `PatchError` for inputs kubectl rejects as well (a list element without its merge
    key, or a custom resource whose apiVersion, kind or name would change).
    """
    modified = desired_with_annotation(desired)
    original = last_applied or {}
    if meta is not None:
        delta = create_strategic_merge_patch(live, modified, meta, ignore_deletions=True)
        deletions = create_strategic_merge_patch(
            original, modified, meta, ignore_changes_and_additions=True
        )
        return _merge_patches(deletions, delta, meta, ()), STRATEGIC_MERGE_PATCH
    return _json_merge_three_way(original, modified, live), MERGE_PATCH


def apply_three_way(
    last_applied: JSONDict | None, desired: JSONDict, live: JSONDict, meta: PatchMeta | None
) -> JSONDict:
    """`live` after `kubectl apply` of `desired` (meta None: a custom resource).

    The object the API server stores, before its own defaulting and bookkeeping.
    """
    patch, content_type = three_way_patch(last_applied, desired, live, meta)
    if not patch:
        unchanged: JSONDict = deep_copy(live)
        return unchanged
    if content_type == STRATEGIC_MERGE_PATCH:
        assert meta is not None
        return apply_strategic_merge_patch(live, patch, meta)
    merged: JSONDict = apply_merge_patch(live, patch)
    return merged


# --------------------------------------------------------------------------------------------
# strategic: merging the delta into the deletions
#
# Upstream this is `mergeMap` in its client-side mode (neither parallel lists nor unmatched
# nulls are resolved). Both inputs are patches made from the same modified object, so the
# directives they share (`$retainKeys`, `$setElementOrder/<field>`) must agree; lists are
# merged element by element and put in `$setElementOrder` order, with the `$patch: delete`
# elements of the deletions last; a null stays a null; everything else from the delta wins.

_Path = tuple[str, ...]


def _fail(reason: str, path: _Path) -> PatchError:
    return PatchError(reason, ".".join(path))


def _merge_patches(original: JSONDict, patch: JSONDict, meta: PatchMeta, path: _Path) -> JSONDict:
    """Merge the patch `patch` into the patch `original`; both are owned and may be changed."""
    if PATCH_DIRECTIVE in patch:
        directive = patch[PATCH_DIRECTIVE]
        if directive == "replace":
            return {key: value for key, value in patch.items() if key != PATCH_DIRECTIVE}
        if directive == "delete":
            return {}
        raise _fail(f"unknown $patch directive {directive!r}", path)

    patch = dict(patch)
    if RETAIN_KEYS in patch:
        retained = patch.pop(RETAIN_KEYS)
        if RETAIN_KEYS not in original:
            original[RETAIN_KEYS] = retained
        elif not json_equal(original[RETAIN_KEYS], retained):
            raise _fail("the two halves of the patch disagree on $retainKeys", path)

    for directive in [key for key in patch if key.startswith(SET_ELEMENT_ORDER)]:
        _merge_ordered_list(original, patch, directive, meta, path)

    for key, value in patch.items():
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST) or value is None:
            original[key] = value
            continue
        current = original.get(key)
        child = meta.field(key)
        if isinstance(current, dict) and isinstance(value, dict):
            if "replace" in child.strategy:
                original[key] = value
            else:
                original[key] = _merge_patches(current, value, child, (*path, key))
        elif isinstance(current, list) and isinstance(value, list):
            if "merge" in child.strategy:
                original[key] = _merge_lists(current, value, child, (*path, key))
            else:
                original[key] = value
        else:
            kept, keep = _without_directives(value)
            if keep:
                original[key] = kept
            else:
                original.pop(key, None)
    return original


def _merge_ordered_list(
    original: JSONDict, patch: JSONDict, directive: str, meta: PatchMeta, path: _Path
) -> None:
    """Move `$setElementOrder/<field>` into `original` and merge the list it orders."""
    order = patch.pop(directive)
    if directive not in original:
        original[directive] = order
    elif not json_equal(original[directive], order):
        raise _fail(f"the two halves of the patch disagree on {directive}", path)
    name = directive.partition("/")[2]
    if not isinstance(order, list):
        raise _fail(f"{directive} must be a list, not {describe(order)}", path)
    field = meta.field(name)
    key = field.merge_key
    mine, theirs = original.get(name), patch.pop(name, None)
    if mine is None and theirs is None:
        return
    if not isinstance(mine, list | None) or not isinstance(theirs, list | None):
        raise _fail(f"{name} must be a list next to {directive}", path)
    if mine is not None and theirs is not None:
        merged = (
            _merge_lists(mine, theirs, field, (*path, name))
            if "merge" in field.strategy
            else theirs
        )
    else:
        merged = mine if mine is not None else theirs or []
    named, others = _partition(merged, order, key, (*path, name))
    original[name] = _normalize_order(named, others, order, mine or [], key, (*path, name))


def _merge_lists(original: list[Any], patch: list[Any], meta: PatchMeta, path: _Path) -> list[Any]:
    """Merge two patch lists of a field with patch strategy merge."""
    if not original and not patch:
        return original
    key = meta.merge_key
    if all(is_scalar(item) for item in (*original, *patch)):
        merged = go_deduplicate([*original, *patch])
        named, others = _partition(merged, patch, None, path)
        return _normalize_order(named, others, patch, original, None, path)
    if key is None:
        raise _fail("cannot merge lists of objects without a merge key", path)
    original, patch = _apply_list_directives(original, patch, key, path)
    merged = list(original)
    item_meta = meta.item()
    for element in patch:
        ident = _key_of(element, key, path)
        position = next(
            (i for i, item in enumerate(merged) if _key_of(item, key, path) == ident), None
        )
        if position is None:
            merged.append(element)
        else:
            merged[position] = _merge_patches(merged[position], element, item_meta, path)
    named, others = _partition(merged, patch, key, path)
    return _normalize_order(named, others, patch, original, key, path)


def _apply_list_directives(
    original: list[Any], patch: list[Any], key: str, path: _Path
) -> tuple[list[Any], list[Any]]:
    """Handle `$patch` elements of `patch`: deletes drop from `original`, replace wins."""
    rest: list[Any] = []
    replace = False
    for element in patch:
        if not isinstance(element, dict):
            raise _fail(f"a list element must be an object, not {describe(element)}", path)
        if PATCH_DIRECTIVE not in element:
            rest.append(element)
            continue
        directive = element[PATCH_DIRECTIVE]
        if directive == "delete":
            gone = _key_of(element, key, path)
            original = [item for item in original if _key_of(item, key, path) != gone]
        elif directive == "replace":
            replace = True
        else:
            raise _fail(f"unsupported $patch directive {directive!r} in a list", path)
    return (rest, []) if replace else (original, rest)


def _key_of(item: Any, key: str, path: _Path) -> Hashable:
    if not isinstance(item, dict):
        raise _fail(f"a list element must be an object, not {describe(item)}", path)
    if key not in item:
        raise _fail(f"a list element has no merge key {key!r}", path)
    value = item[key]
    return scalar_key(value) if is_scalar(value) else json.dumps(value, sort_keys=True)


def _identity(item: Any, key: str | None, path: _Path) -> Hashable:
    if key is None:
        return scalar_key(item)
    return _key_of(item, key, path)


def _partition(
    items: list[Any], by: list[Any], key: str | None, path: _Path
) -> tuple[list[Any], list[Any]]:
    """(the items whose identity is in `by`, the others), each in `items` order."""
    wanted = {_identity(entry, key, path) for entry in by}
    named = [item for item in items if _identity(item, key, path) in wanted]
    others = [item for item in items if _identity(item, key, path) not in wanted]
    return named, others


def _normalize_order(
    named: list[Any],
    others: list[Any],
    order: list[Any],
    server: list[Any],
    key: str | None,
    path: _Path,
) -> list[Any]:
    """Upstream `normalizeElementOrder`: each part in its own order, then interleaved.

    The `named` items take the order of `order`, the `others` that of `server`; `$patch:
    delete` elements go to the end of their part. Then an item of `others` goes before an
    item of `named` only when both are in `server` and it comes first there.
    """
    named = _sorted_by(named, order, key, path)
    others = _sorted_by(others, server, key, path)
    position = _first_positions(server, key, path)
    out: list[Any] = []
    i = j = 0
    while i < len(others) or j < len(named):
        if j >= len(named):
            out.append(others[i])
            i += 1
            continue
        if i < len(others):
            left = position.get(_identity(others[i], key, path))
            right = position.get(_identity(named[j], key, path))
            if left is not None and right is not None and left < right:
                out.append(others[i])
                i += 1
                continue
        out.append(named[j])
        j += 1
    return out


def _sorted_by(items: list[Any], order: list[Any], key: str | None, path: _Path) -> list[Any]:
    deletes = [
        item for item in items if isinstance(item, dict) and item.get(PATCH_DIRECTIVE) == "delete"
    ]
    rest = [item for item in items if not any(item is gone for gone in deletes)]
    position = _first_positions(order, key, path)
    rest.sort(key=lambda item: position.get(_identity(item, key, path), -1))
    return rest + deletes


def _first_positions(items: list[Any], key: str | None, path: _Path) -> dict[Hashable, int]:
    positions: dict[Hashable, int] = {}
    for index, item in enumerate(items):
        if key is None or (isinstance(item, dict) and key in item):
            positions.setdefault(_identity(item, key, path), index)
    return positions


def _without_directives(value: Any) -> tuple[Any, bool]:
    """Upstream `removeDirectives`: maps carrying `$patch` vanish, recursively."""
    if isinstance(value, dict):
        if PATCH_DIRECTIVE in value:
            return None, False
        out: JSONDict = {}
        for key, item in value.items():
            kept, keep = _without_directives(item)
            if keep:
                out[key] = kept
        return out, True
    if isinstance(value, list):
        items = [_without_directives(item) for item in value]
        return [kept for kept, keep in items if keep], True
    return value, True


# --------------------------------------------------------------------------------------------
# custom resources: JSON merge patch


def _json_merge_three_way(original: JSONDict, modified: JSONDict, current: JSONDict) -> JSONDict:
    changes = _filter_nulls(create_merge_patch(current, modified), keep_nulls=False)
    deletions = _filter_nulls(create_merge_patch(original, modified), keep_nulls=True)
    if _conflicts(changes, deletions):
        raise PatchError("the changes and the deletions of the patch conflict")
    patch = _merge_docs(deletions, changes)
    metadata = patch.get("metadata")
    if (
        "apiVersion" in patch
        or "kind" in patch
        or (isinstance(metadata, dict) and "name" in metadata)
    ):
        raise PatchError("At least one of apiVersion, kind and name was changed")
    return patch


def _filter_nulls(patch: JSONDict, keep_nulls: bool) -> JSONDict:
    """Upstream `keepOrDeleteNullInObj`: only the nulls (deletions), or all but the nulls.

    An empty map in the patch is a value (`{}` set on purpose), not an empty sub-patch.
    """
    out: JSONDict = {}
    for key, value in patch.items():
        if value is None:
            if keep_nulls:
                out[key] = None
        elif isinstance(value, dict):
            if not value:
                if not keep_nulls:
                    out[key] = {}
                continue
            sub = _filter_nulls(value, keep_nulls)
            if sub:
                out[key] = sub
        elif not keep_nulls:
            out[key] = value
    return out


def _conflicts(left: Any, right: Any) -> bool:
    """Upstream `mergepatch.HasConflicts`: do two patches set a shared key differently?"""
    if isinstance(left, dict):
        if not isinstance(right, dict):
            return True
        return any(key in right and _conflicts(value, right[key]) for key, value in left.items())
    if isinstance(left, list):
        if not isinstance(right, list) or len(left) != len(right):
            return True
        return any(_conflicts(a, b) for a, b in zip(left, right, strict=True))
    return not json_equal(left, right)


def _merge_docs(doc: JSONDict, patch: JSONDict) -> JSONDict:
    """Apply merge patch `patch` to `doc` (owned) as kubectl's json-patch library does.

    Unlike plain RFC 7386 it drops nulls inside the values it adds, lists included.
    """
    for key, value in patch.items():
        if value is None:
            doc.pop(key, None)
            continue
        current = doc.get(key)
        if not isinstance(current, dict):
            doc[key] = _prune_nulls(value)  # a new value, or one replacing a non-object
        elif isinstance(value, dict):
            doc[key] = _merge_docs(current, value)
        else:
            doc[key] = deep_copy(value)  # replaces an object: kept as it is
    return doc


def _prune_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _prune_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_prune_nulls(item) for item in value]
    return value
