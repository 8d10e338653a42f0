"""In-place pod resize on the node: what to do when a running container's CPU or memory in
the pod spec (changed through `pods/NAME/resize`) no longer matches what it runs with. Pure.

As the kubelet: the engine's limits are changed while the container runs, unless the
container's `resizePolicy` says `RestartContainer` for a resource that changed, in which
case it is restarted with the new values (its restart count goes up). What the container
runs with is read back from the engine (`ContainerState`), so an agent restarted in between
still sees what is left to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from reconciler.node.containers import container_limits
from reconciler.runtime.base import ContainerState

__all__ = ["Resize", "resize_action"]

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
