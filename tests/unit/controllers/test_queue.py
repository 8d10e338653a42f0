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


async def test_with_a_rank_the_lowest_waiting_key_goes_first_ties_in_order_added() -> None:
    ranks = {"low": 0, "high": -10, "mid": -5, "also-low": 0}
    queue: WorkQueue[str] = WorkQueue(ManualClock(), rank=ranks.__getitem__)
    for key in ("low", "high", "also-low", "mid", "high"):
        queue.add(key)
    assert len(queue) == 4  # a waiting key is there once
    assert await ready(queue) == ["high", "mid", "low", "also-low"]
    # a key re-added while processing comes back with its rank
    queue.add("low")
    key = await queue.get()
    queue.add("low")
    queue.add("mid")
    queue.done(key)
    assert await ready(queue) == ["mid", "low"]
    await queue.shut_down()
