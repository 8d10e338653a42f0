"""Asking for a sync and following it to the end, from a client's side.

A sync request is the Application's `operation` field (what `kubectl` users of Argo CD know
as an operation); the controller carries it out, removes it and records
`status.operationState`. `follow_sync` waits for exactly that record; `follow_health` then
reports each object's health as it changes (a rollout's progress) until everything is
Healthy, something is Degraded, or time runs out. Both only read the Application, so they
work the same against the embedded plane and a remote cluster. Used by `git push` (the
post-receive hook) and `recon sync`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from reconciler.client.base import Client
from reconciler.clock import rfc3339_micro
from reconciler.gitops.application import API_VERSION, KIND

__all__ = ["FollowTimeout", "compared_after", "follow_health", "follow_sync", "request_sync"]

JSONDict = dict[str, Any]
Say = Callable[[str], None]

_POLL_S = 0.25


class FollowTimeout(Exception):
    pass


async def request_sync(
    client: Client,
    namespace: str,
    name: str,
    *,
    revision: str | None = None,
    prune: bool = False,
    dry_run: bool = False,
    force: bool = False,
    initiated_by: str = "recon-cli",
) -> str:
    """Ask for a sync; returns the request's time (RFC 3339) to follow it by."""
    requested = rfc3339_now()
    sync: JSONDict = {"prune": prune, "dryRun": dry_run, "force": force}
    if revision:
        sync["revision"] = revision
    await client.patch(
        API_VERSION,
        KIND,
        name,
        {"operation": {"sync": sync, "initiatedBy": initiated_by, "requestedAt": requested}},
        namespace=namespace,
    )
    return requested


def rfc3339_now() -> str:
    """Now, to the microsecond: a sync requested in the same second as the last one
    finished must not be taken for it."""
    from datetime import UTC, datetime

    return rfc3339_micro(datetime.now(UTC))


def _label(entry: JSONDict) -> str:
    kind = str(entry.get("kind", "")).lower()
    group = entry.get("group") or ""
    return f"{kind}{'.' + group if group else ''}/{entry.get('name')}"


async def follow_sync(
    client: Client,
    namespace: str,
    name: str,
    requested: str,
    say: Say,
    timeout: float,
) -> JSONDict:
    """Wait for the sync requested at `requested` to finish; report each object's result
    and every validation error; returns the operation state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app = await client.get(API_VERSION, KIND, name, namespace)
        state = (app.get("status") or {}).get("operationState") or {}
        if state.get("requestedAt") == requested and state.get("finishedAt"):
            for entry in (state.get("syncResult") or {}).get("resources") or []:
                action = entry.get("action", "")
                if action == "unchanged":
                    continue
                message = f": {entry['message']}" if entry.get("message") else ""
                say(f"{_label(entry)} {action}{message}")
            for error in state.get("errors") or []:
                say(f"error: {error}")
            if state.get("pruneHeldBack"):
                say(f"prune held back: {state['pruneHeldBack']}")
            say(f"sync {state.get('phase')}: {state.get('message')}")
            return dict(state)
        await asyncio.sleep(_POLL_S)
    raise FollowTimeout(f"the sync of {namespace}/{name} did not finish in {timeout:.0f} s")


async def follow_health(
    client: Client,
    namespace: str,
    name: str,
    say: Say,
    timeout: float,
    revision: str = "",
    *,
    after_request: str | None = None,
    require_synced: bool = True,
) -> str:
    """Report health changes until Healthy or Degraded (or `timeout`); returns the last.

    `revision`: only a comparison at that revision counts (any when empty).
    `after_request`: only a comparison made after the sync requested then counts, so the
    health read is that of what the sync applied, not of what was there before (unless a
    newer sync took its place). `require_synced=False` is for syncs of a revision other
    than the target (a rollback): the Application stays OutOfSync, its health still counts.
    Objects that left git and were not pruned (`requiresPruning`) keep it OutOfSync too,
    whatever the rollout does: they are reported, not waited for.
    """
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    overall = "Unknown"
    while time.monotonic() < deadline:
        app = await client.get(API_VERSION, KIND, name, namespace)
        status = app.get("status") or {}
        sync = status.get("sync") or {}
        if (revision and sync.get("revision") != revision) or not compared_after(
            status, after_request
        ):
            await asyncio.sleep(_POLL_S)  # not compared at this revision, or since the sync
            continue
        resources = status.get("resources") or []
        for entry in resources:
            health = entry.get("health") or {}
            line = str(health.get("status", ""))
            if health.get("message"):
                line += f": {health['message']}"
            key = _label(entry)
            if seen.get(key) != line:
                seen[key] = line
                say(f"{key} {line}")
        overall = str((status.get("health") or {}).get("status") or "Unknown")
        left = [e for e in resources if e.get("requiresPruning")]
        applied = all(e.get("status") == "Synced" or e.get("requiresPruning") for e in resources)
        synced = sync.get("status") == "Synced" or not require_synced or (bool(left) and applied)
        if overall == "Degraded" or (overall == "Healthy" and synced):
            if left:
                count = f"{len(left)} object{'s' if len(left) != 1 else ''}"
                say(f"{count} left git but not pruned: OutOfSync until a sync prunes them")
            say(f"health {overall}")
            return overall
        await asyncio.sleep(_POLL_S)
    say(f"health {overall} after {timeout:.0f} s")
    return overall


def compared_after(status: JSONDict, request: str | None) -> bool:
    """Was the status compared after the sync requested at `request`?"""
    if request is None:
        return True
    if status.get("observedOperation") == request:
        return True
    # A newer sync took its place: its comparison is the one to read.
    current = (status.get("operationState") or {}).get("requestedAt")
    return bool(current) and current != request and status.get("observedOperation") == current
