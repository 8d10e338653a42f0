"""Workload controllers say, as upstream's do, when the API refuses the pods they create:
a Warning FailedCreate Event on the workload (then they retry with back-off)."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.controllers.daemonset import DaemonSetController
from reconciler.controllers.job import JobController
from reconciler.controllers.statefulset import StatefulSetController

TEMPLATE = {
    "metadata": {"labels": {"app": "w"}},
    "spec": {
        "priorityClassName": "missing",
        "containers": [{"name": "c", "image": "busybox"}],
    },
}


def workload(kind: str) -> dict[str, Any]:
    group = "batch/v1" if kind == "Job" else "apps/v1"
    spec: dict[str, Any] = {"template": TEMPLATE}
    if kind == "Job":
        spec["template"] = {**TEMPLATE, "spec": {**TEMPLATE["spec"], "restartPolicy": "Never"}}
    else:
        spec["selector"] = {"matchLabels": {"app": "w"}}
    if kind == "StatefulSet":
        spec["serviceName"] = "w"
    return {
        "apiVersion": group,
        "kind": kind,
        "metadata": {"name": "w", "namespace": "default"},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("kind", "controller", "message"),
    [
        (
            "StatefulSet",
            StatefulSetController,
            'create Pod w-0 in StatefulSet w failed error: pods "w-0" is forbidden: no '
            "PriorityClass with name missing was found",
        ),
        (
            "Job",
            JobController,
            'Error creating: pods "w-" is forbidden: no PriorityClass with name missing was found',
        ),
        (
            "DaemonSet",
            DaemonSetController,
            'Error creating: pods "w-" is forbidden: no PriorityClass with name missing was found',
        ),
    ],
)
async def test_a_refused_pod_is_a_failed_create_event(
    plane: Any, kind: str, controller: Any, message: str
) -> None:
    p = await plane(controller)
    await p.client.create(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "n1"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }
    )
    await p.client.create(workload(kind))

    async def failed() -> list[str]:
        events = (await p.client.list("v1", "Event", "default")).items
        return [
            e["message"]
            for e in events
            if e.get("reason") == "FailedCreate" and e["involvedObject"]["kind"] == kind
        ]

    assert await p.eventually(failed, what="a FailedCreate event") == [message]
    assert await p.pods() == []
