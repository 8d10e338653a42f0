"""The AppManager's decisions, one look (`tick`) at a time, against an in-process API server
(the scheduler is not started: each test looks when it wants to)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.errors import ClientError
from reconciler.client.inprocess import InProcessClient
from reconciler.gitops.application import API_VERSION, KIND, AppSpec
from reconciler.gitops.follow import follow_health, follow_sync, request_sync
from reconciler.gitops.health import Health
from reconciler.gitops.manager import AppManager, AutoSync, auto_sync
from reconciler.gitops.operator import CRD_FILE
from reconciler.gitops.sync import ResourceState, SyncEngine
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


# -- objects that left git --------------------------------------------------------------------

_SYNCED = ResourceState("v1", "ConfigMap", "default", "kept", "Synced", Health("Healthy"))
_DRIFTED = ResourceState("v1", "ConfigMap", "default", "edited", "OutOfSync", Health("Healthy"))
_LEFT = ResourceState(
    "v1", "ConfigMap", "default", "gone", "OutOfSync", Health("Healthy"), requires_pruning=True
)
_WIPE = "Skipping sync attempt to abc: auto-sync will wipe out all resources"


def _policy(**automated: bool) -> AppSpec:
    spec = {"source": {"repoURL": "file:///r"}, "syncPolicy": {"automated": automated}}
    return AppSpec.from_object({"metadata": {"name": "a", "namespace": "default"}, "spec": spec})


@pytest.mark.parametrize(
    ("automated", "states", "new_target", "retrying", "expected"),
    [
        # Nothing OutOfSync: settled, whatever the policy.
        ({"prune": True}, [_SYNCED], True, False, AutoSync(settled=True)),
        # Objects that left git alone, no prune: a sync would change nothing (Argo CD skips).
        ({}, [_SYNCED, _LEFT], True, False, AutoSync(settled=True)),
        ({"selfHeal": True}, [_SYNCED, _LEFT], False, False, AutoSync(settled=True)),
        # ... with prune, the new revision is synced, which prunes them.
        ({"prune": True}, [_SYNCED, _LEFT], True, False, AutoSync(who="automated")),
        # ... but at a revision already attempted they are not drift to self-heal: no loop
        # when the sync held the prune back or the object says Prune=false.
        ({"prune": True, "selfHeal": True}, [_SYNCED, _LEFT], False, False, AutoSync()),
        ({"prune": True}, [_SYNCED, _LEFT], False, True, AutoSync(who="automated")),  # retry
        # Drift besides them: synced (without prune too), self-heal when nothing else is new.
        ({}, [_DRIFTED, _LEFT], True, False, AutoSync(who="automated")),
        ({"selfHeal": True}, [_DRIFTED, _LEFT], False, False, AutoSync(who="self-heal")),
        ({}, [_DRIFTED, _LEFT], False, False, AutoSync()),
        # Every object would be pruned: refused without allowEmpty, synced with it.
        ({"prune": True}, [_LEFT], True, False, AutoSync(refused=_WIPE)),
        ({"prune": True, "selfHeal": True}, [_LEFT], True, True, AutoSync(refused=_WIPE)),
        ({"prune": True, "allowEmpty": True}, [_LEFT], True, False, AutoSync(who="automated")),
        ({}, [_LEFT], True, False, AutoSync(settled=True)),  # no prune: nothing to refuse
    ],
)
def test_when_automated_sync_runs(
    automated: dict[str, bool],
    states: list[ResourceState],
    new_target: bool,
    retrying: bool,
    expected: AutoSync,
) -> None:
    app = _policy(**automated)
    assert auto_sync(app, states, "abc", new_target=new_target, retrying=retrying) == expected


def test_a_manual_application_never_syncs_by_itself() -> None:
    manual = AppSpec.from_object({"metadata": {"name": "a"}, "spec": {}})
    assert auto_sync(manual, [_DRIFTED, _LEFT], "abc", new_target=True, retrying=False) == (
        AutoSync()
    )


def _resources(status: JSONDict) -> dict[str, tuple[str, bool]]:
    return {r["name"]: (r["status"], bool(r.get("requiresPruning"))) for r in status["resources"]}


def _sync_errors(status: JSONDict) -> list[str]:
    return [c["message"] for c in status.get("conditions") or [] if c["type"] == "SyncError"]


async def test_objects_that_left_git_are_out_of_sync_and_kept_without_prune(
    manager: AppManager, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write({f"{n}.yaml": CONFIGMAP.format(name=n, value="v1") for n in ("one", "two")})
    key = await _create(manager, repo, automated={})
    await manager.tick(key)
    assert (await _status(manager))["sync"]["status"] == "Synced"

    removed = repo.write({"two.yaml": None})
    await manager.tick(key)
    status = await _status(manager)
    assert status["sync"] == {"status": "OutOfSync", "revision": removed}
    assert _resources(status) == {"one": ("Synced", False), "two": ("OutOfSync", True)}
    assert status["health"]["status"] == "Healthy"
    assert len(status["history"]) == 1  # only pruning would change anything: no sync
    assert await _configmaps(manager) == {"one": "v1", "two": "v1"}
    for _ in range(2):  # still listed (the status is the inventory), still not synced
        await manager.tick(key)
    status = await _status(manager)
    assert _resources(status)["two"] == ("OutOfSync", True)
    assert len(status["history"]) == 1

    # A commit that also changes what stays is synced once; what left git stays.
    changed = repo.write({"one.yaml": CONFIGMAP.format(name="one", value="v2")})
    await manager.tick(key)
    await manager.tick(key)
    status = await _status(manager)
    assert [h["revision"] for h in status["history"]][1:] == [changed]
    assert await _configmaps(manager) == {"one": "v2", "two": "v1"}
    assert status["sync"]["status"] == "OutOfSync"
    assert _resources(status)["two"] == ("OutOfSync", True)

    # Following a sync does not wait for what only a prune would change.
    lines: list[str] = []
    assert await follow_health(manager.client, "default", "a", lines.append, 5.0) == "Healthy"
    assert "1 object left git but not pruned: OutOfSync until a sync prunes them" in lines

    # An object no longer the Application's (taken over, or gone) is not listed.
    await manager.client.patch(
        "v1",
        "ConfigMap",
        "two",
        {"metadata": {"annotations": {"recon.dev/application": "default/other"}}},
        namespace="default",
    )
    await manager.tick(key)
    status = await _status(manager)
    assert status["sync"]["status"] == "Synced"
    assert _resources(status) == {"one": ("Synced", False)}


async def test_an_object_that_left_git_stays_listed_when_the_server_cannot_say(
    manager: AppManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write({f"{n}.yaml": CONFIGMAP.format(name=n, value="v") for n in ("one", "two")})
    key = await _create(manager, repo, automated={})
    await manager.tick(key)
    repo.write({"two.yaml": None})
    get = manager.client.get

    async def failing(api_version: str, kind: str, name: str, *args: Any, **kw: Any) -> JSONDict:
        if (kind, name) == ("ConfigMap", "two"):
            raise ClientError(503, "ServiceUnavailable", "the server is busy")
        return await get(api_version, kind, name, *args, **kw)

    monkeypatch.setattr(manager.client, "get", failing)
    await manager.tick(key)
    status = await _status(manager)
    gone = next(r for r in status["resources"] if r["name"] == "two")
    assert (gone["status"], gone["requiresPruning"]) == ("Unknown", True)
    assert gone["message"] == "the server is busy"
    monkeypatch.setattr(manager.client, "get", get)
    await manager.tick(key)  # still tracked: found again once the server answers
    assert _resources(await _status(manager))["two"] == ("OutOfSync", True)


ROLE = """apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: reader
rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
"""


async def test_automated_prune_deletes_objects_that_left_git(
    manager: AppManager, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    files: dict[str, str | None] = {
        f"{n}.yaml": CONFIGMAP.format(name=n, value="v") for n in ("one", "two", "three")
    }
    repo.write({**files, "role.yaml": ROLE})
    key = await _create(manager, repo, automated={"prune": True})
    await manager.tick(key)
    assert (await _status(manager))["sync"]["status"] == "Synced"

    # A commit that only removes manifests: a Role is of a kind the prune would not have
    # looked at but for the Application's status listing it.
    removed = repo.write({"three.yaml": None, "role.yaml": None})
    await manager.tick(key)
    status = await _status(manager)
    assert status["sync"] == {"status": "Synced", "revision": removed}
    assert _resources(status) == {"one": ("Synced", False), "two": ("Synced", False)}
    state = status["operationState"]
    assert (state["initiatedBy"], state["syncResult"]["revision"]) == ("automated", removed)
    pruned = sorted((r["name"], r["action"]) for r in state["syncResult"]["resources"])
    assert ("reader", "pruned") in pruned and ("three", "pruned") in pruned
    assert await _configmaps(manager) == {"one": "v", "two": "v"}
    roles = await manager.client.list("rbac.authorization.k8s.io/v1", "Role", "default")
    assert roles.items == []


async def test_automated_prune_of_an_empty_render_waits_for_allow_empty(
    manager: AppManager, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    first = repo.write({f"{n}.yaml": CONFIGMAP.format(name=n, value="v") for n in ("a", "b")})
    key = await _create(manager, repo, automated={"prune": True})
    await manager.tick(key)

    empty = repo.write({"a.yaml": None, "b.yaml": None, "README.md": "nothing to deploy\n"})
    await manager.tick(key)
    status = await _status(manager)
    assert status["sync"] == {"status": "OutOfSync", "revision": empty}
    assert _resources(status) == {"a": ("OutOfSync", True), "b": ("OutOfSync", True)}
    refusal = f"Skipping sync attempt to {empty}: auto-sync will wipe out all resources"
    assert _sync_errors(status) == [refusal]
    assert [h["revision"] for h in status["history"]] == [first]
    assert await _configmaps(manager) == {"a": "v", "b": "v"}
    since = status["conditions"][0]["lastTransitionTime"]
    await manager.tick(key)  # refused again, the condition unchanged: nothing deleted
    status = await _status(manager)
    assert [c["lastTransitionTime"] for c in status["conditions"]] == [since]
    assert len(status["history"]) == 1 and len(await _configmaps(manager)) == 2

    # allowEmpty (a new generation): the automated sync prunes everything.
    await manager.client.patch(
        API_VERSION,
        KIND,
        "a",
        {"spec": {"syncPolicy": {"automated": {"prune": True, "allowEmpty": True}}}},
        namespace="default",
    )
    await manager.tick(key)
    status = await _status(manager)
    assert await _configmaps(manager) == {}
    assert status["sync"] == {"status": "Synced", "revision": empty}
    assert status["resources"] == [] and _sync_errors(status) == []
    assert [(h["revision"], h["initiatedBy"]) for h in status["history"]][1:] == [
        (empty, "automated")
    ]


async def test_deleting_the_application_deletes_kinds_its_status_lists(
    manager: AppManager, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write({"one.yaml": CONFIGMAP.format(name="one", value="v"), "role.yaml": ROLE})
    key = await _create(manager, repo, automated={})
    await manager.tick(key)
    assert (await _status(manager))["sync"]["status"] == "Synced"
    app = await manager.client.get(API_VERSION, KIND, "a", "default")
    deleted = await manager.deleted(app)
    assert sorted(deleted) == ["configmap/one", "role.rbac.authorization.k8s.io/reader"]
    roles = await manager.client.list("rbac.authorization.k8s.io/v1", "Role", "default")
    assert roles.items == [] and await _configmaps(manager) == {}


async def test_a_sync_requested_in_the_same_second_is_followed_to_its_own_end(
    manager: AppManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`recon sync` right after a sync that finished (in the same second) must wait for its
    own result, not read the last one's: requests are stamped to the microsecond."""
    repo = Repo(tmp_path / "repo")
    missing = "0" * 40
    repo.write({"cm.yaml": CONFIGMAP.format(name="one", value="v1")})
    key = await _create(manager, repo)
    moment = datetime(2026, 12, 4, 12, 0, 0, 100, tzinfo=UTC)

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:
            return moment

    monkeypatch.setattr("datetime.datetime", Frozen)
    first = await request_sync(manager.client, "default", "a", revision=missing)
    await manager.tick(key)  # the first fails: no such revision
    failed = await follow_sync(manager.client, "default", "a", first, lambda _: None, 5)
    assert failed["phase"] in ("Failed", "Error")

    moment = moment.replace(microsecond=900_000)
    second = await request_sync(manager.client, "default", "a")
    assert (first[:19], second[:19]) == ("2026-12-04T12:00:00",) * 2 and first != second
    follower = asyncio.create_task(
        follow_sync(manager.client, "default", "a", second, lambda _: None, 5)
    )
    await asyncio.sleep(0.3)  # the follower polls: it must not take the first's state
    assert not follower.done()
    await manager.tick(key)
    succeeded = await follower
    assert (succeeded["phase"], succeeded["requestedAt"]) == ("Succeeded", second)
    assert await _configmaps(manager) == {"one": "v1"}
