"""HTTP handlers for resource URLs: CRUD, patch, list, watch, subresources, Table output.

Each handler parses the request (path, query, body, content negotiation), calls the
`ObjectService`, and encodes the answer the way Kubernetes clients expect. Every failure is an
`ApiError`, turned into a `Status` body by the middleware in `app.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from reconciler.apiserver import errors, protobuf, reviews
from reconciler.apiserver.access import Access, user_of
from reconciler.apiserver.binding import Bindings
from reconciler.apiserver.component_status import (
    DEPRECATION,
    STORE_COMPONENT,
    Components,
    component_status,
    component_status_list,
)
from reconciler.apiserver.converted import ConvertedVersion
from reconciler.apiserver.errors import ApiError
from reconciler.apiserver.eviction import Evictions
from reconciler.apiserver.objects import (
    PATCH_APPLY,
    PATCH_JSON,
    PATCH_MERGE,
    PATCH_STRATEGIC,
    ObjectService,
    Selection,
)
from reconciler.apiserver.paths import ResourcePath
from reconciler.apiserver.pod_subresources import PodSubresources, StreamsSource
from reconciler.apiserver.resources import READ_ONLY_VERBS, ResourceType
from reconciler.apiserver.tables import build_table
from reconciler.apiserver.token_request import request_token
from reconciler.clock import Clock
from reconciler.schema.definitions import Definitions
from reconciler.store import shared_json

JSONDict = dict[str, Any]

_JSON = "application/json"
_PATCH_TYPES = (PATCH_JSON, PATCH_MERGE, PATCH_STRATEGIC)


@dataclass
class WatchSettings:
    bookmark_interval: float = 60.0


def dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def json_response(
    obj: object, status: int = 200, warnings: list[str] | None = None
) -> web.Response:
    response = web.Response(text=dumps(obj), status=status, content_type=_JSON)
    for warning in warnings or ():
        # RFC 7234 warn-code 299, as the apiserver sends them; kubectl prints "Warning: ...".
        escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.add("Warning", f'299 - "{escaped}"')
    return response


def wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "as=Table" in accept


async def read_body(request: web.Request, defs: Definitions | None = None) -> object:
    raw = await request.read()
    if not raw:
        raise errors.bad_request("the request body is empty")
    content_type = request.content_type
    if content_type == protobuf.CONTENT_TYPE:
        return await _decode_protobuf(raw, defs)
    try:
        if "yaml" in content_type:
            return yaml.safe_load(raw)
        return shared_json.loads(raw)  # kept by the store: strings shared
    except (ValueError, yaml.YAMLError) as e:
        raise errors.bad_request(f"the request body is not valid JSON or YAML: {e}") from e


async def _decode_protobuf(raw: bytes, defs: Definitions | None) -> object:
    """kubectl's typed commands send protobuf; decode it with the client's own descriptors."""
    schema = await asyncio.to_thread(protobuf.load_default)  # first call reads kubectl
    if schema is None or defs is None:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            "this server decodes protobuf bodies with the descriptors of a local kubectl, and "
            "none was found (set RECON_PROTOBUF_DESCRIPTORS to a kubectl binary); send JSON",
        )
    try:
        return protobuf.decode_request(raw, schema, defs)
    except protobuf.ProtobufError as e:
        raise errors.bad_request(f"the protobuf request body cannot be decoded: {e}") from e


def _dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise errors.bad_request(f"unsupported dryRun value {value!r}: only 'All' is valid")
    return bool(values)


def _warnings(request: web.Request) -> list[str] | None:
    """A list to collect warnings in, unless the client asked to ignore unknown fields."""
    return None if request.query.get("fieldValidation") == "Ignore" else []


def _field_manager(request: web.Request) -> str:
    """Who writes, for managedFields: the `fieldManager` the client names, else (as
    upstream) its User-Agent up to the first "/" (`kubectl/v1.32.4 (linux/amd64) ...`)."""
    named = request.query.get("fieldManager", "")
    if len(named) > 128:
        raise errors.bad_request("fieldManager: Too long: may not be more than 128 bytes")
    if named:
        return named
    return request.headers.get("User-Agent", "").split("/", 1)[0][:128]


def _watching(request: web.Request, rp: ResourcePath) -> bool:
    """A watch, by the legacy `/watch/` path or by `?watch=true`."""
    return rp.legacy_watch or request.query.get("watch") in ("true", "1")


def _force(request: web.Request) -> bool:
    value = request.query.get("force", "")
    if value not in ("", "true", "false"):
        raise errors.bad_request(f"force must be true or false, not {value!r}")
    return value == "true"


def _strict(request: web.Request) -> bool:
    value = request.query.get("fieldValidation", "")
    if value not in ("", "Strict", "Warn", "Ignore"):
        raise errors.bad_request(
            f"fieldValidation must be one of Strict, Warn or Ignore, not {value!r}"
        )
    return value == "Strict"


class ResourceHandlers:
    """Serves every resource URL of the registry through one ObjectService."""

    def __init__(
        self,
        service: ObjectService,
        clock: Clock,
        watch: WatchSettings,
        access: Access,
        pod_streams: StreamsSource = lambda: None,
        components: Components = lambda: {},
    ) -> None:
        self.service = service
        self.clock = clock
        self.components = components
        self.watch_settings = watch
        self.access = access
        pods = service.registry.lookup("", "v1", "pods")
        self.pod_io = (
            PodSubresources(lambda ns, name: service.get(pods, ns, name), pod_streams, clock)
            if pods is not None
            else None
        )
        budgets = service.registry.lookup("policy", "v1", "poddisruptionbudgets")
        self.evictions = (
            Evictions(service, pods, budgets, clock)
            if pods is not None and budgets is not None
            else None
        )

    def resolve(self, rp: ResourcePath) -> ResourceType:
        rt = self.service.registry.lookup(rp.group, rp.version, rp.plural)
        if rt is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if rp.namespace is not None and not rt.namespaced:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if rp.name is not None and rt.namespaced and rp.namespace is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return rt

    async def handle(self, request: web.Request, rp: ResourcePath) -> web.StreamResponse:
        rt = self.resolve(rp)
        if rt.storage_version is not None:
            return await self._converted(request, rt, rp)
        method = request.method
        ns = rp.namespace or ""
        if rt.verbs == ("create",):
            return await self._review(request, rt, rp, ns)
        if rt.verbs == READ_ONLY_VERBS:
            return self._component_statuses(request, rt, rp)
        if rp.subresource is not None:
            return await self._subresource(request, rt, rp, ns)
        if rp.name is None:
            if method == "GET":
                if _watching(request, rp):
                    return await self.watch(request, rt, rp.namespace)
                return self.list_objects(request, rt, rp.namespace)
            if method == "POST":
                if rt.namespaced and rp.namespace is None:
                    raise ApiError(405, "MethodNotAllowed", "create needs a namespace in the URL")
                body = await read_body(request, self.service.defs)
                warnings = _warnings(request)
                created = self.service.create(
                    rt,
                    ns,
                    body,
                    dry_run=_dry_run(request),
                    strict=_strict(request),
                    warnings=warnings,
                )  # a create records no managedFields (see ObjectService.apply)
                return json_response(created, 201, warnings)
            if method == "DELETE":
                return await self.delete_collection(request, rt, rp.namespace)
        else:
            if method == "GET":
                if _watching(request, rp):
                    return await self.watch(request, rt, rp.namespace, name=rp.name)
                obj = self.service.get(rt, ns, rp.name)
                if wants_table(request):
                    return json_response(self._table(request, rt, [obj], None, None))
                return json_response(obj)
            if method == "PUT":
                body = await read_body(request, self.service.defs)
                warnings = _warnings(request)
                updated = self.service.update(
                    rt,
                    ns,
                    rp.name,
                    body,
                    dry_run=_dry_run(request),
                    strict=_strict(request),
                    warnings=warnings,
                    field_manager=_field_manager(request),
                )
                return json_response(updated, 200, warnings)
            if method == "PATCH" and request.content_type == PATCH_APPLY:
                body = await read_body(request)
                warnings = _warnings(request)
                if request.query.get("fieldManager") is None:
                    raise errors.bad_request("fieldManager is required for apply requests")
                existed = self.service.store.find(
                    rt.storage_key, ns if rt.namespaced else "", rp.name
                )
                applied = self.service.apply(
                    rt,
                    ns,
                    rp.name,
                    body,
                    field_manager=_field_manager(request),
                    force=_force(request),
                    dry_run=_dry_run(request),
                    strict=_strict(request),
                    warnings=warnings,
                )
                return json_response(applied, 200 if existed else 201, warnings)
            if method == "PATCH":
                content_type, patch = await self._patch_body(request)
                warnings = _warnings(request)
                patched = self.service.patch(
                    rt,
                    ns,
                    rp.name,
                    content_type,
                    patch,
                    dry_run=_dry_run(request),
                    strict=_strict(request),
                    warnings=warnings,
                    field_manager=_field_manager(request),
                )
                return json_response(patched, 200, warnings)
            if method == "DELETE":
                return await self.delete(request, rt, ns, rp.name)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on this URL")

    async def _converted(
        self, request: web.Request, rt: ResourceType, rp: ResourcePath
    ) -> web.StreamResponse:
        """An older version served by conversion (`converted.py`)."""
        stored = self.service.registry.lookup(rt.group, rt.storage_version or "", rt.plural)
        if stored is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if rp.subresource is not None:
            raise ApiError(404, "NotFound", f"subresources are served in {stored.api_version} only")
        if _watching(request, rp):
            raise ApiError(405, "MethodNotAllowed", f"watch is served in {stored.api_version} only")
        versions = ConvertedVersion(self.service, rt, stored)
        method, ns = request.method, rp.namespace or ""
        options: JSONDict = {"dry_run": _dry_run(request), "strict": _strict(request)}
        if rp.name is None:
            if method == "GET":
                if wants_table(request):
                    return self.list_objects(request, stored, rp.namespace)
                result = self.service.list(
                    stored, rp.namespace, self._selection(request, stored), None, None
                )
                return json_response(
                    {
                        "kind": rt.list_kind,
                        "apiVersion": rt.api_version,
                        "metadata": {"resourceVersion": str(result.revision)},
                        "items": versions.list(result.items),
                    }
                )
            if method == "POST" and (rp.namespace is not None or not rt.namespaced):
                body = await read_body(request, self.service.defs)
                return json_response(versions.create(ns, body, **options), 201)
            if method == "DELETE":
                return await self.delete_collection(request, stored, rp.namespace)
        else:
            if method == "GET":
                if wants_table(request):
                    obj = self.service.get(stored, ns, rp.name)
                    return json_response(self._table(request, stored, [obj], None, None))
                return json_response(versions.get(ns, rp.name))
            if method == "PUT":
                body = await read_body(request, self.service.defs)
                return json_response(versions.update(ns, rp.name, body, **options))
            if method == "PATCH":
                content_type, patch = await self._patch_body(request)
                return json_response(versions.patch(ns, rp.name, content_type, patch, **options))
            if method == "DELETE":
                return await self.delete(request, stored, ns, rp.name)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on this URL")

    async def _patch_body(self, request: web.Request) -> tuple[str, object]:
        content_type = request.content_type
        if content_type not in _PATCH_TYPES:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(_PATCH_TYPES)}",
            )
        raw = await request.read()
        try:
            return content_type, shared_json.loads(raw) if raw else None
        except ValueError as e:
            raise errors.bad_request(f"the patch is not valid JSON: {e}") from e

    async def _subresource(
        self, request: web.Request, rt: ResourceType, rp: ResourcePath, ns: str
    ) -> web.StreamResponse:
        assert rp.name is not None
        sub, method, name = rp.subresource, request.method, rp.name
        if sub in ("status", "approval") and sub in rt.subresources:
            # approval: a CertificateSigningRequest's Approved and Denied conditions (csr.py)
            if method == "GET":
                return json_response(self.service.get(rt, ns, name))
            if method == "PUT":
                body = await read_body(request, self.service.defs)
                return json_response(
                    self.service.update(
                        rt, ns, name, body, subresource=sub, dry_run=_dry_run(request)
                    )
                )
            if method == "PATCH":
                content_type, patch = await self._patch_body(request)
                return json_response(
                    self.service.patch(
                        rt,
                        ns,
                        name,
                        content_type,
                        patch,
                        subresource=sub,
                        dry_run=_dry_run(request),
                    )
                )
        if sub == "scale" and "scale" in rt.subresources:
            if method == "GET":
                return json_response(self.service.get_scale(rt, ns, name))
            if method == "PUT":
                body = await read_body(request, self.service.defs)
                return json_response(
                    self.service.update_scale(
                        rt, ns, name, body, _dry_run(request), _field_manager(request)
                    )
                )
            if method == "PATCH":
                content_type, patch = await self._patch_body(request)
                return json_response(
                    self.service.patch_scale(
                        rt,
                        ns,
                        name,
                        content_type,
                        patch,
                        _dry_run(request),
                        _field_manager(request),
                    )
                )
        if sub in ("ephemeralcontainers", "resize") and sub in rt.subresources:
            return await self._pod_part(request, rt, ns, name, sub)
        evictable = any(s.name == "eviction" for s in rt.body_subresources)
        if sub == "eviction" and evictable and self.evictions is not None:
            return await self._evict(request, ns, name)
        if sub == "binding" and any(s.name == "binding" for s in rt.body_subresources):
            return await self._bind(request, rt, ns, name)
        if sub == "token" and any(s.name == "token" for s in rt.body_subresources):
            return await self._token(request, ns, name)
        if sub in rt.extra_subresources and self.pod_io is not None:
            if sub == "log" and method == "GET":
                return await self.pod_io.log(request, ns, name)
            if sub == "exec" and method in ("GET", "POST"):
                return await self.pod_io.exec(request, ns, name)
            if sub == "attach" and method in ("GET", "POST"):
                return await self.pod_io.attach(request, ns, name)
            if sub == "portforward" and method in ("GET", "POST"):
                return await self.pod_io.port_forward(request, ns, name)
        if sub == "finalize" and rt.plural == "namespaces" and method == "PUT":
            body = await read_body(request, self.service.defs)
            return json_response(self.service.update(rt, ns, name, body, subresource="finalize"))
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    async def _pod_part(
        self, request: web.Request, rt: ResourceType, ns: str, name: str, sub: str
    ) -> web.Response:
        """`pods/NAME/ephemeralcontainers` (what `kubectl debug` patches) and
        `pods/NAME/resize` (`kubectl patch --subresource resize`): the whole Pod is read and
        written, only its ephemeral containers or its containers' resources change
        (`objects.py`)."""
        method = request.method
        if method == "GET":
            return json_response(self.service.get(rt, ns, name))
        if method not in ("PUT", "PATCH"):
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on pods/{sub}")
        warnings = _warnings(request)
        if method == "PUT":
            body = await read_body(request, self.service.defs)
            written = self.service.update(
                rt,
                ns,
                name,
                body,
                subresource=sub,
                dry_run=_dry_run(request),
                strict=_strict(request),
                warnings=warnings,
                field_manager=_field_manager(request),
            )
        else:
            content_type, patch = await self._patch_body(request)
            written = self.service.patch(
                rt,
                ns,
                name,
                content_type,
                patch,
                subresource=sub,
                dry_run=_dry_run(request),
                strict=_strict(request),
                warnings=warnings,
                field_manager=_field_manager(request),
            )
        return json_response(written, 200, warnings)

    def _component_statuses(
        self, request: web.Request, rt: ResourceType, rp: ResourcePath
    ) -> web.Response:
        """`kubectl get componentstatuses`: asked of the parts at each read, never stored."""
        watch = _watching(request, rp)
        if request.method != "GET" or rp.subresource is not None or watch:
            verb = "watch" if watch else request.method
            raise ApiError(405, "MethodNotAllowed", f"{verb} is not supported on {rt.plural}")
        found = dict(self.components())
        found[STORE_COMPONENT] = self.service.store.problem()
        body: JSONDict
        if rp.name is None:
            body = component_status_list(found, self.service.store.revision)
            selection = self._selection(request, rt)
            body["items"] = items = [i for i in body["items"] if selection.matches(i)]
        elif rp.name in found:
            body = component_status(rp.name, found[rp.name])
            items = [body]
        else:
            raise ApiError(
                404, "NotFound", f'componentstatuses "{rp.name}" not found', rt.kind, rp.name
            )
        if wants_table(request):
            body = self._table(request, rt, items, None, None)
        return json_response(body, 200, [DEPRECATION])

    async def _review(
        self, request: web.Request, rt: ResourceType, rp: ResourcePath, ns: str
    ) -> web.Response:
        """A create-only review kind (`reviews.py`): POST to the collection, nothing stored."""
        if request.method != "POST" or rp.name is not None or rp.subresource is not None:
            raise ApiError(
                405, "MethodNotAllowed", f"{rt.plural}.{rt.group} only accepts create (POST)"
            )
        if rt.namespaced and rp.namespace is None:
            raise ApiError(405, "MethodNotAllowed", "create needs a namespace in the URL")
        _dry_run(request)  # rejects values other than "All"
        body = await read_body(request, self.service.defs)
        answered = reviews.answer(
            self.access.authorizer, rt, ns, user_of(request), body, self.access.authenticator
        )
        return json_response(answered, 201)

    async def _token(self, request: web.Request, ns: str, name: str) -> web.Response:
        """`POST serviceaccounts/NAME/token` (`token_request.py`)."""
        if request.method != "POST":
            raise ApiError(
                405,
                "MethodNotAllowed",
                f"{request.method} is not supported on serviceaccounts/token",
            )
        dry_run = _dry_run(request)
        body = await read_body(request, self.service.defs)
        answered = request_token(
            self.service, self.access.signer, self.clock, ns, name, body, dry_run
        )
        return json_response(answered, 201)

    async def _bind(
        self, request: web.Request, rt: ResourceType, ns: str, name: str
    ) -> web.Response:
        """`POST pods/NAME/binding` (see `binding.py`): 201 with a Status."""
        if request.method != "POST":
            raise ApiError(
                405, "MethodNotAllowed", f"{request.method} is not supported on pods/binding"
            )
        dry_run = _dry_run(request)
        body = await read_body(request, self.service.defs)
        status = Bindings(self.service, rt, self.clock).bind(ns, name, body, dry_run)
        return json_response(status, 201)

    async def _evict(self, request: web.Request, ns: str, name: str) -> web.Response:
        """`POST pods/NAME/eviction` (see `eviction.py`): 201, or 500 for a pod under two
        budgets, as upstream answers with a Status; refusals are raised as ApiErrors."""
        assert self.evictions is not None
        if request.method != "POST":
            raise ApiError(
                405, "MethodNotAllowed", f"{request.method} is not supported on pods/eviction"
            )
        _dry_run(request)  # rejects values other than "All"
        body = await read_body(request, self.service.defs)
        code, status = self.evictions.evict(ns, name, body, request.query.getall("dryRun", []))
        return json_response(status, code)

    # -- list ------------------------------------------------------------------------

    def _selection(self, request: web.Request, rt: ResourceType) -> Selection:
        return self.service.selection(
            rt, request.query.get("labelSelector"), request.query.get("fieldSelector")
        )

    def list_objects(
        self, request: web.Request, rt: ResourceType, namespace: str | None
    ) -> web.Response:
        selection = self._selection(request, rt)
        limit_text = request.query.get("limit")
        try:
            limit = int(limit_text) if limit_text else None
        except ValueError as e:
            raise errors.bad_request(f"limit must be an integer, not {limit_text!r}") from e
        result = self.service.list(
            rt, namespace, selection, limit, request.query.get("continue") or None
        )
        if wants_table(request):
            return json_response(
                self._table(request, rt, result.items, result.revision, result.continue_token)
            )
        meta: JSONDict = {"resourceVersion": str(result.revision)}
        if result.continue_token:
            meta["continue"] = result.continue_token
            meta["remainingItemCount"] = result.remaining
        # Items are spliced in as stored JSON text: lists of thousands stay cheap.
        head = dumps({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta})
        items = ",".join(result.texts)
        return web.Response(text=head[:-1] + ',"items":[' + items + "]}", content_type=_JSON)

    def _table(
        self,
        request: web.Request,
        rt: ResourceType,
        items: list[JSONDict],
        revision: int | None,
        continue_token: str | None,
    ) -> JSONDict:
        try:
            table = build_table(
                rt.kind,
                items,
                self.clock.now(),
                include_object=request.query.get("includeObject", "Metadata"),
                printer_columns=rt.printer_columns,
            )
        except ValueError as e:
            raise errors.bad_request(str(e)) from e
        meta: JSONDict = {}
        if revision is not None:
            meta["resourceVersion"] = str(revision)
        if continue_token:
            meta["continue"] = continue_token
        table["metadata"] = meta
        return table

    # -- watch -----------------------------------------------------------------------

    async def watch(
        self,
        request: web.Request,
        rt: ResourceType,
        namespace: str | None,
        name: str | None = None,
    ) -> web.StreamResponse:
        if request.query.get("sendInitialEvents") == "true":
            raise errors.invalid(
                "",
                "",
                "",
                [
                    errors.Cause(
                        "sendInitialEvents",
                        "Forbidden: sendInitialEvents is not supported by this "
                        "server; list, then watch from the list's resourceVersion",
                    )
                ],
            )
        selection = self._selection(request, rt)
        rv_text = request.query.get("resourceVersion", "")
        since: int | None
        try:
            since = int(rv_text) if rv_text not in ("", "0") else None
        except ValueError as e:
            raise errors.bad_request(f"invalid resourceVersion {rv_text!r}") from e
        timeout_text = request.query.get("timeoutSeconds")
        deadline = self.clock.monotonic() + float(timeout_text) if timeout_text else None
        bookmarks = request.query.get("allowWatchBookmarks") in ("true", "1")
        table = wants_table(request)

        response = web.StreamResponse(headers={"Content-Type": _JSON})
        response.enable_chunked_encoding()
        await response.prepare(request)

        def matches_name(obj: JSONDict) -> bool:
            return name is None or obj.get("metadata", {}).get("name") == name

        async def send(event_type: str, obj: JSONDict, text: str | None = None) -> None:
            """One event line; `text`, the object's stored JSON, is spliced in as it is
            (a 400 KB Application is not encoded again for every watcher and event)."""
            if table and event_type != "BOOKMARK" and event_type != "ERROR":
                obj, text = self._table(request, rt, [obj], None, None), None
            if text is None:
                line = dumps({"type": event_type, "object": obj}) + "\n"
            else:
                line = f'{{"type":{dumps(event_type)},"object":{text}}}\n'
            await response.write(line.encode())

        try:
            watcher, initial = self.service.watch(rt, namespace, since)
        except ApiError as e:
            if e.code == 410:
                # kopf and client-go recover from an ERROR event carrying 410, not from a 410.
                await send("ERROR", e.status())
                await response.write_eof()
                return response
            raise
        try:
            for obj in initial:
                if selection.matches(obj) and matches_name(obj):
                    await send("ADDED", obj)
            while True:
                wait = self.watch_settings.bookmark_interval
                if deadline is not None:
                    wait = min(wait, deadline - self.clock.monotonic())
                    if wait <= 0:
                        break
                try:
                    event = await watcher.next(timeout=wait)
                except TimeoutError:
                    if bookmarks and (deadline is None or deadline > self.clock.monotonic()):
                        await send(
                            "BOOKMARK",
                            {
                                "kind": rt.kind,
                                "apiVersion": rt.api_version,
                                "metadata": {"resourceVersion": str(self.service.store.revision)},
                            },
                        )
                    continue
                if event is None:
                    break
                if not matches_name(event.object):
                    continue
                filtered = self.service.filter_event(event, selection)
                if filtered is not None:
                    event_type, obj = filtered
                    await send(event_type, obj, event.text if obj is event.object else None)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            watcher.close()
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    # -- delete ----------------------------------------------------------------------

    async def _delete_options(self, request: web.Request) -> JSONDict:
        options: JSONDict = {}
        if request.can_read_body:
            raw = await request.read()
            if raw:
                try:
                    parsed = json.loads(raw)
                except ValueError as e:
                    raise errors.bad_request(f"DeleteOptions is not valid JSON: {e}") from e
                if isinstance(parsed, dict):
                    options = parsed
        if "propagationPolicy" in request.query:
            options["propagationPolicy"] = request.query["propagationPolicy"]
        if "gracePeriodSeconds" in request.query:
            try:
                options["gracePeriodSeconds"] = int(request.query["gracePeriodSeconds"])
            except ValueError as e:
                raise errors.bad_request("gracePeriodSeconds must be an integer") from e
        if options.get("orphanDependents") is True and "propagationPolicy" not in options:
            options["propagationPolicy"] = "Orphan"
        return options

    async def delete(
        self, request: web.Request, rt: ResourceType, ns: str, name: str
    ) -> web.Response:
        options = await self._delete_options(request)
        dry_run = _dry_run(request) or "All" in (options.get("dryRun") or [])
        result = self.service.delete(
            rt,
            ns,
            name,
            propagation=options.get("propagationPolicy"),
            preconditions=options.get("preconditions"),
            grace_period=options.get("gracePeriodSeconds"),
            dry_run=dry_run,
        )
        if not result.deleted:
            return json_response(result.object, 202 if not dry_run else 200)
        if rt.is_custom:
            return json_response(result.object)
        meta = result.object.get("metadata", {})
        return json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": name,
                    "group": rt.group,
                    "kind": rt.plural,
                    "uid": meta.get("uid"),
                },
            }
        )

    async def delete_collection(
        self, request: web.Request, rt: ResourceType, namespace: str | None
    ) -> web.Response:
        options = await self._delete_options(request)
        selection = self._selection(request, rt)
        deleted = self.service.delete_collection(
            rt,
            namespace,
            selection,
            propagation=options.get("propagationPolicy"),
            dry_run=_dry_run(request),
        )
        return json_response(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.service.store.revision)},
                "items": deleted,
            }
        )
