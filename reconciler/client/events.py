"""Recording Kubernetes Events (`kubectl describe` and `kubectl get events` show them).

Like client-go's recorder: a repeat of the same (object, reason, message) bumps `count` and
`lastTimestamp` on the Event already written instead of adding another. Recording never
blocks the caller and never raises: an Event is a courtesy, losing one is not an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import ClientError
from reconciler.clock import Clock

__all__ = ["EventRecorder"]

JSONDict = dict[str, Any]

log = logging.getLogger(__name__)

_MAX_REMEMBERED = 4096


def _time(clock: Clock) -> str:
    return clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(self, client: Client, clock: Clock, component: str, host: str = "") -> None:
        self.client = client
        self.clock = clock
        self.component = component
        self.host = host
        self._seen: dict[tuple[str, str, str, str], tuple[str, int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def record(self, obj: JSONDict, event_type: str, reason: str, message: str) -> None:
        """Queue an Event about `obj` (type Normal or Warning)."""
        task = asyncio.get_running_loop().create_task(self._write(obj, event_type, reason, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _write(self, obj: JSONDict, event_type: str, reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        key = (str(meta.get("uid") or ""), event_type, reason, message)
        now = _time(self.clock)
        try:
            if key in self._seen:
                name, count = self._seen[key]
                self._seen[key] = (name, count + 1)
                await self.client.patch(
                    "v1",
                    "Event",
                    name,
                    {"count": count + 1, "lastTimestamp": now},
                    namespace=namespace,
                )
                return
            name = f"{meta.get('name')}.{uuid.uuid4().hex[:16]}"
            event: JSONDict = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": {
                    "apiVersion": obj.get("apiVersion"),
                    "kind": obj.get("kind"),
                    "name": meta.get("name"),
                    "namespace": meta.get("namespace"),
                    "uid": meta.get("uid"),
                    "resourceVersion": meta.get("resourceVersion"),
                },
                "reason": reason,
                "message": message,
                "type": event_type,
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {"component": self.component, "host": self.host}
                if self.host
                else {"component": self.component},
                "reportingComponent": self.component,
                "reportingInstance": self.host,
            }
            await self.client.create(event)
            if len(self._seen) >= _MAX_REMEMBERED:
                self._seen.pop(next(iter(self._seen)))
            self._seen[key] = (name, 1)
        except ClientError as exc:
            self._seen.pop(key, None)
            log.debug("event %s %s not recorded: %s", reason, meta.get("name"), exc)
