"""JSON merge patch (RFC 7386): apply and create.

Kubernetes accepts `application/merge-patch+json` for every kind, and it is the only merge
patch custom resources get (they have no strategic-merge metadata); Recon's three-way apply
uses it for them. Objects merge member by member, `null` removes a member, and anything
else, arrays included, replaces the target value whole.

Pure functions: inputs are never changed, and results share no containers with them.
"""

from __future__ import annotations

from typing import Any

from reconciler.merge._json import deep_copy, json_equal

__all__ = ["apply_merge_patch", "create_merge_patch"]


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """Apply `patch` to `target` (RFC 7386, section 2), returning a new value.

    A non-object patch replaces the target; an object patch turns a non-object target into
    `{}` first. `null` members of the patch remove the member from the target.
    """
    return _apply(deep_copy(target), patch)


def _apply(target: Any, patch: Any) -> Any:
    """`target` is owned by this module (already copied) and is changed in place."""
    if not isinstance(patch, dict):
        return deep_copy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _apply(target.get(key), value)
    return target


def create_merge_patch(original: Any, modified: Any) -> Any:
    """The merge patch that turns `original` into `modified`; `{}` when they are equal objects.

    Members removed in `modified` become `null`; changed arrays and scalars are sent whole.
    Because `null` means "remove", a `null` member of `modified` cannot be expressed: the
    patch removes it instead (a limit of RFC 7386 itself).
    """
    if not isinstance(original, dict) or not isinstance(modified, dict):
        return deep_copy(modified)
    patch: dict[str, Any] = {key: None for key in original if key not in modified}
    for key, new in modified.items():
        if key not in original:
            patch[key] = deep_copy(new)
            continue
        old = original[key]
        if isinstance(old, dict) and isinstance(new, dict):
            sub = create_merge_patch(old, new)
            if sub:
                patch[key] = sub
        elif not json_equal(old, new):
            patch[key] = deep_copy(new)
    return patch
