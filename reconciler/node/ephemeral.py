"""Ephemeral containers (`kubectl debug`) on this node: which to start, and whose processes
they see. Pure; the pod worker starts them.

The kubelet's rules (`computePodActions`, `getTargetID`):

- an ephemeral container the engine has no record of is started in the pod's sandbox (its
  network and IPC namespaces), even while init containers are still running: it is how
  one debugs a pod stuck there;
- one that has a record, running or exited, is left alone: ephemeral containers are never
  restarted, and only stop with the pod (or by themselves);
- `targetContainerName` puts it in that container's PID namespace, so `ps` shows the
  target's processes; the target must be running in the current sandbox, otherwise the
  start fails (`CreateContainerConfigError`) and is tried again. With
  `shareProcessNamespace` the whole pod has one PID namespace and the target changes
  nothing.

Re-adoption after a restart needs nothing more: records carry the container's name
(`containers.py`), so a running debug container is found and kept, an exited one stays
exited.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.node.env import ConfigError
from reconciler.runtime.base import SANDBOX_ID_LABEL, ContainerState, ContainerStatus

__all__ = ["never_started", "target_id"]

JSONDict = dict[str, Any]


def never_started(
    pod: Mapping[str, Any], records: Mapping[str, list[ContainerState]]
) -> list[JSONDict]:
    """The pod's ephemeral containers that have no record on the engine, in spec order."""
    ephemeral = (pod.get("spec") or {}).get("ephemeralContainers") or []
    return [c for c in ephemeral if isinstance(c, dict) and not records.get(str(c.get("name")))]


def target_id(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    records: Mapping[str, list[ContainerState]],
    sandbox_id: str,
) -> str | None:
    """The engine id of the running container whose PID namespace `container` joins; None
    when it names no target or the pod shares one PID namespace anyway. Raises
    ConfigError when the target is not running in the sandbox `sandbox_id`.

    `records`: each container name's records, oldest first (the newest is current)."""
    target = str(container.get("targetContainerName") or "")
    if not target or (pod.get("spec") or {}).get("shareProcessNamespace"):
        return None
    found = records.get(target) or []
    current = found[-1] if found else None
    if (
        current is None
        or current.status != ContainerStatus.RUNNING
        or current.labels.get(SANDBOX_ID_LABEL) != sandbox_id
    ):
        raise ConfigError(f"unable to find target container {target}: it is not running")
    return str(current.id)
