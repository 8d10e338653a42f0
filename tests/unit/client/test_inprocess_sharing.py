"""What the in-process client shares and what it copies.

Watch events carry the store's own objects (read-only, as every informer cache is), so the
informers of the controllers and of the node agent hold one copy of each object between
them; answers to get, list and writes are private copies, whose strings are shared."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client import WatchEvent
from reconciler.client.inprocess import InProcessClient

JSONDict = dict[str, Any]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ApiServer]:
    api = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    await api.start()
    yield api
    await api.stop()


def cm(name: str, value: str) -> JSONDict:
    meta = {"name": name, "namespace": "default"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": value}}


async def first_event(client: InProcessClient, version: str) -> WatchEvent:
    async for event in client.watch("v1", "ConfigMap", "default", resource_version=version):
        return event
    raise AssertionError("the watch ended")


async def test_every_watcher_gets_the_stored_object_itself(server: ApiServer) -> None:
    client = InProcessClient(server.service)
    version = (await client.list("v1", "ConfigMap", "default")).resource_version
    watches = [asyncio.create_task(first_event(client, version)) for _ in range(2)]
    await asyncio.sleep(0)
    await client.create(cm("shared", "value-1"))
    one, two = await asyncio.gather(*watches)
    stored = server.store.get("core/configmaps", "default", "shared")
    assert one.object is stored.body and two.object is stored.body


async def test_answers_are_private_copies_sharing_their_strings(server: ApiServer) -> None:
    client = InProcessClient(server.service)
    created = await client.create(cm("mine", "value-2"))
    got = await client.get("v1", "ConfigMap", "mine", "default")
    (listed,) = (await client.list("v1", "ConfigMap", "default")).items
    stored = server.store.get("core/configmaps", "default", "mine").body
    for copy in (created, got, listed):
        assert copy == stored and copy is not stored and copy["data"] is not stored["data"]
        assert copy["data"]["k"] is stored["data"]["k"]  # one string, however many copies
    got["data"]["k"] = "changed"  # a private copy: the store does not see it
    assert server.store.get("core/configmaps", "default", "mine").body["data"]["k"] == "value-2"
