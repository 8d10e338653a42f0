"""Sockets opened from inside a container's network namespace: TCP connections for
`kubectl port-forward`, UDP sockets for the Service gateways' UDP relays.

The kubelet (through the CRI) reaches a forwarded port the same way: enter the pod
sandbox's network namespace and connect to the port on loopback. So a port the pod listens
on only at 127.0.0.1 is reachable, and the host never addresses the pod's bridge IP. A
Service's UDP port is served the same way from `recon serve` (`service_gateway_udp.py`):
its sockets are made inside the gateway container's namespace, where the cluster IP and
the pods' network are.

`setns(2)` changes the namespace of the calling thread only, so the connect happens in a
thread of its own that exits afterwards (it is never reused by a pool in the wrong
namespace). A socket belongs to the namespace it was created in, whichever thread uses it
later: the connected socket is handed back to the loop and used as any other.

Python 3.11 has no `os.setns`: it is called through ctypes. Needs CAP_SYS_ADMIN (root).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import socket
import threading
from collections.abc import Callable

__all__ = ["CLONE_NEWNET", "open_connection_in", "udp_socket_in"]

CLONE_NEWNET = 0x40000000
_CONNECT_TIMEOUT_S = 10.0
_libc: ctypes.CDLL | None = None


def _setns(path: str) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"setns {path}: {os.strerror(code)}")
    finally:
        os.close(fd)


def _go_error(e: OSError) -> str:
    """`connect: connection refused`, as Go's net package words it."""
    text = os.strerror(e.errno) if e.errno else str(e)
    return "connect: " + text[:1].lower() + text[1:]


def _connect_inside(netns: str, port: int, timeout: float) -> socket.socket:
    """Enter `netns`, connect to localhost:port (IPv4, then IPv6). Runs in its own thread."""
    _setns(netns)
    failures = []
    for family, host, label in (
        (socket.AF_INET, "127.0.0.1", f"IPv4: dial tcp4 127.0.0.1:{port}"),
        (socket.AF_INET6, "::1", f"IPv6 dial tcp6 [::1]:{port}"),
    ):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
        except OSError as e:
            sock.close()
            failures.append(f"{label}: {_go_error(e)}")
            continue
        sock.setblocking(False)
        return sock
    raise ConnectionRefusedError(errno.ECONNREFUSED, " ".join(failures))


async def open_connection_in(
    netns: str, port: int, timeout: float = _CONNECT_TIMEOUT_S
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to localhost:`port` inside the network namespace at `netns`. Raises
    ConnectionRefusedError when nothing listens there (`strerror`: each address tried and
    why, in Go's words), another OSError when the namespace cannot be entered."""
    sock = await _socket_in(
        netns, lambda: _connect_inside(netns, port, timeout), f"recon-netns-connect-{port}"
    )
    return await asyncio.open_connection(sock=sock)


async def udp_socket_in(
    netns: str, bind: tuple[str, int] | None = None, connect: tuple[str, int] | None = None
) -> socket.socket:
    """A non-blocking IPv4 UDP socket made inside the network namespace at `netns`, bound to
    `bind` and connected to `connect` when given. Raises OSError when the namespace cannot
    be entered (EPERM without CAP_SYS_ADMIN, ENOENT once the container is gone) or the
    address cannot be bound."""

    def make() -> socket.socket:
        _setns(netns)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if bind is not None:
                sock.bind(bind)
            if connect is not None:
                sock.connect(connect)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    return await _socket_in(netns, make, "recon-netns-udp")


async def _socket_in(netns: str, make: Callable[[], socket.socket], name: str) -> socket.socket:
    """Run `make` (which enters `netns` first) in a thread of its own, which then ends, and
    hand its socket to the loop; a socket nobody waits for any more is closed."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[socket.socket] = loop.create_future()

    def settle(sock: socket.socket | None, error: BaseException | None) -> None:
        if future.done():  # the caller gave up: do not leak the socket
            if sock is not None:
                sock.close()
        elif error is not None:
            future.set_exception(error)
        else:
            future.set_result(sock)  # type: ignore[arg-type]

    def target() -> None:
        sock: socket.socket | None = None
        error: BaseException | None = None
        try:
            sock = make()
        except BaseException as e:  # handed to the loop
            error = e
        try:
            loop.call_soon_threadsafe(settle, sock, error)
        except RuntimeError:  # the loop is gone
            if sock is not None:
                sock.close()

    threading.Thread(target=target, name=name, daemon=True).start()
    return await future
