"""ResourceQuotas (pure): what objects use, scopes, and admission's verdicts in upstream's
words."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from reconciler.resource_quota import (
    admission_error,
    counted_resources,
    format_usage,
    total_usage,
    usage,
)

JSONDict = dict[str, Any]


def quota(name: str = "compute", scopes: list[str] | None = None, **hard: str) -> JSONDict:
    spec: JSONDict = {"hard": dict(hard)}
    if scopes:
        spec["scopes"] = scopes
    return {"metadata": {"name": name}, "spec": spec}


def pod(
    cpu: str | None = None, limit: str | None = None, phase: str = "Running", **spec: Any
) -> JSONDict:
    resources: JSONDict = {}
    if cpu:
        resources["requests"] = {"cpu": cpu, "memory": "64Mi"}
    if limit:
        resources["limits"] = {"cpu": limit}
    return {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "app", "resources": resources}], **spec},
        "status": {"phase": phase},
    }


def test_what_a_pod_uses() -> None:
    assert usage("pods", "", pod("250m", "1")) == {
        "count/pods": 1,
        "pods": 1,
        "requests.cpu": Decimal("0.25"),
        "requests.memory": 64 * 2**20,
        "limits.cpu": 1,
    }
    assert usage("pods", "", pod("250m", phase="Succeeded")) == {}  # finished: nothing


def test_what_other_objects_use() -> None:
    service = {"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}}
    assert usage("services", "", service) == {
        "count/services": 1,
        "services": 1,
        "services.nodeports": 2,
        "services.loadbalancers": 1,
    }
    claim = {"spec": {"resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "fast"}}
    used = usage("persistentvolumeclaims", "", claim)
    assert used["requests.storage"] == 2**30
    assert used["fast.storageclass.storage.k8s.io/requests.storage"] == 2**30
    assert usage("deployments", "apps", {}) == {"count/deployments.apps": 1}
    assert counted_resources(
        quota(**{"count/deployments.apps": "2", "cpu": "1", "secrets": "3"})
    ) == {
        ("deployments", "apps"),
        ("pods", ""),
        ("secrets", ""),
    }


def test_exceeding_is_refused_with_what_was_requested_used_and_limited() -> None:
    q = quota(pods="2", **{"requests.cpu": "1"})
    running = [("pods", "", pod("500m")), ("pods", "", pod("250m"))]
    used = total_usage(q, running)
    assert {k: format_usage(k, v) for k, v in used.items()} == {"pods": "2", "requests.cpu": "750m"}
    assert admission_error(q, "pods", "", pod("500m"), used) == (
        "exceeded quota: compute, requested: pods=1,requests.cpu=500m, used: "
        "pods=2,requests.cpu=750m, limited: pods=2,requests.cpu=1"
    )
    assert admission_error(quota(pods="3"), "pods", "", pod("500m"), used) is None
    # cpu is requests.cpu
    assert "requests.cpu=1" in str(admission_error(quota(cpu="1"), "pods", "", pod("500m"), used))


def test_pods_must_say_what_a_compute_quota_counts() -> None:
    q = quota(**{"limits.cpu": "2", "requests.memory": "1Gi"})
    assert admission_error(q, "pods", "", pod(), {}) == (
        "failed quota: compute: must specify limits.cpu for: app; requests.memory for: app"
    )
    assert admission_error(q, "pods", "", pod("100m", "1"), {}) is None


def test_scoped_quotas_count_only_the_pods_they_match() -> None:
    best_effort = quota("be", scopes=["BestEffort"], pods="1")
    assert admission_error(best_effort, "pods", "", pod("100m"), {"pods": 5}) is None
    assert admission_error(best_effort, "pods", "", pod(), {"pods": 1}) is not None
    assert admission_error(best_effort, "services", "", {"spec": {}}, {}) is None
    terminating = quota("t", scopes=["Terminating"], pods="1")
    assert admission_error(terminating, "pods", "", pod(), {"pods": 1}) is None
    assert admission_error(terminating, "pods", "", pod(activeDeadlineSeconds=60), {"pods": 1})
    by_class = quota("high", pods="1")
    by_class["spec"]["scopeSelector"] = {
        "matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]
    }
    assert admission_error(by_class, "pods", "", pod(), {"pods": 1}) is None
    assert admission_error(by_class, "pods", "", pod(priorityClassName="high"), {"pods": 1})
    assert total_usage(
        by_class, [("pods", "", pod(priorityClassName="high")), ("pods", "", pod())]
    ) == {"pods": 1}
