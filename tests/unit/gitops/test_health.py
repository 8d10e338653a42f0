"""Health per kind: a table of live objects and the status users expect to see."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.gitops.health import (
    DEGRADED,
    HEALTHY,
    MISSING,
    PROGRESSING,
    SUSPENDED,
    assess,
    worst,
)


def deploy(
    spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None, generation: int = 1
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "generation": generation},
        "spec": {"replicas": 3, **(spec or {})},
        "status": status or {},
    }


ROLLED = {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}

CASES: list[tuple[str, dict[str, Any] | None, str]] = [
    ("missing", None, MISSING),
    ("deployment rolled out", deploy(status=ROLLED), HEALTHY),
    ("deployment not observed yet", deploy(status=ROLLED, generation=2), PROGRESSING),
    ("deployment updating", deploy(status={**ROLLED, "updatedReplicas": 1}), PROGRESSING),
    ("deployment old replicas left", deploy(status={**ROLLED, "replicas": 4}), PROGRESSING),
    ("deployment unavailable", deploy(status={**ROLLED, "availableReplicas": 2}), PROGRESSING),
    ("deployment paused", deploy(spec={"paused": True}, status=ROLLED), SUSPENDED),
    (
        "deployment deadline exceeded",
        deploy(
            status={
                **ROLLED,
                "updatedReplicas": 1,
                "conditions": [
                    {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
                ],
            }
        ),
        DEGRADED,
    ),
    (
        "job complete",
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j"},
            "status": {"conditions": [{"type": "Complete", "status": "True"}]},
        },
        HEALTHY,
    ),
    (
        "job failed",
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j"},
            "status": {
                "conditions": [
                    {"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}
                ]
            },
        },
        DEGRADED,
    ),
    (
        "job running",
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j"},
            "status": {"active": 1},
        },
        PROGRESSING,
    ),
    (
        "job suspended",
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j"},
            "spec": {"suspend": True},
        },
        SUSPENDED,
    ),
    (
        "cronjob",
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"}, "spec": {}},
        HEALTHY,
    ),
    (
        "cronjob suspended",
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "c"},
            "spec": {"suspend": True},
        },
        SUSPENDED,
    ),
    (
        "pod ready",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        },
        HEALTHY,
    ),
    (
        "pod not ready",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {},
            "status": {"phase": "Running"},
        },
        PROGRESSING,
    ),
    (
        "pod crashlooping",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {},
            "status": {
                "phase": "Running",
                "containerStatuses": [
                    {"name": "c", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
                ],
            },
        },
        DEGRADED,
    ),
    (
        "pod image pull",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {},
            "status": {
                "phase": "Pending",
                "containerStatuses": [
                    {"name": "c", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
                ],
            },
        },
        DEGRADED,
    ),
    (
        "pod succeeded",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "status": {"phase": "Succeeded"},
        },
        HEALTHY,
    ),
    (
        "pod pending",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "status": {"phase": "Pending"},
        },
        PROGRESSING,
    ),
    (
        "pvc bound",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "d"},
            "status": {"phase": "Bound"},
        },
        HEALTHY,
    ),
    (
        "pvc pending",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "d"},
            "status": {"phase": "Pending"},
        },
        PROGRESSING,
    ),
    (
        "statefulset ready",
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db", "generation": 1},
            "spec": {"replicas": 2},
            "status": {
                "observedGeneration": 1,
                "readyReplicas": 2,
                "updatedReplicas": 2,
                "currentRevision": "a",
                "updateRevision": "a",
            },
        },
        HEALTHY,
    ),
    (
        "statefulset starting",
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db", "generation": 1},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, "readyReplicas": 1},
        },
        PROGRESSING,
    ),
    (
        "daemonset",
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "d", "generation": 1},
            "status": {
                "observedGeneration": 1,
                "desiredNumberScheduled": 1,
                "updatedNumberScheduled": 1,
                "numberAvailable": 1,
            },
        },
        HEALTHY,
    ),
    ("configmap", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}, HEALTHY),
    (
        "being deleted",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "deletionTimestamp": "2026-01-01T00:00:00Z"},
        },
        PROGRESSING,
    ),
]


@pytest.mark.parametrize(("name", "obj", "expected"), CASES, ids=[c[0] for c in CASES])
def test_assess(name: str, obj: dict[str, Any] | None, expected: str) -> None:
    assert assess(obj).status == expected


def test_service_needs_ready_endpoints() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}},
    }
    assert assess(svc).status == PROGRESSING
    assert assess(svc, {"subsets": [{"notReadyAddresses": [{"ip": "10.0.0.1"}]}]}).status == (
        PROGRESSING
    )
    assert assess(svc, {"subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]}).status == HEALTHY
    headless_external = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"type": "ExternalName", "externalName": "example.com"},
    }
    assert assess(headless_external).status == HEALTHY


def test_rollout_message_reads_like_kubectl() -> None:
    health = assess(deploy(status={**ROLLED, "updatedReplicas": 1}))
    assert health.message == (
        "Waiting for rollout to finish: 1 out of 3 new replicas have been updated..."
    )


def test_worst_orders_statuses() -> None:
    assert worst([]) == HEALTHY
    assert worst([HEALTHY, SUSPENDED]) == SUSPENDED
    assert worst([HEALTHY, PROGRESSING, DEGRADED]) == DEGRADED
    assert worst([DEGRADED, MISSING]) == MISSING
