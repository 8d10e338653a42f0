"""The sync engine against an in-process API server and real local git repositories."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.apiserver.server import ApiServer, ServerOptions
from reconciler.client.inprocess import InProcessClient
from reconciler.gitops.application import AppSpec, Retry, parse_duration
from reconciler.gitops.sync import OWNER_ANNOTATION, SyncEngine, SyncOptions, _with_credentials
from reconciler.source.git import GitCache

JSONDict = dict[str, Any]

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: {value}\n"
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: web, image: busybox}}]
"""


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.email=t@recon.dev", "-c", "user.name=t", *args],
            cwd=self.path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def write(self, files: dict[str, str | None], message: str = "change") -> str:
        for name, text in files.items():
            target = self.path / name
            if text is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD").strip()


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[InProcessClient]:
    server = ApiServer(ServerOptions(data_dir=tmp_path / "api", port=0))
    await server.start()
    try:
        yield InProcessClient(server.service)
    finally:
        await server.stop()


def _app(repo: Repo, **extra: Any) -> AppSpec:
    spec = {
        "source": {"repoURL": f"file://{repo.path}"},
        "destination": {"namespace": "default"},
        **extra,
    }
    return AppSpec.from_object({"metadata": {"name": "a", "namespace": "default"}, "spec": spec})


def _engine(client: InProcessClient, tmp_path: Path) -> SyncEngine:
    return SyncEngine(client, GitCache(tmp_path / "cache"))


async def test_a_validation_error_applies_nothing_and_names_the_file(
    plane: InProcessClient, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write(
        {
            "a.yaml": CONFIGMAP.format(name="one", value="v"),
            "b.yaml": DEPLOYMENT.format(replicas='"two"'),
        }
    )
    outcome = await _engine(plane, tmp_path).sync(_app(repo), SyncOptions())
    assert outcome.phase == "Failed"
    assert "nothing was applied" in outcome.message
    assert [e.split(":")[0] for e in outcome.errors] == ["b.yaml"]
    assert 'spec.replicas: "two"' in outcome.errors[0]
    listed = await plane.list("v1", "ConfigMap", "default")
    assert [c["metadata"]["name"] for c in listed.items] == []


async def test_sync_applies_in_order_marks_ownership_and_is_idempotent(
    plane: InProcessClient, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    sha = repo.write(
        {
            "web.yaml": DEPLOYMENT.format(replicas=2),
            "config.yaml": CONFIGMAP.format(name="settings", value="v1"),
        }
    )
    engine = _engine(plane, tmp_path)
    app = _app(repo)
    lines: list[str] = []
    outcome = await engine.sync(app, SyncOptions(), lines.append)
    assert outcome.phase == "Succeeded" and outcome.revision == sha
    assert [r.kind for r in outcome.results] == ["ConfigMap", "Deployment"]  # config first
    assert lines[1:] == ["configmap/settings created", "deployment.apps/web created"]
    web = await plane.get("apps/v1", "Deployment", "web", "default")
    assert web["metadata"]["annotations"][OWNER_ANNOTATION] == "default/a"
    again = await engine.sync(app, SyncOptions())
    assert {r.action for r in again.results} == {"unchanged"}
    checkout = await engine.fetch(app)
    loaded = await engine.render(app, checkout)
    states = await engine.compare(app, loaded.manifests)
    assert {(s.kind, s.status) for s in states} == {
        ("ConfigMap", "Synced"),
        ("Deployment", "Synced"),
    }
    # Drift: a scale by hand, a deleted object.
    await plane.patch(
        "apps/v1", "Deployment", "web", {"spec": {"replicas": 5}}, namespace="default"
    )
    await plane.delete("v1", "ConfigMap", "settings", "default")
    states = {s.kind: s for s in await engine.compare(app, loaded.manifests)}
    assert states["Deployment"].status == "OutOfSync"
    assert states["ConfigMap"].status == "OutOfSync"
    assert states["ConfigMap"].health.status == "Missing"


async def test_prune_only_when_asked_never_on_an_empty_render_and_safely(
    plane: InProcessClient, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    files: dict[str, str | None] = {
        f"cm{i}.yaml": CONFIGMAP.format(name=f"cm{i}", value="v") for i in range(4)
    }
    repo.write(files)
    engine = _engine(plane, tmp_path)
    app = _app(repo)
    assert (await engine.sync(app, SyncOptions())).phase == "Succeeded"

    repo.write({"cm3.yaml": None})
    kept = await engine.sync(app, SyncOptions(prune=False))
    assert "pruned" not in {r.action for r in kept.results}
    pruned = await engine.sync(app, SyncOptions(prune=True))
    assert [(r.name, r.action) for r in pruned.results if r.action == "pruned"] == [
        ("cm3", "pruned")
    ]

    # Removing two of three (more than half of what it owns) is held back unless forced.
    repo.write({"cm1.yaml": None, "cm2.yaml": None})
    held = await engine.sync(app, SyncOptions(prune=True))
    assert held.phase == "Succeeded" and held.prune_held_back is not None
    assert "more than half" in held.prune_held_back
    assert len((await plane.list("v1", "ConfigMap", "default")).items) == 3
    forced = await engine.sync(app, SyncOptions(prune=True, force=True))
    assert sorted(r.name for r in forced.results if r.action == "pruned") == ["cm1", "cm2"]

    # An empty render prunes nothing, whatever is asked.
    repo.write({"cm0.yaml": None, "README.md": "nothing to deploy\n"})
    empty = await engine.sync(app, SyncOptions(prune=True, force=True))
    assert empty.prune_held_back == "the render is empty: nothing is pruned"
    assert [c["metadata"]["name"] for c in (await plane.list("v1", "ConfigMap")).items] == ["cm0"]

    # ... unless the Application allows it (Argo CD's automated.allowEmpty): all goes.
    allowing = _app(repo, syncPolicy={"automated": {"prune": True, "allowEmpty": True}})
    assert allowing.allow_empty
    wiped = await engine.sync(allowing, SyncOptions(prune=True))
    assert wiped.prune_held_back is None
    assert [(r.name, r.action) for r in wiped.results if r.action == "pruned"] == [
        ("cm0", "pruned")
    ]
    assert (await plane.list("v1", "ConfigMap")).items == []


async def test_objects_of_others_are_never_pruned(plane: InProcessClient, tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write({f"cm{i}.yaml": CONFIGMAP.format(name=f"cm{i}", value="v") for i in range(3)})
    await plane.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "mine", "namespace": "default"},
        }
    )
    engine = _engine(plane, tmp_path)
    await engine.sync(_app(repo), SyncOptions(prune=True))
    assert len(await engine.delete_all(_app(repo))) == 3
    names = [c["metadata"]["name"] for c in (await plane.list("v1", "ConfigMap")).items]
    assert names == ["mine"]


async def test_an_unknown_revision_is_an_error_without_credentials_in_it(
    plane: InProcessClient, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write({"a.yaml": CONFIGMAP.format(name="a", value="v")})
    outcome = await _engine(plane, tmp_path).sync(_app(repo), SyncOptions(revision="nope"))
    assert outcome.phase == "Error" and "not found" in outcome.message


def test_credentials_go_into_https_urls_only() -> None:
    secret = {
        "data": {
            "username": base64.b64encode(b"bot").decode(),
            "password": base64.b64encode(b"p@ss/word").decode(),
        }
    }
    assert _with_credentials("https://git.example.com/a.git", secret) == (
        "https://bot:p%40ss%2Fword@git.example.com/a.git"
    )
    assert _with_credentials("file:///srv/a.git", secret) == "file:///srv/a.git"
    token = {"stringData": {"token": "t0k"}}
    assert _with_credentials("https://h:8443/a", token) == "https://git:t0k@h:8443/a"


def test_application_spec_defaults_and_durations() -> None:
    assert parse_duration("1m30s", 60) == 90
    assert parse_duration("250ms", 60) == 0.25
    assert parse_duration("soon", 60) == 60
    app = AppSpec.from_object(
        {
            "metadata": {"name": "x", "namespace": "team"},
            "spec": {
                "source": {"repoURL": "r"},
                "syncPolicy": {"automated": {"selfHeal": True}, "interval": "2m"},
            },
        }
    )
    assert (app.automated, app.prune, app.self_heal, app.interval) == (True, False, True, 120)
    assert (app.target_revision, app.path, app.key) == ("HEAD", ".", "team/x")
    manual = AppSpec.from_object({"metadata": {"name": "y"}, "spec": {"source": {"repoURL": "r"}}})
    assert manual.automated is False and manual.interval == 60
    assert [Retry().delay(n) for n in (1, 2, 3, 8, 9)] == [5, 10, 20, 180, 180]


async def test_ignore_differences_are_honoured_by_compare_and_apply(
    plane: InProcessClient, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write({"web.yaml": DEPLOYMENT.format(replicas=2)})
    engine = _engine(plane, tmp_path)
    rule = [{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}]
    ignoring = _app(repo, ignoreDifferences=rule)
    strict = _app(repo)
    assert (await engine.sync(ignoring, SyncOptions())).phase == "Succeeded"
    await plane.patch(
        "apps/v1", "Deployment", "web", {"spec": {"replicas": 5}}, namespace="default"
    )  # an autoscaler, or `kubectl scale`
    loaded = await engine.render(ignoring, await engine.fetch(ignoring))
    [state] = await engine.compare(ignoring, loaded.manifests)
    assert state.status == "Synced"
    [drifted] = await engine.compare(strict, loaded.manifests)
    assert (drifted.status, drifted.message) == ("OutOfSync", "differs at /spec/replicas")
    resync = await engine.sync(ignoring, SyncOptions())
    assert resync.phase == "Succeeded"  # the last-applied annotation follows; replicas do not
    live = await plane.get("apps/v1", "Deployment", "web", "default")
    assert live["spec"]["replicas"] == 5
    await engine.sync(strict, SyncOptions())
    assert (await plane.get("apps/v1", "Deployment", "web", "default"))["spec"]["replicas"] == 2

    broken = _app(repo, ignoreDifferences=[{"kind": "Deployment", "jsonPointers": ["spec"]}])
    outcome = await engine.sync(broken, SyncOptions())
    assert outcome.phase == "Failed"
    assert outcome.message.startswith("spec.ignoreDifferences[0].jsonPointers[0]: ")
