"""Argo CD's sync options beyond the first few (docs/design/gitops.md, "Hooks and Argo CD's
annotations"): PrunePropagationPolicy, Validate=false, FailOnSharedResource,
ApplyOutOfSyncOnly, Replace and SkipDryRunOnMissingResource — the pure decisions
(`gitops/sync_options.py`), then each against an in-process API server and a real local
git repository, as a user's repository written for Argo CD would sync."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.client.errors import NotFoundError
from reconciler.client.inprocess import InProcessClient
from reconciler.gitops.application import AppSpec
from reconciler.gitops.operator import CRD_FILE
from reconciler.gitops.render import load_and_validate
from reconciler.gitops.status import operation_state, refresh_patch
from reconciler.gitops.sync import (
    Blocker,
    SyncEngine,
    SyncOptions,
    SyncOutcome,
    blocked_message,
    declared_kinds,
)
from reconciler.gitops.sync_options import (
    APP_OPTIONS,
    annotation_errors,
    app_option_errors,
    apply_mode,
    object_options,
    prune_propagation,
    replaces_live,
    shared_with,
    skips_dry_run,
    validates,
)
from reconciler.manifests.loader import Manifest, Source
from reconciler.source.git import GitCache
from tests.unit.gitops.test_sync import Repo, plane  # noqa: F401

JSONDict = dict[str, Any]
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
OPTIONS = "argocd.argoproj.io/sync-options"


NOW = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)


def configmap(name: str, options: str = "", **data: str) -> str:
    annotations = f"\n  annotations: {{{OPTIONS}: {options!r}}}" if options else ""
    body = "".join(f"\n  {k}: {v!r}" for k, v in (data or {"k": "v"}).items())
    head = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n"
    return f"{head}  name: {name}{annotations}\ndata:{body}\n"


def app(repo: Repo, *options: str, name: str = "a", **spec: Any) -> AppSpec:
    body = {
        "source": {"repoURL": f"file://{repo.path}"},
        "destination": {"namespace": "default"},
        "syncPolicy": {"syncOptions": list(options)},
        **spec,
    }
    return AppSpec.from_object({"metadata": {"name": name, "namespace": "default"}, "spec": body})


def engine(client: InProcessClient, tmp_path: Path) -> SyncEngine:
    return SyncEngine(client, GitCache(tmp_path / "cache"))


async def exists(client: InProcessClient, api_version: str, kind: str, name: str) -> bool:
    try:
        await client.get(api_version, kind, name, "default")
    except NotFoundError:
        return False
    return True


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Until `check()` holds (the API server's garbage collector works asynchronously)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


# -- the pure decisions ----------------------------------------------------------------------


def manifest(annotation: str) -> Manifest:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "annotations": {OPTIONS: annotation}},
    }
    return Manifest(obj, Source("deploy/c.yaml", 4, 0))


def test_object_options_are_read_as_argo_cd_writes_them() -> None:
    assert object_options(manifest(" Prune=false ,Replace=true,, ").obj) == {
        "Prune=false",
        "Replace=true",
    }
    assert object_options(None) == frozenset()
    assert object_options({"metadata": {"annotations": None}}) == frozenset()
    # Options Recon does not read pass; a known one with an unknown value is an error.
    assert annotation_errors(manifest("Force=true,PruneLast=true,Prune=confirm")) == []
    assert annotation_errors(manifest("Validate=no, Replace=True")) == [
        f"deploy/c.yaml:4: metadata.annotations[{OPTIONS}]: 'Replace=True': expected "
        "Replace=true or Replace=false",
        f"deploy/c.yaml:4: metadata.annotations[{OPTIONS}]: 'Validate=no': expected "
        "Validate=true or Validate=false",
    ]


def test_how_an_object_is_written() -> None:
    none: frozenset[str] = frozenset()
    assert apply_mode(False, False, none) == "apply"
    assert apply_mode(True, False, none) == "server-side"
    assert apply_mode(True, False, frozenset({"ServerSideApply=false"})) == "apply"
    assert apply_mode(False, False, frozenset({"ServerSideApply=true"})) == "server-side"
    # Replace takes precedence over server-side apply, wherever each is set.
    assert apply_mode(True, True, none) == "replace"
    assert apply_mode(False, False, frozenset({"Replace=true", "ServerSideApply=true"})) == (
        "replace"
    )
    assert apply_mode(True, True, frozenset({"Replace=false"})) == "server-side"
    live = {"metadata": {"annotations": {OPTIONS: "Replace=true"}}}
    assert replaces_live(none, live) and not replaces_live(frozenset({"Replace=false"}), live)
    assert not replaces_live(none, None)


def test_validation_and_dry_run_options_the_object_wins() -> None:
    assert validates(True, frozenset()) and not validates(False, frozenset())
    assert not validates(True, frozenset({"Validate=false"}))
    assert validates(False, frozenset({"Validate=true"}))
    assert skips_dry_run(True, frozenset()) and not skips_dry_run(False, frozenset())
    assert skips_dry_run(False, frozenset({"SkipDryRunOnMissingResource=true"}))
    assert not skips_dry_run(True, frozenset({"SkipDryRunOnMissingResource=false"}))


def test_application_options(tmp_path: Path) -> None:
    assert prune_propagation([]) == "Background"  # Recon's default, see the design doc
    assert prune_propagation(["PrunePropagationPolicy=foreground"]) == "Foreground"
    assert prune_propagation(["PrunePropagationPolicy=orphan"]) == "Orphan"
    repo = Repo(tmp_path / "repo")
    spec = app(
        repo,
        "PrunePropagationPolicy=orphan",
        "Validate=false",
        "FailOnSharedResource=true",
        "ApplyOutOfSyncOnly=true",
        "Replace=true",
        "SkipDryRunOnMissingResource=true",
    )
    assert spec.prune_propagation == "Orphan"
    assert not spec.validate
    assert spec.fail_on_shared_resource and spec.apply_out_of_sync_only and spec.replace
    assert spec.skip_dry_run_on_missing_resource
    assert SyncEngine.check(spec) is None
    plain = app(repo)
    assert plain.validate and not (plain.replace or plain.fail_on_shared_resource)
    # An Application written under an older CRD (no enum) is refused by the engine.
    assert app_option_errors(["Replace=true", "Prune=confirm"]) == [
        "syncPolicy.syncOptions[1]: 'Prune=confirm': not a sync option Recon honours "
        f"(expected one of {', '.join(APP_OPTIONS)})"
    ]
    problem = SyncEngine.check(app(repo, "CreateNamespace=true", "RespectIgnoreDifferences=true"))
    assert problem is not None
    assert problem.startswith("spec.syncPolicy.syncOptions[1]: 'RespectIgnoreDifferences=true'")


def test_the_crd_admits_exactly_the_options_recon_reads() -> None:
    crd = yaml.safe_load(CRD_FILE.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    options = schema["properties"]["spec"]["properties"]["syncPolicy"]["properties"]["syncOptions"]
    assert tuple(options["items"]["enum"]) == APP_OPTIONS


def test_shared_resources_and_the_message() -> None:
    live = {"metadata": {"annotations": {"recon.dev/application": "team/other"}}}
    assert shared_with(live, "default/a") == "team/other"
    assert shared_with(live, "team/other") is None
    assert shared_with({"metadata": {}}, "default/a") is None
    assert shared_with(None, "default/a") is None
    blockers = [
        Blocker("a.yaml:3", "spec: missing"),
        Blocker("b.yaml:1", "ConfigMap/b is part of applications default/a and x/y", True),
    ]
    assert blocked_message(blockers) == (
        "Shared resource found: ConfigMap/b is part of applications default/a and x/y "
        "(and 1 more): nothing was applied"
    )
    assert blocked_message(blockers[:1]) == "a.yaml:3: spec: missing: nothing was applied"


def test_kinds_declared_by_crds_in_the_set() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Cluster", "names": {"kind": "Widget"}},
    }
    namespaced = {**crd, "spec": {**crd["spec"], "scope": "Namespaced", "names": {"kind": "Gear"}}}
    found = declared_kinds(
        [Manifest(crd, Source("a", 1, 0)), Manifest(namespaced, Source("a", 9, 1))]
    )
    assert found == {("example.com", "Widget"): False, ("example.com", "Gear"): True}


def test_the_operation_state_lists_warnings() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    outcome = SyncOutcome("Succeeded", "ok", "abc", warnings=["a.yaml:3: x: dropped"])
    assert operation_state(outcome, now, now, "user")["warnings"] == ["a.yaml:3: x: dropped"]
    assert "warnings" not in operation_state(SyncOutcome("Succeeded", "ok"), now, now, "user")


# -- PrunePropagationPolicy --------------------------------------------------------------------


class Recording(InProcessClient):
    """The in-process client, noting the writes a sync makes."""

    def __init__(self, client: InProcessClient) -> None:
        super().__init__(client.service)
        self.deletes: list[tuple[str, str | None]] = []
        self.writes: list[tuple[str, str]] = []

    async def delete(self, api_version: str, kind: str, name: str, *args: Any, **kw: Any) -> Any:
        self.deletes.append((name, kw.get("propagation")))
        return await super().delete(api_version, kind, name, *args, **kw)

    async def apply(self, obj: JSONDict, **kw: Any) -> JSONDict:
        self.writes.append(("apply", obj["metadata"]["name"]))
        return await super().apply(obj, **kw)

    async def update(self, obj: JSONDict, **kw: Any) -> JSONDict:
        self.writes.append(("update", obj["metadata"]["name"]))
        return await super().update(obj, **kw)

    async def create(self, obj: JSONDict, **kw: Any) -> JSONDict:
        self.writes.append(("create", obj["metadata"]["name"]))
        return await super().create(obj, **kw)


async def _owned_child(client: InProcessClient, owner: str) -> None:
    """A ConfigMap that `owner` owns (as a ReplicaSet is a Deployment's)."""
    parent = await client.get("v1", "ConfigMap", owner, "default")
    reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": owner,
        "uid": parent["metadata"]["uid"],
    }
    await client.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{owner}-child", "ownerReferences": [reference]},
        }
    )


@pytest.mark.parametrize(
    ("option", "propagation"),
    [
        ((), "Background"),
        (("PrunePropagationPolicy=background",), "Background"),
        (("PrunePropagationPolicy=foreground",), "Foreground"),
        (("PrunePropagationPolicy=orphan",), "Orphan"),
    ],
)
async def test_prune_propagation_policy(
    plane: InProcessClient,  # noqa: F811
    tmp_path: Path,
    option: tuple[str, ...],
    propagation: str,
) -> None:
    client = Recording(plane)
    repo = Repo(tmp_path / "repo")
    repo.write({"a.yaml": configmap("keep") + configmap("also") + configmap("gone")})
    spec = app(repo, *option)
    sync = engine(client, tmp_path)
    assert (await sync.sync(spec, SyncOptions(prune=True))).phase == "Succeeded"
    await _owned_child(client, "gone")
    repo.write({"a.yaml": configmap("keep") + configmap("also")})
    outcome = await sync.sync(spec, SyncOptions(prune=True))
    assert outcome.phase == "Succeeded", outcome.message
    assert [(r.name, r.action) for r in outcome.results if r.action == "pruned"] == [
        ("gone", "pruned")
    ]
    assert client.deletes == [("gone", propagation)]

    async def owner_gone() -> bool:
        return not await exists(client, "v1", "ConfigMap", "gone")

    await eventually(owner_gone)
    if propagation == "Orphan":  # the dependent stays, no longer owned
        child = await client.get("v1", "ConfigMap", "gone-child", "default")
        assert not child["metadata"].get("ownerReferences")
    else:

        async def child_gone() -> bool:
            return not await exists(client, "v1", "ConfigMap", "gone-child")

        await eventually(child_gone)
    # Nothing is pruned twice, even while an object lingers being deleted.
    again = await sync.sync(spec, SyncOptions(prune=True))
    assert not [r for r in again.results if r.action == "pruned"]


async def test_an_object_being_deleted_is_not_pruned_again(
    plane: InProcessClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write({"a.yaml": configmap("keep") + configmap("also") + configmap("gone")})
    spec = app(repo, "PrunePropagationPolicy=foreground")
    sync = engine(plane, tmp_path)
    await sync.sync(spec, SyncOptions(prune=True))
    live = await plane.get("v1", "ConfigMap", "gone", "default")
    live["metadata"]["finalizers"] = ["example.com/hold"]  # someone else's, holding it
    await plane.update(live)
    repo.write({"a.yaml": configmap("keep") + configmap("also")})
    first = await sync.sync(spec, SyncOptions(prune=True))
    assert [r.name for r in first.results if r.action == "pruned"] == ["gone"]
    terminating = await plane.get("v1", "ConfigMap", "gone", "default")
    assert terminating["metadata"]["deletionTimestamp"]
    second = await sync.sync(spec, SyncOptions(prune=True))
    assert not [r for r in second.results if r.action == "pruned"]


# -- Validate=false ----------------------------------------------------------------------------

WITH_EXTRA = """---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  annotations: {"argocd.argoproj.io/sync-options": "%s"}
data: {k: v}
extra: {not: known}
"""


async def test_validate_false_drops_unknown_fields_with_a_warning(
    plane: InProcessClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    repo = Repo(tmp_path / "repo")
    sync = engine(plane, tmp_path)
    repo.write({"a.yaml": WITH_EXTRA % "Prune=false"})
    strict = await sync.sync(app(repo), SyncOptions())
    assert strict.phase == "Failed"
    assert strict.errors == ['a.yaml:8: extra: unknown field "extra"']

    repo.write({"a.yaml": WITH_EXTRA % "Validate=false"})
    lines: list[str] = []
    outcome = await sync.sync(app(repo), SyncOptions(), lines.append)
    assert outcome.phase == "Succeeded", outcome.message
    warning = 'a.yaml:8: extra: unknown field "extra": dropped (Validate=false)'
    assert outcome.warnings == [warning]
    assert f"warning: {warning}" in lines
    live = await plane.get("v1", "ConfigMap", "settings", "default")
    assert "extra" not in live and "extra" not in live["metadata"]["annotations"][LAST_APPLIED]
    # What was dropped is not drift: the object compares Synced, so self-heal rests.
    loaded = await sync.render(app(repo), await sync.fetch(app(repo)))
    assert [s.status for s in await sync.compare(app(repo), loaded.manifests)] == ["Synced"]


async def test_validate_false_for_the_whole_application_and_what_stays_an_error(
    plane: InProcessClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    repo = Repo(tmp_path / "repo")
    sync = engine(plane, tmp_path)
    plain = WITH_EXTRA.replace('  annotations: {"argocd.argoproj.io/sync-options": "%s"}\n', "")
    repo.write({"a.yaml": plain})
    assert (await sync.sync(app(repo), SyncOptions())).phase == "Failed"
    lenient = app(repo, "Validate=false")
    outcome = await sync.sync(lenient, SyncOptions())
    assert outcome.phase == "Succeeded", outcome.message
    assert len(outcome.warnings) == 1
    # An object's own Validate=true wins over the Application's.
    repo.write({"a.yaml": WITH_EXTRA % "Validate=true"})
    assert (await sync.sync(lenient, SyncOptions())).errors == [
        'a.yaml:8: extra: unknown field "extra"'
    ]
    # Wrong types and bad metadata stay errors: the API server would refuse them too.
    bad = plain.replace("data: {k: v}", "data: {k: [1]}").replace("settings", "Bad_Name")
    repo.write({"a.yaml": bad})
    failed = await sync.sync(lenient, SyncOptions())
    assert failed.phase == "Failed" and "nothing was applied" in failed.message
    assert any("data.k" in e for e in failed.errors)
    assert any("metadata.name" in e for e in failed.errors)
    # A typo in the annotation is an error at the object's line, not ignored.
    repo.write({"a.yaml": WITH_EXTRA % "Validate=no"})
    typo = await sync.sync(app(repo), SyncOptions())
    assert typo.phase == "Failed"
    assert (
        f"a.yaml:6: metadata.annotations[{OPTIONS}]: 'Validate=no': expected " in (typo.errors[0])
    )


PARTIAL = """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
"""

FULL = """---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: busybox}]}
"""


async def test_validate_false_with_server_side_apply_patches_a_partial_object(
    plane: InProcessClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Argo CD's documented use: a partial Deployment (only replicas) patched onto the live
    one by server-side apply. The required fields it lacks are the API server's to judge,
    merged with the live object; with nothing live, the sync fails before applying
    anything."""
    repo = Repo(tmp_path / "repo")
    sync = engine(plane, tmp_path)
    repo.write({"web.yaml": PARTIAL, "config.yaml": configmap("settings")})
    assert (await sync.sync(app(repo, "ServerSideApply=true"), SyncOptions())).phase == "Failed"
    patching = app(repo, "ServerSideApply=true", "Validate=false")
    missing = await sync.sync(patching, SyncOptions())
    assert missing.phase == "Failed"
    assert missing.message == (
        'web.yaml:5: spec: "selector" is a required property; spec: "template" is a required '
        "property (Validate=false, but there is no live object to merge it with): nothing "
        "was applied"
    )
    assert not await exists(plane, "v1", "ConfigMap", "settings")

    live = yaml.safe_load(FULL)
    live["metadata"]["namespace"] = "default"
    await plane.create(live)  # made by someone else, e.g. a Helm chart
    outcome = await sync.sync(patching, SyncOptions())
    assert outcome.phase == "Succeeded", outcome.message
    web = await plane.get("apps/v1", "Deployment", "web", "default")
    assert web["spec"]["replicas"] == 3
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"
    # Replace=true writes the object as it is: a partial one cannot be replaced.
    replacing = app(repo, "Replace=true", "Validate=false")
    refused = await sync.sync(replacing, SyncOptions())
    assert refused.phase == "Failed" and "Replace=true writes the object as it is" in (
        refused.message
    )


# -- FailOnSharedResource ----------------------------------------------------------------------


async def test_fail_on_shared_resource_applies_nothing_and_names_the_other_application(
    plane: InProcessClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    repo = Repo(tmp_path / "repo")
    sync = engine(plane, tmp_path)
    repo.write({"shared.yaml": configmap("settings")})
    assert (await sync.sync(app(repo, name="first"), SyncOptions())).phase == "Succeeded"

    repo.write({"shared.yaml": configmap("settings", k="mine"), "own.yaml": configmap("own")})
    careful = app(repo, "FailOnSharedResource=true", "CreateNamespace=true", name="second")
    for dry_run in (True, False):
        outcome = await sync.sync(careful, SyncOptions(prune=True, dry_run=dry_run))
        assert outcome.phase == "Failed"
        assert outcome.message == (
            "Shared resource found: ConfigMap/settings is part of applications default/second "
            "and default/first: nothing was applied"
        )
        assert outcome.errors == [
            "shared.yaml:2: ConfigMap/settings is part of applications default/second and "
            "default/first"
        ]
        assert outcome.results == []
    assert not await exists(plane, "v1", "ConfigMap", "own")
    live = await plane.get("v1", "ConfigMap", "settings", "default")
    assert live["data"] == {"k": "v"}
    assert live["metadata"]["annotations"]["recon.dev/application"] == "default/first"
    # Its own objects are not shared; without the option the object is taken over.
    assert (await sync.sync(app(repo, name="first"), SyncOptions())).phase == "Succeeded"
    assert (
        await sync.sync(app(repo, "FailOnSharedResource=true", name="first"), SyncOptions())
    ).phase == "Succeeded"
    taken = await sync.sync(app(repo, name="second"), SyncOptions())
    assert taken.phase == "Succeeded"
    live = await plane.get("v1", "ConfigMap", "settings", "default")
    assert live["metadata"]["annotations"]["recon.dev/application"] == "default/second"
    # The first Application now compares the object as shared: Argo's SharedResourceWarning.
    first = app(repo, name="first")
    loaded = await sync.render(first, await sync.fetch(first))
    states = await sync.compare(first, loaded.manifests)
    assert [s.shared for s in states if s.name == "settings"] == [
        "ConfigMap/settings is part of applications default/first and default/second"
    ]
    conditions = refresh_patch({}, "rev", states, 1, NOW)["conditions"]
    assert [(c["type"], c["message"]) for c in conditions] == [
        (
            "SharedResourceWarning",
            "ConfigMap/own is part of applications default/first and default/second; "
            "ConfigMap/settings is part of applications default/first and default/second",
        )
    ]
    assert refresh_patch({"conditions": conditions}, "rev", [], 1, NOW)["conditions"] == []


# -- ApplyOutOfSyncOnly ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["ServerSideApply=true", "Replace=true"])
async def test_apply_out_of_sync_only_writes_only_what_differs(
    plane: InProcessClient,  # noqa: F811
    tmp_path: Path,
    mode: str,
) -> None:
    client = Recording(plane)
    repo = Repo(tmp_path / "repo")
    repo.write({"a.yaml": configmap("one") + configmap("two")})
    sync = engine(client, tmp_path)
    assert (await sync.sync(app(repo, mode), SyncOptions())).phase == "Succeeded"
    client.writes.clear()
    # Without the option, server-side apply and replace write every object every time.
    assert (await sync.sync(app(repo, mode), SyncOptions())).phase == "Succeeded"
    assert sorted(name for _, name in client.writes) == ["one", "two"]
    client.writes.clear()
    only = app(repo, mode, "ApplyOutOfSyncOnly=true")
    await client.patch("v1", "ConfigMap", "two", {"data": {"k": "edited"}}, namespace="default")
    outcome = await sync.sync(only, SyncOptions())
    assert outcome.phase == "Succeeded", outcome.message
    assert [name for _, name in client.writes] == ["two"]
    assert [(r.name, r.action) for r in outcome.results] == [
        ("one", "unchanged"),
        ("two", "configured"),
    ]
    assert (await client.get("v1", "ConfigMap", "two", "default"))["data"] == {"k": "v"}


async def test_the_three_way_apply_already_writes_only_what_differs(
    plane: InProcessClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Why `ApplyOutOfSyncOnly=true` changes nothing for kubectl's three-way apply."""
    client = Recording(plane)
    repo = Repo(tmp_path / "repo")
    repo.write({"a.yaml": configmap("one") + configmap("two")})
    sync = engine(client, tmp_path)
    await sync.sync(app(repo), SyncOptions())
    for options in ((), ("ApplyOutOfSyncOnly=true",)):
        client.writes.clear()
        await client.patch("v1", "ConfigMap", "two", {"data": {"k": "edited"}}, namespace="default")
        assert (await sync.sync(app(repo, *options), SyncOptions())).phase == "Succeeded"
        assert client.writes == [("update", "two")]


# -- Replace=true ------------------------------------------------------------------------------


async def test_replace_writes_the_whole_object_without_last_applied(
    plane: InProcessClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write({"a.yaml": configmap("settings")})
    sync = engine(plane, tmp_path)
    replacing = app(repo, "Replace=true", "ServerSideApply=true")  # Replace takes precedence
    lines: list[str] = []
    assert (await sync.sync(replacing, SyncOptions(), lines.append)).phase == "Succeeded"
    assert "configmap/settings created" in lines
    live = await plane.get("v1", "ConfigMap", "settings", "default")
    assert LAST_APPLIED not in live["metadata"]["annotations"]
    assert "managedFields" not in live["metadata"]  # not a server-side apply
    assert live["metadata"]["annotations"]["recon.dev/application"] == "default/a"
    # Someone adds a key and a label: a replace removes both (a three-way apply would keep
    # them, as fields it never set).
    live["data"]["extra"] = "x"
    live["metadata"]["labels"] = {"by": "hand"}
    await plane.update(live)
    outcome = await sync.sync(replacing, SyncOptions())
    assert outcome.phase == "Succeeded", outcome.message
    live = await plane.get("v1", "ConfigMap", "settings", "default")
    assert live["data"] == {"k": "v"} and "labels" not in live["metadata"]
    assert [r.action for r in outcome.results] == ["configured"]
    again = await sync.sync(replacing, SyncOptions())
    assert [r.action for r in again.results] == ["unchanged"]


async def test_replace_on_one_object_and_from_the_live_annotation(
    plane: InProcessClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write({"a.yaml": configmap("replaced", "Replace=true") + configmap("applied")})
    sync = engine(plane, tmp_path)
    assert (await sync.sync(app(repo), SyncOptions())).phase == "Succeeded"
    replaced = await plane.get("v1", "ConfigMap", "replaced", "default")
    applied = await plane.get("v1", "ConfigMap", "applied", "default")
    assert LAST_APPLIED not in replaced["metadata"]["annotations"]
    assert LAST_APPLIED in applied["metadata"]["annotations"]
    # Git drops the annotation: the write that removes it is still a replace (Argo CD
    # looks at the live object's options too), so the hand-made key goes with it.
    replaced["data"]["extra"] = "x"
    await plane.update(replaced)
    repo.write({"a.yaml": configmap("replaced") + configmap("applied")})
    assert (await sync.sync(app(repo), SyncOptions())).phase == "Succeeded"
    replaced = await plane.get("v1", "ConfigMap", "replaced", "default")
    assert replaced["data"] == {"k": "v"}
    assert OPTIONS not in replaced["metadata"]["annotations"]


async def test_replace_keeps_ignored_fields_git_never_names(
    plane: InProcessClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A replace keeps nothing of live on its own: an ignored field (an autoscaler's
    replicas) must be carried over even when git never names it."""
    repo = Repo(tmp_path / "repo")
    repo.write({"web.yaml": FULL.replace("  replicas: 1\n", "")})
    rule = [{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}]
    replacing = app(repo, "Replace=true", ignoreDifferences=rule)
    sync = engine(plane, tmp_path)
    assert (await sync.sync(replacing, SyncOptions())).phase == "Succeeded"
    await plane.patch(
        "apps/v1", "Deployment", "web", {"spec": {"replicas": 5}}, namespace="default"
    )
    repo.write({"web.yaml": FULL.replace("  replicas: 1\n", "").replace("busybox", "nginx")})
    assert (await sync.sync(replacing, SyncOptions())).phase == "Succeeded"
    web = await plane.get("apps/v1", "Deployment", "web", "default")
    assert web["spec"]["replicas"] == 5
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"


# -- SkipDryRunOnMissingResource ---------------------------------------------------------------

CRD = """---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, properties: {size: {type: integer}}}
"""

WIDGET = """---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w%s
spec: {size: 3}
"""


async def test_a_dry_run_does_not_ask_the_server_about_kinds_a_crd_in_the_sync_declares(
    plane: InProcessClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    """As Argo CD does on its own: the CRD is applied first, so its custom resources cannot
    exist yet; a dry run shows them as created instead of failing."""
    repo = Repo(tmp_path / "repo")
    repo.write({"crd.yaml": CRD, "widget.yaml": WIDGET % ""})
    sync = engine(plane, tmp_path)
    dry = await sync.sync(app(repo), SyncOptions(dry_run=True))
    assert dry.phase == "Succeeded", dry.message
    assert [(r.kind, r.action) for r in dry.results] == [
        ("CustomResourceDefinition", "created"),
        ("Widget", "created"),
    ]
    widget = dry.results[1].after
    assert widget is not None and widget["metadata"]["namespace"] == "default"
    with pytest.raises(NotFoundError):
        await plane.resource("example.com/v1", "Widget")
    real = await sync.sync(app(repo), SyncOptions())
    assert real.phase == "Succeeded", real.message
    assert await exists(plane, "example.com/v1", "Widget", "w")
    # Once the server serves the kind, a dry run asks it as for any other object.
    again = await sync.sync(app(repo), SyncOptions(dry_run=True))
    assert [(r.kind, r.action) for r in again.results] == [
        ("CustomResourceDefinition", "unchanged"),
        ("Widget", "unchanged"),
    ]


async def test_skip_dry_run_on_missing_resource(
    plane: InProcessClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A custom resource whose CRD something else makes (gatekeeper's constraints) is not
    an error with the option: not validated, not dry-run, applied once the kind exists."""
    repo = Repo(tmp_path / "repo")
    sync = engine(plane, tmp_path)
    repo.write({"config.yaml": configmap("settings"), "widget.yaml": WIDGET % ""})
    refused = await sync.sync(app(repo), SyncOptions())
    assert refused.phase == "Failed"
    assert refused.errors[0].startswith("widget.yaml:2: unknown kind 'Widget'")

    annotated = WIDGET.replace(
        "  name: w%s\n",
        f"  name: w%s\n  annotations: {{{OPTIONS}: SkipDryRunOnMissingResource=true}}\n",
    )
    for files, spec in (
        ({"widget.yaml": annotated % ""}, app(repo)),
        ({"widget.yaml": WIDGET % ""}, app(repo, "SkipDryRunOnMissingResource=true")),
    ):
        repo.write(files)
        dry = await sync.sync(spec, SyncOptions(dry_run=True))
        assert dry.phase == "Succeeded", dry.message
        assert dry.warnings == [
            "widget.yaml:2: Widget (example.com/v1) not validated: no schema or "
            "CustomResourceDefinition declares it yet (SkipDryRunOnMissingResource=true)"
        ]
        assert [(r.kind, r.action) for r in dry.results][-1] == ("Widget", "created")
        # Applied while the kind still does not exist, it fails on its own (the sync is
        # retried); the other objects are applied.
        real = await sync.sync(spec, SyncOptions())
        assert real.phase == "Failed"
        failed = real.failed_objects[0]
        assert failed.kind == "Widget" and "Widget" in str(failed.error)
        assert await exists(plane, "v1", "ConfigMap", "settings")

    await plane.create(yaml.safe_load(CRD))  # the controller makes the CRD
    outcome = await sync.sync(app(repo, "SkipDryRunOnMissingResource=true"), SyncOptions())
    assert outcome.phase == "Succeeded", outcome.message
    assert outcome.warnings == []  # the kind is known now: validated as any other
    assert await exists(plane, "example.com/v1", "Widget", "w")


# -- Prune=confirm, Delete=confirm -------------------------------------------------------------


async def test_confirm_is_never_given_so_the_object_stays(
    plane: InProcessClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Recon has no confirmation step: an object that asks for one is never pruned or
    deleted by it (pruning it anyway, as Recon did when it ignored the value, would do
    what the user guarded against)."""
    repo = Repo(tmp_path / "repo")
    files = configmap("a") + configmap("b") + configmap("guarded", "Prune=confirm,Delete=confirm")
    repo.write({"a.yaml": files})
    sync = engine(plane, tmp_path)
    assert (await sync.sync(app(repo), SyncOptions(prune=True))).phase == "Succeeded"
    repo.write({"a.yaml": configmap("a") + configmap("b")})
    outcome = await sync.sync(app(repo), SyncOptions(prune=True))
    assert not [r for r in outcome.results if r.action == "pruned"]
    assert {r.name for r in await sync.delete_all(app(repo))} == {"a", "b"}
    assert await exists(plane, "v1", "ConfigMap", "guarded")


async def test_validate_false_still_checks_the_object_it_drops_fields_from(tmp_path: Path) -> None:
    """Dropping the unknown fields, then validating what is left: the API server's own rules
    (`schema/semantics.py`), skipped while an object has schema errors, still apply."""
    mismatched = FULL.replace(
        "  template:\n    metadata: {labels: {app: web}}",
        ("  template:\n    metadata: {labels: {app: other}}"),
    ).replace("  replicas: 1\n", "  replicas: 1\n  bogus: true\n")
    (tmp_path / "web.yaml").write_text(mismatched)
    strict = await load_and_validate(None, [str(tmp_path / "web.yaml")], None)
    assert [e.split(": ", 1)[1] for e in strict.errors] == [
        'spec.bogus: unknown field "spec.bogus"'
    ]
    lenient = await load_and_validate(None, [str(tmp_path / "web.yaml")], None, validate=False)
    assert len(lenient.warnings) == 1 and "spec.bogus" in lenient.warnings[0]
    assert lenient.errors and "selector" in lenient.errors[0]
    assert "bogus" not in lenient.manifests[0].obj["spec"]


# -- Force ----------------------------------------------------------------------------------


def job_yaml(image: str, options: str = "") -> str:
    annotations = f"\n  annotations: {{{OPTIONS}: {options!r}}}" if options else ""
    return (
        "---\napiVersion: batch/v1\nkind: Job\nmetadata:\n"
        f"  name: migrate{annotations}\n"
        "spec:\n  template:\n    spec:\n      restartPolicy: Never\n"
        f"      containers:\n      - name: m\n        image: {image}\n"
    )


async def test_force_recreates_an_object_whose_change_the_api_refuses(
    plane: InProcessClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    repo = Repo(tmp_path / "repo")
    sync = engine(plane, tmp_path)
    repo.write({"job.yaml": job_yaml("migrate:1")})
    assert (await sync.sync(app(repo), SyncOptions())).phase == "Succeeded"
    first = await plane.get("batch/v1", "Job", "migrate", "default")

    repo.write({"job.yaml": job_yaml("migrate:2")})
    refused = await sync.sync(app(repo), SyncOptions())
    assert refused.phase == "Failed"
    assert "spec.template: Invalid value:" in refused.failed_objects[0].error
    assert "field is immutable" in refused.failed_objects[0].error

    repo.write({"job.yaml": job_yaml("migrate:2", "Force=true")})
    forced = await sync.sync(app(repo), SyncOptions())
    assert forced.phase == "Succeeded", forced.message
    again = await plane.get("batch/v1", "Job", "migrate", "default")
    assert again["metadata"]["uid"] != first["metadata"]["uid"]
    image = again["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "migrate:2"
    # `kubectl apply --force`: created anew as applied, with its last-applied annotation.
    assert LAST_APPLIED in again["metadata"]["annotations"]


async def test_force_with_replace_recreates_without_last_applied(
    plane: InProcessClient,  # noqa: F811
    tmp_path: Path,
) -> None:
    repo = Repo(tmp_path / "repo")
    sync = engine(plane, tmp_path)
    repo.write({"job.yaml": job_yaml("migrate:1")})  # applied: it has a last-applied
    assert (await sync.sync(app(repo), SyncOptions())).phase == "Succeeded"
    first = await plane.get("batch/v1", "Job", "migrate", "default")
    assert LAST_APPLIED in first["metadata"]["annotations"]

    # `kubectl replace --force`: the refused PUT becomes a delete and a create of exactly
    # what git says, with no last-applied annotation (neither a new one nor the old one).
    repo.write({"job.yaml": job_yaml("migrate:2", "Force=true,Replace=true")})
    lines: list[str] = []
    forced = await sync.sync(app(repo), SyncOptions(), lines.append)
    assert forced.phase == "Succeeded", forced.message
    assert "job.batch/migrate configured" in lines
    again = await plane.get("batch/v1", "Job", "migrate", "default")
    assert again["metadata"]["uid"] != first["metadata"]["uid"]
    assert again["spec"]["template"]["spec"]["containers"][0]["image"] == "migrate:2"
    annotations = again["metadata"]["annotations"]
    assert LAST_APPLIED not in annotations
    assert annotations["recon.dev/application"] == "default/a"
    assert annotations[OPTIONS] == "Force=true,Replace=true"
