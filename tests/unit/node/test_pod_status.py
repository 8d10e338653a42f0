"""The pod status the node writes (pure): resize results and conditions others own."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.node.status import ContainerView, PodView, pod_status
from reconciler.runtime.base import ContainerId, ContainerState, ContainerStatus

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def view(**container: object) -> PodView:
    running = ContainerState(ContainerId("c1"), "c", "img", {}, ContainerStatus.RUNNING)
    app = ContainerView(
        name="app",
        image="img",
        current=running,
        ready=True,
        started=True,
        **container,  # type: ignore[arg-type]
    )
    return PodView(
        init=[],
        app=[app],
        pod_ip="10.0.0.2",
        host_ip="127.0.0.1",
        start_time=NOW,
        initialized=True,
        sandbox_ready=True,
    )


def test_a_refused_resize_is_reported_until_it_is_not() -> None:
    pod = {"spec": {"containers": [{"name": "app"}]}, "status": {}}
    refused = pod_status(pod, view(resize_error="Minimum memory limit allowed is 6MB"), NOW)
    condition = next(c for c in refused["conditions"] if c["type"] == "PodResizeInProgress")
    assert (condition["status"], condition["reason"]) == ("True", "Error")
    assert condition["message"] == "Minimum memory limit allowed is 6MB"
    applied = {"requests": {"cpu": "100m"}, "limits": {"cpu": "400m"}}
    fine = pod_status({**pod, "status": refused}, view(resources=applied), NOW)
    assert all(c["type"] != "PodResizeInProgress" for c in fine["conditions"])
    (status,) = fine["containerStatuses"]
    assert status["resources"] == applied and status["allocatedResources"] == {"cpu": "100m"}
