"""A real embedded API server + scheduler + node agent on the in-memory runtime.

The runtime and the agent share a `ManualClock`, so back-offs, probe periods and grace
periods are driven by `advance`; the API server keeps real time (it only stamps objects).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.inprocess import InProcessClient
from reconciler.clock import ManualClock
from reconciler.controllers.base import ControllerManager
from reconciler.controllers.persistentvolume import PersistentVolumeController
from reconciler.controllers.pvc_protection import PvcProtectionController
from reconciler.controllers.scheduler import Scheduler
from reconciler.node.agent import NodeAgent
from reconciler.node.claim_volumes import claim_volume_name
from reconciler.node.context import NodeSettings
from reconciler.node.prober import MemoryProber
from reconciler.runtime.base import ContainerState, ContainerStatus
from reconciler.runtime.memory import MemoryRuntime

JSONDict = dict[str, Any]

NODE = "node-a"


class NodeHarness:
    def __init__(
        self,
        server: ApiServer,
        client: InProcessClient,
        runtime: MemoryRuntime,
        clock: ManualClock,
        manager: ControllerManager,
    ) -> None:
        self.server = server
        self.client = client
        self.runtime = runtime
        self.clock = clock
        self.manager = manager
        self.agent: NodeAgent | None = None

    def settings(self) -> NodeSettings:
        return NodeSettings(node_name=NODE, agent_id="test", pause_image="fake/pause")

    async def start_agent(self) -> NodeAgent:
        self.agent = NodeAgent(
            self.client, self.runtime, self.clock, self.settings(), MemoryProber(self.runtime)
        )
        await self.agent.start()
        return self.agent

    async def stop_agent(self) -> None:
        if self.agent is not None:
            await self.agent.stop()
            self.agent = None

    async def eventually(
        self, check: Callable[[], Awaitable[Any]], timeout: float = 5.0, what: str = ""
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Any = None
        while loop.time() < deadline:
            last = await check()
            if last:
                return last
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what or check}: last {last!r}")

    async def create_pod(self, name: str, spec: JSONDict, **meta: Any) -> JSONDict:
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", **meta},
            "spec": spec,
        }
        return await self.client.create(body)

    async def pod(self, name: str) -> JSONDict:
        return await self.client.get("v1", "Pod", name, "default")

    async def wait_pod(
        self, name: str, check: Callable[[JSONDict], bool], timeout: float = 5.0, what: str = ""
    ) -> JSONDict:
        async def probe() -> JSONDict | None:
            pod = await self.pod(name)
            return pod if check(pod) else None

        try:
            result: JSONDict = await self.eventually(probe, timeout, what or f"pod {name}")
        except AssertionError as exc:
            pod = await self.pod(name)
            raise AssertionError(f"{exc}; the pod's status: {pod.get('status')}") from None
        return result

    async def containers(self, pod: JSONDict, name: str | None = None) -> list[ContainerState]:
        uid = pod["metadata"]["uid"]
        records = await self.runtime.list_containers({"recon.dev/pod-uid": uid})
        if name is not None:
            records = [r for r in records if r.labels.get("recon.dev/container-name") == name]
        return records

    async def running(self, pod: JSONDict) -> list[ContainerState]:
        return [r for r in await self.containers(pod) if r.status == ContainerStatus.RUNNING]

    async def settle(self, rounds: int = 20) -> None:
        for _ in range(rounds):
            await asyncio.sleep(0)

    async def advance(self, seconds: float, step: float = 1.0) -> None:
        """Move the manual clock in steps, letting tasks run in between."""
        moved = 0.0
        while moved < seconds:
            delta = min(step, seconds - moved)
            self.clock.advance(delta)
            moved += delta
            await asyncio.sleep(0.005)


def status_of(pod: JSONDict, container: str) -> JSONDict:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status["name"] == container:
            return dict(status)
    return {}


def condition(pod: JSONDict, kind: str) -> str | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return str(cond["status"])
    return None


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[NodeHarness]:
    server = ApiServer(ServerOptions(data_dir=tmp_path / "api", port=0))
    await server.start()
    client = InProcessClient(server.service)
    manager = ControllerManager(client, server.clock)
    manager.add(Scheduler(client, server.clock))
    manager.add(PvcProtectionController(client, server.clock))
    manager.add(PersistentVolumeController(client, server.clock, claim_volume_name))
    await manager.start()
    clock = ManualClock()
    runtime = MemoryRuntime(clock=clock, pullable=("*",), memory_dir_root=tmp_path / "shm")
    harness = NodeHarness(server, client, runtime, clock, manager)
    await harness.start_agent()

    try:
        yield harness
    finally:
        await harness.stop_agent()
        await manager.stop()
        await runtime.close()
        await server.stop()
