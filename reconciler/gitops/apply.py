"""Applying a validated manifest set through any `Client`, the way `kubectl apply` does.

One code path serves `recon apply`, `recon diff` (the same with a server-side dry run) and,
later, every Application sync: objects go in dependency order (`manifests.ordering`), each
through kubectl's three-way merge (`merge.three_way`) with the last-applied annotation, and
each reports what happened to it. The final object is written with a PUT that carries the
live resourceVersion, so a concurrent change is a conflict (retried from fresh state), never
a silent overwrite.

Pruning deletes objects this apply set created earlier (annotation `recon.dev/apply-set`)
that are no longer in the set — never anything else, and never when the set is empty.

Two other ways of writing serve Argo CD's sync options (`gitops/sync_options.py`):
server-side apply (`ServerSideApply=true`) and replace (`Replace=true`: the whole object is
written with a PUT, or created, as `kubectl replace` / `kubectl create` do, with no
last-applied annotation).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from reconciler.client.base import Client
from reconciler.client.errors import ClientError, ConflictError, InvalidError, NotFoundError
from reconciler.gitops.sync_options import object_options, replaces_live
from reconciler.manifests.loader import Manifest
from reconciler.manifests.ordering import apply_order, prune_order
from reconciler.merge.three_way import apply_three_way, desired_with_annotation, last_applied_of
from reconciler.schema import definitions
from reconciler.schema.patchmeta import PatchMeta

JSONDict = dict[str, Any]

APPLY_SET = "recon.dev/apply-set"
FIELD_MANAGER = "recon-gitops"  # who owns what a server-side applying sync applied
SERVER_FIELDS = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
)


@dataclass
class ObjectResult:
    kind: str
    api_version: str
    name: str
    namespace: str
    action: str  # created | configured | unchanged | pruned | failed
    before: JSONDict | None = None
    after: JSONDict | None = None
    error: str | None = None
    where: str = ""

    @property
    def label(self) -> str:
        """`deployment.apps/web`, as kubectl prints it."""
        group = self.api_version.rpartition("/")[0]
        return f"{self.kind.lower()}{'.' + group if group else ''}/{self.name}"


class PatchMetas:
    """Strategic-merge metadata per built-in kind (None for custom resources)."""

    def __init__(self, kubernetes_version: str | None = None) -> None:
        self._defs = definitions.load(kubernetes_version)
        self._names = {(g.api_version, g.kind): n for g, n in self._defs.kinds().items()}

    def for_kind(self, api_version: str, kind: str) -> PatchMeta | None:
        name = self._names.get((api_version, kind))
        return None if name is None else PatchMeta.for_definition(self._defs, name)


def comparable(obj: JSONDict | None) -> JSONDict | None:
    """`obj` without what the server manages (status, uid, resourceVersion, ...)."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in SERVER_FIELDS:
        meta.pop(key, None)
    return out


_MISSING = object()


def same_content(a: JSONDict, b: JSONDict) -> bool:
    """`comparable(a) == comparable(b)`, without copying either object: a no-op sync asks
    this of every object it owns, and deep copies of both were a third of its apply step."""
    for key in a.keys() | b.keys():
        if key == "status":
            continue
        x, y = a.get(key, _MISSING), b.get(key, _MISSING)
        if key == "metadata" and isinstance(x, dict) and isinstance(y, dict):
            fields = (x.keys() | y.keys()).difference(SERVER_FIELDS)
            if any(x.get(k, _MISSING) != y.get(k, _MISSING) for k in fields):
                return False
        elif x != y:
            return False
    return True


class LiveKeeper(Protocol):
    """(desired, live) -> desired with the fields the user said to leave alone taken from
    live (an Application's ignoreDifferences, `ignore.live_keeper`). `whole`: for a write
    that replaces the object, so every such field live has must be in it."""

    def __call__(self, desired: JSONDict, live: JSONDict, *, whole: bool = False) -> JSONDict: ...


class Applier:
    def __init__(
        self,
        client: Client,
        metas: PatchMetas | None = None,
        default_namespace: str = "default",
        set_annotation: str = APPLY_SET,
        keep_live: LiveKeeper | None = None,
    ) -> None:
        self.client = client
        self.metas = metas or PatchMetas()
        self.default_namespace = default_namespace
        # The annotation naming the set an object belongs to: `recon apply --prune` uses
        # `recon.dev/apply-set`, an Application `recon.dev/application`.
        self.set_annotation = set_annotation
        # (desired, live) -> desired with the fields the user said to leave alone taken from
        # live (an Application's ignoreDifferences), so an apply never changes them.
        self.keep_live = keep_live

    async def _desired(self, m: Manifest, apply_set: str | None) -> JSONDict:
        obj = copy.deepcopy(m.obj)
        info = await self.client.resource(m.api_version, m.kind)
        meta = obj.setdefault("metadata", {})
        if info.namespaced:
            meta.setdefault("namespace", self.default_namespace)
        else:
            meta.pop("namespace", None)
        if apply_set:
            annotations = meta.get("annotations") or {}
            meta["annotations"] = {**annotations, self.set_annotation: apply_set}
        return obj

    async def prepared(self, m: Manifest) -> JSONDict:
        """The manifest's object as it would be created: a copy, its namespace filled in
        (or removed, for cluster-scoped kinds). For objects not applied, e.g. hooks."""
        return await self._desired(m, None)

    async def apply_one(
        self,
        m: Manifest,
        *,
        dry_run: bool = False,
        apply_set: str | None = None,
        server_side: bool = False,
        replace: bool = False,
        validate: bool = True,
    ) -> ObjectResult:
        """`replace` (or the live object's own `Replace=true`): the whole object written
        (`_replace`); `server_side`: server-side apply as FIELD_MANAGER, forcing conflicts
        (git is the source of truth, as with Argo CD's ServerSideApply=true); else kubectl's
        three-way merge with the last-applied annotation. `validate=False` creates with
        the API's `fieldValidation=Ignore`, as `kubectl apply --validate=false` does."""
        field_validation = "Strict" if validate else "Ignore"
        result = ObjectResult(m.kind, m.api_version, m.name, m.namespace, "failed", where=m.where)
        replacing = replace
        for _attempt in range(5):
            try:
                desired = await self._desired(m, apply_set)
                result.namespace = str(desired["metadata"].get("namespace") or "")
                try:
                    live = await self.client.get(
                        m.api_version, m.kind, m.name, result.namespace or None
                    )
                except NotFoundError:
                    live = None
                replacing = replace or replaces_live(object_options(m.obj), live)
                if replacing:
                    return await self._replace(result, desired, live, dry_run, field_validation)
                if server_side:
                    return await self._apply_server_side(result, desired, live, dry_run)
                if live is None:
                    created = await self.client.create(
                        desired_with_annotation(desired),
                        dry_run=dry_run,
                        field_validation=field_validation,
                    )
                    result.action, result.after = "created", created
                    return result
                if self.keep_live is not None:
                    desired = self.keep_live(desired, live)
                meta = self.metas.for_kind(m.api_version, m.kind)
                merged = apply_three_way(last_applied_of(live), desired, live, meta)
                result.before = live
                if same_content(merged, live):
                    result.action, result.after = "unchanged", live
                    return result
                merged.setdefault("metadata", {})["resourceVersion"] = live["metadata"].get(
                    "resourceVersion"
                )
                merged.pop("status", None)
                result.after = await self.client.update(merged, dry_run=dry_run)
                result.action = "unchanged" if same_content(result.after, live) else "configured"
                return result
            except ConflictError:
                continue  # someone wrote in between: recompute from the fresh object
            except InvalidError as e:
                if "Force=true" in object_options(m.obj) and result.before is not None:
                    return await self._recreate(
                        result, desired, dry_run, field_validation, e, replacing=replacing
                    )
                result.error = e.message
                return result
            except ClientError as e:
                result.error = e.message
                return result
        result.error = "the object kept changing while being applied (5 conflicts)"
        return result

    async def _recreate(
        self,
        result: ObjectResult,
        desired: JSONDict,
        dry_run: bool,
        field_validation: str,
        refused: InvalidError,
        *,
        replacing: bool = False,
    ) -> ObjectResult:
        """Argo CD's `Force=true`: the update was refused (a field that cannot change
        changed), so the live object is deleted and created anew from git (`kubectl
        apply --force`, with the last-applied annotation; `replacing`, for `Replace=true`:
        `kubectl replace --force`, without it, as `_replace` writes); in a dry run, the
        refusal is only reported as what would happen."""
        live = result.before or {}
        if dry_run:
            result.action, result.after = "configured", desired
            return result
        if replacing:
            body = desired
            body["metadata"].pop("resourceVersion", None)  # `_replace` set the live one's
        else:
            body = desired_with_annotation(desired)
        namespace = result.namespace or None
        try:
            await self.client.delete(
                result.api_version, result.kind, result.name, namespace, propagation="Background"
            )
            for _ in range(300):  # until it is gone (finalizers), at most 30 s
                found = await self.client.get(
                    result.api_version, result.kind, result.name, namespace
                )
                if (found.get("metadata") or {}).get("uid") != (live.get("metadata") or {}).get(
                    "uid"
                ):
                    break
                await asyncio.sleep(0.1)
        except NotFoundError:
            pass
        except ClientError as e:
            result.error = f"{refused.message}; deleting it to force the change: {e.message}"
            return result
        try:
            created = await self.client.create(body, field_validation=field_validation)
        except ClientError as e:
            result.error = e.message
            return result
        result.action, result.after = "configured", created
        return result

    async def _apply_server_side(
        self, result: ObjectResult, desired: JSONDict, live: JSONDict | None, dry_run: bool
    ) -> ObjectResult:
        if live is not None and self.keep_live is not None:
            desired = self.keep_live(desired, live)
        desired.pop("status", None)
        result.before = live
        result.after = await self.client.apply(
            desired, field_manager=FIELD_MANAGER, force=True, dry_run=dry_run
        )
        if live is None:
            result.action = "created"
        else:
            result.action = "unchanged" if same_content(result.after, live) else "configured"
        return result

    async def _replace(
        self,
        result: ObjectResult,
        desired: JSONDict,
        live: JSONDict | None,
        dry_run: bool,
        field_validation: str,
    ) -> ObjectResult:
        """`kubectl replace` (or `kubectl create` when missing): the object becomes exactly
        what git says, with no last-applied annotation to keep, e.g. for objects too large
        for one. The PUT carries the live resourceVersion: a concurrent write is a conflict
        (`apply_one` retries from the fresh object), never overwritten unseen."""
        desired.pop("status", None)
        result.before = live
        if live is None:
            created = await self.client.create(
                desired, dry_run=dry_run, field_validation=field_validation
            )
            result.action, result.after = "created", created
            return result
        if self.keep_live is not None:
            desired = self.keep_live(desired, live, whole=True)
        desired["metadata"]["resourceVersion"] = live["metadata"].get("resourceVersion")
        result.after = await self.client.update(desired, dry_run=dry_run)
        result.action = "unchanged" if same_content(result.after, live) else "configured"
        return result

    async def apply(
        self, manifests: Sequence[Manifest], *, dry_run: bool = False, apply_set: str | None = None
    ) -> list[ObjectResult]:
        results = []
        for m in apply_order(list(manifests), lambda x: x.obj):
            results.append(await self.apply_one(m, dry_run=dry_run, apply_set=apply_set))
        return results

    async def prune_candidates(
        self, manifests: Sequence[Manifest], apply_set: str, kinds: Sequence[tuple[str, str]]
    ) -> list[JSONDict]:
        """Live objects of `kinds` carrying `apply_set` that the manifests no longer hold
        (not those already being deleted: a foreground or orphan prune leaves an object
        Terminating for a while, and it is not pruned, or counted, twice)."""
        keep = {
            (m.api_version, m.kind, m.namespace or self.default_namespace, m.name)
            for m in manifests
        }
        keep |= {(a, k, "", n) for a, k, _, n in keep}
        out = []
        for api_version, kind in kinds:
            try:
                listed = await self.client.list(api_version, kind)
            except ClientError:
                continue
            for obj in listed.items:
                meta = obj.get("metadata") or {}
                if (meta.get("annotations") or {}).get(self.set_annotation) != apply_set:
                    continue
                if meta.get("deletionTimestamp"):
                    continue
                key = (api_version, kind, str(meta.get("namespace") or ""), str(meta["name"]))
                if key not in keep:
                    out.append(obj)
        return prune_order(out, lambda o: o)

    async def prune(
        self,
        candidates: Sequence[JSONDict],
        *,
        dry_run: bool = False,
        propagation: str = "Background",
    ) -> list[ObjectResult]:
        """Delete `candidates`; their dependents go as `propagation` says (the API's
        Background, Foreground or Orphan: Argo CD's `PrunePropagationPolicy`)."""
        results = []
        for obj in candidates:
            meta = obj.get("metadata") or {}
            result = ObjectResult(
                str(obj.get("kind")),
                str(obj.get("apiVersion")),
                str(meta.get("name")),
                str(meta.get("namespace") or ""),
                "pruned",
                before=obj,
            )
            try:
                await self.client.delete(
                    result.api_version,
                    result.kind,
                    result.name,
                    result.namespace or None,
                    dry_run=dry_run,
                    propagation=propagation,
                )
            except NotFoundError:
                pass
            except ClientError as e:
                result.action, result.error = "failed", e.message
            results.append(result)
        return results
