"""The Application's status, built from what a sync or a refresh found. Pure.

Read at a glance, the way Argo CD users read theirs:

    sync:            {status: Synced | OutOfSync | Unknown, revision}
    health:          {status: Healthy | Progressing | Degraded | Suspended | Missing, message}
    resources:       every object with its own sync status and health
    operationState:  the last sync: phase, message, start and end, per-object results,
                     every validation error with its file:line, and the warnings of what a
                     sync option let through (`Validate=false`, ...)
    history:         the last 10 syncs (id, revision, time, phase, message): what
                     `recon history` shows and `recon rollback` takes an id from
    conditions:      SyncError / ComparisonError while one stands (SyncError also while
                     automated sync refuses to wipe out every object: `wipe_out_refusal`);
                     SharedResourceWarning while a desired object belongs to another
                     Application
    reconciledAt:    when git and the live objects were last compared, and
    observedOperation: the `requestedAt` of the last sync that comparison came after

Builders return patches for the status subresource (a JSON merge patch: keys set to None
are removed), so a refresh never drops what a sync recorded and vice versa.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from reconciler.clock import rfc3339
from reconciler.gitops import health
from reconciler.gitops.apply import ObjectResult
from reconciler.gitops.sync import ResourceState, SyncOutcome

__all__ = [
    "HISTORY_LIMIT",
    "comparison_error_patch",
    "history_entry",
    "operation_state",
    "refresh_patch",
    "sync_patch",
    "wipe_out_refusal",
]

JSONDict = dict[str, Any]

HISTORY_LIMIT = 10
_WIPE_OUT = "auto-sync will wipe out all resources"


def wipe_out_refusal(revision: str) -> str:
    """Argo CD's SyncError message when automated sync with prune, without
    `allowEmpty`, would prune every object the Application has."""
    return f"Skipping sync attempt to {revision}: {_WIPE_OUT}"


def _condition(kind: str, message: str | None, now: datetime) -> JSONDict | None:
    if message is None:
        return None
    return {"type": kind, "status": "True", "message": message, "lastTransitionTime": rfc3339(now)}


def _conditions(status: JSONDict, kind: str, message: str | None, now: datetime) -> list[JSONDict]:
    """The status's conditions with `kind` set to `message` (or cleared when None)."""
    kept = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    new = _condition(kind, message, now)
    if new is not None:
        old = next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)
        if old is not None and old.get("message") == message:
            new["lastTransitionTime"] = old.get("lastTransitionTime", new["lastTransitionTime"])
        kept.append(new)
    return kept


def _result_entry(result: ObjectResult) -> JSONDict:
    group = result.api_version.rpartition("/")[0]
    entry: JSONDict = {
        "group": group,
        "kind": result.kind,
        "name": result.name,
        "status": "SyncFailed" if result.action == "failed" else "Synced",
        "action": result.action,
    }
    if result.namespace:
        entry["namespace"] = result.namespace
    if result.error:
        entry["message"] = result.error
    if result.where:
        entry["source"] = result.where
    return entry


def operation_state(
    outcome: SyncOutcome, started: datetime, finished: datetime, initiated_by: str
) -> JSONDict:
    state: JSONDict = {
        "phase": outcome.phase,
        "message": outcome.message,
        "startedAt": rfc3339(started),
        "finishedAt": rfc3339(finished),
        "durationMs": round((finished - started).total_seconds() * 1000),
        "initiatedBy": initiated_by,
        "syncResult": {
            "revision": outcome.revision or "",
            "resources": [_result_entry(r) for r in outcome.results],
        },
    }
    if outcome.errors:
        state["errors"] = list(outcome.errors)
    if outcome.warnings:
        state["warnings"] = list(outcome.warnings)
    if outcome.prune_held_back:
        state["pruneHeldBack"] = outcome.prune_held_back
    return state


def history_entry(
    outcome: SyncOutcome, history: Sequence[JSONDict], now: datetime, initiated_by: str
) -> JSONDict:
    next_id = max((int(h.get("id", 0)) for h in history), default=0) + 1
    return {
        "id": next_id,
        "revision": outcome.revision or "",
        "deployedAt": rfc3339(now),
        "phase": outcome.phase,
        "message": outcome.message,
        "initiatedBy": initiated_by,
    }


def sync_patch(
    status: JSONDict,
    outcome: SyncOutcome,
    started: datetime,
    finished: datetime,
    initiated_by: str,
) -> JSONDict:
    """After a sync: the operation state, history (the newest 10) and the SyncError
    condition; a sync that applied something also moves lastAppliedRevision. A dry run
    records its operation state only: it deployed nothing."""
    if outcome.dry_run:
        state = operation_state(outcome, started, finished, initiated_by)
        state["dryRun"] = True
        return {"operationState": state}
    history = list(status.get("history") or [])
    history.append(history_entry(outcome, history, finished, initiated_by))
    failed = outcome.phase != "Succeeded"
    patch: JSONDict = {
        "operationState": operation_state(outcome, started, finished, initiated_by),
        "history": history[-HISTORY_LIMIT:],
        "conditions": _conditions(
            status, "SyncError", outcome.message if failed else None, finished
        ),
    }
    if outcome.phase == "Succeeded" and outcome.revision:
        patch["lastAppliedRevision"] = outcome.revision
    return patch


def refresh_patch(
    status: JSONDict,
    revision: str,
    states: Sequence[ResourceState],
    generation: int | None,
    now: datetime,
    *,
    refused: str | None = None,
) -> JSONDict:
    """After comparing git with the live objects: sync status, health, resources (those
    that left git too, `requiresPruning`). `refused`: why automated sync did not run
    (`wipe_out_refusal`), the SyncError condition while it stands; once it no longer
    does, that condition goes (a failed sync's stays until a sync succeeds)."""
    synced = all(s.status == "Synced" for s in states)
    conditions = _conditions(status, "ComparisonError", None, now)
    sync_error = next((c for c in conditions if c.get("type") == "SyncError"), None)
    if refused is not None or str((sync_error or {}).get("message", "")).endswith(_WIPE_OUT):
        conditions = _conditions({"conditions": conditions}, "SyncError", refused, now)
    worst = health.worst(s.health.status for s in states)
    sick = next((s for s in states if s.health.status == worst and s.health.message), None)
    patch: JSONDict = {
        "sync": {"status": "Synced" if synced else "OutOfSync", "revision": revision},
        "health": {"status": worst, "message": sick.health.message if sick else None},
        "resources": [s.as_status() for s in states],
        "conditions": _conditions(
            {"conditions": conditions},
            "SharedResourceWarning",
            "; ".join(s.shared for s in states if s.shared) or None,
            now,
        ),
        "reconciledAt": rfc3339(now),
        # Which sync this comparison came after: a client following a sync (`recon sync`,
        # `recon rollback`) knows the health it reads is that of the synced objects.
        "observedOperation": (status.get("operationState") or {}).get("requestedAt"),
    }
    if generation is not None:
        patch["observedGeneration"] = generation
    return patch


def comparison_error_patch(
    status: JSONDict, message: str, revision: str | None, generation: int | None, now: datetime
) -> JSONDict:
    """The source cannot be fetched or rendered: Unknown, with the reason."""
    patch: JSONDict = {
        "sync": {"status": "Unknown", "revision": revision or ""},
        "conditions": _conditions(status, "ComparisonError", message, now),
    }
    if generation is not None:
        patch["observedGeneration"] = generation
    return patch
