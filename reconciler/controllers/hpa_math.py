"""How many replicas a resource metric asks for: upstream's replica calculator. Pure.

Given the pods the target's scale selector matches, their metrics (`hpa_metrics`) and the
target, `resource_replicas` (Utilization: percent of request) and `raw_resource_replicas`
(AverageValue) propose a replica count as Kubernetes' `replica_calculator.go` does:

- pods being deleted or Failed are ignored; Pending pods are unready; for cpu, a pod is
  also unready when it is not Ready yet, or while it is starting (first 5 min) and its
  metric was taken before one window passed since it became ready;
- utilization = sum(usage) * 100 / sum(requests) over the ready pods with metrics
  (integer percent), ratio = utilization / target;
- |ratio - 1| <= 0.1 (the tolerance) changes nothing;
- without unready or missing pods: ceil(ratio * ready pods);
- otherwise the doubtful pods are filled in against the move: on a scale-down missing pods
  count as using 100% of their request (or the target, above 100%), on a scale-up as 0%,
  and unready pods as 0% on a scale-up; the ratio is computed again, and if it now is
  within tolerance or points the other way, nothing changes.

Concrete example: 4 pods request 500m each, the target is 50%. Three report 400m, 400m,
500m (1300m of 1500m requested: 86%, ratio 1.72); the fourth has no metrics yet. Scaling
up, the fourth counts as 0m: 1300m of 2000m is 65%, ratio 1.3, ceil(1.3 * 4) = 6 replicas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reconciler.clock import maybe_rfc3339
from reconciler.controllers.hpa_metrics import (
    MetricsError,
    PodMetric,
    milli_value,
    pod_resource_metrics,
)
from reconciler.quantity import QuantityError

__all__ = [
    "CPU_INITIALIZATION_PERIOD",
    "INITIAL_READINESS_DELAY",
    "TOLERANCE",
    "PodGroups",
    "Proposal",
    "ReplicaCalcError",
    "group_pods",
    "pod_requests",
    "raw_resource_replicas",
    "resource_replicas",
    "usage_ratio",
    "utilization_ratio",
]

JSONDict = dict[str, Any]

TOLERANCE = 0.1
"""--horizontal-pod-autoscaler-tolerance: no change while |ratio - 1| is at most this."""
CPU_INITIALIZATION_PERIOD = timedelta(minutes=5)
"""--horizontal-pod-autoscaler-cpu-initialization-period."""
INITIAL_READINESS_DELAY = timedelta(seconds=30)
"""--horizontal-pod-autoscaler-initial-readiness-delay."""


class ReplicaCalcError(Exception):
    """No replica count can be computed; the message is upstream's, for the condition."""


@dataclass(frozen=True)
class Proposal:
    """A metric's answer: the replicas it asks for, and what it measured (for the status):
    `utilization` in percent of request (Utilization targets only) and `average` in
    milli-units per pod."""

    replicas: int
    average: int
    utilization: int | None = None
    timestamp: datetime | None = None


@dataclass(frozen=True)
class PodGroups:
    ready_count: int
    unready: frozenset[str]
    missing: frozenset[str]
    ignored: frozenset[str]


def _name(pod: JSONDict) -> str:
    return str((pod.get("metadata") or {}).get("name") or "")


def _ready_condition(pod: JSONDict) -> JSONDict | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond
    return None


def _cpu_unready(pod: JSONDict, metric: PodMetric, now: datetime) -> bool:
    """Upstream's test for a cpu sample not to trust: the pod is not Ready, or it is starting
    and the sample may predate its readiness (a JVM warming up burns cpu it will not keep)."""
    cond = _ready_condition(pod)
    started = maybe_rfc3339((pod.get("status") or {}).get("startTime"))
    if cond is None or started is None:
        return True
    not_ready = cond.get("status") == "False"
    transition = maybe_rfc3339(cond.get("lastTransitionTime")) or started
    if started + CPU_INITIALIZATION_PERIOD > now:
        if not_ready:
            return True
        return metric.timestamp is not None and metric.timestamp < transition + metric.window
    return not_ready and started + INITIAL_READINESS_DELAY > transition


def group_pods(
    pods: list[JSONDict], metrics: dict[str, PodMetric], resource: str, now: datetime
) -> PodGroups:
    """Sort the selected pods into ready (counted), unready, missing metrics and ignored."""
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        name = _name(pod)
        phase = (pod.get("status") or {}).get("phase")
        if (pod.get("metadata") or {}).get("deletionTimestamp") or phase == "Failed":
            ignored.add(name)
            continue
        if phase == "Pending":
            unready.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            missing.add(name)
            continue
        if resource == "cpu" and _cpu_unready(pod, metric, now):
            unready.add(name)
            continue
        ready += 1
    return PodGroups(ready, frozenset(unready), frozenset(missing), frozenset(ignored))


def pod_requests(pods: list[JSONDict], resource: str, container: str = "") -> dict[str, int]:
    """Each pod's request for `resource` in milli-units: its containers' (and sidecars',
    restartable init containers) summed, or only `container`'s. Every counted container
    must request the resource: a utilization of nothing means nothing."""
    out: dict[str, int] = {}
    for pod in pods:
        spec = pod.get("spec") or {}
        containers = list(spec.get("containers") or [])
        containers += [
            c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"
        ]
        total = 0
        for c in containers:
            if container and c.get("name") != container:
                continue
            requested = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if requested is None:
                raise ReplicaCalcError(
                    f"missing request for {resource} in container {c.get('name')} "
                    f"of Pod {_name(pod)}"
                )
            try:
                total += milli_value(requested)
            except QuantityError as e:
                raise ReplicaCalcError(
                    f"invalid request for {resource} in container {c.get('name')} "
                    f"of Pod {_name(pod)}: {e}"
                ) from None
        out[_name(pod)] = total
    return out


def utilization_ratio(
    metrics: dict[str, PodMetric], requests: dict[str, int], target: int
) -> tuple[float, int, int]:
    """(ratio to the target, utilization in integer percent, average usage in milli-units)
    over the pods that have both a metric and a request."""
    used = requested = entries = 0
    for name, metric in metrics.items():
        if name not in requests:
            continue  # a metric for a pod the selector no longer matches
        used += metric.value
        requested += requests[name]
        entries += 1
    if requested == 0:
        raise ReplicaCalcError("no metrics returned matched known pods")
    utilization = used * 100 // requested
    return utilization / target, utilization, used // entries


def usage_ratio(metrics: dict[str, PodMetric], target: int) -> tuple[float, int]:
    """(ratio to the target, average usage in milli-units) for an AverageValue target."""
    average = sum(m.value for m in metrics.values()) // len(metrics)
    return average / target, average


def _select(
    pods: list[JSONDict], metrics: dict[str, PodMetric], resource: str, now: datetime
) -> tuple[PodGroups, dict[str, PodMetric]]:
    if not pods:
        raise ReplicaCalcError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, resource, now)
    kept = {n: m for n, m in metrics.items() if n not in groups.ignored and n not in groups.unready}
    if not kept:
        raise ReplicaCalcError("did not receive metrics for targeted pods (pods might be unready)")
    return groups, kept


def _reconsidered(
    current: int, ratio: float, new_ratio: float, counted: int, tolerance: float
) -> int:
    """The second pass, with the doubtful pods filled in: hold when the change is small or
    the direction flipped, else ceil(new ratio * pods counted)."""
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    replicas = math.ceil(new_ratio * counted)
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current
    return replicas


def _metrics_for(
    items: list[JSONDict], resource: str, container: str
) -> tuple[dict[str, PodMetric], datetime | None]:
    try:
        return pod_resource_metrics(items, resource, container)
    except MetricsError as e:
        raise ReplicaCalcError(f"unable to get metrics for resource {resource}: {e}") from None


def resource_replicas(
    current: int,
    target_utilization: int,
    resource: str,
    pods: list[JSONDict],
    items: list[JSONDict],
    now: datetime,
    container: str = "",
    tolerance: float = TOLERANCE,
) -> Proposal:
    """Replicas for a Utilization target (percent of request), from PodMetrics `items`."""
    metrics, stamp = _metrics_for(items, resource, container)
    groups, metrics = _select(pods, metrics, resource, now)
    requests = pod_requests(pods, resource, container)
    ratio, utilization, average = utilization_ratio(metrics, requests, target_utilization)

    def proposal(replicas: int) -> Proposal:
        return Proposal(replicas, average, utilization, stamp)

    up_with_unready = bool(groups.unready) and ratio > 1.0
    if not up_with_unready and not groups.missing:
        if abs(1.0 - ratio) <= tolerance:
            return proposal(current)
        return proposal(math.ceil(ratio * groups.ready_count))
    filled = dict(metrics)
    if ratio < 1.0:
        fallback = max(100, target_utilization)
        for name in groups.missing:
            filled[name] = PodMetric(requests.get(name, 0) * fallback // 100)
    elif ratio > 1.0:
        for name in groups.missing:
            filled[name] = PodMetric(0)
    if up_with_unready:
        for name in groups.unready:
            filled[name] = PodMetric(0)
    new_ratio, _, _ = utilization_ratio(filled, requests, target_utilization)
    return proposal(_reconsidered(current, ratio, new_ratio, len(filled), tolerance))


def raw_resource_replicas(
    current: int,
    target_average: int,
    resource: str,
    pods: list[JSONDict],
    items: list[JSONDict],
    now: datetime,
    container: str = "",
    tolerance: float = TOLERANCE,
) -> Proposal:
    """Replicas for an AverageValue target (`target_average` in milli-units per pod)."""
    metrics, stamp = _metrics_for(items, resource, container)
    groups, metrics = _select(pods, metrics, resource, now)
    ratio, average = usage_ratio(metrics, target_average)

    def proposal(replicas: int) -> Proposal:
        return Proposal(replicas, average, None, stamp)

    up_with_unready = bool(groups.unready) and ratio > 1.0
    if not up_with_unready and not groups.missing:
        if abs(1.0 - ratio) <= tolerance:
            return proposal(current)
        return proposal(math.ceil(ratio * groups.ready_count))
    filled = dict(metrics)
    for name in groups.missing:
        # Scaling down, a missing pod uses exactly the target; scaling up, nothing.
        filled[name] = PodMetric(target_average if ratio < 1.0 else 0)
    if up_with_unready:
        for name in groups.unready:
            filled[name] = PodMetric(0)
    new_ratio, _ = usage_ratio(filled, target_average)
    return proposal(_reconsidered(current, ratio, new_ratio, len(filled), tolerance))
