"""Drift: would applying what git says change the live object now?

Self-heal and sync status ask this of every managed object on every interval, and the
answer must be the one a real apply would give (`Applier.apply_one`): otherwise self-heal
either chases differences an apply would not touch (fields the server defaulted, status)
or misses ones it would (a `kubectl scale`). So the question is answered by doing the
apply on paper: kubectl's three-way merge of (last applied, desired, live), after
`ignore.respect_ignored`, then comparing the result with live.

Two things are deliberately not drift:

- what the server manages (`status`, `uid`, `resourceVersion`, ...; `apply.comparable`);
- the `last-applied-configuration` annotation alone. It is the applier's bookkeeping of
  what it declared, not state anyone sees; when it is the only difference (git now declares
  a value live already has, or an ignored field moved), the object is as git wants it.
  The next real apply refreshes the annotation anyway.

Purely computational: no I/O, inputs are never changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.gitops.apply import comparable
from reconciler.gitops.ignore import respect_ignored, strip_ignored
from reconciler.merge.three_way import LAST_APPLIED, apply_three_way
from reconciler.schema.patchmeta import PatchMeta

__all__ = ["drifted_paths", "is_out_of_sync"]

JSONDict = dict[str, Any]


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _settled(obj: JSONDict, pointers: Sequence[str]) -> JSONDict:
    """`obj` reduced to what drift is judged on: no server fields, annotation or ignored."""
    out = comparable(obj)
    assert out is not None
    annotations = (out.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
        if not annotations:
            del out["metadata"]["annotations"]
    return strip_ignored(out, pointers) if pointers else out


def _after_apply(
    last_applied: JSONDict | None,
    desired: JSONDict,
    live: JSONDict,
    patch_meta: PatchMeta | None,
    pointers: Sequence[str],
) -> JSONDict:
    """Live as the apply of `desired` would leave it (before the server's own defaulting)."""
    kept = respect_ignored(desired, live, pointers, last_applied=last_applied)
    return apply_three_way(last_applied, kept, live, patch_meta)


def is_out_of_sync(
    last_applied: JSONDict | None,
    desired: JSONDict,
    live: JSONDict | None,
    patch_meta: PatchMeta | None,
    pointers: Sequence[str] = (),
) -> bool:
    """True when applying `desired` now would change `live` (None: deleted, so it would).

    `desired` is the object as the applier sends it (namespace filled in, ownership
    annotation added), `last_applied` the configuration recorded on live
    (`three_way.last_applied_of(live)`), `patch_meta` the kind's strategic-merge metadata
    (None for a custom resource), `pointers` the ignored fields (`ignore.rules_for`).
    Raises `PatchError` where the apply would fail too.
    """
    if live is None:
        return True
    merged = _after_apply(last_applied, desired, live, patch_meta, pointers)
    return _settled(merged, pointers) != _settled(live, pointers)


def drifted_paths(
    last_applied: JSONDict | None,
    desired: JSONDict,
    live: JSONDict | None,
    patch_meta: PatchMeta | None,
    pointers: Sequence[str] = (),
) -> list[str]:
    """The JSON pointers of the fields an apply would change, sorted: `["/spec/replicas"]`.

    Each is the outermost field that differs: maps are followed key by key, lists of the
    same length element by element, anything else is reported where it differs (a list
    that grew is reported whole). A deleted object (`live` None) is `[""]`, the pointer to
    the whole object; an object in sync is `[]`. For status messages such as
    "/spec/replicas changed on the cluster, restored from git".
    """
    if live is None:
        return [""]
    merged = _after_apply(last_applied, desired, live, patch_meta, pointers)
    return sorted(_differences(_settled(live, pointers), _settled(merged, pointers), ""))


def _differences(before: Any, after: Any, at: str) -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in before.keys() | after.keys():
            path = f"{at}/{_escape(key)}"
            if key not in before or key not in after:
                out.append(path)
            else:
                out.extend(_differences(before[key], after[key], path))
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        out = []
        for position, (old, new) in enumerate(zip(before, after, strict=True)):
            out.extend(_differences(old, new, f"{at}/{position}"))
        return out
    return [] if before == after else [at]
