"""Three more of Argo CD's sync behaviours through the real clients on one `recon serve` (no
container runtime: the Job's and Deployment's pods never run, and no assertion needs them):
Applications written with `kubectl apply`, git commits made with the real git, syncs asked
for with `recon sync`, results read with `kubectl get`.

- `Force=true` (alone, `kubectl apply --force`; or with `Replace=true`, `kubectl replace
  --force`): a change the API refuses as `field is immutable` (a Job's pod template, a
  Deployment's selector) fails the sync and changes nothing; with the option the live
  object is deleted and created anew (a new uid) and the sync succeeds.
- `automated.allowEmpty`: an automated, pruning Application whose commit leaves no
  manifest prunes nothing (Argo CD: a `SyncError` condition "Skipping sync attempt to SHA:
  auto-sync will wipe out all resources"), unless it says `allowEmpty: true`.
- `SharedResourceWarning`: without `FailOnSharedResource=true` a second Application takes
  an object over and its sync succeeds; the first one shows Argo CD's condition, naming
  the other, until it no longer wants the object.

`FailOnSharedResource=true` itself is in `test_argo_sync_options.py`.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl, ReconServer, git_application
from tests.e2e.support import commit_all, git, wait_until

pytestmark = pytest.mark.e2e

OPTIONS = "argocd.argoproj.io/sync-options"


def _status(kubectl: Kubectl, name: str) -> dict[str, Any]:
    return dict(kubectl.json("-n", "default", "get", "application", name).get("status") or {})


def _conditions(kubectl: Kubectl, name: str) -> list[tuple[str, str]]:
    return [(c["type"], c["message"]) for c in _status(kubectl, name).get("conditions") or []]


def _synced_revisions(kubectl: Kubectl, name: str) -> list[str]:
    return [h["revision"] for h in _status(kubectl, name).get("history") or []]


def _sync(server: ReconServer, kubectl: Kubectl, name: str) -> dict[str, Any]:
    """`recon sync --async`, then the operation state once the controller has carried the
    request out (it records the result, then removes `operation`): the Job's pods never
    run here, so following its health would only time out."""
    asked = server.cli("sync", name, "--async")
    assert asked.returncode == 0, asked.stdout + asked.stderr

    def done() -> dict[str, Any] | None:
        app = kubectl.json("-n", "default", "get", "application", name)
        if "operation" in app:
            return None
        return dict(app["status"]["operationState"])

    state: dict[str, Any] = wait_until(done, 60, f"the sync of {name} to finish", 0.2)
    return state


def _job(image: str, options: str = "") -> str:
    annotations = f"\n  annotations:\n    {OPTIONS}: {options}" if options else ""
    return (
        f"apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate{annotations}\n"
        "spec:\n  template:\n    spec:\n      restartPolicy: Never\n"
        f"      containers:\n      - name: m\n        image: {image}\n"
    )


def _deployment(app_label: str, options: str = "") -> str:
    annotations = f"\n  annotations:\n    {OPTIONS}: {options}" if options else ""
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web{annotations}\n"
        f"spec:\n  selector:\n    matchLabels: {{app: {app_label}}}\n"
        f"  template:\n    metadata:\n      labels: {{app: {app_label}}}\n"
        "    spec:\n      containers:\n      - name: web\n        image: nginx:1\n"
    )


def _configmap(name: str, value: str = "v") -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: {value}\n"


def _exists(kubectl: Kubectl, namespace: str, kind: str, name: str) -> bool:
    return kubectl.run("-n", namespace, "get", kind, name, check=False).returncode == 0


def test_force_recreates_what_the_api_refuses_to_change(
    server: ReconServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    namespace, name = f"force-{suffix}", f"force-{suffix}"
    kubectl.run("create", "namespace", namespace)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "job.yaml").write_text(_job("migrate:1"))
    (repo / "deployment.yaml").write_text(_deployment("web"))
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "a Job and a Deployment")
    kubectl.run("apply", "-f", "-", input=git_application(name, repo, ".", namespace))
    first = _sync(server, kubectl, name)
    assert first["phase"] == "Succeeded", first
    job = kubectl.json("-n", namespace, "get", "job", "migrate")
    web = kubectl.json("-n", namespace, "get", "deployment", "web")

    # A new pod template for the Job, a new selector for the Deployment: both immutable.
    (repo / "job.yaml").write_text(_job("migrate:2"))
    (repo / "deployment.yaml").write_text(_deployment("web2"))
    commit_all(repo, "immutable changes")
    refused = _sync(server, kubectl, name)
    assert refused["phase"] == "Failed"
    assert refused["message"] == "2 of 2 objects failed (2 failed)"
    errors = {r["kind"]: r["message"] for r in refused["syncResult"]["resources"]}
    assert errors["Job"].startswith('Job.batch "migrate" is invalid: spec.template: Invalid value:')
    assert errors["Job"].endswith("field is immutable")
    assert errors["Deployment"].startswith(
        'Deployment.apps "web" is invalid: spec.selector: Invalid value:'
    )
    assert errors["Deployment"].endswith("field is immutable")
    kept = kubectl.json("-n", namespace, "get", "job", "migrate")
    assert kept["metadata"]["uid"] == job["metadata"]["uid"]
    assert kept["spec"]["template"]["spec"]["containers"][0]["image"] == "migrate:1"
    kept = kubectl.json("-n", namespace, "get", "deployment", "web")
    assert kept["metadata"]["uid"] == web["metadata"]["uid"]
    assert kept["spec"]["selector"] == {"matchLabels": {"app": "web"}}

    # Argo CD's way out: `Force=true` deletes the object and creates it from git, with
    # `Replace=true` as `kubectl replace --force`, alone as `kubectl apply --force`.
    (repo / "job.yaml").write_text(_job("migrate:2", "Force=true,Replace=true"))
    (repo / "deployment.yaml").write_text(_deployment("web2", "Force=true"))
    commit_all(repo, "forced")
    forced = _sync(server, kubectl, name)
    assert forced["phase"] == "Succeeded", forced
    actions = {r["kind"]: (r["status"], r["action"]) for r in forced["syncResult"]["resources"]}
    assert actions == {"Job": ("Synced", "configured"), "Deployment": ("Synced", "configured")}
    again = kubectl.json("-n", namespace, "get", "job", "migrate")
    assert again["metadata"]["uid"] != job["metadata"]["uid"]
    assert again["spec"]["template"]["spec"]["containers"][0]["image"] == "migrate:2"
    again = kubectl.json("-n", namespace, "get", "deployment", "web")
    assert again["metadata"]["uid"] != web["metadata"]["uid"]
    assert again["spec"]["selector"] == {"matchLabels": {"app": "web2"}}
    assert again["metadata"]["annotations"]["recon.dev/application"] == f"default/{name}"


def test_automated_prune_of_an_empty_commit_needs_allow_empty(
    server: ReconServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    namespace, careful, wiping = f"empty-{suffix}", f"careful-{suffix}", f"wiping-{suffix}"
    kubectl.run("create", "namespace", namespace)
    repo = tmp_path / "repo"
    for folder in ("careful", "wiping"):
        (repo / folder).mkdir(parents=True)
        (repo / folder / "README.md").write_text("deployed by an Application\n")  # path stays
        (repo / folder / "a.yaml").write_text(_configmap(f"{folder}-a"))
        (repo / folder / "b.yaml").write_text(_configmap(f"{folder}-b"))
    git(repo, "init", "-q", "-b", "main")
    first = commit_all(repo, "two ConfigMaps each")
    policies = {
        careful: {"automated": {"prune": True}, "interval": "1s"},
        wiping: {"automated": {"prune": True, "allowEmpty": True}, "interval": "1s"},
    }
    for name, folder in ((careful, "careful"), (wiping, "wiping")):
        application = git_application(name, repo, folder, namespace, policies[name])
        kubectl.run("apply", "-f", "-", input=application)
    wait_until(
        lambda: all(_synced_revisions(kubectl, n) == [first] for n in (careful, wiping)),
        30,
        "both Applications' automated syncs",
    )
    assert _exists(kubectl, namespace, "configmap", "careful-a")
    assert _exists(kubectl, namespace, "configmap", "wiping-b")

    for folder in ("careful", "wiping"):
        (repo / folder / "a.yaml").unlink()
        (repo / folder / "b.yaml").unlink()
    empty = commit_all(repo, "nothing left to deploy")

    # Without allowEmpty: the objects that left git are OutOfSync (one status patch says
    # so with the new revision), the automated sync is skipped in Argo CD's words and
    # nothing is pruned.
    wait_until(
        lambda: _status(kubectl, careful)["sync"]["revision"] == empty,
        30,
        f"{careful} compared at the empty commit",
    )
    assert _status(kubectl, careful)["sync"] == {"status": "OutOfSync", "revision": empty}
    message = f"Skipping sync attempt to {empty}: auto-sync will wipe out all resources"
    wait_until(
        lambda: ("SyncError", message) in _conditions(kubectl, careful),
        30,
        f"{careful} to refuse the empty commit",
    )
    assert _exists(kubectl, namespace, "configmap", "careful-a")
    assert _exists(kubectl, namespace, "configmap", "careful-b")
    assert _synced_revisions(kubectl, careful) == [first]

    # allowEmpty: the automated sync of the empty commit prunes everything.
    wait_until(
        lambda: (
            not _exists(kubectl, namespace, "configmap", "wiping-a")
            and not _exists(kubectl, namespace, "configmap", "wiping-b")
        ),
        30,
        f"{wiping} to prune its objects",
    )
    state = _status(kubectl, wiping)["operationState"]
    assert state["phase"] == "Succeeded"
    assert state["initiatedBy"] == "automated"
    assert state["syncResult"]["revision"] == empty
    pruned = sorted((r["name"], r["action"]) for r in state["syncResult"]["resources"])
    assert pruned == [("wiping-a", "pruned"), ("wiping-b", "pruned")]
    assert _status(kubectl, wiping)["sync"] == {"status": "Synced", "revision": empty}


def test_shared_resource_warning_names_the_othergit_application(
    server: ReconServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    namespace, first, second = f"shared-{suffix}", f"first-{suffix}", f"second-{suffix}"
    kubectl.run("create", "namespace", namespace)
    repo = tmp_path / "repo"
    for folder in ("first", "second"):
        (repo / folder).mkdir(parents=True)
        (repo / folder / "settings.yaml").write_text(_configmap("settings", folder))
        (repo / folder / "own.yaml").write_text(_configmap(f"own-{folder}", folder))
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "two applications, one shared ConfigMap")
    # Manual sync; the first compares every second, so its condition shows soon after.
    every_second = git_application(first, repo, "first", namespace, {"interval": "1s"})
    kubectl.run("apply", "-f", "-", input=every_second)
    kubectl.run("apply", "-f", "-", input=git_application(second, repo, "second", namespace))
    synced = server.cli("sync", first, "--timeout", "60")
    assert synced.returncode == 0, synced.stdout + synced.stderr

    taken = server.cli("sync", second, "--timeout", "60")
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert "sync Succeeded" in taken.stdout
    state = _status(kubectl, second)["operationState"]
    assert state["phase"] == "Succeeded"
    actions = {(r["name"], r["action"]) for r in state["syncResult"]["resources"]}
    assert actions == {("settings", "configured"), ("own-second", "created")}
    settings = kubectl.json("-n", namespace, "get", "configmap", "settings")
    assert settings["data"] == {"k": "second"}
    assert settings["metadata"]["annotations"]["recon.dev/application"] == f"default/{second}"

    warning = (
        "SharedResourceWarning",
        f"ConfigMap/settings is part of applications default/{first} and default/{second}",
    )
    wait_until(
        lambda: warning in _conditions(kubectl, first), 30, "the first one's SharedResourceWarning"
    )
    assert _conditions(kubectl, first) == [warning]
    assert _conditions(kubectl, second) == []
    assert _status(kubectl, first)["sync"]["status"] == "OutOfSync"

    # Once the first no longer wants the object, the warning goes.
    (repo / "first" / "settings.yaml").unlink()
    commit_all(repo, "settings belong to the second")
    wait_until(lambda: _conditions(kubectl, first) == [], 30, "the warning to clear")
    assert kubectl.json("-n", namespace, "get", "configmap", "settings")["data"] == {"k": "second"}
