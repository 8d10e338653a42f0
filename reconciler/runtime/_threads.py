"""Bridges from the blocking docker SDK to the asyncio loop (STYLE.md, habit 12).

Short calls go to a bounded thread pool (`BlockingCalls`). Calls that can block for as long
as a container lives (an event stream, `logs --follow`, exec output, `wait`) get a thread of
their own (`ThreadStream`, `run_in_own_thread`), so a few hundred of them never starve the
pool that `create`/`start`/`inspect` need. Items cross to the loop through a bounded queue:
a slow reader slows the producing thread down instead of growing memory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["BlockingCalls", "ThreadStream", "run_in_own_thread"]

T = TypeVar("T")
R = TypeVar("R")


class BlockingCalls:
    """A private thread pool for short blocking calls; the loop's default pool stays free."""

    def __init__(self, max_workers: int, name: str) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix=name
        )

    async def run(self, fn: Callable[..., R], *args: object, **kwargs: object) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


async def run_in_own_thread(fn: Callable[[], R], name: str) -> R:
    """Run a call that may block for long in a fresh daemon thread; await its result.

    Cancelling the awaiting task does not stop the call (a blocked socket read cannot be
    interrupted from outside); its result is dropped when it comes.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[R] = loop.create_future()

    def succeed(value: R) -> None:
        if not future.done():
            future.set_result(value)

    def fail(exc: BaseException) -> None:
        if not future.done():
            future.set_exception(exc)

    def target() -> None:
        try:
            try:
                result = fn()
            except BaseException as exc:  # handed to the awaiting task
                loop.call_soon_threadsafe(fail, exc)
                return
            loop.call_soon_threadsafe(succeed, result)
        except RuntimeError:
            pass  # the loop is closed: nobody waits any more

    threading.Thread(target=target, name=name, daemon=True).start()
    return await future


@dataclass
class _End:
    error: BaseException | None


class ThreadStream(Generic[T]):
    """Iterate a blocking iterator from asyncio; the iterator runs in its own thread.

    `open_` runs in that thread too (it usually makes the HTTP request); `await started()`
    returns once it has. `close_` must unblock a read in progress from another thread (the
    docker SDK's `CancellableStream.close` shuts the socket down).
    """

    def __init__(
        self,
        open_: Callable[[], Iterator[T]],
        close_: Callable[[Iterator[T]], None],
        *,
        name: str,
        maxsize: int = 256,
    ) -> None:
        self._open = open_
        self._close_fn = close_
        self._name = name
        self._queue: asyncio.Queue[T | _End] = asyncio.Queue(maxsize)
        self._loop = asyncio.get_running_loop()
        self._started = asyncio.Event()
        self._start_error: BaseException | None = None
        self._iterator: Iterator[T] | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._finished = False
        self._thread = threading.Thread(target=self._pump, name=name, daemon=True)
        self._thread.start()

    # -- the producing thread ------------------------------------------------------------

    def _hand_over(self, item: T | _End) -> bool:
        put = self._queue.put(item)
        try:
            future = asyncio.run_coroutine_threadsafe(put, self._loop)
        except RuntimeError:
            put.close()  # never scheduled: no "was never awaited" warning
            return False  # loop closed
        while True:
            try:
                future.result(timeout=0.25)
                return True
            except concurrent.futures.TimeoutError:
                if self._closed.is_set():
                    future.cancel()
                    return False
            except (concurrent.futures.CancelledError, RuntimeError):
                return False

    def _signal_started(self, error: BaseException | None) -> None:
        def done() -> None:
            self._start_error = error
            self._started.set()

        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(done)

    def _pump(self) -> None:
        try:
            iterator = self._open()
        except BaseException as exc:
            self._signal_started(exc)
            self._hand_over(_End(exc))
            return
        with self._lock:
            self._iterator = iterator
            closed = self._closed.is_set()
        if closed:
            self._close_quietly(iterator)
            self._signal_started(None)
            return
        self._signal_started(None)
        error: BaseException | None = None
        try:
            for item in iterator:
                if not self._hand_over(item):
                    return
        except BaseException as exc:
            error = exc
        if not self._closed.is_set():
            self._hand_over(_End(error))

    def _close_quietly(self, iterator: Iterator[T]) -> None:
        with contextlib.suppress(Exception):
            self._close_fn(iterator)

    # -- the loop side -------------------------------------------------------------------

    async def started(self) -> None:
        """Wait until `open_` returned; raise what it raised."""
        await self._started.wait()
        if self._start_error is not None:
            raise self._start_error

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        if self._finished:
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, _End):
            self._finished = True
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item

    @property
    def closed_by_us(self) -> bool:
        return self._closed.is_set()

    async def aclose(self) -> None:
        if self._closed.is_set():
            return
        with self._lock:
            self._closed.set()
            iterator = self._iterator
        self._finished = True
        while not self._queue.empty():  # unblock a producer waiting on a full queue
            self._queue.get_nowait()
        if iterator is not None:
            await asyncio.to_thread(self._close_quietly, iterator)
