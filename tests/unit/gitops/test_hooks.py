"""Resource hooks (Argo CD's PreSync/Sync/PostSync/SyncFail): the split of a render, when
each phase runs and what it blocks, delete policies, and that hooks are never compared or
pruned; and Argo CD's sync options Recon honours (CreateNamespace, Prune=false,
Delete=false). An in-process API server; Jobs are finished by hand, as the Job controller
would."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.errors import NotFoundError
from reconciler.client.inprocess import InProcessClient
from reconciler.gitops.application import AppSpec
from reconciler.gitops.hooks import finished, plan_hooks
from reconciler.gitops.sync import SyncEngine, SyncOptions
from reconciler.manifests.loader import Manifest, Source
from reconciler.source.git import GitCache

JSONDict = dict[str, Any]


def manifest(kind: str, name: str, annotations: JSONDict | None = None) -> Manifest:
    obj = {
        "apiVersion": "batch/v1" if kind == "Job" else "v1",
        "kind": kind,
        "metadata": {"name": name, "annotations": annotations or {}},
    }
    return Manifest(obj, Source("app.yaml", 3, 0))


def test_plan_splits_hooks_by_phase_and_names_bad_annotations() -> None:
    plan = plan_hooks(
        [
            manifest("ConfigMap", "plain"),
            manifest("Job", "migrate", {"argocd.argoproj.io/hook": "PreSync"}),
            manifest("Job", "both", {"argocd.argoproj.io/hook": "PreSync, PostSync"}),
            manifest("Job", "ours", {"recon.dev/hook": "SyncFail"}),
            manifest("ConfigMap", "skipped", {"argocd.argoproj.io/hook": "Skip"}),
            manifest("Job", "typo", {"argocd.argoproj.io/hook": "PreSyncc"}),
            manifest(
                "Job",
                "policy",
                {
                    "argocd.argoproj.io/hook": "Sync",
                    "argocd.argoproj.io/hook-delete-policy": "Never",
                },
            ),
        ]
    )
    assert [m.name for m in plan.regular] == ["plain"]
    assert {p: [m.name for m in ms] for p, ms in plan.hooks.items()} == {
        "PreSync": ["migrate", "both"],
        "PostSync": ["both"],
        "SyncFail": ["ours"],
    }
    assert plan.errors == [
        "app.yaml:3: metadata.annotations[argocd.argoproj.io/hook]: 'PreSyncc': expected "
        "PreSync, Sync, PostSync, SyncFail or Skip",
        "app.yaml:3: metadata.annotations[argocd.argoproj.io/hook-delete-policy]: 'Never': "
        "expected BeforeHookCreation, HookSucceeded, HookFailed",
    ]


def test_finished_jobs_pods_and_others() -> None:
    job: JSONDict = {"kind": "Job", "status": {}}
    assert finished(job) == (False, None)
    job["status"]["conditions"] = [{"type": "Complete", "status": "True"}]
    assert finished(job) == (True, None)
    job["status"]["conditions"] = [
        {
            "type": "Failed",
            "status": "True",
            "message": "Job has reached the specified backoff limit",
        }
    ]
    assert finished(job) == (True, "Job has reached the specified backoff limit")
    assert finished({"kind": "Pod", "status": {"phase": "Running"}}) == (False, None)
    assert finished({"kind": "Pod", "status": {"phase": "Succeeded"}}) == (True, None)
    assert finished({"kind": "ConfigMap"}) == (True, None)


# -- the sync engine -------------------------------------------------------------------------


def hook_job(name: str, phase: str, policy: str = "") -> str:
    annotations = f'"argocd.argoproj.io/hook": {phase}'
    if policy:
        annotations += f', "argocd.argoproj.io/hook-delete-policy": {policy}'
    return f"""---
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  annotations: {{{annotations}}}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: c, image: busybox}}]
"""


CONFIGMAP = """---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {k: v}
"""


class World:
    def __init__(self, client: InProcessClient, engine: SyncEngine, repo: Path) -> None:
        self.client = client
        self.engine = engine
        self.repo = repo
        self.log: list[str] = []

    def commit(self, text: str) -> None:
        (self.repo / "app.yaml").write_text(text)
        git = ["git", "-c", "user.email=t@recon.dev", "-c", "user.name=t"]
        subprocess.run([*git, "add", "-A"], cwd=self.repo, check=True)
        subprocess.run([*git, "commit", "-qm", "c"], cwd=self.repo, check=True)

    def app(self, namespace: str = "default", **policy: Any) -> AppSpec:
        spec = {
            "source": {"repoURL": f"file://{self.repo}"},
            "destination": {"namespace": namespace},
            "syncPolicy": policy,
        }
        return AppSpec.from_object(
            {"metadata": {"name": "a", "namespace": "default"}, "spec": spec}
        )

    async def finish_jobs(self, outcome: Callable[[str], str]) -> None:
        """Marks every Job that appears as Complete or Failed (`outcome(name)`), as the Job
        controller would once its pod ended, until cancelled."""
        done: set[str] = set()
        while True:
            for job in (await self.client.list("batch/v1", "Job")).items:
                uid = job["metadata"]["uid"]
                if uid in done:
                    continue
                done.add(uid)
                kind = outcome(job["metadata"]["name"])
                job["status"] = {"conditions": [{"type": kind, "status": "True", "message": kind}]}
                await self.client.update(job, subresource="status")
            await asyncio.sleep(0.01)

    async def sync(
        self, outcome: Callable[[str], str] = lambda _n: "Complete", app: AppSpec | None = None
    ) -> Any:
        finisher = asyncio.create_task(self.finish_jobs(outcome))
        try:
            return await self.engine.sync(
                app or self.app(), SyncOptions(prune=True), self.log.append
            )
        finally:
            finisher.cancel()

    async def exists(self, kind: str, name: str) -> bool:
        api = "batch/v1" if kind == "Job" else "v1"
        try:
            await self.client.get(api, kind, name, "default")
        except NotFoundError:
            return False
        return True


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    server = ApiServer(ServerOptions(data_dir=tmp_path / "api", port=0))
    await server.start()
    repo = tmp_path / "repo"
    repo.mkdir()
    init = ["git", "init", "-q", "-b", "main"]
    await asyncio.to_thread(subprocess.run, init, cwd=repo, check=True)
    client = InProcessClient(server.service)
    engine = SyncEngine(client, GitCache(tmp_path / "cache"), hook_health_timeout=1)
    try:
        yield World(client, engine, repo)
    finally:
        await server.stop()


async def test_phases_run_in_order_and_hooks_are_not_desired_state(world: World) -> None:
    world.commit(
        CONFIGMAP
        + hook_job("migrate", "PreSync")
        + hook_job("smoke", "PostSync", "HookSucceeded")
        + hook_job("alert", "SyncFail")
    )
    outcome = await world.sync()
    assert outcome.phase == "Succeeded", outcome.message
    created = [line for line in world.log if "created" in line or "succeeded" in line]
    assert created == [
        "job.batch/migrate PreSync hook created",
        "job.batch/migrate PreSync hook succeeded",
        "configmap/settings created",
        "job.batch/smoke PostSync hook created",
        "job.batch/smoke PostSync hook succeeded",
    ]
    assert "1 PostSync hook succeeded" in outcome.message
    assert await world.exists("Job", "migrate")  # BeforeHookCreation: kept until next run
    assert not await world.exists("Job", "smoke")  # HookSucceeded: deleted
    assert not await world.exists("Job", "alert")  # no failure: SyncFail did not run
    loaded = await world.engine.render(world.app(), await world.engine.fetch(world.app()))
    states = await world.engine.compare(world.app(), loaded.manifests)
    assert [(s.kind, s.name) for s in states] == [("ConfigMap", "settings")]

    # The next sync replaces the PreSync Job (same name) and prunes no hook.
    world.log.clear()
    outcome = await world.sync()
    assert outcome.phase == "Succeeded", outcome.message
    assert "job.batch/migrate PreSync hook created" in world.log
    assert not any("pruned" in line for line in world.log)


async def test_a_failed_pre_sync_hook_applies_nothing_and_runs_sync_fail(world: World) -> None:
    world.commit(CONFIGMAP + hook_job("migrate", "PreSync") + hook_job("alert", "SyncFail"))
    outcome = await world.sync(lambda name: "Failed" if name == "migrate" else "Complete")
    assert outcome.phase == "Failed"
    assert outcome.message == "a PreSync hook failed: nothing was applied"
    assert not await world.exists("ConfigMap", "settings")
    assert await world.exists("Job", "alert")
    assert "job.batch/alert SyncFail hook succeeded" in world.log
    (failed,) = [r for r in outcome.results if r.action == "failed"]
    assert failed.error == "PreSync hook failed: Failed"


async def test_post_sync_waits_for_health(world: World) -> None:
    """A Deployment that never becomes available (no controllers run here) holds the
    PostSync hooks back until the timeout, and the sync says why."""
    deployment = """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: busybox}]}
"""
    world.commit(deployment + hook_job("smoke", "PostSync"))
    outcome = await world.sync()
    assert outcome.phase == "Failed"
    assert outcome.message.startswith(
        "PostSync hooks not run: Deployment/web not Healthy after 1 s"
    )
    assert not await world.exists("Job", "smoke")


async def test_a_dry_run_runs_no_hooks(world: World) -> None:
    world.commit(CONFIGMAP + hook_job("migrate", "PreSync"))
    outcome = await world.engine.sync(world.app(), SyncOptions(dry_run=True), world.log.append)
    assert outcome.phase == "Succeeded"
    assert not await world.exists("Job", "migrate")


async def test_create_namespace_before_the_pre_sync_hooks(world: World) -> None:
    job = hook_job("migrate", "PreSync").replace(
        "  name: migrate\n", "  name: migrate\n  namespace: fresh\n"
    )
    world.commit(job)
    without = await world.sync(app=world.app("fresh"))
    assert without.phase == "Failed"  # the hook's namespace does not exist
    world.log.clear()
    outcome = await world.sync(app=world.app("fresh", syncOptions=["CreateNamespace=true"]))
    assert outcome.phase == "Succeeded", outcome.message
    assert world.log[1:3] == ["namespace/fresh created", "job.batch/migrate PreSync hook created"]


async def test_prune_false_and_delete_false_keep_objects(world: World) -> None:
    options = '"argocd.argoproj.io/sync-options"'
    keep = CONFIGMAP.replace(
        "metadata: {name: settings}",
        f'metadata: {{name: settings, annotations: {{{options}: "Prune=false"}}}}',
    )
    other = CONFIGMAP.replace("settings", "other").replace(
        "metadata: {name: other}",
        'metadata: {name: other, annotations: {"argocd.argoproj.io/sync-options": "Delete=false"}}',
    )
    third = CONFIGMAP.replace("settings", "third")
    world.commit(keep + other + third)
    assert (await world.sync()).phase == "Succeeded"
    world.commit(other + third)  # settings removed from git: Prune=false keeps it
    outcome = await world.sync()
    assert outcome.phase == "Succeeded", outcome.message
    assert await world.exists("ConfigMap", "settings")
    removed = await world.engine.delete_all(world.app())  # the Application is deleted
    assert {r.name for r in removed} == {"settings", "third"}  # Prune=false is not Delete=false
    assert await world.exists("ConfigMap", "other")


async def test_server_side_apply_sync_option(world: World) -> None:
    world.commit(CONFIGMAP.replace("data: {k: v}", "data: {k: v, gone: soon}"))
    app = world.app(syncOptions=["ServerSideApply=true"])
    assert (await world.sync(app=app)).phase == "Succeeded"
    live = await world.client.get("v1", "ConfigMap", "settings", "default")
    assert "kubectl.kubernetes.io/last-applied-configuration" not in live["metadata"].get(
        "annotations", {}
    )
    assert [(e["manager"], e["operation"]) for e in live["metadata"]["managedFields"]] == [
        ("recon-gitops", "Apply")
    ]
    # someone edits a field git owns: the next sync takes it back (forced, as Argo CD does);
    # a key removed from git is removed from the object
    live["data"]["k"] = "edited"
    await world.client.update(live)
    world.commit(CONFIGMAP)
    outcome = await world.sync(app=app)
    assert outcome.phase == "Succeeded", outcome.message
    assert "configmap/settings configured" in world.log
    live = await world.client.get("v1", "ConfigMap", "settings", "default")
    assert live["data"] == {"k": "v"}
    world.log.clear()
    assert (await world.sync(app=app)).phase == "Succeeded"
    assert not any("configmap/settings" in line for line in world.log)  # unchanged

    # one object may ask for it alone with its own sync-options
    other = CONFIGMAP.replace("settings", "other").replace(
        "metadata: {name: other}",
        'metadata: {name: other, annotations: {"argocd.argoproj.io/sync-options": '
        '"ServerSideApply=true"}}',
    )
    world.commit(CONFIGMAP.replace("settings", "plain") + other)
    assert (await world.sync()).phase == "Succeeded"
    plain = await world.client.get("v1", "ConfigMap", "plain", "default")
    assert "kubectl.kubernetes.io/last-applied-configuration" in plain["metadata"]["annotations"]
    assert "managedFields" not in plain["metadata"]
    applied = await world.client.get("v1", "ConfigMap", "other", "default")
    assert applied["metadata"]["managedFields"][0]["manager"] == "recon-gitops"
