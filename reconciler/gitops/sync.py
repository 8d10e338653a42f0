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
    compare    per object: Synced or OutOfSync (what applying now would change), and health;
               objects the last comparison listed that left git but are still live and
               marked as the Application's: OutOfSync, requiring pruning (`left_git`)

A failed object does not stop the others (each is reported on its own, as Argo CD users
expect); the sync then ends Failed and the operator retries it with back-off. What can be
known before applying is checked before anything is (`_preflight`): an object another
Application owns (`FailOnSharedResource=true`), a `Validate=false` object missing required
fields with no live object to merge with. Argo CD's other sync options are read in
`gitops/sync_options.py`.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from reconciler.gitops.sync_options import (
    OWNER_ANNOTATION,
    SYNC_OPTIONS,
    ApplyMode,
    app_option_errors,
    apply_mode,
    object_options,
    shared_with,
    skips_dry_run,
    validates,
)
from reconciler.manifests.loader import Manifest
from reconciler.manifests.ordering import SyncWaveError, waves
from reconciler.merge.three_way import last_applied_of
from reconciler.source.git import Checkout, GitCache, GitSourceError, redact

__all__ = [
    "OWNER_ANNOTATION",
    "SYNC_OPTIONS",
    "Listed",
    "ResourceState",
    "SyncEngine",
    "SyncOptions",
    "SyncOutcome",
    "listed_kinds",
    "listed_objects",
]

JSONDict = dict[str, Any]
Progress = Callable[[str], None]

log = logging.getLogger(__name__)

Identity = tuple[str, str, str, str]  # Manifest.identity()
Listed = tuple[str, str, str, str]  # (apiVersion, kind, namespace, name) in status.resources
CRD_API = ("apiextensions.k8s.io", "CustomResourceDefinition")

# Kinds looked at for objects to prune, besides those in the render and the inventory
# (`SyncOptions.kinds`: those `status.resources` lists).
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
    kinds: tuple[tuple[str, str], ...] = ()
    """(apiVersion, kind) the Application is known to own (`listed_kinds` of its
    `status.resources`): looked at for objects to prune, so an object of a kind neither
    the render nor `_COMMON_KINDS` names is pruned too."""


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
    shared: str = ""
    """Set when the live object belongs to another Application: Argo CD's
    SharedResourceWarning (`Kind/name is part of applications a and b`)."""
    requires_pruning: bool = False
    """Live and the Application's, but no longer in git (`SyncEngine.left_git`): always
    OutOfSync, gone only when a sync prunes it (Argo CD's `requiresPruning`)."""

    @property
    def ref(self) -> Listed:
        """How `status.resources` names it (`listed_objects` reads it back)."""
        return (self.api_version, self.kind, self.namespace, self.name)

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
        if self.requires_pruning:
            entry["requiresPruning"] = True
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
    warnings: list[str] = field(default_factory=list)
    """What a sync option let through (`Validate=false`, `SkipDryRunOnMissingResource`)."""

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
        """What is wrong with the Application's own spec (its ignoreDifferences, its sync
        options), if anything."""
        try:
            parse_rules(app.ignore_differences)
        except ValueError as e:
            return f"spec.{e}"
        unknown = app_option_errors(app.sync_options)
        return f"spec.{unknown[0]}" if unknown else None

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
        leniency = (app.validate, app.skip_dry_run_on_missing_resource)
        key = (str(checkout.path), tuple(paths), await self._crd_versions(), leniency)
        last = self._renders.get(app.key)
        if last is None or last[0] != key:
            root = f"{checkout.path.resolve()}/"
            last = key, (await self._render(app, checkout, paths)).kept(root)
            self._renders[app.key] = last
        kept = last[1]
        return Loaded(
            list(kept.manifests),
            list(kept.errors),
            {phase: list(found) for phase, found in kept.hooks.items()},
            list(kept.warnings),
            dict(kept.deferred),
        )

    async def _render(self, app: AppSpec, checkout: Checkout, paths: list[str]) -> Loaded:
        loaded = await load_and_validate(
            self.client,
            paths,
            self.kubernetes_version,
            validate=app.validate,
            skip_missing=app.skip_dry_run_on_missing_resource,
        )
        plan = plan_hooks(loaded.manifests)
        loaded.manifests, loaded.hooks = plan.regular, plan.hooks
        # Errors name files as the repository has them, not where the cache keeps the tree.
        prefix = f"{checkout.path.resolve()}/"
        loaded.errors = [e.replace(prefix, "") for e in [*loaded.errors, *plan.errors]]
        loaded.warnings = [w.replace(prefix, "") for w in loaded.warnings]
        loaded.deferred = {
            key: [d.replace(prefix, "") for d in found] for key, found in loaded.deferred.items()
        }
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
                warnings=loaded.warnings,
            )
        return await self.apply(
            app,
            loaded.manifests,
            checkout.revision,
            options,
            say,
            loaded.hooks,
            warnings=loaded.warnings,
            deferred=loaded.deferred,
        )

    async def apply(
        self,
        app: AppSpec,
        manifests: Sequence[Manifest],
        revision: str | None,
        options: SyncOptions,
        say: Progress,
        hooks: Mapping[str, Sequence[Manifest]] | None = None,
        *,
        warnings: Sequence[str] = (),
        deferred: Mapping[Identity, Sequence[str]] | None = None,
    ) -> SyncOutcome:
        """Apply `manifests` (then prune), with the hooks of each phase around it
        (`gitops/hooks.py`); a failed sync runs the SyncFail hooks. First the checks that
        need the live objects (`_preflight`): one failing applies nothing and runs no hook.
        `warnings` and `deferred` come from the render (`Loaded`)."""
        for warning in warnings:
            say(f"warning: {warning}")
        try:
            blockers = await self._preflight(app, manifests, deferred or {})
        except ClientError as e:
            return SyncOutcome("Error", e.message, revision, dry_run=options.dry_run)
        if blockers:
            return SyncOutcome(
                "Failed",
                blocked_message(blockers),
                revision,
                errors=[str(b) for b in blockers],
                dry_run=options.dry_run,
                warnings=list(warnings),
            )
        outcome = await self._apply_with_hooks(app, manifests, revision, options, say, hooks)
        outcome.warnings = list(warnings)
        return outcome

    async def _apply_with_hooks(
        self,
        app: AppSpec,
        manifests: Sequence[Manifest],
        revision: str | None,
        options: SyncOptions,
        say: Progress,
        hooks: Mapping[str, Sequence[Manifest]] | None,
    ) -> SyncOutcome:
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

    async def _preflight(
        self,
        app: AppSpec,
        manifests: Sequence[Manifest],
        deferred: Mapping[Identity, Sequence[str]],
    ) -> list[Blocker]:
        """What stops the sync before anything is applied, from the live objects:

        - `FailOnSharedResource=true`: a desired object that exists and belongs to another
          Application (Argo CD's "Shared resource found");
        - a `Validate=false` object missing required fields (`render.judge`) with nothing
          live to merge with, or written by `Replace=true`, which does not merge: the API
          server would refuse it after the objects before it were applied.

        Only objects these can concern are fetched; a kind the server does not serve yet
        has no live objects."""
        blockers: list[Blocker] = []
        for m in manifests:
            missing = deferred.get(m.identity())
            if not (app.fail_on_shared_resource or missing):
                continue
            await asyncio.sleep(0)  # as in `_apply`
            live = await self._live(m, app.destination_namespace or app.namespace)
            other = shared_with(live, app.key) if app.fail_on_shared_resource else None
            if other is not None:
                text = f"{m.kind}/{m.name} is part of applications {app.key} and {other}"
                blockers.append(Blocker(m.where, text, shared=True))
            if not missing:
                continue
            options = object_options(m.obj)
            if apply_mode(app.server_side_apply, app.replace, options) == "replace":
                why = "Replace=true writes the object as it is"
            elif live is None:
                why = "there is no live object to merge it with"
            else:
                continue
            where = missing[0].partition(": ")[0]  # the first missing field's file:line
            fields = "; ".join(d.partition(": ")[2] for d in missing)
            blockers.append(Blocker(where, f"{fields} (Validate=false, but {why})"))
        return blockers

    async def _live(self, m: Manifest, default_namespace: str) -> JSONDict | None:
        """The live object of `m` (None: missing, or a kind the server does not serve)."""
        try:
            info = await self.client.resource(m.api_version, m.kind)
            namespace = (m.namespace or default_namespace) if info.namespaced else None
            return await self.client.get(m.api_version, m.kind, m.name, namespace)
        except NotFoundError:
            return None

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
        declared = declared_kinds(manifests)
        try:
            for wave in waves(list(manifests), lambda m: m.obj):
                for m in wave:
                    # The in-process client never waits: let the API server answer others
                    # between objects, or a large sync would hold the event loop.
                    await asyncio.sleep(0)
                    result = await self._apply_object(app, applier, m, options, declared)
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

    async def _apply_object(
        self,
        app: AppSpec,
        applier: Applier,
        m: Manifest,
        options: SyncOptions,
        declared: Mapping[tuple[str, str], bool],
    ) -> ObjectResult:
        """One object, written the way its sync options say (`sync_options.apply_mode`)."""
        own = object_options(m.obj)
        mode: ApplyMode = apply_mode(app.server_side_apply, app.replace, own)
        group = m.api_version.rpartition("/")[0]
        if options.dry_run and (
            (group, m.kind) in declared or skips_dry_run(app.skip_dry_run_on_missing_resource, own)
        ):
            unserved = await self._unserved(app, m, declared.get((group, m.kind)))
            if unserved is not None:
                return unserved
        if app.apply_out_of_sync_only and mode != "apply":
            # kubectl's three-way apply already writes nothing when nothing would change;
            # a server-side apply or a replace would write every time.
            state = await self._state(app, applier, m)
            if state.status == "Synced":
                return ObjectResult(
                    m.kind, m.api_version, m.name, state.namespace, "unchanged", where=m.where
                )
        return await applier.apply_one(
            m,
            dry_run=options.dry_run,
            apply_set=app.key,
            server_side=mode == "server-side",
            replace=mode == "replace",
            validate=validates(app.validate, own),
        )

    async def _unserved(
        self, app: AppSpec, m: Manifest, namespaced: bool | None
    ) -> ObjectResult | None:
        """A dry run's result for a custom resource whose kind the server does not serve
        yet (its CRD is in this sync, or it has `SkipDryRunOnMissingResource=true`): it
        would be created, and the server cannot be asked, so it is not (Argo CD skips its
        dry run too). None when the server serves the kind: dry-run it as any other."""
        try:
            await self.client.resource(m.api_version, m.kind)
            return None
        except NotFoundError:
            pass
        obj = copy.deepcopy(m.obj)
        meta = obj.setdefault("metadata", {})
        if namespaced is False:
            meta.pop("namespace", None)
        else:  # unknown scope: as written, or the destination's like any namespaced kind
            meta.setdefault("namespace", app.destination_namespace or app.namespace)
        meta["annotations"] = {**(meta.get("annotations") or {}), OWNER_ANNOTATION: app.key}
        return ObjectResult(
            m.kind,
            m.api_version,
            m.name,
            str(meta.get("namespace") or ""),
            "created",
            after=obj,
            where=m.where,
        )

    async def _prune(
        self,
        app: AppSpec,
        applier: Applier,
        manifests: Sequence[Manifest],
        options: SyncOptions,
    ) -> tuple[list[ObjectResult], str | None]:
        if not manifests and not app.allow_empty:
            return [], "the render is empty: nothing is pruned"
        kinds = sorted(
            {(m.api_version, m.kind) for m in manifests} | set(_COMMON_KINDS) | set(options.kinds)
        )
        candidates = [
            c
            for c in await applier.prune_candidates(manifests, app.key, kinds)
            if not object_options(c) & {"Prune=false", "Prune=confirm"}
        ]
        if not candidates:
            return [], None
        owned = len(candidates) + len(manifests)
        wipe = not manifests and app.allow_empty  # asked for: Argo CD's allowEmpty
        if len(candidates) * 2 > owned and not (options.force or wipe):
            return [], (
                f"pruning {len(candidates)} of the {owned} objects this Application owns is more "
                "than half: held back (sync with --force to prune them)"
            )
        pruned = await applier.prune(
            candidates, dry_run=options.dry_run, propagation=app.prune_propagation
        )
        return pruned, None

    async def delete_all(
        self, app: AppSpec, kinds: Sequence[tuple[str, str]] = ()
    ) -> list[ObjectResult]:
        """Everything this Application deployed, deleted (its finalizer, on deletion).
        `kinds`: those its status lists (`listed_kinds`), looked at besides the common ones,
        so a Role or an Ingress it deployed goes too."""
        self._renders.pop(app.key, None)
        applier = self.applier(app)
        looked_at = list(dict.fromkeys([*_COMMON_KINDS, *kinds]))
        candidates = await applier.prune_candidates([], app.key, looked_at)
        kept = [c for c in candidates if not object_options(c) & {"Delete=false", "Delete=confirm"}]
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
        other = shared_with(live, app.key)
        return ResourceState(
            m.api_version,
            m.kind,
            namespace,
            m.name,
            status,
            health.assess(live, endpoints),
            message,
            f"{m.kind}/{m.name} is part of applications {app.key} and {other}" if other else "",
        )

    async def left_git(
        self, app: AppSpec, listed: Iterable[Listed], desired: Sequence[ResourceState]
    ) -> list[ResourceState]:
        """The objects of `listed` (what the Application's last comparison listed: its
        `status.resources`) that are not in `desired` (this comparison's) yet still live and
        marked as this Application's (`recon.dev/application`): each OutOfSync, requiring
        pruning, with its health, as Argo CD lists an object that left git.

        Only these are fetched, one GET each: nothing for an Application whose objects are
        all in git, and no list of every kind in the cluster on every look. One being
        deleted already (a foreground prune) is not listed: it is on its way out. Listed
        again by the status, an object stays tracked until a sync prunes it (one the
        server cannot be asked about now stays listed, Unknown)."""
        listed = list(listed)
        if not listed:
            return []
        seen = {_identity(*s.ref) for s in desired}
        out: list[ResourceState] = []
        for api_version, kind, namespace, name in listed:
            identity = _identity(api_version, kind, namespace, name)
            if identity in seen:
                continue
            seen.add(identity)
            await asyncio.sleep(0)  # as in `compare`
            try:
                live = await self.client.get(api_version, kind, name, namespace or None)
            except NotFoundError:  # gone, or a kind the server no longer serves
                continue
            except ClientError as e:  # kept listed, or it would never be pruned
                unknown = health.Health("Unknown")
                ref = (api_version, kind, namespace, name)
                out.append(
                    ResourceState(*ref, "Unknown", unknown, e.message, requires_pruning=True)
                )
                continue
            meta = live.get("metadata") or {}
            owner = (meta.get("annotations") or {}).get(OWNER_ANNOTATION)
            if owner != app.key or meta.get("deletionTimestamp"):
                continue
            endpoints = None
            if kind == "Service" and api_version == "v1":
                try:
                    endpoints = await self.client.get("v1", "Endpoints", name, namespace)
                except ClientError:
                    endpoints = None
            out.append(
                ResourceState(
                    api_version,
                    kind,
                    namespace,
                    name,
                    "OutOfSync",
                    health.assess(live, endpoints),
                    requires_pruning=True,
                )
            )
        return out


def listed_objects(resources: Iterable[Mapping[str, Any]] | None) -> list[Listed]:
    """The objects a `status.resources` names (`ResourceState.as_status`), as
    `SyncEngine.left_git` takes them; hooks and entries without a kind or name are not
    there. Pure."""
    out: list[Listed] = []
    for entry in resources or ():
        kind, name, version = entry.get("kind"), entry.get("name"), entry.get("version")
        if not (kind and name and version):
            continue
        group = str(entry.get("group") or "")
        api_version = f"{group}/{version}" if group else str(version)
        out.append((api_version, str(kind), str(entry.get("namespace") or ""), str(name)))
    return out


def listed_kinds(resources: Iterable[Mapping[str, Any]] | None) -> tuple[tuple[str, str], ...]:
    """The (apiVersion, kind) pairs a `status.resources` names: `SyncOptions.kinds`."""
    return tuple(sorted({(a, k) for a, k, _, _ in listed_objects(resources)}))


@dataclass(frozen=True)
class Blocker:
    """Why a sync cannot start (`SyncEngine._preflight`), at the object's file:line."""

    where: str
    text: str
    shared: bool = False

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


def blocked_message(blockers: Sequence[Blocker]) -> str:
    """The sync's message when `_preflight` stopped it: a shared resource first, in Argo
    CD's words ("Shared resource found: ConfigMap/a is part of applications x and y")."""
    first = next((b for b in blockers if b.shared), blockers[0])
    text = f"Shared resource found: {first.text}" if first.shared else str(first)
    more = f" (and {len(blockers) - 1} more)" if len(blockers) > 1 else ""
    return f"{text}{more}: nothing was applied"


def declared_kinds(manifests: Sequence[Manifest]) -> dict[tuple[str, str], bool]:
    """(group, kind) → namespaced, for each kind a CustomResourceDefinition in the set
    declares: a dry run cannot ask the server about them before the CRD is applied."""
    out: dict[tuple[str, str], bool] = {}
    for m in manifests:
        if (m.api_version.rpartition("/")[0], m.kind) != CRD_API:
            continue
        spec = m.obj.get("spec") or {}
        kind = (spec.get("names") or {}).get("kind")
        if kind:
            out[(str(spec.get("group") or ""), str(kind))] = spec.get("scope") != "Cluster"
    return out


def sync_options_of(obj: JSONDict) -> set[str]:
    """An object's own Argo CD sync options (`argocd.argoproj.io/sync-options`); see
    `gitops/sync_options.py` for what each does."""
    return set(object_options(obj))


def _counts(results: Sequence[ObjectResult]) -> str:
    tally: dict[str, int] = {}
    for result in results:
        tally[result.action] = tally.get(result.action, 0) + 1
    order = ("created", "configured", "unchanged", "pruned", "failed")
    return ", ".join(f"{tally[a]} {a}" for a in order if tally.get(a)) or "nothing to do"
