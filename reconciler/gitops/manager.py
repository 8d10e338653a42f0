"""Keeping every Application converged: scheduled refreshes, automated sync, self-heal,
retries, manual sync requests, deletion.

The kopf operator (`operator.py`) tells the manager which Applications exist; the manager
decides when each one is looked at. apscheduler runs one interval job per Application
(`syncPolicy.interval`, default 60 s, with up to 10 % jitter so a hundred Applications do
not all fetch at once), plus one-off jobs for "look again soon": right after a change of the
Application, a retry after a failed sync (5 s doubling to 3 min), and while what was applied
is still Progressing. One look (`tick`) at a time per Application:

1. a sync request (`operation.sync`, written by `recon sync` / `recon rollback`) is carried
   out and removed;
2. otherwise the remote head is checked without fetching (`git ls-remote`); the commit is
   fetched only when it is not cached yet;
3. the commit is rendered and compared with the live objects: sync status and health;
   objects the last comparison listed (`status.resources`) that left git but are still
   live and the Application's are OutOfSync too, requiring pruning;
4. with automated sync, a new revision or a changed Application that is OutOfSync is
   synced; with self-heal, any drift (a `kubectl edit`, a deleted Deployment) is;
   objects that left git alone are no reason to sync without `prune`, and with it a
   sync that would prune everything waits for `allowEmpty` (`auto_sync` decides, in
   Argo CD's order); a render with errors never syncs and shows every error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from reconciler.client.base import Client
from reconciler.client.errors import ClientError, NotFoundError
from reconciler.clock import Clock, SystemClock
from reconciler.gitops.application import API_VERSION, KIND, AppSpec
from reconciler.gitops.status import (
    comparison_error_patch,
    refresh_patch,
    sync_patch,
    wipe_out_refusal,
)
from reconciler.gitops.sync import (
    ResourceState,
    SyncEngine,
    SyncOptions,
    SyncOutcome,
    listed_kinds,
    listed_objects,
)
from reconciler.source.git import GitSourceError, redact

__all__ = ["ORPHAN_ANNOTATION", "AppManager", "AutoSync", "auto_sync"]

JSONDict = dict[str, Any]

log = logging.getLogger(__name__)
# apscheduler logs every job run at INFO: one line per Application per interval.
logging.getLogger("apscheduler").setLevel(logging.WARNING)

ORPHAN_ANNOTATION = "recon.dev/delete-policy"  # "orphan": deleting the app keeps its objects
_SOON_S = 2.0


@dataclass
class _App:
    key: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    failures: int = 0
    interval: float | None = None
    repo_url: str = ""
    last_attempt: tuple[str, int] | None = None  # (revision, generation) of the last auto sync


@dataclass(frozen=True)
class AutoSync:
    """What one look's automated sync does (`auto_sync`)."""

    who: str | None = None
    """Sync, initiated by "automated" or "self-heal"; None: no sync."""
    refused: str | None = None
    """Why a due sync was refused: the SyncError condition's message."""
    settled: bool = False
    """No sync can change anything at this revision: it counts as attempted."""


def auto_sync(
    app: AppSpec,
    states: Sequence[ResourceState],
    revision: str,
    *,
    new_target: bool,
    retrying: bool,
) -> AutoSync:
    """Purely computational: whether a look syncs, from its comparison (`states`, those
    that left git included), in Argo CD's order (`autoSync`):

    1. nothing OutOfSync: settled;
    2. not automated: nothing;
    3. only objects that left git, and automated sync does not prune: settled, as
       Argo CD's "need to prune extra resources only but automated prune is disabled"
       (a sync would change nothing; it is not attempted on every interval either);
    4. neither a new target (revision or spec) nor drift to self-heal nor a failed sync
       to retry: nothing (objects that left git are not drift: the sync of the revision
       that removed them prunes them, once; one it holds back or `Prune=false` keeps
       stays OutOfSync without a sync on every look);
    5. with prune and without `allowEmpty`, every object would be pruned (the render is
       empty): refused with Argo CD's SyncError, "Skipping sync attempt to <sha>:
       auto-sync will wipe out all resources", and not counted as attempted, so it
       stands until the render or the policy changes;
    6. otherwise sync: as "self-heal" when drift alone brought it about.

    Concrete example: prune on, no allowEmpty, a commit deleting both manifests of two
    ConfigMaps: both states require pruning, step 5 refuses; with allowEmpty it syncs and
    prunes them; without prune step 3 leaves them OutOfSync."""
    out_of_sync = [s for s in states if s.status != "Synced"]
    if not out_of_sync:
        return AutoSync(settled=True)
    if not app.automated:
        return AutoSync()
    drift = any(not s.requires_pruning for s in out_of_sync)
    if not app.prune and not drift:
        return AutoSync(settled=True)
    heal = app.self_heal and drift
    if not (new_target or heal or retrying):
        return AutoSync()
    if app.prune and not app.allow_empty and all(s.requires_pruning for s in states):
        return AutoSync(refused=wipe_out_refusal(revision))
    return AutoSync(who="self-heal" if heal and not new_target else "automated")


class AppManager:
    def __init__(
        self,
        client: Client,
        engine: SyncEngine,
        clock: Clock | None = None,
        *,
        on_sync: Callable[[str, SyncOutcome], None] | None = None,
    ) -> None:
        self.client = client
        self.engine = engine
        self.clock = clock or SystemClock()
        self.scheduler = AsyncIOScheduler()
        self.apps: dict[str, _App] = {}
        self._on_sync = on_sync
        self._ticks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.scheduler.start()

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for task in list(self._ticks):
            task.cancel()
        if self._ticks:
            await asyncio.gather(*self._ticks, return_exceptions=True)

    # -- what exists ---------------------------------------------------------------------------

    def track(self, obj: JSONDict) -> None:
        """An Application exists or changed: (re)schedule its interval, look at it now."""
        app = AppSpec.from_object(obj)
        state = self.apps.setdefault(app.key, _App(app.key))
        state.repo_url = app.repo_url
        if state.interval != app.interval:
            state.interval = app.interval
            self.scheduler.add_job(
                self._run,
                IntervalTrigger(seconds=app.interval, jitter=max(app.interval * 0.1, 0.1)),
                args=(app.key,),
                id=app.key,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
            )
        self.poke(app.key)

    def repo_urls(self) -> dict[str, str]:
        """Application key -> the repository it follows (for webhooks)."""
        return {key: state.repo_url for key, state in self.apps.items()}

    def forget(self, key: str) -> None:
        self.apps.pop(key, None)
        for job_id in (key, f"{key}#soon"):
            with contextlib.suppress(Exception):
                self.scheduler.remove_job(job_id)

    def poke(self, key: str, delay: float = 0.0) -> None:
        """Look at `key` after `delay` seconds (an earlier pending look is replaced)."""
        when = self.clock.now() + timedelta(seconds=delay)
        self.scheduler.add_job(
            self._run,
            DateTrigger(run_date=when),
            args=(key,),
            id=f"{key}#soon",
            replace_existing=True,
            misfire_grace_time=None,
            # One look may be under way when this one is due (a request written during a
            # look): it waits for the app's lock. With apscheduler's default of 1 it was
            # skipped, and the request waited for the next interval.
            max_instances=2,
        )

    async def _run(self, key: str) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._ticks.add(task)
        try:
            await self.tick(key)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("application %s: look failed", key)
        finally:
            if task is not None:
                self._ticks.discard(task)

    async def deleted(self, obj: JSONDict) -> list[str]:
        """The Application is being deleted: prune what it deployed unless told to orphan;
        returns what was deleted, for the operator's log."""
        app = AppSpec.from_object(obj)
        self.forget(app.key)
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if annotations.get(ORPHAN_ANNOTATION) == "orphan":
            return []
        kinds = listed_kinds((obj.get("status") or {}).get("resources"))
        results = await self.engine.delete_all(app, kinds)
        failed = [r for r in results if r.action == "failed"]
        if failed:
            raise RuntimeError(
                "could not delete " + ", ".join(f"{r.label}: {r.error}" for r in failed)
            )
        return [r.label for r in results]

    # -- one look ------------------------------------------------------------------------------

    async def tick(self, key: str) -> None:
        state = self.apps.get(key)
        if state is None:
            return
        async with state.lock:
            namespace, _, name = key.partition("/")
            try:
                obj = await self.client.get(API_VERSION, KIND, name, namespace)
            except NotFoundError:
                self.forget(key)
                return
            if (obj.get("metadata") or {}).get("deletionTimestamp"):
                return
            await self._look(state, obj)

    async def _look(self, state: _App, obj: JSONDict) -> None:
        app = AppSpec.from_object(obj)
        status = obj.get("status") or {}
        generation = (obj.get("metadata") or {}).get("generation")
        operation = (obj.get("operation") or {}).get("sync")
        if isinstance(operation, dict):
            await self._requested_sync(state, app, obj, operation)  # fails on a bad spec
            return
        problem = self.engine.check(app)
        if problem is not None:
            now = self.clock.now()
            await self._patch_status(
                app, comparison_error_patch(status, problem, None, generation, now)
            )
            return
        try:
            head = await self.engine.remote_revision(app)
            checkout = await self.engine.fetch(app, head)
        except GitSourceError as e:
            now = self.clock.now()
            patch = comparison_error_patch(status, redact(str(e)), None, generation, now)
            await self._patch_status(app, patch)
            return
        loaded = await self.engine.render(app, checkout)
        attempt = (checkout.revision, int(generation or 0))
        if loaded.errors:
            count = len(loaded.errors)
            message = (
                f"{count} validation error{'s' if count != 1 else ''} in {checkout.revision[:12]}"
            )
            now = self.clock.now()
            patch = comparison_error_patch(status, message, checkout.revision, generation, now)
            if app.automated and state.last_attempt != attempt:
                state.last_attempt = attempt
                outcome = SyncOutcome(
                    "Failed",
                    f"{message}: nothing was applied",
                    checkout.revision,
                    errors=loaded.errors,
                    warnings=loaded.warnings,
                )
                patch.update(sync_patch(status, outcome, now, now, "automated"))
            await self._patch_status(app, patch)
            return
        listed = status.get("resources")
        states = await self.engine.compare(app, loaded.manifests)
        states += await self.engine.left_git(app, listed_objects(listed), states)
        new_target = state.last_attempt != attempt and (
            checkout.revision != status.get("lastAppliedRevision")
            or generation != status.get("observedGeneration")
        )
        plan = auto_sync(
            app, states, checkout.revision, new_target=new_target, retrying=bool(state.failures)
        )
        if plan.who is not None:
            state.last_attempt = attempt
            started = self.clock.now()
            outcome = await self.engine.apply(
                app,
                loaded.manifests,
                checkout.revision,
                SyncOptions(prune=app.prune, kinds=listed_kinds(listed)),
                lambda line: log.info("application %s: %s", app.key, line),
                loaded.hooks,
                warnings=loaded.warnings,
                deferred=loaded.deferred,
            )
            status = await self._record(state, app, status, outcome, started, plan.who)
            # The render is the same: only what had left git can still need pruning.
            left = [s.ref for s in states if s.requires_pruning]
            states = await self.engine.compare(app, loaded.manifests)
            states += await self.engine.left_git(app, left, states)
        elif plan.settled:
            state.last_attempt = attempt
        now = self.clock.now()
        patch = refresh_patch(
            status, checkout.revision, states, generation, now, refused=plan.refused
        )
        await self._patch_status(app, patch)
        if patch["health"]["status"] == "Progressing":
            self.poke(app.key, _SOON_S)

    async def _requested_sync(
        self, state: _App, app: AppSpec, obj: JSONDict, operation: JSONDict
    ) -> None:
        options = SyncOptions(
            revision=operation.get("revision") or None,
            prune=bool(operation.get("prune", False)),
            dry_run=bool(operation.get("dryRun", False)),
            force=bool(operation.get("force", False)),
            kinds=listed_kinds((obj.get("status") or {}).get("resources")),
        )
        request = obj.get("operation") or {}
        who = str(request.get("initiatedBy") or "user")
        started = self.clock.now()
        outcome = await self.engine.sync(
            app, options, lambda line: log.info("application %s: %s", app.key, line)
        )
        # Recorded before the request is removed, so whoever follows it by `requestedAt`
        # finds the result as soon as the request is gone.
        await self._record(
            state, app, obj.get("status") or {}, outcome, started, who, request.get("requestedAt")
        )
        # Removed only if it is still this request: a newer one, written meanwhile by a
        # client that saw this result, stays (the test fails with 422) and is carried out next.
        remove = [{"op": "test", "path": "/operation", "value": request}]
        remove.append({"op": "remove", "path": "/operation"})
        with contextlib.suppress(ClientError):
            await self.client.patch(
                API_VERSION, KIND, app.name, remove, namespace=app.namespace, patch_type="json"
            )
        self.poke(app.key, 0.5)  # compare and report health at the synced revision

    async def _record(
        self,
        state: _App,
        app: AppSpec,
        status: JSONDict,
        outcome: SyncOutcome,
        started: Any,
        who: str,
        requested_at: str | None = None,
    ) -> JSONDict:
        patch = sync_patch(status, outcome, started, self.clock.now(), who)
        if requested_at:
            patch["operationState"]["requestedAt"] = requested_at
        written = await self._patch_status(app, patch)
        if outcome.dry_run:
            pass  # changed nothing: neither a success nor a failure to retry
        elif outcome.phase == "Succeeded":
            state.failures = 0
        else:
            state.failures += 1
            delay = app.retry.delay(state.failures) * (0.9 + 0.2 * random.random())
            if app.retry.limit is None or state.failures <= app.retry.limit:
                self.poke(app.key, delay)
        if self._on_sync is not None:
            self._on_sync(app.key, outcome)
        log.info("application %s: sync %s: %s", app.key, outcome.phase, outcome.message)
        return dict(written.get("status") or {}) if written else {**status, **patch}

    async def _patch_status(self, app: AppSpec, patch: JSONDict) -> JSONDict | None:
        try:
            return await self.client.patch(
                API_VERSION,
                KIND,
                app.name,
                {"status": patch},
                namespace=app.namespace,
                subresource="status",
            )
        except NotFoundError:
            self.forget(app.key)
        except ClientError as e:
            log.warning("application %s: cannot write status: %s", app.key, e.message)
        return None
