"""The ingress controller: Ingresses answer on 127.0.0.1:80 (HTTP) and :443 (HTTPS).

A reverse proxy in `recon serve` (Docker runtime), like ingress-nginx on a cluster: each
request is matched by host and path against every Ingress served here
(`ingress_routes.plan_ingresses`) and forwarded to one ready endpoint of the backend
Service, round-robin, at the pod's published port on 127.0.0.1 (the host reaches pods only
there, see `service_proxy.py`). Requests are proxied one by one, so keep-alive connections
may reach different backends per request; WebSocket upgrades are proxied frame by frame.

Behaviour users see:
- no rule matches (and no `defaultBackend`): 404 `default backend - 404`;
- a backend Service without ready endpoints, or missing: 503 with the reason;
- no endpoint accepts the connection: 502; no answer within `read_timeout` (60 s, as
  ingress-nginx's proxy-read-timeout): 504;
- HTTPS by SNI with the certificate of the host's `spec.tls` Secret (the fallback
  certificate when it is missing or invalid: a Warning Event on the Ingress says why);
  HTTP to a host with TLS is redirected (308) unless `ssl-redirect: "false"`;
- the request keeps its Host; the backend gets `X-Forwarded-For`, `-Host`, `-Port`,
  `-Proto` and `X-Real-IP`, as from ingress-nginx;
- `kubectl get ingress` shows ADDRESS 127.0.0.1 for every Ingress served here;
- the ports are listened on only while some Ingress is served; a port that cannot be bound
  is a Warning Event (`FailedBindIngressPort`) on the Ingresses and is retried every
  `retry_interval` seconds.

`recon serve --ingress-http-port/--ingress-https-port` choose the ports (0: off).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from reconciler.client.base import Client
from reconciler.client.errors import ClientError
from reconciler.client.events import EventRecorder
from reconciler.clock import Clock, SystemClock
from reconciler.controllers.informer import Handlers, Informer, InformerFactory
from reconciler.node.ingress_routes import (
    Backend,
    IngressTable,
    plan_ingresses,
    served,
)
from reconciler.node.ingress_tls import CertificateError, Certificates
from reconciler.node.pod_sandbox import PUBLISHED_PORTS_ANNOTATION
from reconciler.node.service_proxy import BACKEND_HOST
from reconciler.node.service_routes import address_status_patch, serving

__all__ = ["IngressProxy"]

JSONDict = dict[str, Any]

log = logging.getLogger(__name__)

_API = "networking.k8s.io/v1"
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
_AUTO = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


def _empty_table() -> IngressTable:
    return IngressTable(exact={}, wildcard={}, any_host=(), default=None, tls={})


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", content_type="text/plain")


class IngressProxy:
    """`IngressProxy(client, http_port=80, https_port=443)`; `await start()`, then
    `await stop()`. `informers` shares a factory (the caller starts and stops it)."""

    def __init__(
        self,
        client: Client,
        host: str = "127.0.0.1",
        http_port: int = 80,
        https_port: int = 443,
        *,
        clock: Clock | None = None,
        informers: InformerFactory | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        retry_interval: float = 10.0,
    ) -> None:
        self.client = client
        self.host = host
        self.ports = {"http": http_port, "https": https_port}
        self.clock = clock or SystemClock()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retry_interval = retry_interval
        self._own_factory = informers is None
        self.factory = informers or InformerFactory(client, self.clock)
        self.recorder = EventRecorder(client, self.clock, "recon-ingress", host)
        self.certs = Certificates()
        self.table = _empty_table()
        self.ingresses: Informer
        self.classes: Informer
        self.services: Informer
        self.endpoints: Informer
        self.pods: Informer
        self.secrets: Informer
        self._tls: dict[tuple[str, str], ssl.SSLContext] = {}
        self._reported: dict[tuple[str, str], str] = {}  # (ingress, reason) -> message
        self._runners: dict[str, web.ServerRunner] = {}
        self._turns: dict[tuple[str, str, str], int] = {}
        self._session: aiohttp.ClientSession | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retry: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        self.ingresses = self.factory.informer(_API, "Ingress")
        self.classes = self.factory.informer(_API, "IngressClass")
        self.services = self.factory.informer("v1", "Service")
        self.endpoints = self.factory.informer("v1", "Endpoints")
        self.pods = self.factory.informer("v1", "Pod")
        self.secrets = self.factory.informer("v1", "Secret")
        kick = Handlers(self._kicked, lambda _old, _new: self._wake.set(), self._kicked)
        for informer in (self.ingresses, self.classes, self.services, self.endpoints):
            informer.add_handlers(kick)
        self.secrets.add_handlers(
            Handlers(
                self._secret_kicked, lambda _o, new: self._secret_kicked(new), self._secret_kicked
            )
        )
        self.pods.add_handlers(Handlers(self._kicked, self._pod_changed, self._kicked))
        if self._own_factory:
            self.factory.start()
        self._session = aiohttp.ClientSession(
            auto_decompress=False,
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=self.connect_timeout, sock_read=self.read_timeout
            ),
        )
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ingress-proxy")

    async def stop(self) -> None:
        for task in (self._task, self._retry):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for scheme in list(self._runners):
            await self._close(scheme)
        if self._session is not None:
            await self._session.close()
        if self._own_factory:
            await self.factory.stop()
        await self.recorder.close()

    @property
    def listening(self) -> dict[str, int]:
        """Scheme -> the port listened on now."""
        return {scheme: self.ports[scheme] for scheme in self._runners}

    # -- events --------------------------------------------------------------------------

    def _kicked(self, _obj: JSONDict) -> None:
        self._wake.set()

    def _secret_kicked(self, secret: JSONDict) -> None:
        meta = secret.get("metadata") or {}
        if (str(meta.get("namespace")), str(meta.get("name"))) in self.table.tls.values():
            self._wake.set()

    def _pod_changed(self, old: JSONDict, new: JSONDict) -> None:
        def routing(pod: JSONDict) -> object:
            meta = pod.get("metadata") or {}
            annotations = meta.get("annotations") or {}
            return (meta.get("uid"), annotations.get(PUBLISHED_PORTS_ANNOTATION), serving(pod))

        if routing(old) != routing(new):
            self._wake.set()

    async def _run(self) -> None:
        informers = (self.ingresses, self.classes, self.services, self.endpoints, self.pods)
        await asyncio.gather(*(i.synced.wait() for i in (*informers, self.secrets)))
        self._wake.set()
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._sync()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ingress: sync failed")

    # -- converging ----------------------------------------------------------------------

    async def _sync(self) -> None:
        table = plan_ingresses(
            self.ingresses.list(),
            self.classes.get,
            self.services.get,
            self.endpoints.get,
            self.pods.get,
        )
        self._load_certificates(table)
        self.table = table
        if table.ingresses:
            for scheme in ("http", "https"):
                if scheme not in self._runners and self.ports[scheme]:
                    await self._open(scheme)
        else:
            for scheme in list(self._runners):
                await self._close(scheme)
        missing = [s for s in ("http", "https") if self.ports[s] and s not in self._runners]
        if table.ingresses and missing and (self._retry is None or self._retry.done()):
            self._retry = asyncio.get_running_loop().create_task(self._retry_later())
        for ingress in self.ingresses.list():
            patch = address_status_patch(ingress, self.host, served(ingress, self.classes.get))
            if patch is not None:
                await self._patch_status(ingress, patch)

    def _load_certificates(self, table: IngressTable) -> None:
        contexts: dict[tuple[str, str], ssl.SSLContext] = {}
        for namespace, name in set(table.tls.values()):
            secret = self.secrets.get(namespace, name)
            try:
                if secret is None:
                    raise CertificateError(f'secret "{namespace}/{name}" not found')
                contexts[(namespace, name)] = self.certs.context_for(secret)
            except CertificateError as exc:
                message = f"{exc}; serving the fallback certificate"
                for ingress in self._ingresses_using(namespace, name):
                    self._report(ingress, "BadCertificate", message)
        self.certs.forget_except(set(contexts))
        self._tls = contexts

    def _ingresses_using(self, namespace: str, secret: str) -> list[JSONDict]:
        return [
            i
            for i in self.ingresses.list(namespace)
            if any(t.get("secretName") == secret for t in (i.get("spec") or {}).get("tls") or [])
        ]

    def _report(self, ingress: JSONDict, reason: str, message: str) -> None:
        meta = ingress.get("metadata") or {}
        key = (f"{meta.get('namespace')}/{meta.get('name')}/{meta.get('uid')}", reason)
        if self._reported.get(key) == message:
            return
        self._reported[key] = message
        log.warning("ingress %s/%s: %s", meta.get("namespace"), meta.get("name"), message)
        self.recorder.record(ingress, "Warning", reason, message)

    async def _patch_status(self, ingress: JSONDict, patch: JSONDict) -> None:
        meta = ingress.get("metadata") or {}
        try:
            await self.client.patch(
                _API,
                "Ingress",
                str(meta.get("name")),
                patch,
                namespace=str(meta.get("namespace")),
                subresource="status",
            )
        except ClientError as exc:
            log.info("ingress: status of %s: %s", meta.get("name"), exc)

    async def _retry_later(self) -> None:
        await self.clock.sleep(self.retry_interval)
        self._wake.set()

    async def _open(self, scheme: str) -> None:
        port = self.ports[scheme]
        context = None
        if scheme == "https":
            context = self.certs.fallback
            context.sni_callback = self._pick_certificate
        runner = web.ServerRunner(web.Server(self._handle), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, port, ssl_context=context, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            message = f"cannot listen on {self.host}:{port} ({scheme}): {exc}"
            for ingress in self.ingresses.list():
                if served(ingress, self.classes.get):
                    self._report(ingress, "FailedBindIngressPort", message)
            return
        self._runners[scheme] = runner
        log.info("ingress: %s on %s:%s", scheme, self.host, port)

    async def _close(self, scheme: str) -> None:
        runner = self._runners.pop(scheme, None)
        if runner is not None:
            await runner.cleanup()
            log.info("ingress: closed %s:%s", self.host, self.ports[scheme])

    def _pick_certificate(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: Any
    ) -> None:
        found = self.table.tls_secret(server_name or "")
        context = self._tls.get(found) if found is not None else None
        if context is not None:
            connection.context = context

    # -- one request ---------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        table = self.table
        match = table.match(request.host, request.path)
        if match is None:
            return _text(404, "default backend - 404")
        route = match.route
        if not request.secure and route.ssl_redirect and table.tls_secret(request.host):
            return self._redirect(request)
        backend = route.backend
        if not backend.backends:
            return _text(503, f"503 Service Temporarily Unavailable: {backend.problem}")
        target = request.raw_path
        if route.rewrite is not None:
            query = f"?{request.query_string}" if request.query_string else ""
            target = quote(match.upstream_path, safe="/%:@!$&'()*+,;=~-._") + query
        is_websocket = request.headers.get("Upgrade", "").lower() == "websocket"
        forward = self._websocket if is_websocket else self._forward
        last = _text(502, "502 Bad Gateway")
        for port in self._in_turn(backend):
            try:
                return await forward(request, port, target)
            except aiohttp.ClientConnectorError as exc:
                log.debug("ingress: backend %s:%s: %s", BACKEND_HOST, port, exc)
            except TimeoutError:
                last = _text(504, "504 Gateway Time-out")
                break
        return last

    def _redirect(self, request: web.BaseRequest) -> web.Response:
        host = request.host.rsplit(":", 1)[0] if "]" not in request.host else request.host
        port = self.ports["https"]
        authority = host if port == 443 else f"{host}:{port}"
        location = f"https://{authority}{request.raw_path}"
        return web.Response(
            status=308, headers={"Location": location}, text="308 Permanent Redirect\n"
        )

    def _in_turn(self, backend: Backend) -> list[int]:
        key = (backend.namespace, backend.service, backend.port)
        turn = self._turns.get(key, 0)
        self._turns[key] = turn + 1
        ports = list(backend.backends)
        start = turn % len(ports)
        return ports[start:] + ports[:start]

    def _upstream_headers(self, request: web.BaseRequest, *, websocket: bool) -> dict[str, str]:
        connection = {
            h.strip().lower() for h in request.headers.get("Connection", "").split(",") if h
        }
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            lower = name.lower()
            if lower in _HOP_BY_HOP or lower in connection:
                continue
            if websocket and lower.startswith("sec-websocket-"):
                continue
            headers[name] = value if name not in headers else f"{headers[name]}, {value}"
        peer = request.remote or ""
        forwarded_for = request.headers.get("X-Forwarded-For")
        scheme = "https" if request.secure else "http"
        headers["X-Forwarded-For"] = f"{forwarded_for}, {peer}" if forwarded_for else peer
        headers["X-Real-IP"] = peer
        headers["X-Forwarded-Host"] = request.host
        headers["X-Forwarded-Port"] = str(self.ports[scheme])
        headers["X-Forwarded-Proto"] = scheme
        headers["X-Scheme"] = scheme
        return headers

    async def _forward(
        self, request: web.BaseRequest, port: int, target: str
    ) -> web.StreamResponse:
        assert self._session is not None
        headers = self._upstream_headers(request, websocket=False)
        skip = {h for h in _AUTO if h not in request.headers}
        body = request.content if request.body_exists else None
        async with self._session.request(
            request.method,
            f"http://{BACKEND_HOST}:{port}{target}",
            headers=headers,
            data=body,
            allow_redirects=False,
            skip_auto_headers=skip,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() in _HOP_BY_HOP or name.lower() == "content-length":
                    continue
                response.headers.add(name, value)
            chunked = "chunked" in upstream.headers.get("Transfer-Encoding", "").lower()
            if upstream.content_length is not None and not chunked:
                response.content_length = upstream.content_length
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def _websocket(
        self, request: web.BaseRequest, port: int, target: str
    ) -> web.StreamResponse:
        assert self._session is not None
        offered = [
            p.strip()
            for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        ]
        async with self._session.ws_connect(
            f"ws://{BACKEND_HOST}:{port}{target}",
            headers=self._upstream_headers(request, websocket=True),
            protocols=offered,
            autoping=False,
        ) as upstream:
            chosen = (upstream.protocol,) if upstream.protocol else ()
            client = web.WebSocketResponse(protocols=chosen, autoping=False)
            await client.prepare(request)

            async def relay(
                source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
                send: Callable[[aiohttp.WSMessage], Awaitable[None]],
            ) -> None:
                async for message in source:
                    await send(message)

            async def to_upstream(message: aiohttp.WSMessage) -> None:
                await _send(upstream, message)

            async def to_client(message: aiohttp.WSMessage) -> None:
                await _send(client, message)

            done, pending = await asyncio.wait(
                {
                    asyncio.ensure_future(relay(client, to_upstream)),
                    asyncio.ensure_future(relay(upstream, to_client)),
                },
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in pending:
                task.cancel()
            for task in done:
                with contextlib.suppress(Exception):
                    task.result()
            await client.close()
            return client


async def _send(
    target: web.WebSocketResponse | aiohttp.ClientWebSocketResponse, message: aiohttp.WSMessage
) -> None:
    if message.type == aiohttp.WSMsgType.TEXT:
        await target.send_str(message.data)
    elif message.type == aiohttp.WSMsgType.BINARY:
        await target.send_bytes(message.data)
    elif message.type == aiohttp.WSMsgType.PING:
        await target.ping(message.data)
    elif message.type == aiohttp.WSMsgType.PONG:
        await target.pong(message.data)
