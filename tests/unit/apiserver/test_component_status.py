"""`kubectl get componentstatuses` over HTTP: each part asked at each read, nothing stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.inprocess import InProcessClient
from reconciler.clock import ManualClock
from reconciler.controllers.base import ControllerManager
from reconciler.controllers.informer import InformerFactory, ObjKey
from reconciler.controllers.queue import WorkQueue

CS = "/api/v1/componentstatuses"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ApiServer]:
    srv = ApiServer(ServerOptions(data_dir=tmp_path, port=0), ManualClock())
    await srv.start()
    yield srv
    await srv.stop()


async def call(
    server: ApiServer, method: str, path: str, accept: str = "application/json"
) -> tuple[int, Any, list[str]]:
    assert server.credentials is not None
    headers = {"Authorization": f"Bearer {server.credentials.token}", "Accept": accept}
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http,
        http.request(method, f"https://127.0.0.1:{server.port}{path}", headers=headers) as r,
    ):
        return r.status, await r.json(), r.headers.getall("Warning", [])


async def test_the_store_alone_without_controllers(server: ApiServer) -> None:
    status, listed, warnings = await call(server, "GET", CS)
    assert status == 200 and listed["kind"] == "ComponentStatusList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["etcd-0"]
    assert listed["items"][0]["conditions"] == [
        {"type": "Healthy", "status": "True", "message": "ok"}
    ]
    assert any("ComponentStatus is deprecated" in w for w in warnings)


async def test_a_part_in_trouble_is_unhealthy_with_its_error(server: ApiServer) -> None:
    server.components = lambda: {"scheduler": None, "controller-manager": "job: a worker ended"}
    status, table, _ = await call(server, "GET", CS, TABLE)
    assert status == 200
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Status", "Message", "Error"]
    rows = [r["cells"] for r in table["rows"]]
    assert rows == [
        ["controller-manager", "Unhealthy", "", "job: a worker ended"],
        ["etcd-0", "Healthy", "ok", ""],
        ["scheduler", "Healthy", "ok", ""],
    ]
    server.service.store.problem = lambda: "sqlite: disk I/O error"  # type: ignore[method-assign]
    status, one, _ = await call(server, "GET", f"{CS}/etcd-0")
    assert status == 200
    assert one["conditions"] == [
        {"type": "Healthy", "status": "False", "error": "sqlite: disk I/O error"}
    ]


async def test_lists_honour_selectors(server: ApiServer) -> None:
    _, listed, _ = await call(server, "GET", f"{CS}?fieldSelector=metadata.name%3Detcd-0")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["etcd-0"]
    _, listed, _ = await call(server, "GET", f"{CS}?labelSelector=tier%3Dcontrol-plane")
    assert listed["items"] == []


async def test_only_get_and_list(server: ApiServer) -> None:
    status, body, _ = await call(server, "GET", f"{CS}/nope")
    assert status == 404 and body["reason"] == "NotFound"
    for method, path in (("DELETE", f"{CS}/etcd-0"), ("POST", CS), ("GET", f"{CS}?watch=true")):
        status, body, _ = await call(server, method, path)
        assert status == 405, (method, path)
    assert server.service.store.list("core/componentstatuses") == []


class Idle:
    """A controller with nothing to do: its worker waits on an empty queue."""

    name = "idle"

    def __init__(self) -> None:
        self.queue: WorkQueue[ObjKey] = WorkQueue(ManualClock())

    def setup(self, factory: InformerFactory) -> None:
        pass

    async def reconcile(self, key: ObjKey) -> None:
        return None


async def test_the_controller_manager_says_what_is_wrong(server: ApiServer) -> None:
    manager = ControllerManager(InProcessClient(server.service), server.clock)
    manager.add(Idle())  # type: ignore[arg-type]
    assert manager.problems() == {"idle": "not started: informers not synced"}
    await manager.start()
    try:
        assert manager.problems() == {}
        manager._tasks[0].cancel()
        await asyncio.sleep(0)
        assert manager.problems() == {"idle": "a worker ended"}
    finally:
        await manager.stop()
