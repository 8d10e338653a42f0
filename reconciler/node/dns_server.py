"""The cluster DNS server: Recon's CoreDNS, on the host side of the services bridge.

Every pod sandbox (unless `dnsPolicy: Default`) names it as its DNS server (`pod_sandbox`);
Docker's embedded DNS (127.0.0.11 in the pod) still answers first, from the names of the
containers on the pod's networks (the ClusterIP Services' gateways, StatefulSet pods), and
forwards everything else here: the names only a DNS server can give (a headless Service's
pods, an ExternalName's CNAME, NXDOMAIN for the rest of `cluster.local`) and every name
outside the cluster, which goes on to the host's resolvers as before.

    pod ─▶ 127.0.0.11 (dockerd) ─▶ 10.111.0.1:53 (here) ─┬▶ cluster_dns.answer (Services, Endpoints)
                                                         ├▶ peers (other servers, dns_peers)
                                                         └▶ the host's resolv.conf nameservers

It listens on UDP and TCP at `address` (the services bridge, 10.111.0.1: only containers
and the host reach it; never 0.0.0.0). That address exists once the services network does,
so the server ensures the network and retries binding every `retry_interval` seconds
(another server on the engine may hold the port; then it is a peer, see `dns_peers`).
Answers come from informers on Services and Endpoints, read per query, so they are as
fresh as the caches; it listens once they are filled (a peer asking earlier gets SERVFAIL).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import struct
from pathlib import Path
from typing import Any, cast

from reconciler.client.base import Client
from reconciler.clock import Clock, SystemClock
from reconciler.controllers.informer import Informer, InformerFactory
from reconciler.node.cluster_dns import DNS_ADDRESS, Answer, ClusterView, answer, in_zone
from reconciler.node.dns_forward import exchange, forward, host_resolvers
from reconciler.node.dns_peers import DEFAULT_PEERS_DIR, DnsPeers
from reconciler.node.dns_wire import (
    Query,
    Question,
    Rcode,
    Rtype,
    WireError,
    decode_query,
    decode_response,
    encode_query,
    encode_response,
)
from reconciler.node.services_network import ServicesNetwork
from reconciler.runtime.errors import ContainerRuntimeError

__all__ = ["DNS_PORT", "ClusterDnsServer"]

log = logging.getLogger(__name__)

DNS_PORT = 53
_TCP_IDLE = 10.0


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: ClusterDnsServer, *, local_only: bool) -> None:
        self.server = server
        self.local_only = local_only
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, ...]) -> None:
        self.server.spawn(self._reply(data, addr))

    async def _reply(self, data: bytes, addr: tuple[str | Any, ...]) -> None:
        reply = await self.server.handle(data, tcp=False, local_only=self.local_only)
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


class ClusterDnsServer:
    """`await start()` (returns at once; binding happens in the background), `await stop()`."""

    def __init__(
        self,
        client: Client,
        *,
        agent_id: str,
        services_network: ServicesNetwork | None = None,
        address: str = DNS_ADDRESS,
        port: int = DNS_PORT,
        upstreams: tuple[tuple[str, int], ...] | None = None,
        peers_dir: Path = DEFAULT_PEERS_DIR,
        clock: Clock | None = None,
        informers: InformerFactory | None = None,
        retry_interval: float = 10.0,
    ) -> None:
        self.client = client
        self.services_network = services_network
        self.address = address
        self.port = port
        self.upstreams = upstreams or host_resolvers(exclude=(address,))
        self.peers = DnsPeers(peers_dir, agent_id)
        self.clock = clock or SystemClock()
        self.retry_interval = retry_interval
        self._own_factory = informers is None
        self.factory = informers or InformerFactory(client, self.clock)
        self.services: Informer
        self.endpoints: Informer
        self._closers: list[Any] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._binder: asyncio.Task[None] | None = None
        self._started = False
        self.bound = asyncio.Event()
        """Set once it listens on `address:port`."""

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.services = self.factory.informer("v1", "Service")
        self.endpoints = self.factory.informer("v1", "Endpoints")
        if self._own_factory:
            self.factory.start()
        self._started = True
        loop = asyncio.get_running_loop()
        peer, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(self, local_only=True), local_addr=("127.0.0.1", 0)
        )
        self._closers.append(peer)
        await asyncio.to_thread(self.peers.publish, int(peer.get_extra_info("sockname")[1]))
        self._binder = loop.create_task(self._bind_loop(), name="cluster-dns-bind")

    async def stop(self) -> None:
        if self._binder is not None:
            self._binder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._binder
            self._binder = None
        await asyncio.to_thread(self.peers.withdraw)
        for closer in self._closers:
            closer.close()
        self._closers.clear()
        self.bound.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._own_factory and self._started:
            self._started = False
            await self.factory.stop()

    def spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _bind_loop(self) -> None:
        # Listening before the caches are filled would answer NXDOMAIN for real Services.
        await asyncio.gather(self.services.synced.wait(), self.endpoints.synced.wait())
        reported = ""
        while True:
            try:
                if self.services_network is not None:
                    await self.services_network.ensure()  # its bridge holds our address
                await self._bind()
            except (OSError, ContainerRuntimeError) as exc:
                if str(exc) != reported:
                    reported = str(exc)
                    self._report_unbound(exc)
                await self.clock.sleep(self.retry_interval)
                continue
            log.info("cluster DNS: listening on %s:%d (udp, tcp)", self.address, self.port)
            self.bound.set()
            return

    def _report_unbound(self, exc: Exception) -> None:
        where = f"{self.address}:{self.port}"
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            log.info(
                "cluster DNS: %s is taken (another recon serve on this engine?): it asks "
                "this server for the names it does not know; taking over when it stops",
                where,
            )
            return
        log.warning(
            "cluster DNS: cannot listen on %s (%s), retrying every %.0f s; meanwhile pods "
            "resolve external names through the host's resolvers and ClusterIP Services "
            "through Docker, but not headless or ExternalName Services%s",
            where,
            exc,
            self.retry_interval,
            " (port 53 needs root or CAP_NET_BIND_SERVICE)"
            if isinstance(exc, PermissionError)
            else "",
        )

    async def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        udp, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(self, local_only=False), local_addr=(self.address, self.port)
        )
        try:
            tcp = await asyncio.start_server(self._tcp_client, self.address, self.port)
        except BaseException:
            udp.close()
            raise
        self._closers += [udp, tcp]

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack(
                    "!H", await asyncio.wait_for(reader.readexactly(2), _TCP_IDLE)
                )
                data = await asyncio.wait_for(reader.readexactly(length), _TCP_IDLE)
                reply = await self.handle(data, tcp=True)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    # -- answering ---------------------------------------------------------------------------

    @property
    def view(self) -> ClusterView:
        return ClusterView(
            service=self.services.get,
            endpoints=self.endpoints.get,
            has_namespace=lambda namespace: bool(self.services.list(namespace)),
        )

    async def handle(self, data: bytes, *, tcp: bool, local_only: bool = False) -> bytes | None:
        """The reply to one message (None: no reply, it was not a query we can read).

        `local_only` is a peer's question: answer from our own Services, forward nothing."""
        try:
            query = decode_query(data)
        except WireError:
            return _formerr(data)
        if query.is_response:
            return None
        size = None if tcp else query.udp_size
        if query.opcode != 0:
            return encode_response(query, Rcode.NOTIMP, authoritative=False, max_size=size)
        if not in_zone(query.question.name):
            if local_only:
                return encode_response(query, Rcode.REFUSED, authoritative=False, max_size=size)
            reply = await forward(self.upstreams, data, tcp=tcp)
            if reply is None:
                return encode_response(query, Rcode.SERVFAIL, authoritative=False, max_size=size)
            return reply
        if not (self.services.synced.is_set() and self.endpoints.synced.is_set()):
            return encode_response(query, Rcode.SERVFAIL, authoritative=False, max_size=size)
        local = answer(query.question, self.view)
        assert local is not None  # a name in the zone always has an answer
        if local.rcode == Rcode.NXDOMAIN and not local_only:
            known = await self.peers.ask(data)
            if known is not None:
                return known
        if local.external is not None and not local_only:
            local = await self._chase(query, local, tcp=tcp)
        return encode_response(
            query, local.rcode, local.answers, local.authority, local.additional, max_size=size
        )

    async def _chase(self, query: Query, local: Answer, *, tcp: bool) -> Answer:
        """An ExternalName's CNAME points outside the cluster: add what the host's
        resolvers say about the target (its A or AAAA records), as CoreDNS does."""
        qtype = query.question.qtype
        if qtype not in (Rtype.A, Rtype.AAAA) or local.external is None:
            return local
        message = encode_query(query.id, Question(local.external, qtype))
        for server in self.upstreams:
            reply = await exchange(server, message, tcp=tcp)
            if reply is None:
                continue
            try:
                found = decode_response(reply)
            except WireError:
                continue
            return Answer(local.rcode, local.answers + found.answers)
        return local


def _formerr(data: bytes) -> bytes | None:
    """FORMERR for a message with a readable header, nothing for noise."""
    if len(data) < 12 or data[2] & 0x80:
        return None
    flags = 0x8000 | (data[2] << 8 & 0x7800) | Rcode.FORMERR
    return data[:2] + struct.pack("!HHHHH", flags, 0, 0, 0, 0)
