"""Server-side apply over HTTP on an embedded server: PATCH with
`application/apply-patch+yaml`, its status codes and Status bodies, and managedFields kept by
the writes that follow."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from reconciler.apiserver.server import ApiServer, ServerOptions

APPLY = "application/apply-patch+yaml"
URL = "/api/v1/namespaces/default/configmaps/settings"


def config_map(**data: str) -> str:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": data}
    return json.dumps(body)


class Api:
    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http

    async def send(
        self, method: str, body: str, content_type: str, url: str = URL, **query: str
    ) -> tuple[int, Any]:
        async with self.http.request(
            method, url, data=body, params=query, headers={"Content-Type": content_type}
        ) as response:
            return response.status, await response.json()

    async def apply(self, body: str, **query: str) -> tuple[int, Any]:
        return await self.send("PATCH", body, APPLY, **query)

    async def get(self) -> Any:
        async with self.http.get(URL) as response:
            return await response.json()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    await server.start()
    assert server.credentials is not None
    async with aiohttp.ClientSession(
        base_url=f"https://127.0.0.1:{server.port}",
        headers={"Authorization": f"Bearer {server.credentials.token}"},
        connector=aiohttp.TCPConnector(ssl=False),
    ) as http:
        yield Api(http)
    await server.stop()


def managers(obj: Any) -> list[tuple[str, str]]:
    return [(e["manager"], e["operation"]) for e in obj["metadata"].get("managedFields") or []]


async def test_apply_creates_then_updates_and_names_conflicts(api: Api) -> None:
    status, body = await api.apply(config_map(a="1"))
    assert status == 400 and body["message"] == "fieldManager is required for apply requests"
    status, body = await api.apply(config_map(a="1"), fieldManager="ci", dryRun="All")
    assert status == 201 and body["data"] == {"a": "1"}
    async with api.http.get(URL) as response:
        assert response.status == 404  # a dry run stores nothing
    status, created = await api.apply(config_map(a="1", b="2"), fieldManager="ci")
    assert status == 201 and managers(created) == [("ci", "Apply")]

    # another writer (a merge patch, named by its User-Agent) takes the field it changes
    status, patched = await api.send(
        "PATCH",
        json.dumps({"data": {"a": "9"}}),
        "application/merge-patch+json",
    )
    assert status == 200
    assert sorted(managers(patched)) == [("Python", "Update"), ("ci", "Apply")]

    status, body = await api.apply(config_map(a="1", b="2"), fieldManager="ci")
    assert status == 409 and body["reason"] == "Conflict"
    assert body["message"] == (
        'Apply failed with 1 conflict: conflict with "Python" using v1: .data.a'
    )
    assert body["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "Python" using v1',
            "field": ".data.a",
        }
    ]
    assert (await api.get())["data"] == {"a": "9", "b": "2"}  # nothing stored

    # b left out: removed (ci alone owned it); force takes a back
    status, applied = await api.apply(config_map(a="1"), fieldManager="ci", force="true")
    assert status == 200 and applied["data"] == {"a": "1"}
    assert managers(applied) == [("ci", "Apply")]


async def test_objects_never_applied_carry_no_managed_fields(api: Api) -> None:
    status, created = await api.send(
        "POST",
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "settings",
                    "managedFields": [{"manager": "x", "operation": "Update"}],
                },
                "data": {"a": "1"},
            }
        ),
        "application/json",
        URL.rsplit("/", 1)[0],
    )
    assert status == 201 and "managedFields" not in created["metadata"]
    status, updated = await api.send(
        "PATCH", json.dumps({"data": {"a": "2"}}), "application/merge-patch+json"
    )
    assert status == 200 and "managedFields" not in updated["metadata"]
