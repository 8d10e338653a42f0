"""The in-process client: controllers inside `recon serve` call the API without HTTP.

Same semantics as the HTTP client (one contract test suite runs against both), minus the
wire: calls go straight to the `ObjectService` on the same event loop, and results are
private copies, because the store's objects are shared and read-only.

Copies are decoded from JSON text with their strings shared (`store.shared_json`): a copy
costs its dicts and lists, not again every key and value.

Watch events are the exception: their objects are the store's own, read-only (`Client.watch`
says so). Every informer keeps each object of its kind for as long as it is current, and
their consumers never change a cached object (they copy first), so a private copy per
informer bought nothing and cost a parse per event and informer and the memory of a second
or third copy of every pod, Service and ReplicaSet (6 MB of 1,000 objects' first sync).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

from reconciler.apiserver.errors import ApiError
from reconciler.apiserver.objects import ObjectService
from reconciler.apiserver.resources import ResourceType
from reconciler.client.base import (
    PATCH_CONTENT_TYPES,
    JSONDict,
    ObjectList,
    PatchType,
    ResourceInfo,
    WatchEvent,
)
from reconciler.client.errors import ClientError, from_status
from reconciler.store import shared_json


def _parse(text: str) -> JSONDict:
    return cast(JSONDict, shared_json.loads(text))


def _copy_value(value: Any) -> Any:
    return shared_json.copy(value)


def _copy(obj: JSONDict) -> JSONDict:
    return cast(JSONDict, _copy_value(obj))


def _translate(err: ApiError) -> ClientError:
    return from_status(err.code, err.status(), err.message)


class InProcessClient:
    def __init__(self, service: ObjectService, default_namespace: str = "default") -> None:
        self.service = service
        self.default_namespace = default_namespace

    def _type(self, api_version: str, kind: str) -> ResourceType:
        rt = self.service.registry.by_kind(api_version, kind)
        if rt is None:
            raise from_status(
                404, None, f'the server doesn\'t have a resource type "{kind}" in {api_version}'
            )
        return rt

    def _private(self, rt: ResourceType, namespace: str, obj: JSONDict) -> JSONDict:
        """A private copy of `obj`, which the service returned: decoded from the stored text
        when it is the stored object (no encoding it again), else copied."""
        name = str((obj.get("metadata") or {}).get("name") or "")
        stored = self.service.store.find(rt.storage_key, namespace, name)
        if stored is not None and stored.body is obj:
            return _parse(stored.text)
        return _copy(obj)

    def _ns(self, rt: ResourceType, namespace: str | None) -> str:
        if not rt.namespaced:
            return ""
        return namespace or self.default_namespace

    async def resource(self, api_version: str, kind: str) -> ResourceInfo:
        rt = self._type(api_version, kind)
        return ResourceInfo(
            rt.group, rt.version, rt.kind, rt.plural, rt.namespaced, rt.subresources
        )

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> JSONDict:
        rt = self._type(api_version, kind)
        ns = self._ns(rt, namespace)
        try:
            return self._private(rt, ns, self.service.get(rt, ns, name))
        except ApiError as e:
            raise _translate(e) from None

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
    ) -> ObjectList:
        rt = self._type(api_version, kind)
        try:
            selection = self.service.selection(rt, label_selector, field_selector)
            ns = namespace if rt.namespaced else None
            result = self.service.list(rt, ns, selection, limit)
        except ApiError as e:
            raise _translate(e) from None
        if len(result.texts) == len(result.items):
            items = [_parse(text) for text in result.texts]
        else:
            items = [_copy(item) for item in result.items]
        return ObjectList(items, str(result.revision))

    def _target(self, obj: JSONDict) -> tuple[ResourceType, str]:
        rt = self._type(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        namespace = (obj.get("metadata") or {}).get("namespace")
        return rt, self._ns(rt, namespace)

    async def create(
        self, obj: JSONDict, *, dry_run: bool = False, field_validation: str = "Strict"
    ) -> JSONDict:
        rt, ns = self._target(obj)
        try:
            created = self.service.create(
                rt, ns, _copy(obj), dry_run=dry_run, strict=field_validation == "Strict"
            )
        except ApiError as e:
            raise _translate(e) from None
        return self._private(rt, ns, created)

    async def update(
        self, obj: JSONDict, *, subresource: str | None = None, dry_run: bool = False
    ) -> JSONDict:
        rt, ns = self._target(obj)
        name = str((obj.get("metadata") or {}).get("name", ""))
        try:
            updated = self.service.update(
                rt, ns, name, _copy(obj), subresource=subresource, dry_run=dry_run
            )
        except ApiError as e:
            raise _translate(e) from None
        return self._private(rt, ns, updated)

    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
        dry_run: bool = False,
        field_validation: str = "Strict",
    ) -> JSONDict:
        rt = self._type(api_version, kind)
        ns = self._ns(rt, namespace)
        content_type = PATCH_CONTENT_TYPES[patch_type]
        try:
            if subresource == "scale":
                patched = self.service.patch_scale(rt, ns, name, content_type, patch, dry_run)
            else:
                patched = self.service.patch(
                    rt,
                    ns,
                    name,
                    content_type,
                    _copy_value(patch),
                    subresource=subresource,
                    dry_run=dry_run,
                    strict=field_validation == "Strict",
                )
        except ApiError as e:
            raise _translate(e) from None
        return self._private(rt, ns, patched)

    async def apply(
        self, obj: JSONDict, *, field_manager: str, force: bool = False, dry_run: bool = False
    ) -> JSONDict:
        rt, ns = self._target(obj)
        name = str((obj.get("metadata") or {}).get("name", ""))
        try:
            applied = self.service.apply(
                rt, ns, name, _copy(obj), field_manager=field_manager, force=force, dry_run=dry_run
            )
        except ApiError as e:
            raise _translate(e) from None
        return self._private(rt, ns, applied)

    def _scalable(self, api_version: str, kind: str) -> ResourceType:
        """The kind, if it serves `scale`; else the 404 the HTTP API answers for the path."""
        rt = self._type(api_version, kind)
        if "scale" not in rt.subresources:
            raise from_status(404, None, "the server could not find the requested resource")
        return rt

    async def get_scale(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> JSONDict:
        rt = self._scalable(api_version, kind)
        try:
            return _copy(self.service.get_scale(rt, self._ns(rt, namespace), name))
        except ApiError as e:
            raise _translate(e) from None

    async def update_scale(
        self,
        api_version: str,
        kind: str,
        name: str,
        scale: JSONDict,
        namespace: str | None = None,
        *,
        dry_run: bool = False,
    ) -> JSONDict:
        rt = self._scalable(api_version, kind)
        try:
            updated = self.service.update_scale(
                rt, self._ns(rt, namespace), name, _copy(scale), dry_run
            )
        except ApiError as e:
            raise _translate(e) from None
        return _copy(updated)

    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str | None = None,
        grace_period: int | None = None,
        dry_run: bool = False,
    ) -> JSONDict | None:
        rt = self._type(api_version, kind)
        try:
            result = self.service.delete(
                rt,
                self._ns(rt, namespace),
                name,
                propagation=propagation,
                grace_period=grace_period,
                dry_run=dry_run,
            )
        except ApiError as e:
            raise _translate(e) from None
        return None if result.deleted else _copy(result.object)

    async def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout: float | None = None,
        bookmarks: bool = False,
    ) -> AsyncIterator[WatchEvent]:
        rt = self._type(api_version, kind)
        ns = namespace if rt.namespaced else None
        try:
            selection = self.service.selection(rt, label_selector, field_selector)
            since = int(resource_version) if resource_version not in (None, "", "0") else None
            watcher, initial = self.service.watch(rt, ns, since)
        except ApiError as e:
            raise _translate(e) from None
        except ValueError:
            raise from_status(400, None, f"invalid resourceVersion {resource_version!r}") from None
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            for obj in initial:
                if selection.matches(obj):
                    yield WatchEvent("ADDED", obj)  # the store's: read-only
            while True:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    return
                try:
                    event = await watcher.next(timeout=remaining)
                except TimeoutError:
                    return
                if event is None:
                    return
                filtered = self.service.filter_event(event, selection)
                if filtered is not None:
                    yield WatchEvent(filtered[0], filtered[1])  # the store's: read-only
        finally:
            watcher.close()

    async def close(self) -> None:
        return None
