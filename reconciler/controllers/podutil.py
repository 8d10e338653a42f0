"""Pod facts every workload controller needs: active, ready, available, and their ranking.

Pure functions over pod dicts, with the clock passed in. "Available" means ready for at
least `minReadySeconds`, which is what Deployments count and roll on.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from reconciler.clock import parse_rfc3339

JSONDict = dict[str, Any]


def is_terminal(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_active(pod: Mapping[str, Any]) -> bool:
    """Counts toward a controller's replicas: not finished and not being deleted."""
    return not is_terminal(pod) and not (pod.get("metadata") or {}).get("deletionTimestamp")


def ready_condition(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond  # type: ignore[no-any-return]
    return None


def is_ready(pod: Mapping[str, Any]) -> bool:
    cond = ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def is_available(pod: Mapping[str, Any], min_ready_seconds: int, now: datetime) -> bool:
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    cond = ready_condition(pod) or {}
    since = cond.get("lastTransitionTime")
    if not since:
        return False
    return (now - parse_rfc3339(str(since))).total_seconds() >= min_ready_seconds


def restart_count(pod: Mapping[str, Any]) -> int:
    return sum(
        int(cs.get("restartCount", 0))
        for cs in (pod.get("status") or {}).get("containerStatuses") or []
    )


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def deletion_rank(pod: Mapping[str, Any]) -> tuple[int, int, int, int, str]:
    """Sort key: pods to delete first come first (the ReplicaSet controller's `ActivePods`
    order): unscheduled before scheduled, Pending before Running, not ready before ready,
    more restarts first, newer first."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    created = str(meta.get("creationTimestamp") or "")
    newest_first = "".join(chr(0x10FFFF - ord(ch)) for ch in created)
    return (
        1 if spec.get("nodeName") else 0,
        _PHASE_RANK.get(str(status.get("phase", "Pending")), 0),
        1 if is_ready(pod) else 0,
        -restart_count(pod),
        newest_first,
    )


def controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref  # type: ignore[no-any-return]
    return None


def owner_reference(owner: Mapping[str, Any]) -> JSONDict:
    meta = owner.get("metadata") or {}
    return {
        "apiVersion": owner.get("apiVersion"),
        "kind": owner.get("kind"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }
