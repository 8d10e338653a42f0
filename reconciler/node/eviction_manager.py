"""The node-pressure eviction loop: Recon's kubelet eviction manager.

Every `interval_s` (the kubelet's housekeeping interval, 10 s) it measures the signals
(`eviction_signals`), lets `PressureTracker` say which node conditions hold and which
thresholds act, and publishes the conditions (the Node's MemoryPressure, DiskPressure and
PIDPressure; the node agent's admission reads them too). When a threshold acts it records
`EvictionThresholdMet` on the Node, ranks the pods running here (`rank_for_eviction`, with
each container's memory working set read from its cgroup only now) and evicts one: the
first the pod workers accept. Like the kubelet it then waits up to 30 s for that pod to be
cleaned up before it measures again, so one round of pressure costs one pod, not all.

A hard threshold evicts with no grace period; a soft one with the pod's
`terminationGracePeriodSeconds`, capped by `--eviction-max-pod-grace-period`. Recon does
no node-level reclaim first (the kubelet deletes unused images and dead containers): the
engine is shared with whatever else the user runs on it, whose images are not Recon's to
delete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from reconciler.client.events import EventRecorder
from reconciler.clock import Clock
from reconciler.node.eviction_policy import (
    Pressure,
    PressureTracker,
    admission_refusal,
    eviction_message,
    rank_for_eviction,
)
from reconciler.node.eviction_signals import Signals
from reconciler.node.eviction_thresholds import EvictionConfig, Observation, Threshold

__all__ = ["EvictionManager"]

JSONDict = dict[str, Any]

log = logging.getLogger(__name__)

CLEANUP_TIMEOUT_S = 30.0
_CLEANUP_POLL_S = 1.0

MemoryUse = Callable[[JSONDict], Awaitable[dict[str, int]]]
"""pod -> container name -> memory working set bytes of its running containers."""


class EvictionManager:
    def __init__(
        self,
        config: EvictionConfig,
        clock: Clock,
        signals: Signals,
        *,
        pods: Callable[[], list[JSONDict]],
        memory_use: MemoryUse,
        evict: Callable[[JSONDict, str, float], bool],
        cleaned_up: Callable[[str], bool],
        recorder: EventRecorder,
        node: Callable[[], JSONDict],
        conditions_changed: Callable[[], None],
    ) -> None:
        """`pods`: the pods running here (not terminal); `evict(pod, message, grace)`:
        hand one to its worker (False: it is already going); `cleaned_up(uid)`: whether its
        containers are gone; `node`: the Node, for events; `conditions_changed`: post the
        Node's status now."""
        self.config = config
        self.clock = clock
        self.signals = signals
        self._pods = pods
        self._memory_use = memory_use
        self._evict = evict
        self._cleaned_up = cleaned_up
        self._recorder = recorder
        self._node = node
        self._conditions_changed = conditions_changed
        self.tracker = PressureTracker(config.thresholds, config.transition_period_s)
        self.conditions: frozenset[str] = frozenset()
        self._task: asyncio.Task[None] | None = None

    def admit(self, pod: JSONDict) -> str | None:
        """Why a pod new to this node is refused under the current pressure, or None."""
        return admission_refusal(pod, self.conditions)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="node-eviction")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                evicted = await self.synchronize()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("eviction manager: a round failed")
                evicted = None
            if evicted is not None:
                await self._wait_cleanup(evicted)
            else:
                await self.clock.sleep(self.config.interval_s)

    async def synchronize(self) -> str | None:
        """One round; the uid of the pod evicted, if one was."""
        if not self.config.thresholds:
            return None
        observations = await asyncio.to_thread(self.signals)
        pressure = self.tracker.observe(observations, self.clock.monotonic())
        self._publish(pressure)
        if not pressure.acting:
            return None
        threshold, observation = pressure.acting[0]
        node = self._node()
        self._recorder.record(
            node, "Warning", "EvictionThresholdMet", f"Attempting to reclaim {threshold.resource}"
        )
        return await self._evict_one(threshold, observation)

    def _publish(self, pressure: Pressure) -> None:
        if pressure.conditions != self.conditions:
            log.warning(
                "node conditions: %s", ", ".join(sorted(pressure.conditions)) or "no pressure"
            )
            self.conditions = pressure.conditions
            self._conditions_changed()

    async def _evict_one(self, threshold: Threshold, observation: Observation) -> str | None:
        pods = self._pods()
        if not pods:
            log.error("eviction thresholds are met, but no pods are running here to evict")
            return None
        use: Mapping[str, dict[str, int]] = {}
        if threshold.resource == "memory":
            use = {_uid(p): await self._memory_use(p) for p in pods}
        for pod in rank_for_eviction(pods, threshold.resource, use):
            message = eviction_message(threshold, observation, pod, use.get(_uid(pod), {}))
            grace = 0.0
            if not threshold.hard:
                wanted = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
                grace = min(float(wanted), self.config.max_pod_grace_period_s)
            if self._evict(pod, message, grace):
                meta = pod.get("metadata") or {}
                log.warning(
                    "evicted pod %s/%s: %s", meta.get("namespace"), meta.get("name"), message
                )
                return _uid(pod)
        log.error("eviction thresholds are met, but no pod could be evicted")
        return None

    async def _wait_cleanup(self, uid: str) -> None:
        waited = 0.0
        while waited < CLEANUP_TIMEOUT_S and not self._cleaned_up(uid):
            await self.clock.sleep(_CLEANUP_POLL_S)
            waited += _CLEANUP_POLL_S


def _uid(pod: JSONDict) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")
