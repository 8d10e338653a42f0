"""In-place pod resize on the node: what to do when a running container's CPU or memory in
the pod spec (changed through `pods/NAME/resize`) no longer matches what it runs with. Pure.

As the kubelet: the engine's limits are changed while the container runs, unless the
container's `resizePolicy` says `RestartContainer` for a resource that changed, in which
case it is restarted with the new values (its restart count goes up). What the container
runs with is read back from the engine (`ContainerState`), so an agent restarted in between
still sees what is left to do.

Before a resize is applied the pod, with its new requests, must fit the node, as the
kubelet checks it (`resize_fit`): more than the node has at all is `Infeasible` ("Node
didn't have enough capacity: cpu, requested: 4000, capacity: 2000"); more than is left
beside the other pods' requests is `Deferred` ("Node didn't have enough resource: memory,
requested: ..., used: ..., capacity: ..."), tried again later. Either way the containers
keep running with what they have, and the pod says so in its `PodResizePending` condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from reconciler.controllers.nodefit import Requests, pod_requests
from reconciler.node.containers import container_limits
from reconciler.quantity import cpu_millis, memory_bytes
from reconciler.runtime.base import ContainerState

__all__ = ["Resize", "resize_action", "resize_fit"]

Resize = tuple[Literal["none", "update", "restart"], tuple[int | None, int | None, int | None]]


def _policy(container: Mapping[str, Any], resource: str) -> str:
    for entry in container.get("resizePolicy") or []:
        if isinstance(entry, dict) and entry.get("resourceName") == resource:
            return str(entry.get("restartPolicy") or "NotRequired")
    return "NotRequired"


def resize_action(container: Mapping[str, Any], state: ContainerState) -> Resize:
    """("none" | "update" | "restart", the engine values wanted: nano-CPUs, memory bytes,
    CPU shares). A value the spec does not set is left alone (a resize cannot remove one).
    Raises ConfigError for a quantity that cannot be read."""
    wanted = container_limits(container, str(container.get("name") or ""))
    nanos, memory, shares = wanted
    cpu_changed = (nanos is not None and nanos != state.nano_cpus) or (
        shares is not None and shares != state.cpu_shares
    )
    memory_changed = memory is not None and memory != state.memory_bytes
    if not (cpu_changed or memory_changed):
        return "none", wanted
    if (cpu_changed and _policy(container, "cpu") == "RestartContainer") or (
        memory_changed and _policy(container, "memory") == "RestartContainer"
    ):
        return "restart", wanted
    return "update", wanted


def resize_fit(
    spec: Mapping[str, Any], allocatable: Mapping[str, Any], others: Requests
) -> tuple[str, str] | None:
    """(reason, message) of a resize the node cannot take now (`Infeasible`, `Deferred`),
    or None when the pod with its new requests fits. `others`: what the other pods on the
    node request. A resource the node does not state is not checked."""
    want = pod_requests(spec)
    sizes = [
        ("cpu", want.cpu_millis, others.cpu_millis, allocatable.get("cpu"), cpu_millis),
        ("memory", want.memory_bytes, others.memory_bytes, allocatable.get("memory"), memory_bytes),
    ]
    known = [(name, asked, used, read(cap)) for name, asked, used, cap, read in sizes if cap]
    for name, asked, _, capacity in sorted(known, key=lambda k: k[0] != "memory"):
        if asked > capacity:
            return (
                "Infeasible",
                f"Node didn't have enough capacity: {name}, requested: {asked}, "
                f"capacity: {capacity}",
            )
    for name, asked, used, capacity in known:
        if asked + used > capacity:
            return (
                "Deferred",
                f"Node didn't have enough resource: {name}, requested: {asked}, used: {used}, "
                f"capacity: {capacity}",
            )
    return None
