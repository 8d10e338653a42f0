"""Events expire, as kube-apiserver's `--event-ttl` (1 h by default) makes them.

Every controller, the scheduler and the node agent write Events; a CronJob firing each
minute alone adds a few thousand a day. Upstream stores each Event with a TTL that each
write renews, so `kubectl get events` shows about the last hour and the store stays small.
Here the store has no TTLs: this module remembers when each Event was last written (on the
server's clock, from the store's change feed) and a sweep deletes those not written for the
TTL. After a restart the time of an Event's last write is read from the Event itself — the
latest of `lastTimestamp`, `eventTime`, `series.lastObservedTime` and
`creationTimestamp`, which every writer moves forward when it repeats an Event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

from reconciler.apiserver.errors import ApiError
from reconciler.apiserver.objects import ObjectService
from reconciler.clock import Clock, maybe_rfc3339
from reconciler.store.watch import Event

JSONDict = dict[str, Any]

log = logging.getLogger(__name__)

DEFAULT_TTL = timedelta(hours=1)
# (group, version, plural) of the two APIs Events are written through.
EVENT_RESOURCES = (("", "v1", "events"), ("events.k8s.io", "v1", "events"))


def last_written(event: JSONDict) -> datetime | None:
    """When the Event was last written, as far as the Event itself tells."""
    series = event.get("series") or {}
    meta = event.get("metadata") or {}
    stamps = [
        event.get("lastTimestamp"),
        event.get("eventTime"),
        event.get("deprecatedLastTimestamp"),
        series.get("lastObservedTime"),
        meta.get("creationTimestamp"),
    ]
    times = [t for t in (maybe_rfc3339(stamp) for stamp in stamps) if t is not None]
    return max(times, default=None)


class EventExpiry:
    """Deletes expired Events now and then, through the ObjectService (watchers see them go)."""

    def __init__(self, service: ObjectService, clock: Clock, ttl: timedelta = DEFAULT_TTL) -> None:
        self.service = service
        self.clock = clock
        self.ttl = ttl
        # Often enough that nothing outlives its TTL by much, rarely enough to cost nothing.
        self.interval = min(max(ttl.total_seconds() / 10, 1.0), 300.0)
        # storage key -> how Events of that API are served (and deleted)
        self._types = {
            rt.storage_key: rt
            for rt in (service.registry.lookup(*names) for names in EVENT_RESOURCES)
            if rt is not None
        }
        self._written: dict[tuple[str, str, str], datetime] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        now = self.clock.now()
        for rt in self._types.values():
            for stored in self.service.store.list(rt.storage_key):
                meta = stored.body.get("metadata") or {}
                key = (rt.storage_key, str(meta.get("namespace", "")), str(meta.get("name")))
                self._written[key] = min(last_written(stored.body) or now, now)
        self.service.store.hub.add_listener(self._on_change)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="event-expiry")

    async def stop(self) -> None:
        self.service.store.hub.remove_listener(self._on_change)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_change(self, event: Event) -> None:
        if event.resource not in self._types:  # every write of the store passes here
            return
        key = (event.resource, event.namespace, event.name)
        if event.type == "DELETED":
            self._written.pop(key, None)
        else:
            self._written[key] = self.clock.now()

    def sweep(self) -> int:
        """Delete every Event not written for the TTL; how many went."""
        now = self.clock.now()
        due = [key for key, written in self._written.items() if now - written >= self.ttl]
        gone = 0
        for storage_key, namespace, name in due:
            try:
                self.service.delete(self._types[storage_key], namespace, name)
            except ApiError as e:
                if e.code != 404:
                    raise
                self._written.pop((storage_key, namespace, name), None)
                continue
            gone += 1
        return gone

    async def _run(self) -> None:
        while True:
            try:
                gone = self.sweep()
                if gone:
                    log.debug("event expiry: %d Events older than %s deleted", gone, self.ttl)
            except Exception:  # one bad round must not end expiry for good
                log.exception("event expiry: sweep failed")
            await self.clock.sleep(self.interval)
