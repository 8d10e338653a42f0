"""The order in which a manifest set is applied, and pruned.

Objects must exist before what refers to them: a Namespace before its content, a CRD before
its custom resources, ConfigMaps and Secrets before the Pods that mount them, a Service
before the workloads whose pods look it up by environment variable. The kind order is the
one Helm and Argo CD use (with CRDs moved up beside Namespaces). Within it, the
`recon.dev/sync-wave` annotation (an integer, default 0, may be negative) groups objects
into waves: every object of wave N is applied (and healthy) before wave N+1 starts. Argo CD's
`argocd.argoproj.io/sync-wave` means the same (repositories moving from Argo CD keep
theirs); when both are there, Recon's wins. Pruning runs in exactly the reverse order.

Pure functions; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

SYNC_WAVE = "recon.dev/sync-wave"
ARGO_SYNC_WAVE = "argocd.argoproj.io/sync-wave"

T = TypeVar("T")

_KIND_ORDER = (
    "Namespace",
    "CustomResourceDefinition",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
)
_RANK = {kind: index for index, kind in enumerate(_KIND_ORDER)}
_UNKNOWN_RANK = len(_KIND_ORDER)  # custom resources and anything else come last


class SyncWaveError(ValueError):
    """A `recon.dev/sync-wave` annotation that is not an integer."""


def sync_wave(obj: Mapping[str, Any]) -> int:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    key = SYNC_WAVE if SYNC_WAVE in annotations else ARGO_SYNC_WAVE
    value = annotations.get(key)
    if value is None:
        return 0
    try:
        return int(str(value).strip())
    except ValueError:
        name = (obj.get("metadata") or {}).get("name", "")
        raise SyncWaveError(
            f"{obj.get('kind')}/{name}: metadata.annotations[{key}]: {value!r} is not an integer"
        ) from None


def _sort_key(obj: Mapping[str, Any]) -> tuple[int, int, str, str, str]:
    meta = obj.get("metadata") or {}
    kind = str(obj.get("kind", ""))
    return (
        sync_wave(obj),
        _RANK.get(kind, _UNKNOWN_RANK),
        kind,
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
    )


def apply_order(items: Sequence[T], obj_of: Callable[[T], Mapping[str, Any]]) -> list[T]:
    """`items` in apply order; `obj_of` extracts the Kubernetes object from an item."""
    return sorted(items, key=lambda item: _sort_key(obj_of(item)))


def prune_order(items: Sequence[T], obj_of: Callable[[T], Mapping[str, Any]]) -> list[T]:
    """`items` in the order to delete them: the reverse of the apply order."""
    return list(reversed(apply_order(items, obj_of)))


def waves(items: Sequence[T], obj_of: Callable[[T], Mapping[str, Any]]) -> list[list[T]]:
    """`items` in apply order, grouped by sync wave (ascending)."""
    grouped: dict[int, list[T]] = {}
    for item in apply_order(items, obj_of):
        grouped.setdefault(sync_wave(obj_of(item)), []).append(item)
    return [grouped[wave] for wave in sorted(grouped)]
