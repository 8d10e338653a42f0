"""Diffs users read: live versus merged, as unified YAML, with Secret values masked.

`kubectl diff` conventions: server-managed fields are left out (status, uid,
resourceVersion, generation, creationTimestamp, managedFields); a Secret's `data` and
`stringData` values become `***` on both sides — `*** (before)` / `*** (after)` when a value
changed, so a changed Secret still shows that it changed without showing what it is.
Pure: objects in, text out.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

import yaml

JSONDict = dict[str, Any]

MANAGED = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def strip_managed(obj: JSONDict | None) -> JSONDict | None:
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in MANAGED:
        meta.pop(key, None)
    return out


def _is_secret(obj: JSONDict | None) -> bool:
    return obj is not None and obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def mask_secrets(
    before: JSONDict | None, after: JSONDict | None
) -> tuple[JSONDict | None, JSONDict | None]:
    """Both sides with Secret values replaced; changed values marked (before)/(after)."""
    if not (_is_secret(before) or _is_secret(after)):
        return before, after
    before, after = copy.deepcopy(before), copy.deepcopy(after)
    for field in ("data", "stringData"):
        old = (before or {}).get(field) or {}
        new = (after or {}).get(field) or {}
        for key in set(old) | set(new):
            changed = old.get(key) != new.get(key)
            if key in old:
                old[key] = "*** (before)" if changed else "***"
            if key in new:
                new[key] = "*** (after)" if changed else "***"
    for obj in (before, after):
        annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
        if _LAST_APPLIED in annotations:
            annotations[_LAST_APPLIED] = "*** (last applied configuration of a Secret)"
    return before, after


def to_yaml(obj: JSONDict | None) -> list[str]:
    if obj is None:
        return []
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).splitlines(keepends=True)


def unified_diff(name: str, before: JSONDict | None, after: JSONDict | None) -> str:
    """`diff -u` of the two objects as YAML (empty when they are equal)."""
    left, right = mask_secrets(strip_managed(before), strip_managed(after))
    lines = difflib.unified_diff(
        to_yaml(left), to_yaml(right), fromfile=f"live/{name}", tofile=f"merged/{name}"
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def colorize(diff: str) -> str:
    """ANSI colors for a terminal: removals red, additions green, hunks cyan."""
    out = []
    for line in diff.splitlines(keepends=True):
        if line.startswith(("+++", "---")):
            out.append(f"\x1b[1m{line.rstrip()}\x1b[0m\n")
        elif line.startswith("+"):
            out.append(f"\x1b[32m{line.rstrip()}\x1b[0m\n")
        elif line.startswith("-"):
            out.append(f"\x1b[31m{line.rstrip()}\x1b[0m\n")
        elif line.startswith("@@"):
            out.append(f"\x1b[36m{line.rstrip()}\x1b[0m\n")
        else:
            out.append(line)
    return "".join(out)
