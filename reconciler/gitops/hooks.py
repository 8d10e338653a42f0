"""Resource hooks: objects a sync runs at a moment rather than keeps, as Argo CD's.

An object annotated `argocd.argoproj.io/hook` (or `recon.dev/hook`) with `PreSync`,
`Sync`, `PostSync` or `SyncFail` (several, comma-separated) is not part of the desired
state: it is not compared, never OutOfSync and never pruned. A sync creates it at its
phase and, for a Job or a bare Pod, waits for it to finish:

- `PreSync` hooks run before anything is applied (a schema migration Job); one failing
  fails the sync with nothing applied;
- `Sync` hooks run after the sync's objects are applied;
- `PostSync` hooks run once the applied objects are Healthy (a smoke test);
- `SyncFail` hooks run when the sync failed (a notification); their own failure is only
  reported.

`Skip` leaves the object out of the sync altogether. Within a phase, hooks run in sync-wave
and kind order, one at a time, and the phase stops at the first failure.
`argocd.argoproj.io/hook-delete-policy`: `BeforeHookCreation` (the default: a previous run's
object of the same name is deleted before the new one is made), `HookSucceeded` and
`HookFailed` (deleted once it succeeded / failed). Hooks with `generateName` get a new name
each run. A dry run runs no hooks. Hook objects carry `recon.dev/hook-of: <app>`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import ClientError, NotFoundError
from reconciler.clock import Clock
from reconciler.gitops.apply import Applier, ObjectResult
from reconciler.manifests.loader import Manifest
from reconciler.manifests.ordering import waves

__all__ = [
    "PHASES",
    "HookPlan",
    "HookRunner",
    "plan_hooks",
]

JSONDict = dict[str, Any]
Progress = Callable[[str], None]

HOOK = "argocd.argoproj.io/hook"
RECON_HOOK = "recon.dev/hook"
DELETE_POLICY = "argocd.argoproj.io/hook-delete-policy"
HOOK_OF = "recon.dev/hook-of"
PHASES = ("PreSync", "Sync", "PostSync", "SyncFail")
_POLICIES = ("BeforeHookCreation", "HookSucceeded", "HookFailed")


@dataclass
class HookPlan:
    regular: list[Manifest] = field(default_factory=list)
    hooks: dict[str, list[Manifest]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def hooks_flat(self) -> list[Manifest]:
        return [m for found in self.hooks.values() for m in found]


def _annotations(m: Manifest) -> JSONDict:
    return (m.obj.get("metadata") or {}).get("annotations") or {}


def _listed(value: object) -> list[str]:
    return [p.strip() for p in str(value).split(",") if p.strip()]


def plan_hooks(manifests: Sequence[Manifest]) -> HookPlan:
    """Split a render into the desired state and the hooks by phase; a hook annotation
    naming no known phase or policy is an error at the object's file and line."""
    plan = HookPlan()
    for m in manifests:
        annotations = _annotations(m)
        key = RECON_HOOK if RECON_HOOK in annotations else HOOK
        if key not in annotations:
            plan.regular.append(m)
            continue
        phases = _listed(annotations[key])
        unknown = [p for p in phases if p not in (*PHASES, "Skip")]
        if unknown or not phases:
            plan.errors.append(
                f"{m.where}: metadata.annotations[{key}]: {annotations[key]!r}: expected "
                f"{', '.join(PHASES)} or Skip"
            )
            continue
        policies = _listed(annotations.get(DELETE_POLICY, "BeforeHookCreation"))
        wrong = [p for p in policies if p not in _POLICIES]
        if wrong:
            plan.errors.append(
                f"{m.where}: metadata.annotations[{DELETE_POLICY}]: {wrong[0]!r}: expected "
                f"{', '.join(_POLICIES)}"
            )
            continue
        if "Skip" in phases:
            continue
        for phase in phases:
            plan.hooks.setdefault(phase, []).append(m)
    return plan


def _policies(m: Manifest) -> set[str]:
    return set(_listed(_annotations(m).get(DELETE_POLICY, "BeforeHookCreation")))


def finished(obj: JSONDict) -> tuple[bool, str | None]:
    """(done, failure reason or None) of a hook object as it is now: a Job when Complete or
    Failed, a Pod when Succeeded or Failed, anything else as soon as it exists."""
    kind = obj.get("kind")
    status = obj.get("status") or {}
    if kind == "Job":
        for condition in status.get("conditions") or []:
            if condition.get("status") != "True":
                continue
            if condition.get("type") in ("Complete", "SuccessCriteriaMet"):
                return True, None
            if condition.get("type") in ("Failed", "FailureTarget"):
                return True, str(condition.get("message") or condition.get("reason") or "failed")
        return False, None
    if kind == "Pod":
        phase = status.get("phase")
        if phase == "Succeeded":
            return True, None
        if phase == "Failed":
            return True, str(status.get("message") or status.get("reason") or "the pod failed")
        return False, None
    return True, None


class HookRunner:
    """Runs one phase's hooks of one Application."""

    def __init__(
        self,
        client: Client,
        applier: Applier,
        clock: Clock,
        app_key: str,
        timeout: float = 600.0,
        poll: float = 0.5,
    ) -> None:
        self.client = client
        self.applier = applier
        self.clock = clock
        self.app_key = app_key
        self.timeout = timeout
        self.poll = poll

    async def run(self, phase: str, hooks: Sequence[Manifest], say: Progress) -> list[ObjectResult]:
        """Each hook of `phase` in order, until one fails; their results."""
        results: list[ObjectResult] = []
        for wave in waves(list(hooks), lambda m: m.obj):
            for m in wave:
                result = await self._one(phase, m, say)
                results.append(result)
                if result.action == "failed":
                    return results
        return results

    async def _one(self, phase: str, m: Manifest, say: Progress) -> ObjectResult:
        result = ObjectResult(m.kind, m.api_version, m.name, m.namespace, "failed", where=m.where)
        policies = _policies(m)
        try:
            obj = await self.applier.prepared(m)
            meta = obj["metadata"]
            meta["annotations"] = {**(meta.get("annotations") or {}), HOOK_OF: self.app_key}
            namespace = meta.get("namespace") or None
            result.namespace = str(namespace or "")
            if "BeforeHookCreation" in policies and meta.get("name"):
                await self._delete(m.api_version, m.kind, str(meta["name"]), namespace, wait=True)
            created = await self.client.create(copy.deepcopy(obj))
            name = str(created["metadata"]["name"])
            result.name = name
            say(f"{result.label} {phase} hook created")
            done, failure = await self._wait(m.api_version, m.kind, name, namespace)
        except ClientError as e:
            result.error = f"{phase} hook: {e.message}"
            say(f"{result.label} {phase} hook failed: {e.message}")
            return result
        if failure is not None or not done:
            result.error = (
                f"{phase} hook failed: {failure or f'not finished in {self.timeout:.0f} s'}"
            )
            say(f"{result.label} {result.error}")
            if "HookFailed" in policies:
                await self._delete(m.api_version, m.kind, name, namespace)
            return result
        result.action = "created"
        say(f"{result.label} {phase} hook succeeded")
        if "HookSucceeded" in policies:
            await self._delete(m.api_version, m.kind, name, namespace)
        return result

    async def _wait(
        self, api_version: str, kind: str, name: str, namespace: str | None
    ) -> tuple[bool, str | None]:
        deadline = self.clock.monotonic() + self.timeout
        while True:
            try:
                obj = await self.client.get(api_version, kind, name, namespace)
            except NotFoundError:
                return True, "it was deleted before it finished"
            done, failure = finished(obj)
            if done or self.clock.monotonic() >= deadline:
                return done, failure
            await self.clock.sleep(self.poll)

    async def _delete(
        self, api_version: str, kind: str, name: str, namespace: str | None, wait: bool = False
    ) -> None:
        try:
            await self.client.delete(api_version, kind, name, namespace, propagation="Background")
        except NotFoundError:
            return
        deadline = self.clock.monotonic() + 60
        while wait and self.clock.monotonic() < deadline:
            try:
                await self.client.get(api_version, kind, name, namespace)
            except NotFoundError:
                return
            await self.clock.sleep(self.poll)
