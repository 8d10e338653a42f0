"""What the kubelet's eviction manager decides, from what it measured. Pure.

- `PressureTracker`: which node conditions hold (MemoryPressure, DiskPressure, PIDPressure)
  and which thresholds call for an eviction now. A condition holds while a threshold of its
  signal is met and for `--eviction-pressure-transition-period` (5m) after, so the node does
  not flap; a soft threshold acts only once it has been met for its grace period, a hard
  one at once.
- `rank_for_eviction`: which pod goes first. For memory: pods using more than they
  requested, then lower priority, then by how far over their request they are (the
  kubelet's `exceedMemoryRequests`, `priority`, `memory`). For the other signals Recon
  measures no per-pod disk or process use, so the order is by priority alone.
- `eviction_message`: the pod's status message and the Evicted event's, in the kubelet's
  words.
- `admission_refusal`: a pod arriving on a node under pressure is refused ("Pod was
  rejected: The node had condition: [DiskPressure]. "), except that under memory pressure
  alone pods that are not BestEffort, and BestEffort pods tolerating the memory-pressure
  taint, are admitted; critical pods always are.

Worked example: `memory.available<100Mi` met with 80Mi available. Pods: `a` (priority 0,
requests 64Mi, uses 200Mi), `b` (priority 1000, requests nothing, uses 10Mi), `c` (priority
0, requests 1Gi, uses 300Mi). Ranked: `b` and `a` use more than they asked for, `b` has the
higher priority, so `a` goes first, then `b`, then `c`. Its message: "The node was low on
resource: memory. Threshold quantity: 100Mi, available: 80Mi. Container app was using
200Mi, request is 64Mi, has larger consumption of memory. "
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from reconciler.controllers.nodefit import tolerates
from reconciler.node.eviction_thresholds import SIGNALS, Observation, Threshold, show_amount
from reconciler.pod_qos import qos_class
from reconciler.quantity import format_quantity, memory_bytes

__all__ = [
    "CONDITIONS",
    "CRITICAL_PRIORITY",
    "REASON",
    "Pressure",
    "PressureTracker",
    "admission_refusal",
    "eviction_message",
    "rank_for_eviction",
]

JSONDict = dict[str, Any]

REASON = "Evicted"
CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure")
CRITICAL_PRIORITY = 2_000_000_000
"""`system-cluster-critical`: pods at or above it are admitted under pressure."""
MEMORY_PRESSURE_TAINT = {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"}


@dataclass(frozen=True)
class Pressure:
    conditions: frozenset[str] = frozenset()
    """The node conditions that hold (MemoryPressure, ...)."""
    acting: tuple[tuple[Threshold, Observation], ...] = ()
    """Thresholds met past their grace period, the one to reclaim first first."""


@dataclass
class PressureTracker:
    thresholds: Sequence[Threshold]
    transition_period_s: float = 300.0
    _first_met: dict[Threshold, float] = field(default_factory=dict)
    _condition_seen: dict[str, float] = field(default_factory=dict)

    def observe(self, observations: Mapping[str, Observation], now: float) -> Pressure:
        """One round of measurements, taken at `now` (monotonic seconds). A signal that
        could not be measured counts as not met."""
        met = [
            t for t in self.thresholds if t.signal in observations and t.met(observations[t.signal])
        ]
        self._first_met = {t: self._first_met.get(t, now) for t in met}
        for threshold in met:
            self._condition_seen[threshold.condition] = now
        self._condition_seen = {
            name: seen
            for name, seen in self._condition_seen.items()
            if seen == now or now - seen < self.transition_period_s
        }
        acting = sorted(
            (t for t in met if now - self._first_met[t] >= t.grace_period_s),
            key=lambda t: SIGNALS.index(t.signal),
        )
        return Pressure(
            frozenset(self._condition_seen),
            tuple((t, observations[t.signal]) for t in acting),
        )


def _priority(pod: Mapping[str, Any]) -> int:
    value = (pod.get("spec") or {}).get("priority")
    return int(value) if isinstance(value, int) else 0


def _memory_requests(pod: Mapping[str, Any]) -> dict[str, int]:
    return {
        str(c.get("name")): memory_bytes(
            ((c.get("resources") or {}).get("requests") or {}).get("memory", 0)
        )
        for c in (pod.get("spec") or {}).get("containers") or []
    }


def rank_for_eviction(
    pods: Iterable[JSONDict], resource: str, memory_use: Mapping[str, Mapping[str, int]]
) -> list[JSONDict]:
    """The pods in the order they are evicted for `resource`. `memory_use`: pod uid ->
    container name -> working set bytes (missing: not measured, counted as 0)."""
    listed = list(pods)
    if resource != "memory":
        return sorted(listed, key=_priority)

    def key(pod: JSONDict) -> tuple[bool, int, int]:
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        used = sum((memory_use.get(uid) or {}).values())
        asked = sum(_memory_requests(pod).values())
        return (used <= asked, _priority(pod), -(used - asked))

    return sorted(listed, key=key)


def _bytes(amount: int) -> str:
    return format_quantity(Decimal(amount), binary=True)


def eviction_message(
    threshold: Threshold,
    observation: Observation,
    pod: Mapping[str, Any],
    memory_use: Mapping[str, int],
) -> str:
    """The kubelet's message for evicting `pod` to reclaim what `threshold` watches;
    `memory_use`: container name -> working set bytes."""
    resource = threshold.resource
    message = f"The node was low on resource: {resource}. "
    message += (
        f"Threshold quantity: {threshold.shown(observation.capacity)}, "
        f"available: {show_amount(threshold.signal, observation.available)}. "
    )
    if resource == "memory":
        requests = _memory_requests(pod)
        for name, asked in requests.items():
            used = memory_use.get(name)
            if used is not None and used > asked:
                message += (
                    f"Container {name} was using {_bytes(used)}, request is {_bytes(asked)}, "
                    f"has larger consumption of {resource}. "
                )
    return message


def admission_refusal(pod: Mapping[str, Any], conditions: Iterable[str]) -> str | None:
    """Why the node refuses a new pod under pressure (the kubelet's message, without its
    "Pod was rejected: " prefix), or None when it admits it."""
    holding = [c for c in CONDITIONS if c in set(conditions)]
    if not holding or _priority(pod) >= CRITICAL_PRIORITY:
        return None
    spec = pod.get("spec") or {}
    if holding == ["MemoryPressure"]:
        if qos_class(spec) != "BestEffort":
            return None
        if tolerates(spec.get("tolerations") or [], MEMORY_PRESSURE_TAINT):
            return None
    return f"The node had condition: [{' '.join(holding)}]. "
