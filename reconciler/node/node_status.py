"""The Node object for this host, and the Lease that says the node agent is alive.

Why: `kubectl get nodes` and `kubectl describe node` are the first things a Kubernetes user
runs, the scheduler and the DaemonSet controller place pods by the Node's labels, taints and
allocatable, and the Lease in `kube-node-lease` is how Kubernetes tells a live node from a
dead one. The Node is created (or taken over) at start, its status refreshed on every
heartbeat, and the Lease renewed every `heartbeat_s`; nothing else is polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
from collections.abc import Callable, Collection, Mapping
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import AlreadyExistsError, ClientError, NotFoundError
from reconciler.clock import Clock
from reconciler.node.context import NodeSettings
from reconciler.runtime.base import EngineInfo

__all__ = ["NodeRegistration", "allocatable_of", "node_object", "node_status"]

JSONDict = dict[str, Any]

log = logging.getLogger(__name__)

MAX_PODS = 110
LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = "v1.31.0-recon"

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def _arch() -> str:
    machine = platform.machine().lower()
    return _ARCH.get(machine, machine)


def _ts(clock: Clock) -> str:
    return clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")


def allocatable_of(info: EngineInfo, max_pods: int = MAX_PODS) -> dict[str, str]:
    """Capacity in Kubernetes notation: whole CPUs, memory in Ki, `max_pods` pods (kubelet's
    `--max-pods`, 110 by default)."""
    return {
        "cpu": str(info.cpus),
        "memory": f"{info.memory_bytes // 1024}Ki",
        "pods": str(max_pods),
        "ephemeral-storage": "0",
    }


def node_object(settings: NodeSettings) -> JSONDict:
    name = settings.node_name
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": _arch(),
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": _arch(),
                "node-role.kubernetes.io/control-plane": "",
            },
        },
        "spec": {},
    }


_PRESSURE = {
    # condition: (reason, message) without pressure, then with it (the kubelet's words)
    "MemoryPressure": (
        ("KubeletHasSufficientMemory", "has sufficient memory available"),
        ("KubeletHasInsufficientMemory", "has insufficient memory available"),
    ),
    "DiskPressure": (
        ("KubeletHasNoDiskPressure", "has no disk pressure"),
        ("KubeletHasDiskPressure", "has disk pressure"),
    ),
    "PIDPressure": (
        ("KubeletHasSufficientPID", "has sufficient PID available"),
        ("KubeletHasInsufficientPID", "has insufficient PID available"),
    ),
}


def node_status(
    settings: NodeSettings,
    info: EngineInfo,
    runtime_name: str,
    now: str,
    since: Mapping[str, str],
    pressure: Collection[str] = (),
) -> JSONDict:
    """`since`: condition type -> when it last changed; `pressure`: the pressure
    conditions that hold (the eviction manager's)."""
    capacity = allocatable_of(info, settings.max_pods)
    condition_types = [
        (kind, "True" if kind in pressure else "False", *words[kind in pressure])
        for kind, words in _PRESSURE.items()
    ]
    condition_types.append(("Ready", "True", "KubeletReady", "is posting ready status"))
    conditions = [
        {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": f"recon node agent {message}",
            "lastHeartbeatTime": now,
            "lastTransitionTime": since.get(kind, now),
        }
        for kind, status, reason, message in condition_types
    ]
    return {
        "capacity": capacity,
        "allocatable": dict(capacity),
        "conditions": conditions,
        "addresses": [
            {"type": "InternalIP", "address": settings.host_ip},
            {"type": "Hostname", "address": settings.node_name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        "nodeInfo": {
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
            "kernelVersion": info.kernel,
            "osImage": info.os,
            "containerRuntimeVersion": f"{runtime_name}://{info.version}",
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": _arch(),
        },
    }


class NodeRegistration:
    """Creates the Node, keeps its status and Lease fresh, marks it NotReady on stop."""

    def __init__(
        self,
        client: Client,
        clock: Clock,
        settings: NodeSettings,
        info: EngineInfo,
        runtime_name: str,
        pressure: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        self.client = client
        self.clock = clock
        self.settings = settings
        self.info = info
        self.runtime_name = runtime_name
        self._pressure = pressure
        started = _ts(clock)
        self._since: dict[str, str] = {kind: started for kind in (*_PRESSURE, "Ready")}
        self._posted: frozenset[str] = frozenset()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def register(self) -> JSONDict:
        name = self.settings.node_name
        with contextlib.suppress(AlreadyExistsError):
            await self.client.create(node_object(self.settings))
        node = await self.client.get("v1", "Node", name)
        labels = (node.get("metadata") or {}).get("labels") or {}
        wanted = node_object(self.settings)["metadata"]["labels"]
        missing = {k: v for k, v in wanted.items() if k not in labels}
        if missing:
            node = await self.client.patch("v1", "Node", name, {"metadata": {"labels": missing}})
        await self._post_status()
        await self._renew_lease()
        return node

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._beat(), name="node-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def refresh(self) -> None:
        """Post the status now (a condition changed), not at the next heartbeat."""
        self._wake.set()

    async def _beat(self) -> None:
        while True:
            sleeper = asyncio.ensure_future(self.clock.sleep(self.settings.heartbeat_s))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeper, waker):
                    if not task.done():
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
            woken = self._wake.is_set()
            self._wake.clear()
            try:
                if not woken:
                    await self._renew_lease()
                await self._post_status()
            except ClientError as exc:
                log.warning("node heartbeat: %s", exc)

    async def _post_status(self) -> None:
        now = _ts(self.clock)
        pressure = frozenset(self._pressure())
        for kind in _PRESSURE:
            if (kind in pressure) != (kind in self._posted):
                self._since[kind] = now
        self._posted = pressure
        status = node_status(
            self.settings, self.info, self.runtime_name, now, self._since, pressure
        )
        await self.client.patch(
            "v1", "Node", self.settings.node_name, {"status": status}, subresource="status"
        )

    async def _renew_lease(self) -> None:
        now = self.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        name = self.settings.node_name
        spec = {
            "holderIdentity": name,
            "leaseDurationSeconds": self.settings.lease_duration_s,
            "renewTime": now,
        }
        try:
            await self.client.patch(
                "coordination.k8s.io/v1", "Lease", name, {"spec": spec}, namespace=LEASE_NAMESPACE
            )
        except NotFoundError:
            await self._ensure_namespace()
            with contextlib.suppress(AlreadyExistsError):
                await self.client.create(
                    {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {"name": name, "namespace": LEASE_NAMESPACE},
                        "spec": spec,
                    }
                )

    async def _ensure_namespace(self) -> None:
        with contextlib.suppress(AlreadyExistsError):
            await self.client.create(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NAMESPACE}}
            )
