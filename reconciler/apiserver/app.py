"""The aiohttp application: authentication, error mapping and URL dispatch.

Non-resource URLs (`/version`, discovery, `/openapi/v3`, health) are answered here; every
resource URL goes to `ResourceHandlers`. Every request but the health and version endpoints
(public, as on Kubernetes) and the self-authenticating `public` routes passes `Access`
(`access.py`): bearer-token authentication (the admin token or a ServiceAccount JWT),
impersonation, RBAC.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from reconciler.apiserver import discovery, metrics_api, paths, request_info
from reconciler.apiserver.access import Access
from reconciler.apiserver.component_status import Components
from reconciler.apiserver.errors import ApiError
from reconciler.apiserver.handlers import ResourceHandlers, WatchSettings, json_response
from reconciler.apiserver.metrics_api import MetricsProvider
from reconciler.apiserver.objects import ObjectService
from reconciler.apiserver.openapi import OpenAPIV3
from reconciler.apiserver.pod_subresources import StreamsSource
from reconciler.apiserver.rbac import Attributes
from reconciler.apiserver.request_metrics import RequestMetrics, metric_verb, stored_counts
from reconciler.clock import Clock

log = logging.getLogger(__name__)

_PUBLIC = frozenset({"/healthz", "/livez", "/readyz", "/version"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class AppConfig:
    access: Access
    server_address: str
    version: str = "v1.32.0-recon"
    bookmark_interval: float = 60.0
    components: Components = lambda: {}
    """How the in-process parts besides the store are (`component_status.py`)."""


# An OpenAPI v2 document with no definitions, as gnostic protobuf: Document{swagger=1: "2.0",
# info=2: Info{title=1, version=2}}. Clients only fall back to v2 for client-side validation
# (kubectl does for `kind: List` files); finding no schema there, they skip it and leave
# validation to this server, which validates every write against the full schemas.
_V2_INFO = b"\x0a\x05recon\x12\x02v1"
_OPENAPI_V2_PROTOBUF = b"\x0a\x032.0\x12" + bytes([len(_V2_INFO)]) + _V2_INFO
_OPENAPI_V2_JSON = (
    '{"swagger":"2.0","info":{"title":"recon","version":"v1"},"paths":{},"definitions":{}}'
)


def _openapi_v2_stub(request: web.Request) -> web.Response:
    if "protobuf" in request.headers.get("Accept", ""):
        return web.Response(
            body=_OPENAPI_V2_PROTOBUF,
            content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
        )
    return web.Response(text=_OPENAPI_V2_JSON, content_type="application/json")


_HEALTH_CHECKS = ("ping", "log", "etcd", "informer-sync", "poststarthook/start-informers")
"""The checks a health endpoint lists (`?verbose`), by upstream's names: the server answers
at all, logs, its store (SQLite standing in for etcd) is open, informers are synced."""


def _health(endpoint: str, verbose: bool) -> str:
    """`/readyz` answers "ok"; `/readyz?verbose` lists each check as kube-apiserver does
    (`kubectl get --raw '/readyz?verbose'`)."""
    if not verbose:
        return "ok"
    lines = [f"[+]{check} ok" for check in _HEALTH_CHECKS]
    return "\n".join([*lines, f"{endpoint} check passed"]) + "\n"


def _unauthorized() -> web.Response:
    return json_response(ApiError(401, "Unauthorized", "Unauthorized").status(), 401)


def build_app(
    service: ObjectService,
    openapi: OpenAPIV3,
    clock: Clock,
    config: AppConfig,
    pod_streams: StreamsSource = lambda: None,
    public: Mapping[str, Handler] | None = None,
    metrics: MetricsProvider = lambda: None,
) -> web.Application:
    """`public`: path prefix -> handler for URLs that authenticate themselves (webhooks sign
    their bodies) and so skip the bearer token; the server knows nothing else of them.
    `metrics`: the resource metrics (`metrics.k8s.io`) when something measures the node."""
    public = dict(public or {})

    def public_handler(path: str) -> Handler | None:
        for prefix, handler in public.items():
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return handler
        return None

    resources = ResourceHandlers(
        service,
        clock,
        WatchSettings(config.bookmark_interval),
        config.access,
        pod_streams,
        config.components,
    )

    counted = RequestMetrics(time.time())

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        own = public_handler(request.path)
        if own is not None:
            return await own(request)
        attributes = request_info.resolve(request.method, request.path, request.query)
        verb = metric_verb(request.method, attributes, request.headers.get("Content-Type", ""))
        opened = counted.begin(attributes, verb)
        started = time.perf_counter()
        code = 500
        try:
            response = await _serve(request, handler, attributes)
            code = response.status
            return response
        finally:
            counted.end(
                attributes,
                verb,
                code,
                time.perf_counter() - started,
                "All" in request.query.getall("dryRun", []),
                opened,
            )

    async def _serve(
        request: web.Request, handler: Handler, attributes: Attributes
    ) -> web.StreamResponse:
        try:
            if request.path not in _PUBLIC and config.access.admit(request, attributes) is None:
                return _unauthorized()
            return await handler(request)
        except ApiError as e:
            return json_response(e.status(), e.code)
        except web.HTTPException:
            raise
        except Exception as e:
            log.exception("internal error serving %s %s", request.method, request.path)
            err = ApiError(500, "InternalError", f"an internal error occurred: {type(e).__name__}")
            return json_response(err.status(), 500)

    async def dispatch(request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text=_health(path[1:], "verbose" in request.query))
        if path.startswith(("/healthz/", "/livez/", "/readyz/")):
            check = path.split("/", 2)[2]
            if check not in _HEALTH_CHECKS:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return web.Response(text="ok")
        if path == "/version":
            return json_response(discovery.version_info(config.version))
        if path == "/metrics":
            text = counted.render(stored_counts(service.store.counts()))
            return web.Response(
                body=text.encode(),
                headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
            )
        if path == "/api":
            return json_response(discovery.api_versions(config.server_address))
        if path == "/apis":
            groups = discovery.api_group_list(service.registry)
            if metrics() is not None:
                groups["groups"].append(metrics_api.group_entry())
            return json_response(groups)
        if path.startswith(f"/apis/{metrics_api.GROUP}"):
            source = metrics()
            if source is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            rest = [p for p in path.split("/") if p][2:]
            if not rest:
                return json_response(metrics_api.api_group())
            if rest[0] != metrics_api.VERSION:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            if len(rest) == 1:
                return json_response(metrics_api.resource_list())
            return json_response(
                metrics_api.answer(request.method, rest[1:], dict(request.query), source)
            )
        if path == "/openapi/v3":
            return json_response(openapi.index())
        if path.startswith("/openapi/v3/"):
            return _openapi_document(request, path[len("/openapi/v3/") :])
        if path == "/openapi/v2":
            return _openapi_v2_stub(request)
        parts = [p for p in path.split("/") if p]
        if len(parts) == 2 and parts[0] == "apis":
            group = discovery.api_group(service.registry, parts[1])
            if group is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return json_response(group)
        if (len(parts) == 2 and parts[0] == "api") or (len(parts) == 3 and parts[0] == "apis"):
            group_name = parts[1] if parts[0] == "apis" else ""
            version = parts[-1]
            listing = discovery.api_resource_list(service.registry, group_name, version)
            if listing is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return json_response(listing)
        rp = paths.parse(path)
        if rp is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return await resources.handle(request, rp)

    def _openapi_document(request: web.Request, key: str) -> web.Response:
        """Serve the exact bytes the index hashed; a stale `hash` is redirected to the new one."""
        found = openapi.serialized(key)
        if found is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        body, etag = found
        asked = request.query.get("hash")
        if asked and asked != etag:
            location = openapi.server_relative_url(key)
            raise web.HTTPMovedPermanently(location or f"/openapi/v3/{key}")
        cache = "public, immutable" if asked == etag else "no-cache, private"
        return web.Response(
            body=body,
            content_type="application/json",
            headers={"ETag": f'"{etag}"', "Cache-Control": cache},
        )

    app = web.Application(middlewares=[middleware], client_max_size=8 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
