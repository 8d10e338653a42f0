"""The AppManager's decisions, one look (`tick`) at a time, against an in-process API server
(the scheduler is not started: each test looks when it wants to)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.inprocess import InProcessClient
from reconciler.gitops.application import API_VERSION, KIND
from reconciler.gitops.manager import AppManager
from reconciler.gitops.operator import CRD_FILE
from reconciler.gitops.sync import SyncEngine
from reconciler.source.git import GitCache
from tests.unit.gitops.test_sync import CONFIGMAP, DEPLOYMENT, Repo

JSONDict = dict[str, Any]


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[AppManager]:
    server = ApiServer(ServerOptions(data_dir=tmp_path / "api", port=0))
    await server.start()
    client = InProcessClient(server.service)
    await client.create(yaml.safe_load(CRD_FILE.read_text()))
    apps = AppManager(client, SyncEngine(client, GitCache(tmp_path / "cache")))
    try:
        yield apps
    finally:
        await apps.stop()
        await server.stop()


async def _create(manager: AppManager, repo: Repo, **policy: Any) -> str:
    app = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "a", "namespace": "default"},
        "spec": {
            "source": {"repoURL": f"file://{repo.path}"},
            "destination": {"namespace": "default"},
            "syncPolicy": policy,
        },
    }
    for _ in range(50):  # the CRD's resource is served a moment after it is created
        try:
            created = await manager.client.create(app)
            break
        except Exception:
            await asyncio.sleep(0.02)
    manager.track(created)
    return "default/a"


async def _status(manager: AppManager) -> JSONDict:
    app = await manager.client.get(API_VERSION, KIND, "a", "default")
    return dict(app.get("status") or {})


async def _configmaps(manager: AppManager) -> dict[str, str]:
    listed = await manager.client.list("v1", "ConfigMap", "default")
    return {c["metadata"]["name"]: c["data"]["k"] for c in listed.items}


async def test_automated_sync_and_self_heal(manager: AppManager, tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    sha = repo.write({"cm.yaml": CONFIGMAP.format(name="one", value="v1")})
    key = await _create(manager, repo, automated={"selfHeal": True})
    await manager.tick(key)
    status = await _status(manager)
    assert status["sync"] == {"status": "Synced", "revision": sha}
    assert status["health"]["status"] == "Healthy"
    assert [(h["id"], h["initiatedBy"]) for h in status["history"]] == [(1, "automated")]
    assert await _configmaps(manager) == {"one": "v1"}

    await manager.tick(key)  # nothing moved: no new sync
    assert len((await _status(manager))["history"]) == 1

    await manager.client.delete("v1", "ConfigMap", "one", "default")
    await manager.tick(key)
    status = await _status(manager)
    assert [h["initiatedBy"] for h in status["history"]] == ["automated", "self-heal"]
    assert await _configmaps(manager) == {"one": "v1"}


async def test_without_self_heal_drift_is_only_reported(
    manager: AppManager, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write({"cm.yaml": CONFIGMAP.format(name="one", value="v1")})
    key = await _create(manager, repo, automated={})
    await manager.tick(key)
    await manager.client.patch(
        "v1", "ConfigMap", "one", {"data": {"k": "edited"}}, namespace="default"
    )
    await manager.tick(key)
    status = await _status(manager)
    assert status["sync"]["status"] == "OutOfSync"
    assert status["resources"][0]["message"] == "differs at /data/k"
    assert await _configmaps(manager) == {"one": "edited"}
    # A new commit is synced (automated), which also overwrites the edit.
    repo.write({"cm.yaml": CONFIGMAP.format(name="one", value="v2")})
    await manager.tick(key)
    assert await _configmaps(manager) == {"one": "v2"}


async def test_manual_applications_wait_for_a_request(manager: AppManager, tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    first = repo.write({"cm.yaml": CONFIGMAP.format(name="one", value="v1")})
    repo.write({"cm.yaml": CONFIGMAP.format(name="one", value="v2")})
    key = await _create(manager, repo)
    await manager.tick(key)
    assert (await _status(manager))["sync"]["status"] == "OutOfSync"
    assert await _configmaps(manager) == {}
    request = {"sync": {"revision": first}, "initiatedBy": "tester", "requestedAt": "T1"}
    await manager.client.patch(API_VERSION, KIND, "a", {"operation": request}, namespace="default")
    await manager.tick(key)
    app = await manager.client.get(API_VERSION, KIND, "a", "default")
    assert "operation" not in app
    state = app["status"]["operationState"]
    assert (state["phase"], state["requestedAt"], state["initiatedBy"]) == (
        "Succeeded",
        "T1",
        "tester",
    )
    assert state["syncResult"]["revision"] == first
    assert await _configmaps(manager) == {"one": "v1"}


async def test_a_failed_sync_is_retried_and_a_bad_commit_reported_once(
    manager: AppManager, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    missing_namespace = CONFIGMAP.format(name="lost", value="v").replace(
        "metadata:\n", "metadata:\n  namespace: nowhere\n"
    )
    repo.write(
        {"cm.yaml": CONFIGMAP.format(name="one", value="v1"), "lost.yaml": missing_namespace}
    )
    key = await _create(manager, repo, automated={})
    await manager.tick(key)
    status = await _status(manager)
    assert status["history"][-1]["phase"] == "Failed"
    results = {r["name"]: r for r in status["operationState"]["syncResult"]["resources"]}
    assert results["one"]["status"] == "Synced"  # one failure does not stop the others
    assert results["lost"]["status"] == "SyncFailed" and "nowhere" in results["lost"]["message"]
    assert manager.apps[key].failures == 1
    assert manager.scheduler.get_job(f"{key}#soon") is not None  # the retry, 5 s out
    await manager.tick(key)
    assert manager.apps[key].failures == 2  # retried (and failed again)

    repo.write({"lost.yaml": None, "cm.yaml": DEPLOYMENT.format(replicas='"x"')})
    for _ in range(3):
        await manager.tick(key)
    status = await _status(manager)
    bad = [h for h in status["history"] if "validation error" in h["message"]]
    assert len(bad) == 1  # reported once per revision, not once per look
    assert status["operationState"]["errors"][0].startswith("cm.yaml:")
    assert status["sync"]["status"] == "Unknown"


async def test_a_request_written_before_the_last_one_is_removed_is_kept(
    manager: AppManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write({"cm.yaml": CONFIGMAP.format(name="one", value="v1")})
    key = await _create(manager, repo)
    await manager.tick(key)
    patch = manager.client.patch
    second = {"sync": {}, "initiatedBy": "tester", "requestedAt": "T2"}

    async def racing(*args: Any, **kwargs: Any) -> JSONDict:
        if kwargs.get("patch_type") == "json":  # removing T1: a client saw its result first
            await patch(API_VERSION, KIND, "a", {"operation": second}, namespace="default")
        return await patch(*args, **kwargs)

    monkeypatch.setattr(manager.client, "patch", racing)
    first = {"sync": {}, "initiatedBy": "tester", "requestedAt": "T1"}
    await patch(API_VERSION, KIND, "a", {"operation": first}, namespace="default")
    await manager.tick(key)
    app = await manager.client.get(API_VERSION, KIND, "a", "default")
    assert app["status"]["operationState"]["requestedAt"] == "T1"
    assert app["operation"] == second  # not removed with T1
    monkeypatch.setattr(manager.client, "patch", patch)
    await manager.tick(key)
    app = await manager.client.get(API_VERSION, KIND, "a", "default")
    assert app["status"]["operationState"]["requestedAt"] == "T2"
    assert "operation" not in app


async def test_a_request_written_during_a_look_is_carried_out_after_it(
    manager: AppManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write({"cm.yaml": CONFIGMAP.format(name="one", value="v1")})
    key = await _create(manager, repo)  # its first look waits for the scheduler
    look = manager._look
    gate = asyncio.Event()

    async def slow(state: Any, obj: JSONDict) -> None:
        await gate.wait()  # the look has read the Application: a request now is news to it
        await look(state, obj)

    monkeypatch.setattr(manager, "_look", slow)
    await manager.start()
    await asyncio.sleep(0.1)
    request = {"sync": {}, "initiatedBy": "tester", "requestedAt": "T1"}
    await manager.client.patch(API_VERSION, KIND, "a", {"operation": request}, namespace="default")
    manager.poke(key)  # what the operator does on that change
    await asyncio.sleep(0.1)
    monkeypatch.setattr(manager, "_look", look)
    gate.set()
    for _ in range(100):
        state = (await _status(manager)).get("operationState") or {}
        if state.get("requestedAt") == "T1":
            break
        await asyncio.sleep(0.05)
    assert state.get("requestedAt") == "T1"
