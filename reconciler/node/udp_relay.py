"""One UDP Service port, relayed datagram by datagram: the I/O side of `udp_sessions`.

Both the Service gateways' UDP ports (`service_gateway_udp.py`, sockets inside the gateway
container's network namespace) and the node-port proxy's UDP node ports
(`service_proxy.py`, on 127.0.0.1) are one `UdpRelay` each:

- the service socket (already bound by the caller) receives a client's datagram;
- a client without a session gets one: `choose` names a backend, `open_backend` makes a
  UDP socket connected to it (the gateway's inside its namespace, so this may take a
  thread hop; datagrams arriving meanwhile wait, a few at most), and the datagram goes
  out on it;
- what the backend answers on that socket goes back to the client from the service
  socket, so the client sees the address it asked;
- sessions end as `udp_sessions.SessionTable` says (30 s idle, backend no longer ready,
  table full), and when the backend refuses (ICMP port unreachable), so the client's next
  datagram finds another backend.

No backend (none ready): the datagram is dropped and the client times out; kube-proxy
would answer with ICMP port unreachable, which a user-space relay cannot send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from reconciler.clock import Clock
from reconciler.node.udp_sessions import (
    DEFAULT_SESSION_LIMIT,
    UDP_SESSION_TIMEOUT_S,
    Address,
    Session,
    SessionTable,
)

__all__ = ["BackendOpener", "Chooser", "UdpRelay", "connected_udp_socket"]

log = logging.getLogger(__name__)

BackendOpener = Callable[[Address], Awaitable[socket.socket]]
"""backend -> a non-blocking UDP socket connected to it."""
Chooser = Callable[[Address, float], Address | None]
"""(client, now) -> the backend of a new session, or None when there is none."""

_PENDING_LIMIT = 16  # datagrams a client may send while its session is being opened


async def connected_udp_socket(backend: Address) -> socket.socket:
    """A UDP socket in this process's own namespace, connected to `backend`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect(backend)
    except BaseException:
        sock.close()
        raise
    return sock


class _Front(asyncio.DatagramProtocol):
    def __init__(self, relay: UdpRelay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.relay._from_client(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("udp relay %s: %s", self.relay.name, exc)


class _Back(asyncio.DatagramProtocol):
    def __init__(self, relay: UdpRelay, client: Address) -> None:
        self.relay = relay
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.relay._from_backend(self.client, data)

    def error_received(self, exc: Exception) -> None:
        self.relay._backend_failed(self.client, exc)


class UdpRelay:
    """`await start(sock)`; `retain(backends)` when the ready backends change; `close()`."""

    def __init__(
        self,
        name: str,
        choose: Chooser,
        open_backend: BackendOpener,
        clock: Clock,
        *,
        timeout: float = UDP_SESSION_TIMEOUT_S,
        limit: int = DEFAULT_SESSION_LIMIT,
    ) -> None:
        self.name = name
        self.choose = choose
        self.open_backend = open_backend
        self.clock = clock
        self.table: SessionTable[asyncio.DatagramTransport] = SessionTable(timeout, limit)
        self._front: asyncio.DatagramTransport | None = None
        self._opening: dict[Address, list[bytes]] = {}  # client -> datagrams waiting
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self.address: Address = ("", 0)

    async def start(self, sock: socket.socket) -> None:
        """Serve on `sock`, a bound non-blocking UDP socket (the relay owns it from now)."""
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(lambda: _Front(self), sock=sock)
        except BaseException:
            sock.close()
            raise
        self._front = transport
        host, port = sock.getsockname()[:2]
        self.address = (str(host), int(port))
        self._sweeper = loop.create_task(self._sweep(), name=f"udp-relay-sweep-{self.name}")

    def retain(self, backends: Collection[Address]) -> None:
        """End the sessions of backends that are no longer ready; new sessions follow
        `choose`, which the caller has already pointed at the new set."""
        self._end(self.table.retain(backends))

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(
            *self._tasks, *([self._sweeper] if self._sweeper else []), return_exceptions=True
        )
        self._end(self.table.clear())
        self._opening.clear()
        if self._front is not None:
            self._front.close()
            self._front = None

    @property
    def closed(self) -> bool:
        return self._front is None

    # -- datagrams ---------------------------------------------------------------------------

    def _from_client(self, data: bytes, client: Address) -> None:
        now = self.clock.monotonic()
        session = self.table.get(client, now)
        if session is not None:
            session.handle.sendto(data)
            return
        waiting = self._opening.get(client)
        if waiting is not None:
            if len(waiting) < _PENDING_LIMIT:
                waiting.append(data)
            return
        if len(self._opening) >= self.table.limit:
            return  # as many sessions being opened as the table holds: drop
        backend = self.choose(client, now)
        if backend is None:
            log.debug("udp relay %s: no ready backend for %s", self.name, client)
            return
        self._opening[client] = [data]
        task = asyncio.get_running_loop().create_task(self._open(client, backend))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open(self, client: Address, backend: Address) -> None:
        transport: asyncio.DatagramTransport | None = None
        try:
            sock = await self.open_backend(backend)
            loop = asyncio.get_running_loop()
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Back(self, client), sock=sock
                )
            except BaseException:
                sock.close()  # not yet the transport's
                raise
        except OSError as exc:
            log.info("udp relay %s: cannot reach %s:%s: %s", self.name, *backend, exc)
            self._opening.pop(client, None)
            return
        waiting = self._opening.pop(client, [])
        if self._front is None:
            transport.close()
            return
        self._end(self.table.add(client, backend, transport, self.clock.monotonic()))
        for data in waiting:
            transport.sendto(data)

    def _from_backend(self, client: Address, data: bytes) -> None:
        self.table.touch(client, self.clock.monotonic())
        if self._front is not None:
            self._front.sendto(data, client)

    def _backend_failed(self, client: Address, exc: Exception) -> None:
        session = self.table.remove(client)
        if session is not None:
            log.debug("udp relay %s: backend %s:%s: %s", self.name, *session.backend, exc)
            self._end([session])

    def _end(self, sessions: list[Session[asyncio.DatagramTransport]]) -> None:
        for session in sessions:
            with contextlib.suppress(Exception):
                session.handle.close()

    async def _sweep(self) -> None:
        interval = max(self.table.timeout / 6, 0.01)
        while True:
            await self.clock.sleep(interval)
            self._end(self.table.expire(self.clock.monotonic()))
