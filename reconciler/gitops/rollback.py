"""Rolling an Application back to an earlier sync, and handing it back to automation. Pure.

As in Argo CD, a rollback re-applies the revision of a history entry and turns automated
sync off: otherwise the next interval would sync the branch head again and undo it. What
automated sync was (prune, selfHeal) is kept in an annotation, so re-enabling it
(`recon app set NAME --sync-policy automated`) restores the same policy.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

__all__ = [
    "AUTOMATED_BEFORE_ROLLBACK",
    "RollbackError",
    "automation_patch",
    "choose_entry",
    "pause_automation_patch",
]

JSONDict = dict[str, Any]

AUTOMATED_BEFORE_ROLLBACK = "recon.dev/automated-before-rollback"


class RollbackError(Exception):
    pass


def choose_entry(
    history: Sequence[JSONDict], current_revision: str | None, wanted: int | None
) -> JSONDict:
    """The history entry to roll back to: the one with id `wanted`, or else the newest
    successful sync of a revision other than the one deployed now (Argo CD's default: the
    previous deployment)."""
    if wanted is not None:
        for entry in history:
            if int(entry.get("id", -1)) == wanted:
                if not entry.get("revision"):
                    raise RollbackError(f"history entry {wanted} has no revision to roll back to")
                return dict(entry)
        known = ", ".join(str(e.get("id")) for e in history) or "none"
        raise RollbackError(f"no history entry {wanted} (known ids: {known})")
    for entry in reversed(history):
        if (
            entry.get("phase") == "Succeeded"
            and entry.get("revision")
            and entry.get("revision") != current_revision
        ):
            return dict(entry)
    raise RollbackError(
        "no earlier successful sync of another revision in the history: give a HISTORY_ID"
    )


def pause_automation_patch(app: JSONDict) -> JSONDict | None:
    """A merge patch that turns automated sync off and remembers it; None when it is off
    already (an earlier rollback's memory is then kept, not overwritten by `null`)."""
    automated = ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated")
    if not isinstance(automated, dict):
        return None
    return {
        "metadata": {"annotations": {AUTOMATED_BEFORE_ROLLBACK: json.dumps(automated)}},
        "spec": {"syncPolicy": {"automated": None}},
    }


def automation_patch(
    app: JSONDict, enabled: bool, prune: bool | None = None, self_heal: bool | None = None
) -> JSONDict:
    """A merge patch setting the sync policy: automated with the given flags (unset flags
    keep what the Application had, or what it had before a rollback), or manual."""
    annotations = (app.get("metadata") or {}).get("annotations") or {}
    current = ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated")
    base: JSONDict = dict(current) if isinstance(current, dict) else {}
    remembered = annotations.get(AUTOMATED_BEFORE_ROLLBACK)
    if remembered and not base:
        try:
            loaded = json.loads(remembered)
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            base = loaded
    patch: JSONDict = {"metadata": {"annotations": {AUTOMATED_BEFORE_ROLLBACK: None}}}
    if not enabled:
        patch["spec"] = {"syncPolicy": {"automated": None}}
        return patch
    automated = {
        "prune": bool(base.get("prune", False)) if prune is None else prune,
        "selfHeal": bool(base.get("selfHeal", False)) if self_heal is None else self_heal,
    }
    patch["spec"] = {"syncPolicy": {"automated": automated}}
    return patch
