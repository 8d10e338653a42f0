"""Shared informers: a local, always-current cache of one kind, fed by list + watch.

Controllers never poll the API. Each informer lists its kind once, then watches from the
list's resourceVersion, keeping a cache and calling handlers on every change; when the watch
ends it resumes from the last version seen, and when that version is gone (410) it lists
again and reports the differences as adds, updates and deletes, so nothing is missed.
Handlers only enqueue keys; workers read the cache. Cached objects are shared: never
mutate them (copy first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import ClientError, GoneError
from reconciler.clock import Clock
from reconciler.selectors import LabelSelector

JSONDict = dict[str, Any]
JSONList = list[JSONDict]
ObjKey = tuple[str, str]  # (namespace, name)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handlers:
    on_add: Callable[[JSONDict], None] | None = None
    on_update: Callable[[JSONDict, JSONDict], None] | None = None
    on_delete: Callable[[JSONDict], None] | None = None


def obj_key(obj: JSONDict) -> ObjKey:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


class Informer:
    def __init__(
        self,
        client: Client,
        api_version: str,
        kind: str,
        clock: Clock,
        namespace: str | None = None,
    ) -> None:
        self.client = client
        self.api_version = api_version
        self.kind = kind
        self.namespace = namespace
        self._clock = clock
        self._cache: dict[ObjKey, JSONDict] = {}
        self._by_owner: dict[str, set[ObjKey]] = {}
        self._uncontrolled: dict[str, set[ObjKey]] = {}  # namespace -> keys
        self._handlers: list[Handlers] = []
        self.synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.resource_version = ""

    def add_handlers(self, handlers: Handlers) -> None:
        self._handlers.append(handlers)
        for obj in list(self._cache.values()):
            if handlers.on_add:
                handlers.on_add(obj)

    # -- reads -----------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> JSONDict | None:
        return self._cache.get((namespace, name))

    def list(
        self, namespace: str | None = None, selector: LabelSelector | None = None
    ) -> list[JSONDict]:
        out = []
        for (ns, _), obj in self._cache.items():
            if namespace is not None and ns != namespace:
                continue
            if selector is not None and not selector.matches(
                (obj.get("metadata") or {}).get("labels") or {}
            ):
                continue
            out.append(obj)
        return out

    def owned_by(self, uid: str) -> JSONList:
        """Objects with an ownerReference to `uid` (e.g. the pods of a ReplicaSet)."""
        return [self._cache[k] for k in sorted(self._by_owner.get(uid, ())) if k in self._cache]

    def owned_count(self, uid: str) -> int:
        """How many objects have an ownerReference to `uid` (no list is built)."""
        return len(self._by_owner.get(uid, ()))

    def uncontrolled(self, namespace: str) -> JSONList:
        """Objects in `namespace` with no controller ownerReference: what a controller may
        adopt. With `owned_by`, a controller sees the objects that concern it without
        scanning every object of the namespace (O(own), not O(namespace), per reconcile)."""
        keys = self._uncontrolled.get(namespace, ())
        return [self._cache[k] for k in sorted(keys) if k in self._cache]

    # -- cache maintenance -----------------------------------------------------------

    def _index(self, key: ObjKey, obj: JSONDict | None, old: JSONDict | None) -> None:
        for ref in ((old or {}).get("metadata") or {}).get("ownerReferences") or []:
            uid = str(ref.get("uid"))
            owners = self._by_owner.get(uid)
            if owners is not None:
                owners.discard(key)
                if not owners:
                    del self._by_owner[uid]
        refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
        for ref in refs:
            self._by_owner.setdefault(str(ref.get("uid")), set()).add(key)
        namespace = key[0]
        if obj is not None and not any(ref.get("controller") for ref in refs):
            self._uncontrolled.setdefault(namespace, set()).add(key)
        elif namespace in self._uncontrolled:
            self._uncontrolled[namespace].discard(key)
            if not self._uncontrolled[namespace]:
                del self._uncontrolled[namespace]

    def _upsert(self, obj: JSONDict) -> None:
        key = obj_key(obj)
        old = self._cache.get(key)
        self._cache[key] = obj
        self._index(key, obj, old)
        for h in self._handlers:
            if old is None and h.on_add:
                h.on_add(obj)
            elif old is not None and h.on_update:
                h.on_update(old, obj)

    def _remove(self, obj: JSONDict) -> None:
        key = obj_key(obj)
        old = self._cache.pop(key, None)
        self._index(key, None, old)
        for h in self._handlers:
            if h.on_delete:
                h.on_delete(old or obj)

    def _replace(self, items: Iterable[JSONDict]) -> None:
        fresh = {obj_key(o): o for o in items}
        for key in list(self._cache):
            if key not in fresh:
                self._remove(self._cache[key])
        for obj in fresh.values():
            old = self._cache.get(obj_key(obj))
            if old is None or old.get("metadata", {}).get("resourceVersion") != obj.get(
                "metadata", {}
            ).get("resourceVersion"):
                self._upsert(obj)

    # -- the loop --------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"informer-{self.kind}"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        delay = 0.1
        need_list = True
        while True:
            try:
                if need_list:
                    listed = await self.client.list(self.api_version, self.kind, self.namespace)
                    self._replace(listed.items)
                    self.resource_version = listed.resource_version
                    self.synced.set()
                    need_list = False
                async for event in self.client.watch(
                    self.api_version,
                    self.kind,
                    self.namespace,
                    resource_version=self.resource_version,
                    timeout=300,
                    bookmarks=True,
                ):
                    rv = (event.object.get("metadata") or {}).get("resourceVersion")
                    if rv:
                        self.resource_version = str(rv)
                    if event.type == "DELETED":
                        self._remove(event.object)
                    elif event.type in ("ADDED", "MODIFIED"):
                        self._upsert(event.object)
                delay = 0.1
            except GoneError:
                need_list = True
            except asyncio.CancelledError:
                raise
            except (ClientError, OSError) as e:
                log.warning("informer %s: %s; retrying in %.1fs", self.kind, e, delay)
                await self._clock.sleep(delay)
                delay = min(delay * 2, 10.0)
                need_list = True


class InformerFactory:
    """One informer per (apiVersion, kind, namespace), shared by every controller."""

    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self._informers: dict[tuple[str, str, str | None], Informer] = {}
        self._started = False

    def informer(self, api_version: str, kind: str, namespace: str | None = None) -> Informer:
        key = (api_version, kind, namespace)
        found = self._informers.get(key)
        if found is None:
            found = self._informers[key] = Informer(
                self.client, api_version, kind, self.clock, namespace
            )
            if self._started:
                found.start()
        return found

    def start(self) -> None:
        self._started = True
        for informer in self._informers.values():
            informer.start()

    async def wait_synced(self) -> None:
        await asyncio.gather(*(i.synced.wait() for i in self._informers.values()))

    async def stop(self) -> None:
        for informer in self._informers.values():
            await informer.stop()
