"""kubectl's three-way apply: (last applied, desired, live) → the object after the apply.

The rules users rely on, from `kubectl apply`:
- fields you stop declaring (in last-applied, gone from desired) are removed from live;
- fields you declare win over what live has;
- fields others set (in live, never in last-applied) are kept.

For built-in kinds the deletions are a strategic merge patch from last-applied to desired
(removals only) and the changes one from live to desired (no removals), merge keys and
strategies from the upstream schemas. Custom resources use JSON merge patches the same way.
The `kubectl.kubernetes.io/last-applied-configuration` annotation is written byte for byte
as kubectl writes it, so kubectl and Recon can take turns on one object.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from reconciler.merge.json_merge import apply_merge_patch, create_merge_patch
from reconciler.merge.strategic import apply_strategic_merge_patch, create_strategic_merge_patch
from reconciler.schema.patchmeta import PatchMeta

JSONDict = dict[str, Any]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _go_json(obj: Any) -> str:
    """Go's `json.Encoder` output: sorted keys, compact, HTML-escaped, newline-terminated."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for raw, escaped in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text + "\n"


def last_applied_annotation(desired: JSONDict) -> str:
    """The annotation value kubectl writes for `desired`: the object itself, without the
    annotation, whose `annotations` map stays (empty if nothing else is in it)."""
    obj = copy.deepcopy(desired)
    meta = obj.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    meta["annotations"] = annotations
    return _go_json(obj)


def desired_with_annotation(desired: JSONDict) -> JSONDict:
    """What kubectl sends as the "modified" object: desired plus its own last-applied."""
    obj = copy.deepcopy(desired)
    annotation = last_applied_annotation(desired)
    meta = obj.setdefault("metadata", {})
    meta["annotations"] = {**(meta.get("annotations") or {}), LAST_APPLIED: annotation}
    return obj


def last_applied_of(live: JSONDict) -> JSONDict | None:
    """The configuration last applied to `live`, or None when it was never applied."""
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _only_nulls(patch: Any) -> Any:
    """The deletions of a JSON merge patch: its nulls, and the maps that lead to them."""
    if not isinstance(patch, dict):
        return None
    out: JSONDict = {}
    for key, value in patch.items():
        if value is None:
            out[key] = None
        elif isinstance(value, dict):
            inner = _only_nulls(value)
            if inner:
                out[key] = inner
    return out


def _without_nulls(patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    return {k: _without_nulls(v) for k, v in patch.items() if v is not None}


def apply_three_way(
    last_applied: JSONDict | None, desired: JSONDict, live: JSONDict, meta: PatchMeta | None
) -> JSONDict:
    """`live` after `kubectl apply` of `desired` (meta None: a custom resource)."""
    modified = desired_with_annotation(desired)
    original = last_applied or {}
    if meta is not None:
        deletions = create_strategic_merge_patch(
            original, modified, meta, ignore_changes_and_additions=True
        )
        changes = create_strategic_merge_patch(live, modified, meta, ignore_deletions=True)
        result = apply_strategic_merge_patch(live, deletions, meta) if deletions else live
        return (
            apply_strategic_merge_patch(result, changes, meta) if changes else copy.deepcopy(result)
        )
    deletions = _only_nulls(create_merge_patch(original, modified)) or {}
    changes = _without_nulls(create_merge_patch(live, modified)) or {}
    merged: JSONDict = apply_merge_patch(apply_merge_patch(live, deletions), changes)
    return merged
