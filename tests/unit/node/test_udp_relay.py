"""UDP relaying for Services: the session table (pure, on explicit times) and the relay
over real UDP sockets on 127.0.0.1, on a manual clock (nothing waits out 30 s for real)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import pytest

from reconciler.clock import ManualClock
from reconciler.node.netns import udp_socket_in
from reconciler.node.udp_relay import UdpRelay, connected_udp_socket
from reconciler.node.udp_sessions import Address, SessionTable, pick_backend

X, Y, Z = ("10.0.0.1", 53), ("10.0.0.2", 53), ("10.0.0.3", 53)
CA, CB, CC = ("10.1.0.1", 4001), ("10.1.0.2", 4002), ("10.1.0.3", 4003)


# -- the session table -------------------------------------------------------------------------


def test_the_worked_example() -> None:
    table: SessionTable[str] = SessionTable(timeout=30, limit=2)
    assert table.add(CA, X, "a", 0) == []
    assert table.add(CB, Y, "b", 10) == []
    session = table.get(CA, 20)
    assert session is not None and session.backend == X and session.last_seen == 20
    # Full: B, the least recently used, makes room for C.
    assert [s.handle for s in table.add(CC, Y, "c", 25)] == ["b"]
    assert CB not in table and len(table) == 2
    assert [s.handle for s in table.expire(51)] == ["a"]  # idle 31 s; C only 26 s
    assert [s.handle for s in table.retain({X})] == ["c"]  # Y no longer ready
    assert len(table) == 0


@pytest.mark.parametrize(
    "last, now, alive",
    [(0.0, 30.0, True), (0.0, 30.5, False), (10.0, 39.0, True), (10.0, 41.0, False)],
)
def test_a_session_lives_for_the_timeout_after_its_last_datagram(
    last: float, now: float, alive: bool
) -> None:
    table: SessionTable[str] = SessionTable(timeout=30)
    table.add(CA, X, "a", 0.0)
    table.touch(CA, last)  # a reply counts as much as a request
    assert (table.get(CA, now) is not None) is alive
    assert (len(table.expire(now)) == 0) is alive


def test_a_new_session_for_the_same_client_replaces_the_old_one() -> None:
    table: SessionTable[str] = SessionTable()
    table.add(CA, X, "old", 0)
    assert [s.handle for s in table.add(CA, Y, "new", 1)] == ["old"]
    assert [s.handle for s in table.sessions()] == ["new"]


def test_idle_sessions_go_before_busy_ones_when_full() -> None:
    table: SessionTable[str] = SessionTable(timeout=30, limit=2)
    table.add(CA, X, "a", 0)
    table.add(CB, Y, "b", 20)
    table.touch(CA, 25)  # A is now the most recently used, B the idle one after t=50
    ended = table.add(CC, Z, "c", 51)
    assert [s.handle for s in ended] == ["b"]
    assert {s.handle for s in table.sessions()} == {"a", "c"}
    with pytest.raises(ValueError):
        SessionTable(limit=0)


@pytest.mark.parametrize(
    "backends, roll, expected",
    [((), 0, None), ((X,), 0, X), ((X, Y, Z), 0, X), ((X, Y, Z), 2, Z), ((X, Y), 5, Y)],
)
def test_pick_backend(backends: tuple[Address, ...], roll: int, expected: Address | None) -> None:
    assert pick_backend(backends, lambda n: roll) == expected


# -- the relay, on real sockets ------------------------------------------------------------


class Echo(asyncio.DatagramProtocol):
    """A UDP backend answering `<name>:<datagram>`, counting what it got."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.got: list[bytes] = []
        self.peers: set[tuple[str, int]] = set()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.got.append(data)
        self.peers.add((addr[0], addr[1]))
        assert self.transport is not None
        self.transport.sendto(f"{self.name}:".encode() + data, addr)


async def echo(name: str) -> tuple[Echo, Address, asyncio.DatagramTransport]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: Echo(name), local_addr=("127.0.0.1", 0)
    )
    host, port = transport.get_extra_info("sockname")[:2]
    return protocol, (host, port), transport


class Client:
    def __init__(self, relay: UdpRelay) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind(("127.0.0.1", 0))
        self.relay = relay

    async def ask(self, text: str, timeout: float = 2.0) -> str | None:
        loop = asyncio.get_running_loop()
        await loop.sock_sendto(self.sock, text.encode(), self.relay.address)
        try:
            data, peer = await asyncio.wait_for(loop.sock_recvfrom(self.sock, 512), timeout)
        except TimeoutError:
            return None
        assert peer == self.relay.address  # answered from the service port
        return bytes(data).decode()

    def close(self) -> None:
        self.sock.close()


class Rig:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.backends: list[Address] = []
        self.turn = 0
        self.opened: list[Address] = []
        self.relay = UdpRelay("test", self.choose, self.open, self.clock, timeout=30, limit=8)
        self.clients: list[Client] = []
        self.servers: list[asyncio.DatagramTransport] = []

    def choose(self, client: Address, now: float) -> Address | None:
        if not self.backends:
            return None
        self.turn += 1
        return self.backends[self.turn % len(self.backends)]

    async def open(self, backend: Address) -> socket.socket:
        self.opened.append(backend)
        return await connected_udp_socket(backend)

    async def backend(self, name: str) -> tuple[Echo, Address]:
        protocol, address, transport = await echo(name)
        self.servers.append(transport)
        return protocol, address

    def client(self) -> Client:
        made = Client(self.relay)
        self.clients.append(made)
        return made


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    made = Rig()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind(("127.0.0.1", 0))
    await made.relay.start(sock)
    try:
        yield made
    finally:
        await made.relay.close()
        for client in made.clients:
            client.close()
        for server in made.servers:
            server.close()


async def eventually(check: Callable[[], Awaitable[Any] | Any], what: str) -> Any:
    for _ in range(200):
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_client_keeps_its_backend_and_gets_answers_from_the_service_port(
    rig: Rig,
) -> None:
    a, a_addr = await rig.backend("a")
    b, b_addr = await rig.backend("b")
    rig.backends = [a_addr, b_addr]
    one, two = rig.client(), rig.client()
    first = await one.ask("1")
    assert first is not None
    assert [await one.ask(str(i)) for i in range(2, 5)] == [f"{first[0]}:{i}" for i in range(2, 5)]
    second = await two.ask("x")
    assert second is not None and second[0] != first[0]  # a new session, the next backend
    assert len(rig.opened) == 2 and len(rig.relay.table) == 2
    # Each backend saw one peer per client session: the relay's socket, not the client.
    assert len(a.peers) == 1 and len(b.peers) == 1


async def test_sessions_end_after_30_s_idle(rig: Rig) -> None:
    _, a_addr = await rig.backend("a")
    rig.backends = [a_addr]
    client = rig.client()
    assert await client.ask("1") == "a:1"
    rig.clock.advance(20)
    assert await client.ask("2") == "a:2"  # still the same session
    assert len(rig.opened) == 1
    rig.clock.advance(31)
    await eventually(lambda: len(rig.relay.table) == 0, "the idle session to end")
    assert await client.ask("3") == "a:3"
    assert len(rig.opened) == 2  # a new session


async def test_backends_that_stop_being_ready_lose_their_sessions(rig: Rig) -> None:
    _, a_addr = await rig.backend("a")
    _, b_addr = await rig.backend("b")
    rig.backends = [a_addr]
    client = rig.client()
    assert await client.ask("1") == "a:1"
    rig.backends = [b_addr]
    assert await client.ask("2") == "a:2"  # only new sessions follow the change...
    rig.relay.retain({b_addr})  # ...unless the old backend is gone, as kube-proxy does
    assert await client.ask("3") == "b:3"


async def test_no_backend_means_no_answer_and_a_refusing_one_is_left(rig: Rig) -> None:
    client = rig.client()
    assert await client.ask("nobody", timeout=0.2) is None
    assert len(rig.relay.table) == 0
    # A backend port nothing listens on: the ICMP error ends the session...
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))
    dead_addr = dead.getsockname()
    dead.close()
    rig.backends = [dead_addr]
    assert await client.ask("1", timeout=0.2) is None
    await eventually(lambda: len(rig.relay.table) == 0, "the refused session to end")
    # ...so the next datagram opens a session to a backend that answers.
    _, a_addr = await rig.backend("a")
    rig.backends = [a_addr]
    assert await client.ask("2") == "a:2"


async def test_the_table_is_bounded(rig: Rig) -> None:
    _, a_addr = await rig.backend("a")
    rig.backends = [a_addr]
    clients = [rig.client() for _ in range(10)]
    for i, client in enumerate(clients):
        assert await client.ask(str(i)) == f"a:{i}"
    assert len(rig.relay.table) == 8  # the limit: the two oldest made room
    assert await clients[0].ask("again") == "a:again"  # and come back as new sessions


async def test_closing_ends_every_session() -> None:
    rig = Rig()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind(("127.0.0.1", 0))
    await rig.relay.start(sock)
    _, a_addr = await rig.backend("a")
    rig.backends = [a_addr]
    client = rig.client()
    assert await client.ask("1") == "a:1"
    handles = [s.handle for s in rig.relay.table.sessions()]
    await rig.relay.close()
    assert rig.relay.closed and all(h.is_closing() for h in handles)
    assert await client.ask("2", timeout=0.2) is None
    client.close()
    for server in rig.servers:
        server.close()


# -- sockets made in a namespace -------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="setns needs CAP_SYS_ADMIN")
async def test_udp_sockets_are_made_in_the_namespace_given() -> None:
    """Entering this process's own namespace (what a gateway's is to `recon serve`): the
    bound socket and the connected one talk to each other from the loop."""
    here = f"/proc/{os.getpid()}/ns/net"
    server = await udp_socket_in(here, bind=("127.0.0.1", 0))
    client = await udp_socket_in(here, connect=server.getsockname())
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_sendall(client, b"ping")
        data, peer = await asyncio.wait_for(loop.sock_recvfrom(server, 64), 2)
        assert data == b"ping" and peer == client.getsockname()
    finally:
        server.close()
        client.close()


async def test_a_namespace_that_is_gone_is_an_os_error() -> None:
    with pytest.raises(OSError):
        await udp_socket_in("/proc/0/ns/net-gone", bind=("127.0.0.1", 0))
