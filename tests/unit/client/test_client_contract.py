"""One contract suite for both clients: in-process and HTTP give the same answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client import (
    AlreadyExistsError,
    Client,
    ConflictError,
    GoneError,
    InvalidError,
    NotFoundError,
    WatchEvent,
)
from reconciler.client.http import HttpClient
from reconciler.client.inprocess import InProcessClient


@pytest.fixture(params=["inprocess", "http"])
async def clients(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Client, Client, ApiServer]]:
    """The client under test, and the *other* kind of client on the same server."""
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    await server.start()
    inproc = InProcessClient(server.service)
    http = HttpClient.from_kubeconfig(server.kubeconfig)
    pair: tuple[Client, Client] = (inproc, http) if request.param == "inprocess" else (http, inproc)
    yield pair[0], pair[1], server
    await http.close()
    await server.stop()


def cm(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def deployment(name: str, replicas: Any = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }


async def test_create_get_list_with_selector(clients: Any) -> None:
    client, _, _ = clients
    created = await client.create(cm("a", {"tier": "web"}, k="1"))
    assert created["metadata"]["uid"]
    await client.create(cm("b", {"tier": "db"}))
    got = await client.get("v1", "ConfigMap", "a", "default")
    assert got["data"] == {"k": "1"}
    got["data"]["k"] = "mutated"  # results are private copies
    assert (await client.get("v1", "ConfigMap", "a", "default"))["data"] == {"k": "1"}
    listed = await client.list("v1", "ConfigMap", "default", label_selector="tier=web")
    assert [o["metadata"]["name"] for o in listed.items] == ["a"]
    assert int(listed.resource_version) >= int(created["metadata"]["resourceVersion"])
    paged = await client.list("v1", "ConfigMap", "default", limit=1)
    assert len(paged.items) == 1


async def test_errors_are_typed(clients: Any) -> None:
    client, _, _ = clients
    with pytest.raises(NotFoundError):
        await client.get("v1", "ConfigMap", "missing", "default")
    await client.create(cm("a"))
    with pytest.raises(AlreadyExistsError):
        await client.create(cm("a"))
    with pytest.raises(InvalidError) as info:
        await client.create(deployment("web", "two"))
    assert [c["field"] for c in info.value.causes] == ["spec.replicas"]
    with pytest.raises(NotFoundError):
        await client.resource("example.com/v1", "Gadget")


async def test_update_with_stale_version_conflicts(clients: Any) -> None:
    client, _, _ = clients
    first = await client.create(cm("a", k="1"))
    second = dict(first, data={"k": "2"})
    await client.update(second)
    stale = dict(first, data={"k": "3"})
    with pytest.raises(ConflictError):
        await client.update(stale)
    assert (await client.get("v1", "ConfigMap", "a", "default"))["data"] == {"k": "2"}


async def test_patch_types(clients: Any) -> None:
    client, _, _ = clients
    await client.create(deployment("web"))
    await client.patch(
        "apps/v1", "Deployment", "web", {"spec": {"replicas": 3}}, namespace="default"
    )
    await client.patch(
        "apps/v1",
        "Deployment",
        "web",
        {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"}]}}}},
        namespace="default",
        patch_type="strategic",
    )
    await client.patch(
        "apps/v1",
        "Deployment",
        "web",
        [{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}],
        namespace="default",
        patch_type="json",
    )
    live = await client.get("apps/v1", "Deployment", "web", "default")
    assert live["spec"]["replicas"] == 3 and live["metadata"]["labels"] == {"a": "b"}
    assert sorted(c["name"] for c in live["spec"]["template"]["spec"]["containers"]) == [
        "c",
        "side",
    ]
    await client.patch(
        "apps/v1",
        "Deployment",
        "web",
        {"spec": {"replicas": 5}},
        namespace="default",
        subresource="scale",
    )
    assert (await client.get("apps/v1", "Deployment", "web", "default"))["spec"]["replicas"] == 5


async def test_scale_subresource_get_and_update(clients: Any) -> None:
    client, _, _ = clients
    await client.create(deployment("web", replicas=2))
    scale = await client.get_scale("apps/v1", "Deployment", "web", "default")
    assert (scale["apiVersion"], scale["kind"]) == ("autoscaling/v1", "Scale")
    assert scale["spec"]["replicas"] == 2
    assert scale["status"]["selector"] == "app=web"
    scale["spec"]["replicas"] = 4
    updated = await client.update_scale("apps/v1", "Deployment", "web", scale, "default")
    assert updated["spec"]["replicas"] == 4
    assert (await client.get("apps/v1", "Deployment", "web", "default"))["spec"]["replicas"] == 4
    # The Scale read before the write is stale now: its resourceVersion guards the update.
    with pytest.raises(ConflictError):
        await client.update_scale("apps/v1", "Deployment", "web", scale, "default")
    dry = {**updated, "spec": {"replicas": 9}}
    await client.update_scale("apps/v1", "Deployment", "web", dry, "default", dry_run=True)
    assert (await client.get_scale("apps/v1", "Deployment", "web"))["spec"]["replicas"] == 4


async def test_scale_subresource_errors(clients: Any) -> None:
    client, _, _ = clients
    with pytest.raises(NotFoundError):
        await client.get_scale("apps/v1", "Deployment", "absent", "default")
    await client.create(cm("a"))
    # ConfigMaps serve no scale subresource: the same 404 as for a missing path.
    with pytest.raises(NotFoundError):
        await client.get_scale("v1", "ConfigMap", "a", "default")
    with pytest.raises(NotFoundError):
        await client.update_scale("v1", "ConfigMap", "a", {"spec": {"replicas": 1}}, "default")
    await client.create(deployment("web"))
    with pytest.raises(InvalidError):
        await client.update_scale(
            "apps/v1", "Deployment", "web", {"spec": {"replicas": -1}}, "default"
        )


async def test_status_subresource(clients: Any) -> None:
    client, _, _ = clients
    created = await client.create(deployment("web"))
    created["status"] = {"replicas": 1, "readyReplicas": 1}
    await client.update(created, subresource="status")
    live = await client.get("apps/v1", "Deployment", "web", "default")
    assert live["status"] == {"replicas": 1, "readyReplicas": 1}
    assert live["metadata"]["generation"] == 1


async def test_delete_and_pending_deletion(clients: Any) -> None:
    client, _, _ = clients
    await client.create(cm("a"))
    assert await client.delete("v1", "ConfigMap", "a", "default") is None
    with pytest.raises(NotFoundError):
        await client.get("v1", "ConfigMap", "a", "default")
    held = cm("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    await client.create(held)
    pending = await client.delete("v1", "ConfigMap", "held", "default")
    assert pending is not None and pending["metadata"]["deletionTimestamp"]


async def collect(client: Client, rv: str, count: int) -> list[WatchEvent]:
    events = []
    async for event in client.watch("v1", "ConfigMap", "default", resource_version=rv, timeout=10):
        events.append(event)
        if len(events) == count:
            break
    return events


async def test_watch_sees_the_other_clients_writes(clients: Any) -> None:
    client, other, _ = clients
    start = (await client.list("v1", "ConfigMap", "default")).resource_version
    task = asyncio.create_task(collect(client, start, 3))
    await asyncio.sleep(0.2)
    await other.create(cm("w", k="1"))
    await other.patch("v1", "ConfigMap", "w", {"data": {"k": "2"}}, namespace="default")
    await other.delete("v1", "ConfigMap", "w", "default")
    events = await asyncio.wait_for(task, 15)
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
        ("ADDED", "w"),
        ("MODIFIED", "w"),
        ("DELETED", "w"),
    ]
    assert events[1].object["data"] == {"k": "2"}


async def test_watch_without_version_starts_with_current_objects(clients: Any) -> None:
    client, _, _ = clients
    await client.create(cm("x"))
    events = []
    async for event in client.watch("v1", "ConfigMap", "default", timeout=1):
        events.append(event)
        break
    assert events[0].type == "ADDED" and events[0].object["metadata"]["name"] == "x"


async def test_watch_from_a_compacted_version_is_gone(clients: Any) -> None:
    client, _, server = clients
    server.store.hub._compacted = server.store.revision  # as after a restart
    with pytest.raises(GoneError):
        async for _ in client.watch("v1", "ConfigMap", "default", resource_version="1", timeout=2):
            pass


async def test_resource_info_for_builtin_and_crd(clients: Any) -> None:
    client, other, _ = clients
    info = await client.resource("apps/v1", "Deployment")
    assert (info.plural, info.namespaced) == ("deployments", True)
    assert {"status", "scale"} <= info.subresources
    await other.create(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "gadgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Cluster",
                "names": {"plural": "gadgets", "kind": "Gadget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                ],
            },
        }
    )
    gadget = await client.resource("example.com/v1", "Gadget")
    assert (gadget.plural, gadget.namespaced) == ("gadgets", False)
    await client.create(
        {
            "apiVersion": "example.com/v1",
            "kind": "Gadget",
            "metadata": {"name": "g"},
            "spec": {"x": 1},
        }
    )
    assert (await other.get("example.com/v1", "Gadget", "g"))["spec"] == {"x": 1}
