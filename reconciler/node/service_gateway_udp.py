"""The UDP ports of the Service gateways, relayed by `recon serve` inside their namespaces.

A gateway container holds its Service's cluster IP (services network) and names (namespace
network), and forwards TCP with busybox `nc`; busybox has no UDP server, so its UDP ports
are served from here instead. For each UDP port of each running gateway, a `UdpRelay`
gets a socket bound to 0.0.0.0:<port> *inside the gateway container's network namespace*
(`netns.udp_socket_in`: setns in a thread of its own, the socket handed back to the loop),
so pods reach it at the cluster IP and at the gateway's names like any other port of it.
Each client's session gets a socket of its own, made in the same namespace and connected
to one ready endpoint chosen at random (`udp_sessions.pick_backend`), so the endpoints see
the gateway as the sender, as they do for TCP.

`converge` is called by `ServiceGateways.sync` after every change of Services, Endpoints
or gateway containers: a relay follows its gateway container (a re-created container is a
new namespace: its relays are opened again), its backends follow the ready endpoints
(new sessions go to the new set; sessions with a backend no longer ready end, as
kube-proxy deletes their conntrack entries), and it closes when the port, the Service or
the gateway goes. A socket keeps its namespace alive, so nothing is kept open for a
container that is gone.

Entering a namespace needs CAP_SYS_ADMIN (root, as `recon serve` runs for the cluster
DNS's port 53): when it or the bind fails, a Warning Event `FailedServiceGateway` on the
Service says so, it is logged once, and it is tried again at the next change.
"""

from __future__ import annotations

import logging
import random
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from reconciler.clock import Clock
from reconciler.node.netns import udp_socket_in
from reconciler.node.service_gateway_plan import GatewayPlan
from reconciler.node.udp_relay import UdpRelay
from reconciler.node.udp_sessions import Address, pick_backend
from reconciler.runtime.base import ContainerRuntime
from reconciler.runtime.errors import ContainerRuntimeError, RuntimeUnavailableError

__all__ = ["GatewayUdp", "UdpOpener"]

log = logging.getLogger(__name__)

_CONTAINER_ID = re.compile(r"\b[0-9a-f]{12,64}\b")  # the same failure for every container

UdpOpener = Callable[[str, Address | None, Address | None], Awaitable[socket.socket]]
"""(namespace path, bind, connect) -> a non-blocking UDP socket made in that namespace."""
Reporter = Callable[[GatewayPlan, str], None]


def _open_in(netns: str, bind: Address | None, connect: Address | None) -> Awaitable[socket.socket]:
    return udp_socket_in(netns, bind, connect)


@dataclass
class _Port:
    relay: UdpRelay
    container_id: str
    backends: tuple[Address, ...] = field(default=())


class GatewayUdp:
    def __init__(
        self,
        runtime: ContainerRuntime,
        clock: Clock,
        report: Reporter,
        *,
        opener: UdpOpener | None = None,
        below: Callable[[int], int] = random.randrange,
        session_timeout: float = 30.0,
    ) -> None:
        self.runtime = runtime
        self.clock = clock
        self.report = report
        self.opener: UdpOpener = opener or _open_in
        self.below = below
        self.session_timeout = session_timeout
        self._ports: dict[tuple[str, int], _Port] = {}  # (service uid, port) -> its relay
        self._namespaces: dict[str, str] = {}  # container id -> its namespace path
        self._reported: dict[tuple[str, int], str] = {}

    @property
    def relays(self) -> dict[tuple[str, int], UdpRelay]:
        """(service uid, UDP port) -> the relay serving it now."""
        return {key: port.relay for key, port in self._ports.items()}

    async def converge(self, gateways: dict[str, tuple[GatewayPlan, str]]) -> None:
        """`gateways`: service uid -> (its plan, the id of its running container)."""
        for key, port in list(self._ports.items()):
            uid, number = key
            wanted = gateways.get(uid)
            if (
                wanted is None
                or number not in wanted[0].udp_backends
                or wanted[1] != port.container_id
            ):
                await self._close(key)
        live = {container_id for _, container_id in gateways.values()}
        self._namespaces = {c: ns for c, ns in self._namespaces.items() if c in live}
        for key in set(self._reported) - {
            (uid, p) for uid, (plan, _) in gateways.items() for p in plan.udp_backends
        }:
            del self._reported[key]
        for uid, (plan, container_id) in sorted(gateways.items()):
            if plan.udp_backends:
                await self._converge_one(uid, plan, container_id)

    async def close(self) -> None:
        for key in list(self._ports):
            await self._close(key)

    async def _converge_one(self, uid: str, plan: GatewayPlan, container_id: str) -> None:
        for number, backends in sorted(plan.udp_backends.items()):
            port = self._ports.get((uid, number))
            if port is not None:
                if port.backends != backends:
                    port.backends = backends
                    port.relay.retain(backends)
                continue
            try:
                netns = await self._namespace(container_id)
                sock = await self.opener(netns, ("0.0.0.0", number), None)
            except RuntimeUnavailableError:
                raise  # the engine is down: the gateways' loop retries, nothing to report
            except (OSError, ContainerRuntimeError) as exc:
                self._failed(uid, number, plan, exc)
                continue
            relay = self._relay(uid, plan, number, netns)
            try:
                await relay.start(sock)
            except OSError as exc:
                self._failed(uid, number, plan, exc)
                continue
            self._ports[(uid, number)] = _Port(relay, container_id, backends)
            self._reported.pop((uid, number), None)
            log.info(
                "service gateways: %s/%s relays UDP port %s", plan.namespace, plan.name, number
            )

    def _relay(self, uid: str, plan: GatewayPlan, number: int, netns: str) -> UdpRelay:
        def choose(_client: Address, _now: float) -> Address | None:
            port = self._ports.get((uid, number))
            return pick_backend(port.backends if port is not None else (), self.below)

        async def open_backend(backend: Address) -> socket.socket:
            return await self.opener(netns, None, backend)

        return UdpRelay(
            f"{plan.namespace}/{plan.name}:{number}/udp",
            choose,
            open_backend,
            self.clock,
            timeout=self.session_timeout,
        )

    async def _namespace(self, container_id: str) -> str:
        found = self._namespaces.get(container_id)
        if found is None:
            found = await self.runtime.network_namespace(container_id)
            self._namespaces[container_id] = found
        return found

    def _failed(self, uid: str, number: int, plan: GatewayPlan, exc: Exception) -> None:
        reason = f"cannot relay UDP port {number}: {_CONTAINER_ID.sub('<id>', str(exc))}"
        if self._reported.get((uid, number)) == reason:
            return
        self._reported[(uid, number)] = reason
        self.report(plan, reason)

    async def _close(self, key: tuple[str, int]) -> None:
        port = self._ports.pop(key, None)
        if port is not None:
            await port.relay.close()
