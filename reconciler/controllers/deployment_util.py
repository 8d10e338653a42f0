"""Pure arithmetic of Deployments: template hashes, surge/unavailable bounds, revisions.

Worked example of a rolling update (replicas 10, maxSurge 3, maxUnavailable 2):
- at most 10 + 3 = 13 pods may exist at once, at least 10 - 2 = 8 must be available;
- new RS 0 → scale up by 13 - 10 = 3 (total 13); old RS may go down by
  13 - 8 - (3 unavailable new) = 2 → 8 old + 3 new;
- as new pods become available the old RS goes down and the new one up, until 10 new.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

JSONDict = dict[str, Any]

POD_TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE = "kubernetes.io/change-cause"

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """Kubernetes' `rand.SafeEncodeString`: no vowels (no words), no confusable characters."""
    return "".join(_SAFE_ALPHABET[ord(ch) % len(_SAFE_ALPHABET)] for ch in text)


def template_hash(template: Mapping[str, Any], collision_count: int = 0) -> str:
    """A stable, short hash of a pod template (plus the collision count), label-safe."""
    encoded = json.dumps(_drop_nulls(template), sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        encoded += str(collision_count).encode()
    return safe_encode(str(_fnv32a(encoded)))


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def strip_hash(template: Mapping[str, Any]) -> JSONDict:
    """The template without the pod-template-hash label and without nulls (a Go client
    writes `creationTimestamp: null`, which means absent), for comparing templates."""
    out: JSONDict = _drop_nulls(json.loads(json.dumps(template)))
    labels = (out.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    return out


def resolve_int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """`intstr.GetScaledValueFromIntOrPercent`: 25% of 10 is 3 rounded up, 2 rounded down."""
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        scaled = int(text[:-1]) * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(text)


def surge_and_unavailable(deployment: Mapping[str, Any]) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts; both zero would deadlock, so unavailable 1."""
    spec = deployment.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    surge = resolve_int_or_percent(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = resolve_int_or_percent(
        rolling.get("maxUnavailable", "25%"), replicas, round_up=False
    )
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def annotation_int(obj: Mapping[str, Any], key: str) -> int | None:
    """An integer annotation (revision, desired-replicas, ...); None if absent or not one."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(key)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def revision_of(obj: Mapping[str, Any]) -> int:
    return annotation_int(obj, REVISION) or 0


def new_replicas_rolling(replicas: int, surge: int, total_pods: int, new_rs_replicas: int) -> int:
    """How many replicas the new RS may have now (`NewRSNewReplicas`, RollingUpdate)."""
    max_total = replicas + surge
    if total_pods >= max_total:
        return new_rs_replicas
    scale_up = max_total - total_pods
    return min(new_rs_replicas + scale_up, replicas)


def max_scale_down(
    replicas: int, unavailable: int, total_pods: int, new_rs_replicas: int, new_rs_available: int
) -> int:
    """How many old pods may go now without breaking `replicas - maxUnavailable` available."""
    min_available = replicas - unavailable
    new_unavailable = new_rs_replicas - new_rs_available
    return max(0, total_pods - min_available - new_unavailable)
