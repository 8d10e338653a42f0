"""The node's in-place resize decision (pure): nothing, an update, or a restart."""

from __future__ import annotations

from typing import Any

from reconciler.node.containers import definition_changed, definition_hash
from reconciler.node.resize import resize_action
from reconciler.runtime.base import ContainerId, ContainerState, ContainerStatus


def state(nanos: int | None, memory: int | None, shares: int | None) -> ContainerState:
    return ContainerState(
        ContainerId("c1"),
        "c",
        "img",
        {},
        ContainerStatus.RUNNING,
        memory_bytes=memory,
        nano_cpus=nanos,
        cpu_shares=shares,
    )


def container(**resources: Any) -> dict[str, Any]:
    return {"name": "app", "image": "img", "resources": resources}


def test_nothing_update_or_restart() -> None:
    spec = container(requests={"cpu": "250m"}, limits={"cpu": "500m", "memory": "64Mi"})
    running = state(500_000_000, 64 * 2**20, 256)
    assert resize_action(spec, running) == ("none", (500_000_000, 64 * 2**20, 256))
    more = container(requests={"cpu": "500m"}, limits={"cpu": "1", "memory": "64Mi"})
    assert resize_action(more, running) == ("update", (1_000_000_000, 64 * 2**20, 512))
    more["resizePolicy"] = [{"resourceName": "cpu", "restartPolicy": "RestartContainer"}]
    assert resize_action(more, running)[0] == "restart"
    # only memory is RestartContainer: a CPU change alone is applied in place
    more["resizePolicy"] = [{"resourceName": "memory", "restartPolicy": "RestartContainer"}]
    assert resize_action(more, running)[0] == "update"
    # nothing set: nothing to change (a resize cannot remove a limit)
    assert resize_action(container(), state(None, None, None))[0] == "none"


def test_a_resize_is_no_change_of_definition() -> None:
    before = container(limits={"cpu": "500m"})
    labels = {"recon.dev/definition-hash": definition_hash(before)}
    assert not definition_changed(container(limits={"cpu": "1"}), labels)
    assert definition_changed({**before, "image": "other"}, labels)


def test_a_resize_must_fit_the_node_first() -> None:
    from reconciler.controllers.nodefit import Requests
    from reconciler.node.resize import resize_fit

    allocatable = {"cpu": "2", "memory": "4Gi"}

    def fit(cpu: str, memory: str, others: Requests | None = None) -> tuple[str, str] | None:
        spec = {"containers": [container(requests={"cpu": cpu, "memory": memory})]}
        return resize_fit(spec, allocatable, others or Requests())

    assert fit("1500m", "1Gi") is None
    # more than the node has at all: never (memory is looked at first, as the kubelet)
    assert fit("3", "1Gi") == (
        "Infeasible",
        "Node didn't have enough capacity: cpu, requested: 3000, capacity: 2000",
    )
    assert fit("3", "8Gi") == (
        "Infeasible",
        f"Node didn't have enough capacity: memory, requested: {8 * 2**30}, capacity: {4 * 2**30}",
    )
    # more than is left beside the other pods: later
    assert fit("1500m", "1Gi", Requests(1000, 2**30)) == (
        "Deferred",
        "Node didn't have enough resource: cpu, requested: 1500, used: 1000, capacity: 2000",
    )
    # a resource the node does not state is not checked
    assert resize_fit({"containers": [container(requests={"cpu": "64"})]}, {}, Requests()) is None
