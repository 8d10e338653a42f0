"""An embedded API server with the controller manager on the in-process client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.inprocess import InProcessClient
from reconciler.clock import Clock
from reconciler.controllers.base import ControllerManager


class Plane:
    def __init__(
        self, server: ApiServer, client: InProcessClient, manager: ControllerManager
    ) -> None:
        self.server = server
        self.client = client
        self.manager = manager
        self.stopped = False

    async def stop(self) -> None:
        """Stop the controllers and the server (once: the fixture's teardown calls it too)."""
        if not self.stopped:
            self.stopped = True
            await self.manager.stop()
            await self.server.stop()

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

    async def events(self, name: str, reason: str, namespace: str = "default") -> set[str]:
        """The messages of the Events with `reason` about the object called `name`."""
        listed = await self.client.list("v1", "Event", namespace)
        return {
            str(e.get("message"))
            for e in listed.items
            if e.get("reason") == reason and e["involvedObject"].get("name") == name
        }

    async def pods(self, namespace: str = "default", selector: str | None = None) -> list[Any]:
        listed = await self.client.list("v1", "Pod", namespace, label_selector=selector)
        return [p for p in listed.items if not p["metadata"].get("deletionTimestamp")]


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Plane]]]:
    started: list[Plane] = []

    async def start(
        *controllers: Callable[[InProcessClient, Any], Any], clock: Clock | None = None
    ) -> Plane:
        """Start a server (on `clock`, a `ManualClock` for time travel) and `controllers`;
        a second start on the same fixture reopens the same data dir (a restart)."""
        server = ApiServer(ServerOptions(data_dir=tmp_path, port=0), clock)
        await server.start()
        client = InProcessClient(server.service)
        manager = ControllerManager(client, server.clock)
        for make in controllers:
            manager.add(make(client, server.clock))
        await manager.start()
        p = Plane(server, client, manager)
        started.append(p)
        return p

    yield start
    for p in started:
        await p.stop()
