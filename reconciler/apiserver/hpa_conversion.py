"""HorizontalPodAutoscaler autoscaling/v1 <-> autoscaling/v2, as upstream converts them.

HPAs are stored as v2; v1 is still what `kubectl autoscale` (1.32) sends, and what older
manifests say. v1 has only a CPU target (`targetCPUUtilizationPercentage`) and its current
value; everything else a v2 object says travels through v1 in annotations, as upstream's
conversion does, so a v1 read-modify-write loses nothing:
`autoscaling.alpha.kubernetes.io/metrics` (the other metrics),
`autoscaling.alpha.kubernetes.io/behavior`, `autoscaling.alpha.kubernetes.io/current-metrics`
and `autoscaling.alpha.kubernetes.io/conditions` (JSON, v2 shapes). Pure.
"""

from __future__ import annotations

import copy
import json
from typing import Any

__all__ = ["hpa_v1_to_v2", "hpa_v2_to_v1"]

JSONDict = dict[str, Any]

_PREFIX = "autoscaling.alpha.kubernetes.io/"
METRICS = _PREFIX + "metrics"
BEHAVIOR = _PREFIX + "behavior"
CURRENT = _PREFIX + "current-metrics"
CONDITIONS = _PREFIX + "conditions"


def _is_cpu_utilization(metric: JSONDict) -> bool:
    resource = metric.get("resource") or {}
    target = resource.get("target") or {}
    return (
        metric.get("type") == "Resource"
        and resource.get("name") == "cpu"
        and target.get("type") == "Utilization"
    )


def _annotation(annotations: JSONDict, key: str) -> Any:
    text = annotations.pop(key, None)
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def hpa_v2_to_v1(stored: JSONDict) -> JSONDict:
    obj = copy.deepcopy(stored)
    obj["apiVersion"] = "autoscaling/v1"
    meta = obj.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    spec = obj.get("spec") or {}
    metrics = spec.pop("metrics", None) or []
    others = [m for m in metrics if not _is_cpu_utilization(m)]
    for metric in metrics:
        if _is_cpu_utilization(metric):
            spec["targetCPUUtilizationPercentage"] = metric["resource"]["target"].get(
                "averageUtilization"
            )
            break
    if others:
        annotations[METRICS] = json.dumps(others, separators=(",", ":"))
    behavior = spec.pop("behavior", None)
    if behavior:
        annotations[BEHAVIOR] = json.dumps(behavior, separators=(",", ":"))
    status = obj.get("status")
    if isinstance(status, dict):
        current = status.pop("currentMetrics", None) or []
        for metric in current:
            resource = metric.get("resource") or {}
            if metric.get("type") == "Resource" and resource.get("name") == "cpu":
                value = (resource.get("current") or {}).get("averageUtilization")
                if value is not None:
                    status["currentCPUUtilizationPercentage"] = value
        rest = [m for m in current if (m.get("resource") or {}).get("name") != "cpu"]
        if rest:
            annotations[CURRENT] = json.dumps(rest, separators=(",", ":"))
        conditions = status.pop("conditions", None)
        if conditions:
            annotations[CONDITIONS] = json.dumps(conditions, separators=(",", ":"))
        status.setdefault("currentReplicas", 0)
    if annotations:
        meta["annotations"] = annotations
    return obj


def hpa_v1_to_v2(given: JSONDict) -> JSONDict:
    obj = copy.deepcopy(given)
    obj["apiVersion"] = "autoscaling/v2"
    meta = obj.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    spec = obj.setdefault("spec", {})
    metrics: list[JSONDict] = []
    target = spec.pop("targetCPUUtilizationPercentage", None)
    if target is not None:
        metrics.append(
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": target},
                },
            }
        )
    others = _annotation(annotations, METRICS)
    if isinstance(others, list):
        metrics += [m for m in others if isinstance(m, dict)]
    if metrics:
        spec["metrics"] = metrics
    behavior = _annotation(annotations, BEHAVIOR)
    if isinstance(behavior, dict):
        spec["behavior"] = behavior
    current_rest = _annotation(annotations, CURRENT)
    conditions = _annotation(annotations, CONDITIONS)
    status = obj.get("status")
    if isinstance(status, dict):
        current: list[JSONDict] = []
        cpu = status.pop("currentCPUUtilizationPercentage", None)
        if cpu is not None:
            current.append(
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "current": {"averageUtilization": cpu}},
                }
            )
        if isinstance(current_rest, list):
            current += [m for m in current_rest if isinstance(m, dict)]
        if current:
            status["currentMetrics"] = current
        if isinstance(conditions, list):
            status["conditions"] = conditions
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return obj
