"""From an HPA's `spec.metrics` to one replica proposal, status entries and failures. Pure.

The controller (`hpa.py`) fetches what can only be fetched (the target's Scale, the pods,
the PodMetrics items); `evaluate` does the rest as upstream's `computeReplicasForMetrics`:
each metric proposes replicas (`hpa_math`), the largest proposal wins, and a metric that
cannot be computed leaves an empty status entry (`{"type": ""}`, so entries stay aligned
with `spec.metrics`, as upstream and `kubectl get hpa` expect), a Warning event, and a
candidate ScalingActive=False condition. When every metric fails, or some fail and the
others would scale down, nothing is proposed (`replicas` is None): a blind scale-down is
worse than none.

Supported: Resource and ContainerResource metrics (cpu, memory; Utilization and
AverageValue targets). Pods, Object and External metrics need the custom and external
metrics APIs, which Recon does not serve: they fail with a message saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.controllers.hpa_math import (
    Proposal,
    ReplicaCalcError,
    raw_resource_replicas,
    resource_replicas,
)
from reconciler.controllers.hpa_metrics import format_milli, milli_value
from reconciler.quantity import QuantityError

__all__ = [
    "DEFAULT_METRICS",
    "Condition",
    "Evaluation",
    "Event",
    "MetricOutcome",
    "evaluate",
    "evaluate_metric",
]

JSONDict = dict[str, Any]

DEFAULT_METRICS: list[JSONDict] = [
    {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
    }
]
"""What upstream's API defaulting gives an HPA without metrics (`kubectl autoscale` without
--cpu-percent): 80% of the cpu request. Recon's API does not default HPAs, so the controller
reads an empty list this way."""

_UNSERVED = {
    "Pods": ("FailedGetPodsMetric", "custom metrics API (custom.metrics.k8s.io)"),
    "Object": ("FailedGetObjectMetric", "custom metrics API (custom.metrics.k8s.io)"),
    "External": ("FailedGetExternalMetric", "external metrics API (external.metrics.k8s.io)"),
}


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str


@dataclass(frozen=True)
class MetricOutcome:
    """One metric's answer: a proposal and its status entry, or a failure (`error`, with
    the event and the ScalingActive condition it causes)."""

    replicas: int = 0
    name: str = ""
    status: JSONDict | None = None
    error: str = ""
    event: Event | None = None
    condition: Condition | None = None


@dataclass(frozen=True)
class Evaluation:
    replicas: int | None
    """The largest proposal; None when the metrics do not allow scaling at all."""
    metric: str
    statuses: list[JSONDict]
    condition: Condition | None
    error: str = ""
    events: list[Event] = field(default_factory=list)


def _failure(reason: str, inner: str, outer: str) -> MetricOutcome:
    return MetricOutcome(
        error=outer,
        event=Event("Warning", reason, inner),
        condition=Condition(
            "ScalingActive",
            "False",
            reason,
            f"the HPA was unable to compute the replica count: {inner}",
        ),
    )


def _resource(
    source: JSONDict,
    current: int,
    pods: list[JSONDict],
    items: list[JSONDict] | str,
    now: datetime,
    container: str,
) -> tuple[Proposal, str, JSONDict]:
    """(proposal, metric name for messages, `current` status value); raises ValueError with
    upstream's message."""
    name = str(source.get("name") or "")
    target = source.get("target") or {}
    if isinstance(items, str):  # the source failed: its message, as a metrics-client error
        kind = "usage" if target.get("averageValue") is not None else "utilization"
        raise ValueError(
            f"failed to get {name} {kind}: unable to get metrics for resource {name}: {items}"
        )
    if target.get("averageValue") is not None:
        try:
            wanted = milli_value(target["averageValue"])
            proposal = raw_resource_replicas(current, wanted, name, pods, items, now, container)
        except (ReplicaCalcError, QuantityError) as e:
            raise ValueError(f"failed to get {name} usage: {e}") from None
        return proposal, f"{name} resource", {"averageValue": format_milli(proposal.average)}
    utilization = target.get("averageUtilization")
    if not isinstance(utilization, int) or isinstance(utilization, bool) or utilization <= 0:
        raise ValueError(
            "invalid resource metric source: neither an average utilization target nor an "
            "average value (usage) target was set"
        )
    try:
        proposal = resource_replicas(current, utilization, name, pods, items, now, container)
    except ReplicaCalcError as e:
        raise ValueError(f"failed to get {name} utilization: {e}") from None
    what = "container resource" if container else "resource"
    return (
        proposal,
        f"{name} {what} utilization (percentage of request)",
        {
            "averageUtilization": proposal.utilization,
            "averageValue": format_milli(proposal.average),
        },
    )


def evaluate_metric(
    spec: JSONDict,
    current: int,
    pods: list[JSONDict],
    items: list[JSONDict] | str,
    now: datetime,
) -> MetricOutcome:
    """One entry of `spec.metrics`. `items` are the PodMetrics of the target's pods, or the
    message of why the metrics source could not answer."""
    kind = str(spec.get("type") or "")
    if kind in ("Resource", "ContainerResource"):
        field_name = "resource" if kind == "Resource" else "containerResource"
        source = spec.get(field_name) or {}
        container = str(source.get("container") or "") if kind == "ContainerResource" else ""
        reason = f"FailedGet{kind}Metric"
        try:
            proposal, name, current_value = _resource(source, current, pods, items, now, container)
        except ValueError as e:
            outer = (
                f"failed to get {source.get('name')} resource metric value: {e}"
                if kind == "Resource"
                else f"failed to get {container} container metric value: {e}"
            )
            return _failure(reason, str(e), outer)
        entry: JSONDict = {"name": source.get("name"), "current": current_value}
        if container:
            entry["container"] = container
        return MetricOutcome(proposal.replicas, name, {"type": kind, field_name: entry})
    if kind in _UNSERVED:
        reason, api = _UNSERVED[kind]
        source = spec.get(kind.lower()) or {}
        metric = str((source.get("metric") or {}).get("name") or "")
        inner = (
            f"unable to get metric {metric}: Recon does not serve the {api}; only Resource and "
            "ContainerResource metrics are supported"
        )
        outer = (
            f"failed to get {metric} external metric value: {inner}"
            if kind == "External"
            else f"failed to get {kind.lower()} metric value: {inner}"
        )
        return _failure(reason, inner, outer)
    inner = f'unknown metric source type "{kind}"'
    return _failure("InvalidMetricSourceType", inner, inner)


def evaluate(
    metrics: list[JSONDict],
    spec_replicas: int,
    pods: list[JSONDict],
    items: list[JSONDict] | str,
    now: datetime,
) -> Evaluation:
    """All metrics: the largest proposal, the status entries, the ScalingActive condition."""
    replicas, metric, statuses, events = 0, "", [], []
    invalid, first = 0, MetricOutcome()
    for spec in metrics:
        outcome = evaluate_metric(spec, spec_replicas, pods, items, now)
        if outcome.event is not None:
            events.append(outcome.event)
        if outcome.status is None:
            if invalid == 0:
                first = outcome
            invalid += 1
            statuses.append({"type": ""})
            continue
        statuses.append(outcome.status)
        if replicas == 0 or outcome.replicas > replicas:
            replicas, metric = outcome.replicas, outcome.name
    error = ""
    if invalid:
        error = (
            f"invalid metrics ({invalid} invalid out of {len(metrics)}), "
            f"first error is: {first.error}"
        )
    if invalid >= len(metrics) or (invalid and replicas < spec_replicas):
        return Evaluation(None, "", statuses, first.condition, error, events)
    found = Condition(
        "ScalingActive",
        "True",
        "ValidMetricFound",
        f"the HPA was able to successfully calculate a replica count from {metric}",
    )
    return Evaluation(replicas, metric, statuses, found, error, events)
