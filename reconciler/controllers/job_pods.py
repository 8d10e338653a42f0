"""Facts about a Job's pods, as upstream's Job controller reads them. Pure; `job.py` and
`job_indexes.py` plan with them.

- `finished_at`: when a pod stopped (upstream's `getFinishedTime`), where a failure's back-off
  runs from;
- `is_failed`: upstream's `isPodFailed`: a Failed pod, or — unless replacements wait for
  pods to stop (`podReplacementPolicy: Failed`, implied by a `podFailurePolicy`) — a pod
  deleted before it succeeded;
- `backoff`: the delay after a number of failures.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from reconciler.clock import parse_rfc3339

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_MAX",
    "backoff",
    "deleting",
    "finished_at",
    "is_failed",
    "only_replace_failed",
    "phase",
    "pod_uid",
]

BACKOFF_BASE = 10.0
BACKOFF_MAX = 360.0


def finished_at(pod: Mapping[str, Any]) -> datetime | None:
    """When a finished pod stopped: its containers' last `finishedAt` (as the Job controller's
    `getFinishedTime`), else when it was deleted (`deletionTimestamp` less its grace period),
    else its start or creation time."""
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    times = [
        str(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt") or "")
        for cs in status.get("containerStatuses") or []
    ]
    stamp = max(times, default="")
    if not stamp and meta.get("deletionTimestamp"):
        grace = int(meta.get("deletionGracePeriodSeconds") or 0)
        return parse_rfc3339(str(meta["deletionTimestamp"])) - timedelta(seconds=grace)
    stamp = stamp or str(status.get("startTime") or meta.get("creationTimestamp") or "")
    return parse_rfc3339(stamp) if stamp else None


def pod_uid(pod: Mapping[str, Any]) -> str:
    """The pod's uid (its name for pods written without one, as in unit tests)."""
    meta = pod.get("metadata") or {}
    return str(meta.get("uid") or meta.get("name") or "")


def phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def deleting(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def only_replace_failed(spec: Mapping[str, Any]) -> bool:
    """Whether a pod being deleted is replaced (and counted) only once it stopped: with
    `podReplacementPolicy: Failed`, which a `podFailurePolicy` implies (upstream's
    `onlyReplaceFailedPods`)."""
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def is_failed(pod: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    """upstream's `isPodFailed`: Failed, or (replacing terminating pods) deleted before it
    succeeded."""
    state = phase(pod)
    if state == "Failed":
        return True
    return not only_replace_failed(spec) and deleting(pod) and state != "Succeeded"


def backoff(failures: int) -> float:
    """The Job back-off: 10 s doubling per failure, at most 6 min (1: 10 s, 2: 20 s, ... 7:
    6 min)."""
    if failures <= 0:
        return 0.0
    return float(min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (failures - 1)))
