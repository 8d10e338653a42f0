"""Garbage collection through ownerReferences, and namespace termination.

These run inside the API server process, fed by every committed event of the store:

- **Background propagation**: once none of a dependent's owners exists any more, the
  dependent is deleted (its own dependents follow the same way).
- **Foreground propagation**: an owner carrying the `foregroundDeletion` finalizer first has
  its dependents deleted; when none is left, the finalizer is removed and the owner goes.
- **Orphan propagation**: an owner carrying the `orphan` finalizer has its ownerReference
  removed from every dependent, then the finalizer is removed.
- **Namespaces**: a namespace marked for deletion has everything in it deleted; when it is
  empty its `kubernetes` finalizer is removed and it goes. Meanwhile its status carries the
  conditions upstream's namespace controller reports (`NamespaceContentRemaining`,
  `NamespaceFinalizersRemaining`, ...), so `kubectl describe namespace` says what a
  namespace stuck in Terminating still waits for.

The decisions (`plan_*`) are pure functions of an `OwnerIndex`; `Lifecycle` performs them.
Work is level-triggered: an event only marks keys dirty, and a sweep reconciles them from
the current state, so a restart (which rebuilds the index from the store) loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.apiserver.errors import ApiError
from reconciler.apiserver.objects import NAMESPACE_RESOURCE, ObjectService
from reconciler.apiserver.resources import ResourceType
from reconciler.clock import rfc3339
from reconciler.store.sqlite import Store
from reconciler.store.watch import Event

JSONDict = dict[str, Any]
Key = tuple[str, str, str]  # (storage key, namespace, name)

log = logging.getLogger(__name__)


@dataclass
class OwnerIndex:
    """uid → key of every object, and owner uid → keys of its dependents."""

    keys: dict[str, Key] = field(default_factory=dict)
    uid_of: dict[Key, str] = field(default_factory=dict)
    dependents: dict[str, set[Key]] = field(default_factory=dict)
    owners_of: dict[Key, list[str]] = field(default_factory=dict)

    def put(self, key: Key, obj: JSONDict) -> None:
        self.remove(key)
        meta = obj.get("metadata", {})
        uid = meta.get("uid")
        if uid:
            self.keys[uid] = key
            self.uid_of[key] = uid
        owners = [ref.get("uid") for ref in meta.get("ownerReferences") or [] if ref.get("uid")]
        if owners:
            self.owners_of[key] = owners
            for owner in owners:
                self.dependents.setdefault(owner, set()).add(key)

    def remove(self, key: Key) -> None:
        uid = self.uid_of.pop(key, None)
        if uid is not None and self.keys.get(uid) == key:
            del self.keys[uid]
        for owner in self.owners_of.pop(key, []):
            deps = self.dependents.get(owner)
            if deps is not None:
                deps.discard(key)
                if not deps:
                    del self.dependents[owner]

    def exists(self, uid: str) -> bool:
        return uid in self.keys


def orphaned(index: OwnerIndex, key: Key) -> bool:
    """A dependent whose owners are all gone: background GC deletes it."""
    owners = index.owners_of.get(key) or []
    return bool(owners) and not any(index.exists(uid) for uid in owners)


_SETTLED = [  # (type, reason, message): nothing here ever fails, as upstream words it
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
]


def resource_label(storage_key: str) -> str:
    """`core/pods` -> `pods.`, `apps/deployments` -> `deployments.apps` (upstream's
    `<resource>.<group>` in namespace conditions)."""
    group, _, plural = storage_key.partition("/")
    return f"{plural}.{'' if group == 'core' else group}"


def namespace_conditions(
    remaining: Mapping[str, int],
    finalizers: Mapping[str, int],
    previous: list[JSONDict],
    now: str,
) -> list[JSONDict]:
    """The conditions of a terminating namespace (purely computational), worded as
    upstream's namespace controller words them: `remaining` counts what is left by
    `resource_label`, `finalizers` the objects each finalizer still holds. A condition keeps
    its `lastTransitionTime` while its status stays.

    Concrete example: two pods left, one of them held by finalizer `x/hold` ->
    `NamespaceContentRemaining` True, "Some resources are remaining: pods. has 2 resource
    instances"; `NamespaceFinalizersRemaining` True, "Some content in the namespace has
    finalizers remaining: x/hold in 1 resource instances"; the other three False.
    """
    wanted = [(kind, "False", reason, message) for kind, reason, message in _SETTLED]
    if remaining:
        left = ", ".join(f"{r} has {n} resource instances" for r, n in sorted(remaining.items()))
        wanted.append(
            (
                "NamespaceContentRemaining",
                "True",
                "SomeResourcesRemain",
                f"Some resources are remaining: {left}",
            )
        )
    else:
        wanted.append(
            (
                "NamespaceContentRemaining",
                "False",
                "ContentRemoved",
                "All content successfully removed",
            )
        )
    if finalizers:
        held = ", ".join(f"{f} in {n} resource instances" for f, n in sorted(finalizers.items()))
        wanted.append(
            (
                "NamespaceFinalizersRemaining",
                "True",
                "SomeFinalizersRemain",
                f"Some content in the namespace has finalizers remaining: {held}",
            )
        )
    else:
        wanted.append(
            (
                "NamespaceFinalizersRemaining",
                "False",
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished",
            )
        )
    before = {c.get("type"): c for c in previous}
    out = []
    for kind, status, reason, message in wanted:
        old = before.get(kind) or {}
        since = old.get("lastTransitionTime") if old.get("status") == status else None
        out.append(
            {
                "type": kind,
                "status": status,
                "lastTransitionTime": since or now,
                "reason": reason,
                "message": message,
            }
        )
    return out


class Lifecycle:
    """Runs garbage collection and namespace termination against the ObjectService."""

    def __init__(self, service: ObjectService) -> None:
        self.service = service
        self.store: Store = service.store
        self.index = OwnerIndex()
        self._dirty: set[Key] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        for resource, stored in self.store.iter_all():
            key = self._key(resource, stored.body)
            self.index.put(key, stored.body)
            self._dirty.add(key)
        self.store.hub.add_listener(self._on_event)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="lifecycle")
        self._wake.set()

    async def stop(self) -> None:
        self.store.hub.remove_listener(self._on_event)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @staticmethod
    def _key(resource: str, obj: JSONDict) -> Key:
        meta = obj.get("metadata", {})
        return (resource, meta.get("namespace", ""), meta.get("name", ""))

    def _on_event(self, event: Event) -> None:
        key = (event.resource, event.namespace, event.name)
        if event.type == "DELETED":
            uid = self.index.uid_of.get(key)
            self.index.remove(key)
            if uid:
                self._dirty.update(self.index.dependents.get(uid, ()))
            for owner in event.object.get("metadata", {}).get("ownerReferences") or []:
                owner_key = self.index.keys.get(owner.get("uid", ""))
                if owner_key:
                    self._dirty.add(owner_key)  # a foreground owner may now be unblocked
            if event.namespace:
                self._dirty.add((NAMESPACE_RESOURCE, "", event.namespace))
        else:
            self.index.put(key, event.object)
            self._dirty.add(key)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0)  # let a burst of events collect before sweeping
            dirty, self._dirty = self._dirty, set()
            for key in sorted(dirty):
                try:
                    self._reconcile(key)
                except ApiError as e:
                    if e.code not in (404, 409):
                        log.warning("lifecycle: %s/%s/%s: %s", *key, e)
                    if e.code == 409:
                        self._dirty.add(key)
                        self._wake.set()
                except Exception:
                    log.exception("lifecycle: reconciling %s failed", key)

    def _rt(self, resource: str, obj: JSONDict) -> ResourceType | None:
        return self.service.registry.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))

    def _reconcile(self, key: Key) -> None:
        resource, namespace, name = key
        stored = self.store.find(resource, namespace, name)
        if stored is None:
            return
        obj = stored.body
        rt = self._rt(resource, obj)
        if rt is None:
            return
        meta = obj.get("metadata", {})
        if orphaned(self.index, key) and not meta.get("deletionTimestamp"):
            self.service.delete(rt, namespace, name, propagation="Background")
            return
        if not meta.get("deletionTimestamp"):
            return
        finalizers = list(meta.get("finalizers") or [])
        uid = meta.get("uid", "")
        dependents = sorted(self.index.dependents.get(uid, ()))
        if "orphan" in finalizers:
            for dep in dependents:
                self._drop_owner_ref(dep, uid)
            self._remove_finalizer(rt, namespace, name, "orphan")
            return
        if "foregroundDeletion" in finalizers:
            if dependents:
                for dep in dependents:
                    self._delete_key(dep, "Foreground")
            else:
                self._remove_finalizer(rt, namespace, name, "foregroundDeletion")
            return
        if resource == NAMESPACE_RESOURCE:
            self._terminate_namespace(rt, name, obj)

    def _delete_key(self, key: Key, propagation: str) -> None:
        stored = self.store.find(*key)
        if stored is None or stored.body.get("metadata", {}).get("deletionTimestamp"):
            return
        rt = self._rt(key[0], stored.body)
        if rt is not None:
            self.service.delete(rt, key[1], key[2], propagation=propagation)

    def _drop_owner_ref(self, key: Key, owner_uid: str) -> None:
        stored = self.store.find(*key)
        if stored is None:
            return
        rt = self._rt(key[0], stored.body)
        if rt is None:
            return
        refs = stored.body.get("metadata", {}).get("ownerReferences") or []
        kept = [r for r in refs if r.get("uid") != owner_uid]
        patch = {"metadata": {"ownerReferences": kept or None}}
        self.service.patch(rt, key[1], key[2], "application/merge-patch+json", patch, strict=False)

    def _remove_finalizer(self, rt: ResourceType, namespace: str, name: str, gone: str) -> None:
        stored = self.store.find(rt.storage_key, namespace, name)
        if stored is None:
            return
        finalizers = [f for f in stored.body["metadata"].get("finalizers") or [] if f != gone]
        patch = {
            "metadata": {"finalizers": finalizers or None, "resourceVersion": str(stored.revision)}
        }
        self.service.patch(rt, namespace, name, "application/merge-patch+json", patch, strict=False)

    def _terminate_namespace(self, rt: ResourceType, name: str, obj: JSONDict) -> None:
        contents = [
            self._key(resource, stored.body)
            for resource, stored in list(self.store.iter_all())
            if stored.body.get("metadata", {}).get("namespace") == name
        ]
        for key in contents:
            self._delete_key(key, "Background")
        remaining: Counter[str] = Counter()
        finalizers: Counter[str] = Counter()
        for key in contents:
            left = self.store.find(*key)
            if left is not None:
                remaining[resource_label(key[0])] += 1
                finalizers.update(left.body.get("metadata", {}).get("finalizers") or [])
        self._report_termination(rt, name, obj, remaining, finalizers)
        if not remaining and obj.get("spec", {}).get("finalizers"):
            body = Store.copy_of(self.store.get(rt.storage_key, "", name))
            body["spec"]["finalizers"] = []
            self.service.update(rt, "", name, body, subresource="finalize", strict=False)

    def _report_termination(
        self,
        rt: ResourceType,
        name: str,
        obj: JSONDict,
        remaining: Mapping[str, int],
        finalizers: Mapping[str, int],
    ) -> None:
        """Write the namespace's conditions when what it waits for changed."""
        previous = list((obj.get("status") or {}).get("conditions") or [])
        now = rfc3339(self.service.clock.now())
        conditions = namespace_conditions(remaining, finalizers, previous, now)
        if conditions == previous:
            return
        patch = {"status": {"conditions": conditions}}
        self.service.patch(
            rt, "", name, "application/merge-patch+json", patch, subresource="status", strict=False
        )
