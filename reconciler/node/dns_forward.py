"""Sending a DNS message to another server and waiting for its answer (UDP or TCP).

The cluster DNS forwards every name outside `cluster.local` to the host's own resolvers
(CoreDNS's `forward . /etc/resolv.conf`), which is where Docker's embedded DNS sent them
before pods were given the cluster DNS; it also asks its peers (`dns_peers.py`) over UDP.
Both go through `exchange`. The server runs in the host's network namespace, so a resolver
on the host's loopback (systemd-resolved's 127.0.0.53) works here, which it would not from
inside a container.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import struct
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "DOCKER_DEFAULT_RESOLVERS",
    "exchange",
    "fallback_resolvers",
    "forward",
    "host_resolvers",
]

log = logging.getLogger(__name__)

Address = tuple[str, int]

DOCKER_DEFAULT_RESOLVERS: tuple[Address, ...] = (("8.8.8.8", 53), ("8.8.4.4", 53))
"""What dockerd falls back to when the host names no resolver (kept, so nothing changes)."""


def host_resolvers(
    resolv_conf: Path = Path("/etc/resolv.conf"), exclude: Sequence[str] = ()
) -> tuple[Address, ...]:
    """The `nameserver` lines of the host's resolv.conf (IPv4 and IPv6), minus `exclude`
    (the cluster DNS's own address: never forward to ourselves)."""
    try:
        text = resolv_conf.read_text()
    except OSError:
        text = ""
    found: list[Address] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2 or parts[0] != "nameserver":
            continue
        try:
            address = str(ipaddress.ip_address(parts[1].split("%")[0]))
        except ValueError:
            continue
        if address not in exclude and (address, 53) not in found:
            found.append((address, 53))
    return tuple(found) or DOCKER_DEFAULT_RESOLVERS


@functools.cache
def fallback_resolvers() -> tuple[str, ...]:
    """What a pod's engine DNS tries after the cluster DNS, when that does not answer
    (`recon serve` stopped or not allowed to bind port 53; an engine in a VM): the host's
    resolvers a container can reach (IPv4, not loopback), at most two (dockerd uses three),
    or dockerd's own defaults, so external names resolve as they did without the cluster
    DNS. Read once per process."""
    usable = [
        host
        for host, _ in host_resolvers()
        if ipaddress.ip_address(host).version == 4 and not ipaddress.ip_address(host).is_loopback
    ]
    return tuple(usable[:2]) or tuple(host for host, _ in DOCKER_DEFAULT_RESOLVERS)


class _Reply(asyncio.DatagramProtocol):
    def __init__(self, ident: bytes) -> None:
        self.ident = ident
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if data[:2] == self.ident and not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def _udp(server: Address, message: bytes, timeout: float) -> bytes:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _Reply(message[:2]), remote_addr=server
    )
    try:
        transport.sendto(message)
        return await asyncio.wait_for(protocol.answer, timeout)
    finally:
        transport.close()


async def _tcp(server: Address, message: bytes, timeout: float) -> bytes:
    async def talk() -> bytes:
        reader, writer = await asyncio.open_connection(*server)
        try:
            writer.write(struct.pack("!H", len(message)) + message)
            await writer.drain()
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            return await reader.readexactly(length)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    return await asyncio.wait_for(talk(), timeout)


async def exchange(
    server: Address, message: bytes, *, tcp: bool = False, timeout: float = 2.0
) -> bytes | None:
    """`server`'s answer to `message`, or None (no answer in `timeout`, refused, …)."""
    try:
        if tcp:
            return await _tcp(server, message, timeout)
        return await _udp(server, message, timeout)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, struct.error) as exc:
        log.debug("dns: no answer from %s:%s: %s", server[0], server[1], exc)
        return None


async def forward(
    servers: Sequence[Address], message: bytes, *, tcp: bool = False, timeout: float = 2.0
) -> bytes | None:
    """The first answer from `servers`, tried in order (as a stub resolver does)."""
    for server in servers:
        answer = await exchange(server, message, tcp=tcp, timeout=timeout)
        if answer is not None:
            return answer
    return None
