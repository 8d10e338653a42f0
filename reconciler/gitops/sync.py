"""One Application sync, start to end: fetch, render, validate, apply in order, prune.

The engine talks to its target only through a `Client`, so `recon serve` (in-process
embedded plane) and `recon operator --kubeconfig` (any cluster) run the same code.

    fetch      GitCache: cached mirror, shallow fetch, credentials from a Secret (never logged)
    render     the source folder (recursive, kustomize when present) -> manifests
    validate   everything, before anything is applied: any error -> Failed, nothing applied,
               every error listed with its file:line
    apply      Namespaces and CRDs first, then config, Services, workloads; sync waves;
               kubectl's three-way merge with the last-applied annotation; each object marked
               with `recon.dev/application: <ns>/<name>`
    prune      objects marked as this Application's that left git — only when asked, never
               when the render is empty, and not more than half of what it owns unless forced
    compare    per object: Synced or OutOfSync (what applying now would change), and health

A failed object does not stop the others (each is reported on its own, as Argo CD users
expect); the sync then ends Failed and the operator retries it with back-off.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from reconciler.client.base import Client
from reconciler.client.errors import AlreadyExistsError, ClientError, NotFoundError
from reconciler.clock import Clock, SystemClock
from reconciler.gitops import health
from reconciler.gitops.application import AppSpec
from reconciler.gitops.apply import Applier, ObjectResult, PatchMetas
from reconciler.gitops.drift import drifted_paths
from reconciler.gitops.hooks import HookRunner, plan_hooks
from reconciler.gitops.ignore import live_keeper, parse_rules, rules_for
from reconciler.gitops.render import Loaded, load_and_validate, source_paths
from reconciler.manifests.loader import Manifest
from reconciler.manifests.ordering import SyncWaveError, waves
from reconciler.merge.three_way import last_applied_of
from reconciler.source.git import Checkout, GitCache, GitSourceError, redact

__all__ = [
    "OWNER_ANNOTATION",
    "ResourceState",
    "SyncEngine",
    "SyncOptions",
    "SyncOutcome",
]

JSONDict = dict[str, Any]
Progress = Callable[[str], None]

log = logging.getLogger(__name__)

OWNER_ANNOTATION = "recon.dev/application"

# Kinds looked at for objects to prune, besides those in the render and the inventory.
_COMMON_KINDS = (
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("v1", "PersistentVolumeClaim"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
)


@dataclass(frozen=True)
class SyncOptions:
    revision: str | None = None  # None: the Application's targetRevision
    prune: bool = False
    dry_run: bool = False
    force: bool = False  # prune even more than half of what the Application owns


@dataclass
class ResourceState:
    """One object of the Application, as `status.resources` lists it."""

    api_version: str
    kind: str
    namespace: str
    name: str
    status: str  # Synced | OutOfSync
    health: health.Health
    message: str = ""

    def as_status(self) -> JSONDict:
        group, _, version = self.api_version.rpartition("/")
        entry: JSONDict = {
            "group": group,
            "version": version,
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "health": {"status": self.health.status},
        }
        if self.namespace:
            entry["namespace"] = self.namespace
        if self.health.message:
            entry["health"]["message"] = self.health.message
        if self.message:
            entry["message"] = self.message
        return entry


@dataclass
class SyncOutcome:
    phase: str  # Succeeded | Failed | Error
    message: str
    revision: str | None = None
    errors: list[str] = field(default_factory=list)
    results: list[ObjectResult] = field(default_factory=list)
    prune_held_back: str | None = None
    dry_run: bool = False
    """Nothing was changed: not a deployment (no history entry, no retries)."""

    @property
    def failed_objects(self) -> list[ObjectResult]:
        return [r for r in self.results if r.action == "failed"]


def _with_credentials(url: str, secret: JSONDict | None) -> str:
    """`url` with the Secret's username and password (or token) for HTTPS remotes."""
    if secret is None:
        return url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return url
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    password = data.get("password") or data.get("token")
    if not password:
        return url
    user = data.get("username") or "git"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _identity(api_version: str, kind: str, namespace: str, name: str) -> tuple[str, ...]:
    return (api_version.rpartition("/")[0], kind, namespace, name)


class SyncEngine:
    def __init__(
        self,
        client: Client,
        cache: GitCache,
        *,
        metas: PatchMetas | None = None,
        kubernetes_version: str | None = None,
        clock: Clock | None = None,
        hook_health_timeout: float = 300.0,
    ) -> None:
        self.client = client
        self.cache = cache
        self.clock = clock or SystemClock()
        self.hook_health_timeout = hook_health_timeout
        """How long PostSync hooks wait for the applied objects to become Healthy."""
        self.metas = metas or PatchMetas(kubernetes_version)
        self.kubernetes_version = kubernetes_version
        self._renders: dict[str, tuple[tuple[Any, ...], Loaded]] = {}  # see `render`

    @staticmethod
    def check(app: AppSpec) -> str | None:
        """What is wrong with the Application's own spec (its ignoreDifferences), if anything."""
        try:
            parse_rules(app.ignore_differences)
        except ValueError as e:
            return f"spec.{e}"
        return None

    def applier(self, app: AppSpec) -> Applier:
        """The applier of `app`: its default namespace, its ownership mark, and the fields its
        ignoreDifferences leave alone kept as they are live (`check` the app first)."""
        return Applier(
            self.client,
            self.metas,
            default_namespace=app.destination_namespace or app.namespace,
            set_annotation=OWNER_ANNOTATION,
            keep_live=live_keeper(parse_rules(app.ignore_differences)),
        )

    # -- source ------------------------------------------------------------------------------

    async def _remote(self, app: AppSpec) -> str:
        if not app.credentials_secret:
            return app.repo_url
        try:
            secret = await self.client.get("v1", "Secret", app.credentials_secret, app.namespace)
        except NotFoundError:
            raise GitSourceError(
                f"credentials Secret {app.namespace}/{app.credentials_secret} not found"
            ) from None
        return _with_credentials(app.repo_url, secret)

    async def remote_revision(self, app: AppSpec) -> str | None:
        """The commit the target revision names now, without fetching (None: unknown)."""
        remote = await self._remote(app)
        return await asyncio.to_thread(self.cache.remote_revision, remote, app.target_revision)

    async def fetch(self, app: AppSpec, revision: str | None = None) -> Checkout:
        remote = await self._remote(app)
        return await asyncio.to_thread(self.cache.checkout, remote, revision or app.target_revision)

    async def _crd_versions(self) -> tuple[tuple[str, str], ...]:
        """The cluster's CRDs by name and resourceVersion: what a render validates against
        besides the tree itself."""
        try:
            listed = await self.client.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        except ClientError:
            return ()
        return tuple(
            sorted(
                (str(c["metadata"].get("name")), str(c["metadata"].get("resourceVersion")))
                for c in listed.items
            )
        )

    async def render(self, app: AppSpec, checkout: Checkout) -> Loaded:
        """The manifests of `app` at `checkout`, validated. The last render of each
        Application is kept: a commit's tree never changes, so the comparison after a sync,
        and a poll or a sync of the same commit, do not parse and validate every file
        again unless the cluster's CRDs changed. Callers get their own lists (the manifests
        themselves are shared and never modified)."""
        try:
            paths = source_paths(checkout.path, app.path, recurse=app.recurse)
        except ValueError as e:
            return Loaded([], [f"spec.source.path: {e}"])
        key = (str(checkout.path), tuple(paths), await self._crd_versions())
        last = self._renders.get(app.key)
        if last is None or last[0] != key:
            root = f"{checkout.path.resolve()}/"
            last = key, (await self._render(checkout, paths)).kept(root)
            self._renders[app.key] = last
        hooks = {phase: list(found) for phase, found in last[1].hooks.items()}
        return Loaded(list(last[1].manifests), list(last[1].errors), hooks)

    async def _render(self, checkout: Checkout, paths: list[str]) -> Loaded:
        loaded = await load_and_validate(self.client, paths, self.kubernetes_version)
        plan = plan_hooks(loaded.manifests)
        loaded.manifests, loaded.hooks = plan.regular, plan.hooks
        # Errors name files as the repository has them, not where the cache keeps the tree.
        prefix = f"{checkout.path.resolve()}/"
        loaded.errors = [e.replace(prefix, "") for e in [*loaded.errors, *plan.errors]]
        try:
            waves([*loaded.manifests, *plan.hooks_flat()], lambda m: m.obj)
        except SyncWaveError as e:
            loaded.errors.append(str(e))
        return loaded

    # -- sync ------------------------------------------------------------------------------

    async def sync(
        self, app: AppSpec, options: SyncOptions, progress: Progress | None = None
    ) -> SyncOutcome:
        say = progress or (lambda _line: None)
        problem = self.check(app)
        if problem is not None:
            return SyncOutcome("Failed", problem)
        try:
            checkout = await self.fetch(app, options.revision)
        except GitSourceError as e:
            return SyncOutcome("Error", redact(str(e)))
        say(f"revision {checkout.revision[:12]}")
        loaded = await self.render(app, checkout)
        if loaded.errors:
            count = len(loaded.errors)
            return SyncOutcome(
                "Failed",
                f"{count} validation error{'s' if count != 1 else ''}: nothing was applied",
                checkout.revision,
                errors=loaded.errors,
                dry_run=options.dry_run,
            )
        return await self.apply(
            app, loaded.manifests, checkout.revision, options, say, loaded.hooks
        )

    async def apply(
        self,
        app: AppSpec,
        manifests: Sequence[Manifest],
        revision: str | None,
        options: SyncOptions,
        say: Progress,
        hooks: Mapping[str, Sequence[Manifest]] | None = None,
    ) -> SyncOutcome:
        """Apply `manifests` (then prune), with the hooks of each phase around it
        (`gitops/hooks.py`); a failed sync runs the SyncFail hooks."""
        hooks = {} if options.dry_run else dict(hooks or {})  # a dry run runs no hooks
        if app.create_namespace and app.destination_namespace and not options.dry_run:
            problem = await self._ensure_namespace(app.destination_namespace, say)
            if problem is not None:
                return SyncOutcome("Error", problem, revision)
        runner = HookRunner(self.client, self.applier(app), self.clock, app.key)
        pre = await runner.run("PreSync", hooks.get("PreSync", ()), say)
        if any(r.action == "failed" for r in pre):
            outcome = SyncOutcome(
                "Failed", "a PreSync hook failed: nothing was applied", revision, results=pre
            )
            return await self._sync_failed(runner, hooks, outcome, say)
        outcome = await self._apply(app, manifests, revision, options, say)
        outcome.results[:0] = pre
        if outcome.phase == "Succeeded" and hooks.get("Sync"):
            outcome = await self._hook_phase(runner, "Sync", hooks, outcome, say)
        if outcome.phase == "Succeeded" and hooks.get("PostSync"):
            unhealthy = await self._wait_healthy(app, manifests)
            if unhealthy is not None:
                outcome.phase = "Failed"
                outcome.message = f"PostSync hooks not run: {unhealthy}"
            else:
                outcome = await self._hook_phase(runner, "PostSync", hooks, outcome, say)
        if outcome.phase != "Succeeded":
            return await self._sync_failed(runner, hooks, outcome, say)
        return outcome

    async def _ensure_namespace(self, name: str, say: Progress) -> str | None:
        """`CreateNamespace=true`: the destination namespace, made when missing (before
        the PreSync hooks, which may live in it); why not, when it cannot be."""
        try:
            await self.client.get("v1", "Namespace", name)
            return None
        except NotFoundError:
            pass
        except ClientError as e:
            return f"CreateNamespace: {e.message}"
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        try:
            await self.client.create(body)
        except AlreadyExistsError:
            return None
        except ClientError as e:
            return f"CreateNamespace: {e.message}"
        say(f"namespace/{name} created")
        return None

    async def _hook_phase(
        self,
        runner: HookRunner,
        phase: str,
        hooks: Mapping[str, Sequence[Manifest]],
        outcome: SyncOutcome,
        say: Progress,
    ) -> SyncOutcome:
        results = await runner.run(phase, hooks.get(phase, ()), say)
        outcome.results += results
        failed = [r for r in results if r.action == "failed"]
        if failed:
            outcome.phase = "Failed"
            outcome.message = f"{failed[0].label}: {failed[0].error}"
        elif results:
            outcome.message += (
                f"; {len(results)} {phase} hook{'s' if len(results) != 1 else ''} succeeded"
            )
        return outcome

    async def _sync_failed(
        self,
        runner: HookRunner,
        hooks: Mapping[str, Sequence[Manifest]],
        outcome: SyncOutcome,
        say: Progress,
    ) -> SyncOutcome:
        if hooks.get("SyncFail"):
            outcome.results += await runner.run("SyncFail", hooks["SyncFail"], say)
        return outcome

    async def _wait_healthy(self, app: AppSpec, manifests: Sequence[Manifest]) -> str | None:
        """None once every applied object is Healthy; else why not (Degraded, or still not
        healthy after `hook_health_timeout`)."""
        deadline = self.clock.monotonic() + self.hook_health_timeout
        while True:
            states = await self.compare(app, manifests)
            waiting = [s for s in states if s.health.status != "Healthy"]
            degraded = [s for s in waiting if s.health.status == "Degraded"]
            if degraded:
                s = degraded[0]
                return f"{s.kind}/{s.name} is Degraded: {s.health.message}"
            if not waiting:
                return None
            if self.clock.monotonic() >= deadline:
                s = waiting[0]
                return (
                    f"{s.kind}/{s.name} not Healthy after {self.hook_health_timeout:.0f} s "
                    f"({s.health.status})"
                )
            await self.clock.sleep(1.0)

    async def _apply(
        self,
        app: AppSpec,
        manifests: Sequence[Manifest],
        revision: str | None,
        options: SyncOptions,
        say: Progress,
    ) -> SyncOutcome:
        applier = self.applier(app)
        results: list[ObjectResult] = []
        try:
            for wave in waves(list(manifests), lambda m: m.obj):
                for m in wave:
                    # The in-process client never waits: let the API server answer others
                    # between objects, or a large sync would hold the event loop.
                    await asyncio.sleep(0)
                    result = await applier.apply_one(
                        m,
                        dry_run=options.dry_run,
                        apply_set=app.key,
                        server_side=app.server_side_apply
                        or "ServerSideApply=true" in sync_options_of(m.obj),
                    )
                    results.append(result)
                    if result.action != "unchanged":
                        detail = f": {result.error}" if result.error else ""
                        say(f"{result.label} {result.action}{detail}")
        except ClientError as e:
            return SyncOutcome("Error", e.message, revision, results=results)
        held_back: str | None = None
        if options.prune:
            pruned, held_back = await self._prune(app, applier, manifests, options)
            for result in pruned:
                say(f"{result.label} {result.action}")
            results += pruned
        elif not manifests:
            held_back = "the render is empty: nothing is pruned"
        failed = [r for r in results if r.action == "failed"]
        counts = _counts(results)
        prefix = "dry run: " if options.dry_run else ""
        if failed:
            return SyncOutcome(
                "Failed",
                f"{prefix}{len(failed)} of {len(results)} objects failed ({counts})",
                revision,
                results=results,
                prune_held_back=held_back,
                dry_run=options.dry_run,
            )
        message = f"{prefix}successfully synced ({counts})"
        if held_back:
            message += f"; {held_back}"
        return SyncOutcome(
            "Succeeded",
            message,
            revision,
            results=results,
            prune_held_back=held_back,
            dry_run=options.dry_run,
        )

    async def _prune(
        self,
        app: AppSpec,
        applier: Applier,
        manifests: Sequence[Manifest],
        options: SyncOptions,
    ) -> tuple[list[ObjectResult], str | None]:
        if not manifests:
            return [], "the render is empty: nothing is pruned"
        kinds = sorted({(m.api_version, m.kind) for m in manifests} | set(_COMMON_KINDS))
        candidates = [
            c
            for c in await applier.prune_candidates(manifests, app.key, kinds)
            if "Prune=false" not in sync_options_of(c)
        ]
        if not candidates:
            return [], None
        owned = len(candidates) + len(manifests)
        if len(candidates) * 2 > owned and not options.force:
            return [], (
                f"pruning {len(candidates)} of the {owned} objects this Application owns is more "
                "than half: held back (sync with --force to prune them)"
            )
        return await applier.prune(candidates, dry_run=options.dry_run), None

    async def delete_all(self, app: AppSpec) -> list[ObjectResult]:
        """Everything this Application deployed, deleted (its finalizer, on deletion)."""
        self._renders.pop(app.key, None)
        applier = self.applier(app)
        candidates = await applier.prune_candidates([], app.key, list(_COMMON_KINDS))
        kept = [c for c in candidates if "Delete=false" not in sync_options_of(c)]
        return await applier.prune(kept)

    # -- compare ---------------------------------------------------------------------------

    async def compare(self, app: AppSpec, manifests: Sequence[Manifest]) -> list[ResourceState]:
        """Each desired object's sync status (would applying it change the live one?) and
        health, in apply order."""
        applier = self.applier(app)
        states: list[ResourceState] = []
        for wave in waves(list(manifests), lambda m: m.obj):
            for m in wave:
                await asyncio.sleep(0)  # as in `apply`
                states.append(await self._state(app, applier, m))
        return states

    async def _state(self, app: AppSpec, applier: Applier, m: Manifest) -> ResourceState:
        namespace = ""
        try:
            info = await self.client.resource(m.api_version, m.kind)
            if info.namespaced:
                namespace = m.namespace or applier.default_namespace
            live: JSONDict | None = await self.client.get(
                m.api_version, m.kind, m.name, namespace or None
            )
        except NotFoundError:
            live = None
        except ClientError as e:
            return ResourceState(
                m.api_version,
                m.kind,
                namespace,
                m.name,
                "Unknown",
                health.Health("Unknown"),
                e.message,
            )
        if live is None:
            return ResourceState(
                m.api_version, m.kind, namespace, m.name, "OutOfSync", health.assess(None)
            )
        desired = {**m.obj, "metadata": {**(m.obj.get("metadata") or {})}}
        if namespace:
            desired["metadata"]["namespace"] = namespace
        desired["metadata"]["annotations"] = {
            **(desired["metadata"].get("annotations") or {}),
            OWNER_ANNOTATION: app.key,
        }
        pointers = rules_for(parse_rules(app.ignore_differences), desired)
        meta = self.metas.for_kind(m.api_version, m.kind)
        drifted = drifted_paths(last_applied_of(live), desired, live, meta, pointers)
        status = "OutOfSync" if drifted else "Synced"
        message = f"differs at {', '.join(drifted[:5])}" if drifted else ""
        endpoints = None
        if m.kind == "Service" and m.api_version == "v1":
            try:
                endpoints = await self.client.get("v1", "Endpoints", m.name, namespace)
            except ClientError:
                endpoints = None
        return ResourceState(
            m.api_version,
            m.kind,
            namespace,
            m.name,
            status,
            health.assess(live, endpoints),
            message,
        )


SYNC_OPTIONS = "argocd.argoproj.io/sync-options"


def sync_options_of(obj: JSONDict) -> set[str]:
    """An object's own Argo CD sync options (`argocd.argoproj.io/sync-options`): Recon
    honours `Prune=false` (never pruned) and `Delete=false` (kept when the Application is
    deleted)."""
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(SYNC_OPTIONS) or ""
    return {part.strip() for part in str(text).split(",") if part.strip()}


def _counts(results: Sequence[ObjectResult]) -> str:
    tally: dict[str, int] = {}
    for result in results:
        tally[result.action] = tally.get(result.action, 0) + 1
    order = ("created", "configured", "unchanged", "pruned", "failed")
    return ", ".join(f"{tally[a]} {a}" for a in order if tally.get(a)) or "nothing to do"
