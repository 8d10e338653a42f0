"""UDP "connections" for the Service relays: which backend each client talks to. Pure.

UDP has no connection to follow, so a relay does what conntrack does for kube-proxy: the
first datagram from a client address (host, port) opens a session to one backend, later
datagrams from that address go the same way, and the backend's replies go back to that
client. A session ends after `timeout` seconds without a datagram either way (conntrack's
`nf_conntrack_udp_timeout`, 30 s), when its backend stops being ready (kube-proxy deletes
the conntrack entries of a UDP endpoint that goes, so the client's next datagram finds a
ready one), or, when the table is full, the least recently used one makes room for a new
client.

Worked example. timeout 30, limit 2. At t=0 client A opens a session to backend X; at t=10
client B to Y; at t=20 A sends again (last use 20). At t=25 client C arrives: the table is
full, B (last use 10) is the least recently used and is evicted for it. At t=51 `expire`
ends A (idle 31 s) but not C (idle 26 s). Then Y stops being ready: `retain({X})` ends C.

The table holds an opaque `handle` per session (the relay's socket to the backend), and
gives back the sessions it ends so the caller can close them; it never does I/O itself.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = [
    "DEFAULT_SESSION_LIMIT",
    "UDP_SESSION_TIMEOUT_S",
    "Address",
    "Session",
    "SessionTable",
    "pick_backend",
]

Address = tuple[str, int]
H = TypeVar("H")

UDP_SESSION_TIMEOUT_S = 30.0
"""Idle time after which a session ends (conntrack's UDP timeout)."""
DEFAULT_SESSION_LIMIT = 1024
"""Sessions one relay keeps at most (each holds a socket)."""


@dataclass
class Session(Generic[H]):
    client: Address
    backend: Address
    handle: H
    last_seen: float


class SessionTable(Generic[H]):
    """client address -> its session, least recently used first."""

    def __init__(
        self, timeout: float = UDP_SESSION_TIMEOUT_S, limit: int = DEFAULT_SESSION_LIMIT
    ) -> None:
        if limit < 1:
            raise ValueError(f"a session table holds at least one session, not {limit}")
        self.timeout = timeout
        self.limit = limit
        self._sessions: OrderedDict[Address, Session[H]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, client: object) -> bool:
        return client in self._sessions

    def sessions(self) -> list[Session[H]]:
        return list(self._sessions.values())

    def get(self, client: Address, now: float) -> Session[H] | None:
        """The client's live session, marked used at `now`; None when it has none (or
        only one idle past the timeout, which the caller's next `expire` ends)."""
        session = self._sessions.get(client)
        if session is None or now - session.last_seen > self.timeout:
            return None
        self.touch(client, now)
        return session

    def touch(self, client: Address, now: float) -> None:
        """A datagram went either way: the session lives on."""
        session = self._sessions.get(client)
        if session is not None:
            session.last_seen = max(session.last_seen, now)
            self._sessions.move_to_end(client)

    def add(self, client: Address, backend: Address, handle: H, now: float) -> list[Session[H]]:
        """Open the client's session; returns the sessions ended to make room (its own old
        one, idle ones, then the least recently used)."""
        ended: list[Session[H]] = []
        old = self._sessions.pop(client, None)
        if old is not None:
            ended.append(old)
        if len(self._sessions) >= self.limit:
            ended += self.expire(now)
        while len(self._sessions) >= self.limit:
            _, oldest = self._sessions.popitem(last=False)
            ended.append(oldest)
        self._sessions[client] = Session(client, backend, handle, now)
        return ended

    def remove(self, client: Address) -> Session[H] | None:
        return self._sessions.pop(client, None)

    def expire(self, now: float) -> list[Session[H]]:
        """End the sessions idle for longer than the timeout."""
        ended = [s for s in self._sessions.values() if now - s.last_seen > self.timeout]
        for session in ended:
            del self._sessions[session.client]
        return ended

    def retain(self, backends: Collection[Address]) -> list[Session[H]]:
        """End the sessions whose backend is no longer among `backends` (not ready, gone)."""
        ended = [s for s in self._sessions.values() if s.backend not in backends]
        for session in ended:
            del self._sessions[session.client]
        return ended

    def clear(self) -> list[Session[H]]:
        ended = list(self._sessions.values())
        self._sessions.clear()
        return ended


def pick_backend(backends: Sequence[Address], below: Callable[[int], int]) -> Address | None:
    """One backend for a new session, chosen by `below(n)` (a random number in [0, n)), as
    the gateway's TCP forwarder picks one at random per connection; None without any."""
    if not backends:
        return None
    return backends[below(len(backends)) % len(backends)]
