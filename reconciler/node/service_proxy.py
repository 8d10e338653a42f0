"""The service proxy: NodePort and LoadBalancer Services answer on 127.0.0.1:<nodePort>.

On one host there is no kube-proxy and no cluster network the host can route into; a pod
is reachable from the host only on the ports the node agent published for it (the pod's
`recon.dev/published-ports` annotation). This component closes the gap for Services: for
every TCP port of a NodePort or LoadBalancer Service it listens on `host:<nodePort>` and
splices each accepted connection to one ready endpoint, round-robin, at
127.0.0.1:<published host port> (`service_routes.plan_node_ports` decides which). Every
UDP port gets a UDP socket on `host:<nodePort>` instead (`udp_relay.UdpRelay`): each
client address (host, port) is a session to one ready endpoint's published UDP port, the
endpoint's replies go back from the node port, and a session ends after 30 s idle or when
its endpoint stops being ready.

Behaviour:
- level-triggered: any change of a Service, an Endpoints, a pod's published ports or
  whether a pod may serve (terminating, unready) wakes one loop that recomputes the whole
  table and converges the listeners to it; a pod that starts terminating or turns unready
  gets no new connection from then on, without waiting for the Endpoints to follow;
- a listener's backends are swapped in place, so established connections are never cut by
  an endpoint change; a listener is closed when its Service goes or stops being
  NodePort/LoadBalancer (its established connections run on until they end);
- a connection that finds no ready endpoint (or none that accepts) is reset, which a
  client sees like a refused connection;
- a node port that cannot be bound is logged, reported as a Warning Event
  (`FailedBindNodePort`) on the Service, and retried every `retry_interval` seconds;
- a LoadBalancer Service gets `status.loadBalancer.ingress: [{ip: <host>}]` through the
  status subresource, so `kubectl get svc` shows EXTERNAL-IP; it is removed again when
  the Service changes type.

- `sessionAffinity: ClientIP`: a client address keeps the backend that last served it for
  `sessionAffinityConfig.clientIP.timeoutSeconds` (10800) after its last connection, as long
  as that backend stays ready (as kube-proxy; per node port).

For UDP the same choice is made per session rather than per connection (affinity
included). A UDP datagram that finds no ready endpoint is dropped (the client times out;
kube-proxy would send ICMP port unreachable).

Not done: SCTP node ports, `externalTrafficPolicy: Local`, and LoadBalancer Services
answering on their own `port` (they answer on their node ports).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import ClientError
from reconciler.client.events import EventRecorder
from reconciler.clock import Clock, SystemClock
from reconciler.controllers.informer import Handlers, Informer, InformerFactory
from reconciler.node.pod_sandbox import PUBLISHED_PORTS_ANNOTATION
from reconciler.node.service_routes import (
    NodePortRoute,
    load_balancer_status_patch,
    plan_node_ports,
    serving,
)
from reconciler.node.tcp_splice import splice
from reconciler.node.udp_relay import UdpRelay, connected_udp_socket
from reconciler.node.udp_sessions import Address

__all__ = ["ServiceProxy"]

JSONDict = dict[str, Any]

log = logging.getLogger(__name__)

BACKEND_HOST = "127.0.0.1"  # where the node agent publishes pod ports


class _Listener:
    """One bound node port; `route` is replaced when its backends change."""

    def __init__(self, route: NodePortRoute) -> None:
        self.route = route
        self.server: asyncio.Server | None = None
        self._turn = 0
        self._sticky: dict[str, tuple[int, float]] = {}  # client IP -> (backend, last use)

    def backends_in_turn(self, client: str = "", now: float = 0.0) -> list[int]:
        """The backends to try, in order: the client's own backend first while its
        `sessionAffinity: ClientIP` lasts (and the backend is still ready), then the next
        ones in round-robin order."""
        backends = list(self.route.backends)
        if not backends:
            return []
        start = self._turn % len(backends)
        self._turn += 1
        ordered = backends[start:] + backends[:start]
        limit = self.route.affinity_s
        sticky = self._sticky.get(client) if limit is not None else None
        if sticky is not None and sticky[0] in backends and now - sticky[1] <= (limit or 0.0):
            ordered.remove(sticky[0])
            ordered.insert(0, sticky[0])
        return ordered

    def used(self, client: str, backend: int, now: float) -> None:
        """Remember which backend served `client` (for ClientIP affinity)."""
        if self.route.affinity_s is None:
            self._sticky.clear()
            return
        self._sticky[client] = (backend, now)
        if len(self._sticky) > 4096:  # forget the clients whose affinity ran out
            limit = self.route.affinity_s
            self._sticky = {c: u for c, u in self._sticky.items() if now - u[1] <= limit}


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (SO_LINGER 0): the client sees a reset, not a clean end."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class ServiceProxy:
    """`ServiceProxy(client, host="127.0.0.1")`; `await start()`, then `await stop()`.

    `informers` lets the proxy share a factory (e.g. the node agent's) instead of starting
    its own; the caller then starts and stops that factory.
    """

    def __init__(
        self,
        client: Client,
        host: str = "127.0.0.1",
        *,
        clock: Clock | None = None,
        informers: InformerFactory | None = None,
        connect_timeout: float = 5.0,
        retry_interval: float = 10.0,
    ) -> None:
        self.client = client
        self.host = host
        self.clock = clock or SystemClock()
        self.connect_timeout = connect_timeout
        self.retry_interval = retry_interval
        self._own_factory = informers is None
        self.factory = informers or InformerFactory(client, self.clock)
        self.recorder = EventRecorder(client, self.clock, "recon-service-proxy", host)
        self.services: Informer
        self.endpoints: Informer
        self.pods: Informer
        self._listeners: dict[int, _Listener] = {}
        self._udp: dict[int, tuple[_Listener, UdpRelay]] = {}  # UDP node port -> its relay
        # (node port, protocol) -> the bind error already reported
        self._failed: dict[tuple[int, str], str] = {}
        self._connections: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._retry: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        self.services = self.factory.informer("v1", "Service")
        self.endpoints = self.factory.informer("v1", "Endpoints")
        self.pods = self.factory.informer("v1", "Pod")
        kick = Handlers(self._kicked, lambda _old, _new: self._kick(), self._kicked)
        self.services.add_handlers(kick)
        self.endpoints.add_handlers(kick)
        self.pods.add_handlers(Handlers(self._kicked, self._pod_changed, self._kicked))
        if self._own_factory:
            self.factory.start()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="service-proxy")

    async def stop(self) -> None:
        for task in (self._task, self._retry):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for port in list(self._listeners):
            await self._close(port)
        for port in list(self._udp):
            await self._close_udp(port)
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._own_factory:
            await self.factory.stop()
        await self.recorder.close()

    @property
    def routes(self) -> dict[int, NodePortRoute]:
        """The node ports listened on now, with their current backends."""
        return {port: listener.route for port, listener in self._listeners.items()}

    @property
    def udp_routes(self) -> dict[int, NodePortRoute]:
        """The UDP node ports served now, with their current backends."""
        return {port: listener.route for port, (listener, _) in self._udp.items()}

    # -- events --------------------------------------------------------------------------

    def _kick(self) -> None:
        self._wake.set()

    def _kicked(self, _obj: JSONDict) -> None:
        self._wake.set()

    def _pod_changed(self, old: JSONDict, new: JSONDict) -> None:
        def routing(pod: JSONDict) -> object:
            """What of a pod the routes depend on."""
            meta = pod.get("metadata") or {}
            return (
                meta.get("uid"),
                (meta.get("annotations") or {}).get(PUBLISHED_PORTS_ANNOTATION),
                serving(pod),
            )

        if routing(old) != routing(new):
            self._wake.set()

    async def _run(self) -> None:
        await asyncio.gather(
            self.services.synced.wait(), self.endpoints.synced.wait(), self.pods.synced.wait()
        )
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._sync()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("service proxy: sync failed")

    # -- converging --------------------------------------------------------------------------

    async def _sync(self) -> None:
        services = self.services.list()
        routes = plan_node_ports(services, self.endpoints.get, self.pods.get)
        udp_routes = plan_node_ports(services, self.endpoints.get, self.pods.get, "UDP")
        for port in set(self._listeners) - set(routes):
            await self._close(port)
        for port in set(self._udp) - set(udp_routes):
            await self._close_udp(port)
        for key in list(self._failed):
            if key[0] not in (routes if key[1] == "TCP" else udp_routes):
                del self._failed[key]
        for port, route in sorted(routes.items()):
            listener = self._listeners.get(port)
            if listener is not None:
                listener.route = route
            else:
                await self._open(route)
        for port, route in sorted(udp_routes.items()):
            found = self._udp.get(port)
            if found is not None:
                found[0].route = route
                found[1].retain({(BACKEND_HOST, b) for b in route.backends})
            else:
                await self._open_udp(route)
        if self._failed and (self._retry is None or self._retry.done()):
            self._retry = asyncio.get_running_loop().create_task(self._retry_later())
        for service in self.services.list():
            patch = load_balancer_status_patch(service, self.host)
            if patch is None:
                continue
            meta = service.get("metadata") or {}
            try:
                await self.client.patch(
                    "v1",
                    "Service",
                    str(meta.get("name")),
                    patch,
                    namespace=str(meta.get("namespace")),
                    subresource="status",
                )
            except ClientError as exc:
                log.info("service proxy: status of %s: %s", meta.get("name"), exc)

    async def _retry_later(self) -> None:
        await self.clock.sleep(self.retry_interval)
        self._wake.set()

    async def _open(self, route: NodePortRoute) -> None:
        port = route.node_port
        listener = _Listener(route)

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve(listener, reader, writer)

        try:
            server = await asyncio.start_server(accepted, self.host, port, reuse_address=True)
        except OSError as exc:
            self._bind_failed(route, f"{self.host}:{port}", str(exc))
            return
        self._failed.pop((port, "TCP"), None)
        listener.server = server
        self._listeners[port] = listener
        log.info("service proxy: %s/%s on %s:%s", route.namespace, route.service, self.host, port)

    def _bind_failed(self, route: NodePortRoute, where: str, reason: str) -> None:
        key = (route.node_port, route.protocol)
        if self._failed.get(key) == reason:
            return
        self._failed[key] = reason
        message = f"cannot listen on {where} for {route.service}: {reason}"
        log.warning("service proxy: %s", message)
        service = self.services.get(route.namespace, route.service)
        if service is not None:
            self.recorder.record(service, "Warning", "FailedBindNodePort", message)

    async def _open_udp(self, route: NodePortRoute) -> None:
        port = route.node_port
        listener = _Listener(route)

        def choose(client: Address, now: float) -> Address | None:
            """Round-robin per session, a client's own backend first under affinity."""
            order = listener.backends_in_turn(client[0], now)
            if not order:
                return None
            listener.used(client[0], order[0], now)
            return (BACKEND_HOST, order[0])

        relay = UdpRelay(
            f"{route.namespace}/{route.service}:{port}/udp",
            choose,
            connected_udp_socket,
            self.clock,
        )
        sock = socket.socket(
            socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM
        )
        try:
            sock.setblocking(False)
            sock.bind((self.host.strip("[]"), port))
            await relay.start(sock)
        except OSError as exc:
            sock.close()
            self._bind_failed(route, f"{self.host}:{port}/UDP", str(exc))
            return
        self._failed.pop((port, "UDP"), None)
        self._udp[port] = (listener, relay)
        log.info(
            "service proxy: %s/%s on %s:%s/udp", route.namespace, route.service, self.host, port
        )

    async def _close_udp(self, port: int) -> None:
        found = self._udp.pop(port, None)
        if found is not None:
            await found[1].close()
            log.info("service proxy: closed %s:%s/udp", self.host, port)

    async def _close(self, port: int) -> None:
        listener = self._listeners.pop(port, None)
        if listener is not None and listener.server is not None:
            listener.server.close()
            log.info("service proxy: closed %s:%s", self.host, port)

    # -- one connection ----------------------------------------------------------------------

    async def _serve(
        self, listener: _Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            peer = writer.get_extra_info("peername")
            client = str(peer[0]) if isinstance(peer, tuple) and peer else ""
            now = self.clock.monotonic()
            upstream = await self._connect(listener.backends_in_turn(client, now))
            if upstream is None:
                _reset(writer)
                return
            backend, up_reader, up_writer = upstream
            listener.used(client, backend, now)
            await splice(reader, writer, up_reader, up_writer)
        finally:
            writer.close()
            if task is not None:
                self._connections.discard(task)

    async def _connect(
        self, backends: list[int]
    ) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter] | None:
        for port in backends:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(BACKEND_HOST, port), self.connect_timeout
                )
                return port, reader, writer
            except (OSError, TimeoutError) as exc:
                log.debug("service proxy: backend %s:%s: %s", BACKEND_HOST, port, exc)
        return None
