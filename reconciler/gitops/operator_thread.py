"""The Application operator inside `recon serve`: kopf on a thread and event loop of its own.

kopf takes every task created on its event loop after it started for one of its own: when it
stops, it waits five seconds for them to finish and then cancels them. Inside `recon serve`
those tasks are the API server's requests and watches, the controllers and the node agent's
pod workers, so with kopf on the server's loop every shutdown took five seconds and ended
with kopf cancelling Recon's own work before Recon stopped it in order. On a loop of its own
kopf sees only its own tasks and stops at once.

The work stays on the server's loop: kopf's handlers hand each call over (`_LoopBridge`),
so the `AppManager` is only ever touched from the loop it was made on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

from reconciler.gitops.operator import AppTracker, run_operator

__all__ = ["OperatorThread"]

log = logging.getLogger(__name__)

JSONDict = dict[str, Any]


class _NoSignalNotice(logging.Filter):
    """kopf warns that it ignores OS signals off the main thread: here that is the design
    (`recon serve` handles them and stops the operator), not news for the user."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("OS signals are ignored")


_KOPF_REACTOR = logging.getLogger("kopf._core.reactor.running")


class _LoopBridge:
    """What kopf's handlers call, run on the manager's own loop."""

    def __init__(self, manager: AppTracker, loop: asyncio.AbstractEventLoop) -> None:
        self._manager = manager
        self._loop = loop

    def track(self, obj: JSONDict) -> None:
        self._loop.call_soon_threadsafe(self._manager.track, obj)

    async def deleted(self, obj: JSONDict) -> list[str]:
        done = asyncio.run_coroutine_threadsafe(self._manager.deleted(obj), self._loop)
        return await asyncio.wrap_future(done)


class OperatorThread:
    """Start with `await start()` (returns once kopf watches, or has failed), end with
    `await stop()`; both from the loop the manager works on."""

    def __init__(self, manager: AppTracker, kubeconfig: Path) -> None:
        self._manager = manager
        self._kubeconfig = kubeconfig
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        """Why the operator ended on its own, if it did."""

    async def start(self) -> None:
        if not any(isinstance(f, _NoSignalNotice) for f in _KOPF_REACTOR.filters):
            _KOPF_REACTOR.addFilter(_NoSignalNotice())
        bridge = _LoopBridge(self._manager, asyncio.get_running_loop())
        self._thread = threading.Thread(
            target=self._run, args=(bridge,), name="application-operator", daemon=True
        )
        self._thread.start()
        await asyncio.to_thread(self._wait_ready, self._thread)

    def _wait_ready(self, thread: threading.Thread) -> None:
        while not self._ready.wait(0.05) and thread.is_alive():
            pass

    def _run(self, bridge: _LoopBridge) -> None:
        try:
            asyncio.run(run_operator(bridge, self._kubeconfig, self._stop, ready=self._ready))
        except BaseException as exc:
            self.error = exc
            log.error("the Application operator stopped: %r", exc)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is None:
            return
        await asyncio.to_thread(thread.join, timeout)
        if thread.is_alive():
            log.error("the Application operator did not stop within %.0f s", timeout)
