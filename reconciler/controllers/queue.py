"""A key-only, rate-limited work queue, as client-go's `workqueue` (level-triggered control).

Watch events enqueue only a key — `(kind, namespace, name)` — never an object: the worker
re-reads the current object from the informer's cache, so a burst of events for one
object becomes one reconcile of its latest state. The queue guarantees:

- a key is never processed by two workers at once (re-added while processing, it is
  queued again once the worker is `done`);
- a key waiting in the queue is there once, however often it was added;
- `add_rate_limited` delays a failing key exponentially (5 ms doubling to 1000 s, per
  key), `forget` resets it after a success;
- `add_after` schedules a key on the injected clock (requeue after a deadline, a probe
  period, a back-off);
- with a `rank`, the waiting key of lowest rank is handed out first, ties in the order
  added (the scheduler's queue: a pod of higher priority jumps the queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from reconciler.clock import Clock

K = TypeVar("K", bound=Hashable)


class ShutDownError(Exception):
    """The queue was shut down while a worker waited for work."""


class WorkQueue(Generic[K]):
    def __init__(
        self,
        clock: Clock,
        base_delay: float = 0.005,
        max_delay: float = 1000.0,
        rank: Callable[[K], int] | None = None,
    ) -> None:
        self._clock = clock
        self._queue: deque[K] = deque()
        self._rank = rank
        self._ranked: list[tuple[int, int, K]] = []  # a heap, used instead with a rank
        self._added = itertools.count()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._dirty_while_processing: set[K] = set()
        self._failures: dict[K, int] = {}
        self._timers: dict[K, tuple[float, asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()
        self._shut_down = False
        self._base = base_delay
        self._max = max_delay

    def __len__(self) -> int:
        return len(self._queued)

    def add(self, key: K) -> None:
        if self._shut_down:
            return
        if key in self._processing:
            self._dirty_while_processing.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        if self._rank is None:
            self._queue.append(key)
        else:
            heapq.heappush(self._ranked, (self._rank(key), next(self._added), key))
        self._wake.set()

    def add_after(self, key: K, delay: float) -> None:
        """Add `key` once `delay` seconds have passed. One timer per key, the one due first:
        a later request leaves it be (a burst becomes one reconcile), an earlier one replaces
        it (a back-off of 10 s is not held up by a deadline an hour away)."""
        if self._shut_down:
            return
        if delay <= 0:
            self.add(key)
            return
        due = self._clock.monotonic() + delay
        existing = self._timers.get(key)
        if existing is not None and not existing[1].done():
            if existing[0] <= due:
                return
            existing[1].cancel()

        async def later() -> None:
            await self._clock.sleep(delay)
            self._timers.pop(key, None)
            self.add(key)

        self._timers[key] = (due, asyncio.get_running_loop().create_task(later()))

    def add_rate_limited(self, key: K) -> float:
        """Requeue a failed key with per-key exponential back-off; returns the delay."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = float(min(self._max, self._base * (2.0**failures)))
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    async def get(self) -> K:
        while not self._queued:
            if self._shut_down:
                raise ShutDownError
            self._wake.clear()
            await self._wake.wait()
        key = self._queue.popleft() if self._rank is None else heapq.heappop(self._ranked)[2]
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty_while_processing:
            self._dirty_while_processing.discard(key)
            self.add(key)

    async def shut_down(self) -> None:
        self._shut_down = True
        self._wake.set()
        for _, task in list(self._timers.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._timers.clear()
