"""The HTTP client: the same `Client` semantics against any Kubernetes API server.

`recon apply`, `recon diff` and `recon operator --kubeconfig` use it, against the embedded
plane or a real cluster. Kinds are mapped to URLs through discovery (cached; refreshed once
when a kind is unknown, since a CRD may just have been created). Watches read the chunked
JSON-lines stream; an `ERROR` event with a 410 Status becomes `GoneError`, like a 410 reply.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from reconciler.client.base import (
    APPLY_CONTENT_TYPE,
    PATCH_CONTENT_TYPES,
    JSONDict,
    ObjectList,
    PatchType,
    ResourceInfo,
    WatchEvent,
    namespace_of,
)
from reconciler.client.errors import ClientError, NotFoundError, ServerError, from_status
from reconciler.client.kubeconfig import ClusterAccess, load_access


class HttpClient:
    def __init__(self, access: ClusterAccess) -> None:
        self.access = access
        self.default_namespace = access.namespace
        self._session: aiohttp.ClientSession | None = None
        self._resources: dict[tuple[str, str], ResourceInfo] | None = None
        self._discovery_lock = asyncio.Lock()

    @classmethod
    def from_kubeconfig(
        cls, path: str | Path | None = None, context: str | None = None
    ) -> HttpClient:
        return cls(load_access(path, context))

    # -- transport -------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Accept": "application/json", "User-Agent": "recon"}
            if self.access.token:
                headers["Authorization"] = f"Bearer {self.access.token}"
            self._session = aiohttp.ClientSession(
                headers=headers,
                connector=aiohttp.TCPConnector(ssl=self.access.ssl, limit=32),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        url = self.access.server + path + (("?" + urlencode(query)) if query else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else {}
        try:
            async with self._http().request(
                method, url, data=data, headers=headers, timeout=aiohttp.ClientTimeout(total=60)
            ) as resp:
                text = await resp.text()
                parsed = _parse(text)
                if resp.status >= 400:
                    raise from_status(
                        resp.status, parsed if isinstance(parsed, dict) else None, text[:500]
                    )
                return parsed
        except aiohttp.ClientError as e:
            raise ServerError(
                0, "ConnectionFailed", f"cannot reach {self.access.server}: {e}"
            ) from None

    # -- discovery -------------------------------------------------------------------

    async def _discover(self) -> dict[tuple[str, str], ResourceInfo]:
        found: dict[tuple[str, str], ResourceInfo] = {}
        group_versions = [("", v) for v in (await self._request("GET", "/api")).get("versions", [])]
        groups = await self._request("GET", "/apis")
        for group in groups.get("groups", []):
            for version in group.get("versions", []):
                group_versions.append((group["name"], version["version"]))

        async def one(group: str, version: str) -> None:
            path = f"/api/{version}" if not group else f"/apis/{group}/{version}"
            try:
                listing = await self._request("GET", path)
            except ClientError:
                return
            subresources: dict[str, set[str]] = {}
            for res in listing.get("resources", []):
                plural, _, sub = str(res["name"]).partition("/")
                if sub:
                    subresources.setdefault(plural, set()).add(sub)
            for res in listing.get("resources", []):
                if "/" in res["name"]:
                    continue
                api_version = f"{group}/{version}" if group else version
                found[(api_version, res["kind"])] = ResourceInfo(
                    group,
                    version,
                    res["kind"],
                    res["name"],
                    bool(res.get("namespaced")),
                    frozenset(subresources.get(res["name"], ())),
                )

        await asyncio.gather(*(one(g, v) for g, v in group_versions))
        return found

    async def resource(self, api_version: str, kind: str) -> ResourceInfo:
        async with self._discovery_lock:
            if self._resources is None:
                self._resources = await self._discover()
            info = self._resources.get((api_version, kind))
            if info is None:  # maybe a CRD created since the last discovery
                self._resources = await self._discover()
                info = self._resources.get((api_version, kind))
        if info is None:
            raise NotFoundError(
                404,
                "NotFound",
                f'the server doesn\'t have a resource type "{kind}" in {api_version}',
            )
        return info

    def _path(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        prefix = f"/api/{info.version}" if not info.group else f"/apis/{info.group}/{info.version}"
        if info.namespaced and namespace:
            prefix += f"/namespaces/{quote(namespace, safe='')}"
        path = f"{prefix}/{info.plural}"
        if name is not None:
            path += f"/{quote(name, safe='')}"
        if subresource:
            path += f"/{subresource}"
        return path

    # -- verbs -----------------------------------------------------------------------

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> JSONDict:
        info = await self.resource(api_version, kind)
        ns = namespace or (self.default_namespace if info.namespaced else None)
        result: JSONDict = await self._request("GET", self._path(info, ns, name))
        return result

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
        info = await self.resource(api_version, kind)
        query: dict[str, str] = {}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        if limit:
            query["limit"] = str(limit)
        items: list[JSONDict] = []
        while True:
            page = await self._request("GET", self._path(info, namespace), query=query)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token or limit:
                return ObjectList(items, str(page["metadata"].get("resourceVersion", "")))
            query["continue"] = token

    @staticmethod
    def _write_query(dry_run: bool, field_validation: str | None = None) -> dict[str, str]:
        query = {"fieldManager": "recon"}
        if dry_run:
            query["dryRun"] = "All"
        if field_validation:
            query["fieldValidation"] = field_validation
        return query

    async def create(
        self, obj: JSONDict, *, dry_run: bool = False, field_validation: str = "Strict"
    ) -> JSONDict:
        info = await self.resource(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        ns = namespace_of(obj, info, self.default_namespace)
        result: JSONDict = await self._request(
            "POST",
            self._path(info, ns),
            query=self._write_query(dry_run, field_validation),
            body=obj,
        )
        return result

    async def update(
        self, obj: JSONDict, *, subresource: str | None = None, dry_run: bool = False
    ) -> JSONDict:
        info = await self.resource(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        ns = namespace_of(obj, info, self.default_namespace)
        name = str((obj.get("metadata") or {}).get("name", ""))
        result: JSONDict = await self._request(
            "PUT",
            self._path(info, ns, name, subresource),
            query=self._write_query(dry_run),
            body=obj,
        )
        return result

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
        info = await self.resource(api_version, kind)
        ns = namespace or (self.default_namespace if info.namespaced else None)
        result: JSONDict = await self._request(
            "PATCH",
            self._path(info, ns, name, subresource),
            query=self._write_query(dry_run, field_validation),
            body=patch,
            content_type=PATCH_CONTENT_TYPES[patch_type],
        )
        return result

    async def apply(
        self, obj: JSONDict, *, field_manager: str, force: bool = False, dry_run: bool = False
    ) -> JSONDict:
        meta = obj.get("metadata") or {}
        info = await self.resource(str(obj.get("apiVersion")), str(obj.get("kind")))
        ns = meta.get("namespace") or (self.default_namespace if info.namespaced else None)
        query = self._write_query(dry_run, "Strict")
        query["fieldManager"] = field_manager
        if force:
            query["force"] = "true"
        result: JSONDict = await self._request(
            "PATCH",
            self._path(info, ns, str(meta.get("name") or "")),
            query=query,
            body=obj,  # JSON is YAML
            content_type=APPLY_CONTENT_TYPE,
        )
        return result

    async def get_scale(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> JSONDict:
        info = await self.resource(api_version, kind)
        ns = namespace or (self.default_namespace if info.namespaced else None)
        result: JSONDict = await self._request("GET", self._path(info, ns, name, "scale"))
        return result

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
        info = await self.resource(api_version, kind)
        ns = namespace or (self.default_namespace if info.namespaced else None)
        result: JSONDict = await self._request(
            "PUT",
            self._path(info, ns, name, "scale"),
            query=self._write_query(dry_run),
            body=scale,
        )
        return result

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
        info = await self.resource(api_version, kind)
        ns = namespace or (self.default_namespace if info.namespaced else None)
        options: JSONDict = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            options["propagationPolicy"] = propagation
        if grace_period is not None:
            options["gracePeriodSeconds"] = grace_period
        if dry_run:
            options["dryRun"] = ["All"]
        result = await self._request("DELETE", self._path(info, ns, name), body=options)
        if (
            isinstance(result, dict)
            and result.get("kind") != "Status"
            and (result.get("metadata") or {}).get("deletionTimestamp")
        ):
            return result
        return None

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
        info = await self.resource(api_version, kind)
        query = {"watch": "true", "allowWatchBookmarks": "true"}
        if resource_version:
            query["resourceVersion"] = resource_version
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        if timeout is not None:
            query["timeoutSeconds"] = str(max(1, int(timeout)))
        url = self.access.server + self._path(info, namespace) + "?" + urlencode(query)
        client_timeout = aiohttp.ClientTimeout(
            total=None if timeout is None else timeout + 10, sock_read=None
        )
        try:
            async with self._http().get(url, timeout=client_timeout) as resp:
                if resp.status >= 400:
                    text = await resp.text()
                    parsed = _parse(text)
                    raise from_status(
                        resp.status, parsed if isinstance(parsed, dict) else None, text[:500]
                    )
                async for raw in resp.content:
                    line = raw.strip()
                    if not line:
                        continue
                    event = json.loads(line)
                    event_type = event.get("type")
                    obj = event.get("object") or {}
                    if event_type == "ERROR":
                        raise from_status(int(obj.get("code") or 500), obj)
                    if event_type == "BOOKMARK" and not bookmarks:
                        continue
                    yield WatchEvent(str(event_type), obj)
        except aiohttp.ClientPayloadError:
            return  # the server ended the stream: callers re-watch from their last version
        except aiohttp.ClientError as e:
            raise ServerError(
                0, "ConnectionFailed", f"watch of {info.plural} failed: {e}"
            ) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _parse(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None
