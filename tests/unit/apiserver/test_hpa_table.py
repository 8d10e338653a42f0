"""`kubectl get hpa`: the columns and cells of upstream's HorizontalPodAutoscaler printer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.apiserver.tables import build_table, table_columns

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

CPU_50 = {
    "type": "Resource",
    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}},
}
MEMORY_100MI = {
    "type": "Resource",
    "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}},
}
CPU_12 = {
    "type": "Resource",
    "resource": {"name": "cpu", "current": {"averageUtilization": 12, "averageValue": "6m"}},
}
MEMORY_20MI = {
    "type": "Resource",
    "resource": {"name": "memory", "current": {"averageValue": "20Mi"}},
}


def hpa(
    metrics: list[dict[str, Any]],
    current: list[dict[str, Any]] | None = None,
    min_replicas: int | None = 1,
    replicas: int | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "maxReplicas": 10,
        "metrics": metrics,
    }
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    obj: dict[str, Any] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "creationTimestamp": "2026-03-01T11:55:00Z",
        },
        "spec": spec,
    }
    if current is not None or replicas is not None:
        obj["status"] = {"currentReplicas": replicas or 0, "desiredReplicas": replicas or 0}
        if current is not None:
            obj["status"]["currentMetrics"] = current
    return obj


def cells(obj: dict[str, Any]) -> list[Any]:
    row: list[Any] = build_table("HorizontalPodAutoscaler", [obj], NOW)["rows"][0]["cells"]
    return row


def test_hpa_columns() -> None:
    columns = table_columns("HorizontalPodAutoscaler")
    assert [(c["name"], c["type"]) for c in columns] == [
        ("Name", "string"),
        ("Reference", "string"),
        ("Targets", "string"),
        ("MinPods", "string"),
        ("MaxPods", "integer"),
        ("Replicas", "integer"),
        ("Age", "string"),
    ]
    assert columns[0]["format"] == "name"


def test_before_any_metrics_the_target_is_unknown() -> None:
    assert cells(hpa([CPU_50])) == ["web", "Deployment/web", "cpu: <unknown>/50%", "1", 10, 0, "5m"]


def test_measured_utilization_and_average_value() -> None:
    shown = cells(hpa([CPU_50, MEMORY_100MI], [CPU_12, MEMORY_20MI], replicas=3))
    assert shown[2] == "cpu: 12%/50%, memory: 20Mi/100Mi"
    assert shown[5] == 3


@pytest.mark.parametrize(
    ("metrics", "current", "text"),
    [
        # A failed metric leaves an empty entry: the others keep their place.
        (
            [CPU_50, MEMORY_100MI],
            [{"type": ""}, MEMORY_20MI],
            "cpu: <unknown>/50%, memory: 20Mi/100Mi",
        ),
        ([], None, "<none>"),
        (
            [
                {
                    "type": "ContainerResource",
                    "containerResource": {
                        "name": "cpu",
                        "container": "app",
                        "target": {"type": "Utilization", "averageUtilization": 60},
                    },
                }
            ],
            [
                {
                    "type": "ContainerResource",
                    "containerResource": {
                        "name": "cpu",
                        "container": "app",
                        "current": {"averageUtilization": 75},
                    },
                }
            ],
            "cpu: 75%/60%",
        ),
        (
            [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": "packets-per-second"},
                        "target": {"type": "AverageValue", "averageValue": "1k"},
                    },
                }
            ],
            None,
            "<unknown>/1k",
        ),
        (
            [
                {
                    "type": "External",
                    "external": {
                        "metric": {"name": "queue"},
                        "target": {"type": "Value", "value": "30"},
                    },
                }
            ],
            None,
            "<unknown>/30",
        ),
        (
            [CPU_50, CPU_50, MEMORY_100MI],
            None,
            "cpu: <unknown>/50%, cpu: <unknown>/50% + 1 more...",
        ),
        ([{"type": "Bogus"}], None, "<unknown type>"),
    ],
)
def test_targets(
    metrics: list[dict[str, Any]], current: list[dict[str, Any]] | None, text: str
) -> None:
    assert cells(hpa(metrics, current))[2] == text


def test_min_pods_unset() -> None:
    assert cells(hpa([CPU_50], min_replicas=None))[3] == "<unset>"
