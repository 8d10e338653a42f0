"""A real embedded API server + scheduler + node agent on the real Docker engine.

Everything the agent creates carries its own agent id, and its networks a prefix of their
own, so teardown removes exactly what this test made (containers, emptyDir and claim
volumes, memory dirs, networks) and nothing of anybody else's.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.inprocess import InProcessClient
from reconciler.clock import Clock, SystemClock
from reconciler.controllers.base import ControllerManager
from reconciler.controllers.persistentvolume import PersistentVolumeController
from reconciler.controllers.scheduler import Scheduler
from reconciler.node.agent import NodeAgent
from reconciler.node.claim_volumes import claim_volume_name
from reconciler.node.containers import AGENT_LABEL, CONTAINER_NAME_LABEL, RESTART_COUNT_LABEL
from reconciler.node.context import NodeSettings
from reconciler.node.prober import NetworkProber
from reconciler.runtime.base import POD_UID_LABEL, ContainerState, run_exec
from reconciler.runtime.docker import DockerRuntime
from reconciler.runtime.errors import ContainerRuntimeError

JSONDict = dict[str, Any]

PAUSE = "recon.local/pause:latest"
BUSYBOX = "recon.local/busybox:latest"


class DockerNode:
    def __init__(self, tmp_path: Path, clock: Clock) -> None:
        self.tmp_path = tmp_path
        self.clock = clock
        tag = uuid.uuid4().hex[:8]
        self.settings = NodeSettings(
            node_name="it-node",
            agent_id=f"it-{tag}",
            pause_image=PAUSE,
            network_prefix=f"recon-it{tag}",
        )
        self.memory_root = Path("/dev/shm") / f"recon-it-{tag}"
        self.server = ApiServer(ServerOptions(data_dir=tmp_path / "api", port=0))
        self.client = InProcessClient(self.server.service)
        self.manager = ControllerManager(self.client, self.server.clock)
        self.manager.add(Scheduler(self.client, self.server.clock))
        self.manager.add(
            PersistentVolumeController(self.client, self.server.clock, claim_volume_name)
        )
        self.runtime: DockerRuntime | None = None
        self.agent: NodeAgent | None = None

    async def start(self) -> None:
        await self.server.start()
        await self.manager.start()
        self.runtime = await DockerRuntime.connect(memory_dir_root=self.memory_root)
        await self.start_agent()

    async def start_agent(self) -> None:
        assert self.runtime is not None
        self.agent = NodeAgent(
            self.client, self.runtime, self.clock, self.settings, NetworkProber()
        )
        await self.agent.start()

    async def stop_agent(self) -> None:
        if self.agent is not None:
            await self.agent.stop()
            self.agent = None

    async def close(self) -> None:
        await self.stop_agent()
        runtime = self.runtime
        if runtime is not None:
            records = await runtime.list_containers({AGENT_LABEL: self.settings.agent_id})
            uids = {r.labels.get(POD_UID_LABEL, "") for r in records}
            for record in records:
                with contextlib.suppress(ContainerRuntimeError):
                    await runtime.remove_container(record.id)
            for uid in uids - {""}:
                for volume in await runtime.list_volumes({POD_UID_LABEL: uid}):
                    with contextlib.suppress(ContainerRuntimeError):
                        await runtime.remove_volume(volume)
            for network in await runtime.list_networks():
                if network.startswith(self.settings.network_prefix + "-"):
                    with contextlib.suppress(ContainerRuntimeError):
                        await runtime.remove_network(network)
            await runtime.close()
        shutil.rmtree(self.memory_root, ignore_errors=True)
        await self.manager.stop()
        await self.server.stop()

    # -- helpers -------------------------------------------------------------------------

    async def eventually(
        self, check: Callable[[], Awaitable[Any]], timeout: float = 30.0, what: str = ""
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Any = None
        while loop.time() < deadline:
            last = await check()
            if last:
                return last
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what or check}: last {last!r}")

    async def create(self, obj: JSONDict) -> JSONDict:
        obj.setdefault("metadata", {}).setdefault("namespace", "default")
        return await self.client.create(obj)

    async def pod(self, name: str) -> JSONDict:
        return await self.client.get("v1", "Pod", name, "default")

    async def wait_pod(
        self, name: str, check: Callable[[JSONDict], bool], timeout: float = 30.0, what: str = ""
    ) -> JSONDict:
        async def probe() -> JSONDict | None:
            pod = await self.pod(name)
            return pod if check(pod) else None

        try:
            found: JSONDict = await self.eventually(probe, timeout, what or f"pod {name}")
        except AssertionError as exc:
            pod = await self.pod(name)
            raise AssertionError(f"{exc}; status: {pod.get('status')}") from None
        return found

    async def records(self, pod: JSONDict, container: str) -> list[ContainerState]:
        assert self.runtime is not None
        found = await self.runtime.list_containers({POD_UID_LABEL: pod["metadata"]["uid"]})
        mine = [r for r in found if r.labels.get(CONTAINER_NAME_LABEL) == container]
        return sorted(mine, key=lambda r: int(r.labels.get(RESTART_COUNT_LABEL, "0")))

    async def exec(self, pod: JSONDict, container: str, *cmd: str) -> tuple[int, str]:
        assert self.runtime is not None
        current = (await self.records(pod, container))[-1]
        result = await run_exec(self.runtime, current.id, list(cmd))
        return result.exit_code, (result.stdout + result.stderr).decode()

    async def logs(self, record: ContainerState) -> str:
        assert self.runtime is not None
        chunks = [c async for c in self.runtime.logs(record.id)]
        return b"".join(chunks).decode()


async def docker_node(tmp_path: Path, clock: Clock | None = None) -> AsyncIterator[DockerNode]:
    node = DockerNode(tmp_path, clock or SystemClock())
    try:
        await node.start()
        yield node
    finally:
        await node.close()


def condition(pod: JSONDict, kind: str) -> str | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return str(cond["status"])
    return None


def container_status(pod: JSONDict, name: str) -> JSONDict:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status["name"] == name:
            return dict(status)
    return {}


def running_and_ready(pod: JSONDict) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and condition(pod, "Ready") == "True"
