"""The controller contract and the loop that drives it.

A controller watches informers, turns events into keys (`ObjKey`: namespace, name of the
object it owns the reconciliation of), and reconciles one key at a time from the cached
state. `reconcile` returns a `Result`; `_apply_result` is the single place results map to
the queue:

    Result()                       done: forget the key's failures
    Result(requeue_after=5.0)      done for now, look again in 5 s (deadlines, back-offs)
    Result(error="...")            transient failure: retry with per-key exponential back-off
    raising ClientError            same as a transient failure (409s are routine: retry)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from reconciler.client.base import Client
from reconciler.client.errors import ClientError
from reconciler.clock import Clock
from reconciler.controllers.informer import InformerFactory, ObjKey, obj_key
from reconciler.controllers.queue import ShutDownError, WorkQueue

JSONDict = dict[str, Any]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    requeue_after: float | None = None
    error: str | None = None


class Controller(Protocol):
    name: str
    queue: WorkQueue[ObjKey]

    def setup(self, factory: InformerFactory) -> None:
        """Create informers and register the handlers that enqueue keys."""
        ...

    async def reconcile(self, key: ObjKey) -> Result: ...


def enqueue_self(queue: WorkQueue[ObjKey]) -> Callable[[JSONDict], None]:
    return lambda obj: queue.add(obj_key(obj))


_BOOKKEEPING = ("resourceVersion", "managedFields")


def status_only_update(old: JSONDict, new: JSONDict) -> bool:
    """True when `old` -> `new` changed nothing but `status` (and the server's bookkeeping):
    typically the controller's own status write coming back through the watch. Reconciling
    again on it would recompute the same decisions from the same inputs."""
    if old.get("spec") != new.get("spec"):
        return False
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    keys = (set(old_meta) | set(new_meta)).difference(_BOOKKEEPING)
    return all(old_meta.get(k) == new_meta.get(k) for k in keys)


def enqueue_unless_status_only(queue: WorkQueue[ObjKey]) -> Callable[[JSONDict, JSONDict], None]:
    """An update handler that enqueues the object itself unless only its status changed."""

    def handler(old: JSONDict, new: JSONDict) -> None:
        if not status_only_update(old, new):
            queue.add(obj_key(new))

    return handler


def enqueue_controller_owner(
    queue: WorkQueue[ObjKey], owner_kind: str
) -> Callable[[JSONDict], None]:
    """Enqueue the controlling owner of `obj` if it is of `owner_kind`."""

    def handler(obj: JSONDict) -> None:
        meta = obj.get("metadata") or {}
        for ref in meta.get("ownerReferences") or []:
            if ref.get("controller") and ref.get("kind") == owner_kind:
                queue.add((str(meta.get("namespace") or ""), str(ref.get("name"))))

    return handler


async def _apply_result(
    controller: Controller, key: ObjKey, result: Result | None, err: Exception | None
) -> None:
    queue = controller.queue
    if err is not None or (result is not None and result.error):
        reason = str(err) if err is not None else str(result.error if result else "")
        delay = queue.add_rate_limited(key)
        if queue.failures(key) > 3:
            log.warning("%s %s/%s: %s (retry in %.2fs)", controller.name, *key, reason, delay)
        return
    queue.forget(key)
    if result is not None and result.requeue_after is not None:
        queue.add_after(key, result.requeue_after)


async def run_worker(controller: Controller) -> None:
    while True:
        try:
            key = await controller.queue.get()
        except ShutDownError:
            return
        try:
            result = await controller.reconcile(key)
            await _apply_result(controller, key, result, None)
        except ClientError as e:
            await _apply_result(controller, key, None, e)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("%s: reconciling %s/%s crashed", controller.name, *key)
            await _apply_result(controller, key, None, e)
        finally:
            controller.queue.done(key)
        # Controllers share the API server's event loop: let requests in between reconciles.
        await asyncio.sleep(0)


class ControllerManager:
    """Starts informers and workers for a set of controllers; stops them all."""

    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.factory = InformerFactory(client, clock)
        self.controllers: list[Controller] = []
        self._workers: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    def add(self, controller: Controller, workers: int = 1) -> None:
        controller.setup(self.factory)
        self.controllers.append(controller)
        self._workers[controller.name] = workers

    async def start(self) -> None:
        self.factory.start()
        await self.factory.wait_synced()
        loop = asyncio.get_running_loop()
        for controller in self.controllers:
            for i in range(self._workers.get(controller.name, 1)):
                self._tasks.append(
                    loop.create_task(run_worker(controller), name=f"{controller.name}-{i}")
                )
        self._started = True

    def problems(self) -> dict[str, str]:
        """Controller name -> what is wrong with it: not started yet (its informers are
        still listing), or a worker that ended. Empty when all are working."""
        if not self._started:
            return {c.name: "not started: informers not synced" for c in self.controllers}
        out: dict[str, str] = {}
        for task in self._tasks:
            if not task.done():
                continue
            name = task.get_name().rsplit("-", 1)[0]
            error = None if task.cancelled() else task.exception()
            out[name] = f"a worker ended: {error}" if error else "a worker ended"
        return out

    async def stop(self) -> None:
        for controller in self.controllers:
            await controller.queue.shut_down()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.factory.stop()
