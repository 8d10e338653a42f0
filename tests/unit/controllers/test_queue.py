"""The work queue's timers on a manual clock: one per key, the one due first."""

from __future__ import annotations

import asyncio

from reconciler.clock import ManualClock
from reconciler.controllers.queue import WorkQueue


async def ready(queue: WorkQueue[str]) -> list[str]:
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    out = []
    while len(queue):
        key = await queue.get()
        queue.done(key)
        out.append(key)
    return out


async def test_a_later_request_leaves_the_timer_be() -> None:
    clock = ManualClock()
    queue: WorkQueue[str] = WorkQueue(clock)
    queue.add_after("k", 10)
    await asyncio.sleep(0)
    clock.advance(5)
    queue.add_after("k", 10)  # due at 15: the timer due at 10 stays
    await asyncio.sleep(0)
    clock.advance(5)
    assert await ready(queue) == ["k"]
    clock.advance(10)
    assert await ready(queue) == []
    await queue.shut_down()


async def test_an_earlier_request_replaces_the_timer() -> None:
    clock = ManualClock()
    queue: WorkQueue[str] = WorkQueue(clock)
    queue.add_after("k", 3600)
    await asyncio.sleep(0)
    queue.add_after("k", 10)
    await asyncio.sleep(0)
    clock.advance(10)
    assert await ready(queue) == ["k"]
    clock.advance(3600)
    assert await ready(queue) == []  # the hour-long timer was cancelled, not kept too
    await queue.shut_down()
