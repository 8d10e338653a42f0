"""Watch fan-out: every committed write reaches every interested watcher, in revision order.

A watcher subscribes to one resource (optionally one namespace) from a revision. Events
after that revision that are still in the in-memory history are replayed first, then live
events follow. A revision older than the history window is answered with `GoneError`, as
etcd compaction makes Kubernetes answer 410 Gone; clients then list again and watch from
the list's revision. History starts empty at each start of the server, so a watch that
resumes from before a restart is also told to relist.

Watchers that fall too far behind (a stuck client) are closed rather than allowed to grow
memory without bound; the client reconnects and resumes, as with a real apiserver.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reconciler.store.errors import GoneError

JSONDict = dict[str, Any]


@dataclass(frozen=True)
class Event:
    """One committed change. `object` is shared by all watchers: never mutate it."""

    type: str  # ADDED | MODIFIED | DELETED
    resource: str
    namespace: str
    name: str
    revision: int
    object: JSONDict
    previous: JSONDict | None = None  # the object before this change, for selector moves


_CLOSED = object()


class Watcher:
    """A subscription: iterate it with `await watcher.next()` until it returns None (closed)."""

    def __init__(
        self,
        hub: WatchHub,
        resource: str,
        namespace: str | None,
        predicate: Callable[[Event], bool] | None,
        max_backlog: int,
    ) -> None:
        self._hub = hub
        self.resource = resource
        self.namespace = namespace
        self._predicate = predicate
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._max_backlog = max_backlog
        self.closed = False

    def wants(self, event: Event) -> bool:
        if event.resource != self.resource:
            return False
        if self.namespace is not None and event.namespace != self.namespace:
            return False
        return self._predicate is None or self._predicate(event)

    def offer(self, event: Event) -> None:
        if self.closed or not self.wants(event):
            return
        if self._queue.qsize() >= self._max_backlog:
            self.close()  # too far behind: the client will resume from its last revision
            return
        self._queue.put_nowait(event)

    async def next(self, timeout: float | None = None) -> Event | None:
        """The next event; None once closed. Raises TimeoutError after `timeout` seconds idle."""
        if timeout is None:
            item = await self._queue.get()
        else:
            # Not `wait_for`: on 3.11 it can swallow a cancellation that races with an
            # arriving event, and a cancelled watcher would then keep running.
            async with asyncio.timeout(timeout):
                item = await self._queue.get()
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # stay closed for any later call
            return None
        assert isinstance(item, Event)
        return item

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(_CLOSED)
            self._hub.unsubscribe(self)


class WatchHub:
    """Fan-out of committed events with a bounded replay history."""

    def __init__(self, first_revision: int, history: int = 20_000, max_backlog: int = 50_000):
        self._history: deque[Event] = deque(maxlen=history)
        # Revisions <= this are not in the history: the oldest revision a watch may resume from.
        self._compacted = first_revision
        self._watchers: dict[str, set[Watcher]] = {}
        self._listeners: list[Callable[[Event], None]] = []
        self._max_backlog = max_backlog

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Call `listener` synchronously with every event (in-process observers such as GC)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Event], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    @property
    def oldest_resumable(self) -> int:
        return self._compacted

    def publish(self, event: Event) -> None:
        if len(self._history) == self._history.maxlen:
            self._compacted = self._history[0].revision
        self._history.append(event)
        for watcher in list(self._watchers.get(event.resource, ())):
            watcher.offer(event)
        for listener in list(self._listeners):
            listener(event)

    def subscribe(
        self,
        resource: str,
        namespace: str | None,
        since: int,
        predicate: Callable[[Event], bool] | None = None,
    ) -> Watcher:
        """Watch `resource` for events with revision > `since`; GoneError if that is too old."""
        if since < self._compacted:
            raise GoneError(f"too old resource version: {since} ({self._compacted})")
        watcher = Watcher(self, resource, namespace, predicate, self._max_backlog)
        for event in self._history:
            if event.revision > since:
                watcher.offer(event)
        self._watchers.setdefault(resource, set()).add(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.get(watcher.resource, set()).discard(watcher)

    def watcher_count(self) -> int:
        return sum(len(ws) for ws in self._watchers.values())

    def close_all(self) -> None:
        for watchers in list(self._watchers.values()):
            for watcher in list(watchers):
                watcher.close()
