"""Informer indexes (owners, uncontrolled objects) and the status-only update filter."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.inprocess import InProcessClient
from reconciler.controllers.base import status_only_update
from reconciler.controllers.informer import Handlers, InformerFactory


def _ref(owner: dict[str, Any], controller: bool = True) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
    }


def _configmap(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
    }


def _pod(name: str, *refs: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "labels": {"app": "web"}}
    if refs:
        meta["ownerReferences"] = list(refs)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    }


def _names(objs: list[dict[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


async def test_owner_and_uncontrolled_indexes_follow_changes(tmp_path: Path) -> None:
    server = ApiServer(ServerOptions(data_dir=tmp_path, port=0))
    await server.start()
    client = InProcessClient(server.service)
    factory = InformerFactory(client, server.clock)
    pods = factory.informer("v1", "Pod")
    try:
        # Owners that exist (the garbage collector deletes pods whose owners are missing).
        a = await client.create(_configmap("a"))
        b = await client.create(_configmap("b"))
        uid_a, uid_b = a["metadata"]["uid"], b["metadata"]["uid"]
        await client.create(_pod("owned", _ref(a)))
        await client.create(_pod("orphan"))
        await client.create(_pod("referenced", _ref(a, controller=False)))
        factory.start()
        await factory.wait_synced()
        assert _names(pods.owned_by(uid_a)) == ["owned", "referenced"]
        assert pods.owned_count(uid_a) == 2
        assert _names(pods.uncontrolled("default")) == ["orphan", "referenced"]
        assert pods.uncontrolled("elsewhere") == []

        settled = asyncio.Event()

        def check(*_: Any) -> None:
            if pods.owned_count(uid_b) == 1 and pods.owned_count(uid_a) == 1:
                settled.set()

        pods.add_handlers(Handlers(check, check, check))
        # Adopted: it leaves the uncontrolled index and joins its owner's.
        adopt = {"metadata": {"ownerReferences": [_ref(b)]}}
        await client.patch("v1", "Pod", "orphan", adopt, namespace="default")
        # Deleted: it leaves every index.
        await client.delete("v1", "Pod", "owned", "default", grace_period=0)

        await asyncio.wait_for(settled.wait(), 5)
        assert _names(pods.uncontrolled("default")) == ["referenced"]
        assert _names(pods.owned_by(uid_a)) == ["referenced"]
        assert _names(pods.owned_by(uid_b)) == ["orphan"]
    finally:
        await factory.stop()
        await server.stop()


def test_status_only_update_ignores_status_and_bookkeeping() -> None:
    old = {
        "metadata": {"name": "web", "resourceVersion": "1", "generation": 1, "labels": {"a": "1"}},
        "spec": {"replicas": 3},
        "status": {"readyReplicas": 1},
    }
    status_write = {
        **old,
        "metadata": {**old["metadata"], "resourceVersion": "2", "managedFields": []},
        "status": {"readyReplicas": 2},
    }
    assert status_only_update(old, status_write)
    scaled = {**status_write, "spec": {"replicas": 4}}
    assert not status_only_update(old, scaled)
    relabelled = {**old, "metadata": {**old["metadata"], "labels": {"a": "2"}}}
    assert not status_only_update(old, relabelled)
    deleting = {**old, "metadata": {**old["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert not status_only_update(old, deleting)
