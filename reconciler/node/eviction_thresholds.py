"""Eviction thresholds as the kubelet takes them: `--eviction-hard`, `--eviction-soft`,
`--eviction-soft-grace-period`. Pure.

A threshold is a signal, the operator `<` and a quantity (`100Mi`) or a percentage of the
signal's capacity (`10%`); it is met when what is available falls below it. Hard thresholds
act at once; soft ones only once they have been met for their grace period, which every
soft threshold must have. The signals and what each is about:

| signal | resource (in messages) | node condition |
|---|---|---|
| `memory.available` | memory | MemoryPressure |
| `nodefs.available`, `imagefs.available` | ephemeral-storage | DiskPressure |
| `nodefs.inodesFree`, `imagefs.inodesFree` | inodes | DiskPressure |
| `pid.available` | pids | PIDPressure |

Worked example: `memory.available<10%` on a node with 16Gi of memory is met while less
than 1638.4Mi is available; `memory.available<100Mi` while less than 100Mi is.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal

from reconciler.durations import parse_go_duration
from reconciler.quantity import QuantityError, format_quantity, parse_quantity

__all__ = [
    "CONDITION_OF",
    "DEFAULT_HARD",
    "RESOURCE_OF",
    "SIGNALS",
    "EvictionConfig",
    "Observation",
    "Threshold",
    "ThresholdError",
    "eviction_config",
    "parse_duration",
    "parse_grace_periods",
    "parse_thresholds",
    "show_amount",
]

RESOURCE_OF = {
    "memory.available": "memory",
    "nodefs.available": "ephemeral-storage",
    "imagefs.available": "ephemeral-storage",
    "nodefs.inodesFree": "inodes",
    "imagefs.inodesFree": "inodes",
    "pid.available": "pids",
}
CONDITION_OF = {
    "memory.available": "MemoryPressure",
    "nodefs.available": "DiskPressure",
    "imagefs.available": "DiskPressure",
    "nodefs.inodesFree": "DiskPressure",
    "imagefs.inodesFree": "DiskPressure",
    "pid.available": "PIDPressure",
}
SIGNALS = tuple(RESOURCE_OF)
DEFAULT_HARD = (
    "memory.available<100Mi,nodefs.available<10%,imagefs.available<15%,"
    "nodefs.inodesFree<5%,imagefs.inodesFree<5%"
)
"""The kubelet's default `--eviction-hard` on Linux."""

_ENTRY = re.compile(r"^\s*([A-Za-z.]+)\s*(<=|>=|<|>|=)\s*(\S+)\s*$")


class ThresholdError(ValueError):
    """A threshold, grace period or duration that cannot be used (the message names it)."""


@dataclass(frozen=True)
class Observation:
    """One signal as measured: what is available of how much there is."""

    available: int
    capacity: int


@dataclass(frozen=True)
class Threshold:
    signal: str
    text: str
    """The value as written (`100Mi`, `10%`): what eviction messages quote for a quantity."""
    quantity: int | None = None
    percentage: Decimal | None = None
    """A fraction of the capacity (0.1 for `10%`)."""
    grace_period_s: float = 0.0
    hard: bool = True

    @property
    def resource(self) -> str:
        return RESOURCE_OF[self.signal]

    @property
    def condition(self) -> str:
        return CONDITION_OF[self.signal]

    def value(self, capacity: int) -> int:
        """The threshold in the signal's unit, for a node with `capacity` of it."""
        if self.quantity is not None:
            return self.quantity
        assert self.percentage is not None
        return math.floor(Decimal(capacity) * self.percentage)

    def met(self, observation: Observation) -> bool:
        return observation.available < self.value(observation.capacity)

    def shown(self, capacity: int) -> str:
        """The threshold as the kubelet's messages show it: as written for a quantity, the
        quantity it comes to on this node for a percentage."""
        if self.quantity is not None:
            return self.text
        return show_amount(self.signal, self.value(capacity))


def show_amount(signal: str, amount: int) -> str:
    """An amount of a signal's unit as a Kubernetes quantity: bytes with binary suffixes
    (`1536Mi`), counts plain (`1200k`)."""
    return format_quantity(Decimal(amount), binary=RESOURCE_OF[signal] in _BYTES)


_BYTES = ("memory", "ephemeral-storage")


def _parse_one(entry: str, hard: bool) -> Threshold:
    match = _ENTRY.match(entry)
    if match is None:
        raise ThresholdError(
            f"invalid eviction threshold {entry.strip()!r}: expected <signal><<value>, "
            "e.g. memory.available<100Mi"
        )
    signal, operator, value = match.groups()
    if signal not in RESOURCE_OF:
        raise ThresholdError(
            f"unsupported eviction signal {signal!r} in {entry.strip()!r} "
            f"(supported: {', '.join(SIGNALS)})"
        )
    if operator != "<":
        raise ThresholdError(
            f"invalid eviction threshold {entry.strip()!r}: the only operator is '<'"
        )
    if value.endswith("%"):
        try:
            percent = Decimal(value[:-1])
        except ArithmeticError:
            percent = Decimal(-1)
        if not percent.is_finite() or percent <= 0 or percent > 100:
            raise ThresholdError(
                f"eviction percentage threshold {signal} must be > 0% and <= 100%: {value}"
            )
        return Threshold(signal, value, percentage=percent / 100, hard=hard)
    try:
        amount = parse_quantity(value)
    except QuantityError as exc:
        raise ThresholdError(f"invalid eviction threshold {entry.strip()!r}: {exc}") from exc
    if amount < 0:
        raise ThresholdError(f"eviction threshold {signal} must be positive: {value}")
    return Threshold(signal, value, quantity=math.ceil(amount), hard=hard)


def parse_thresholds(
    text: str, *, hard: bool = True, grace_periods: dict[str, float] | None = None
) -> tuple[Threshold, ...]:
    """`memory.available<100Mi,nodefs.available<10%` -> thresholds; an empty text: none.
    Soft thresholds (`hard=False`) take their grace periods from `grace_periods` and each
    must have one; a signal given twice is refused."""
    found: list[Threshold] = []
    seen: set[str] = set()
    for entry in (text or "").split(","):
        if not entry.strip():
            continue
        threshold = _parse_one(entry, hard)
        if threshold.signal in seen:
            raise ThresholdError(f"eviction signal {threshold.signal} is given twice")
        seen.add(threshold.signal)
        if not hard:
            grace = (grace_periods or {}).get(threshold.signal)
            if grace is None:
                raise ThresholdError(
                    f"soft eviction threshold {threshold.signal} has no grace period "
                    "(--eviction-soft-grace-period)"
                )
            threshold = Threshold(
                threshold.signal,
                threshold.text,
                threshold.quantity,
                threshold.percentage,
                grace,
                hard=False,
            )
        found.append(threshold)
    unused = set(grace_periods or {}) - seen
    if not hard and unused:
        raise ThresholdError(
            f"grace period for {', '.join(sorted(unused))} without a soft eviction threshold"
        )
    return tuple(found)


def parse_duration(text: str) -> float:
    """Seconds in a Go duration (`1m30s`, `0s`, `500ms`)."""
    try:
        return parse_go_duration(text)
    except ValueError as e:
        raise ThresholdError(str(e)) from None


def parse_grace_periods(text: str) -> dict[str, float]:
    """`memory.available=1m30s,nodefs.available=2m` -> seconds per signal."""
    periods: dict[str, float] = {}
    for entry in (text or "").split(","):
        if not entry.strip():
            continue
        signal, sep, value = entry.partition("=")
        signal = signal.strip()
        if not sep:
            raise ThresholdError(
                f"invalid eviction grace period {entry.strip()!r}: expected <signal>=<duration>"
            )
        if signal not in RESOURCE_OF:
            raise ThresholdError(f"unsupported eviction signal {signal!r} in {entry.strip()!r}")
        seconds = parse_duration(value)
        if seconds < 0:
            raise ThresholdError(f"eviction grace period for {signal} must not be negative")
        periods[signal] = seconds
    return periods


@dataclass(frozen=True)
class EvictionConfig:
    """The kubelet's eviction settings, with its defaults."""

    thresholds: tuple[Threshold, ...] = parse_thresholds(DEFAULT_HARD)
    transition_period_s: float = 300.0
    """`--eviction-pressure-transition-period`: how long a condition holds after its
    threshold is no longer met."""
    max_pod_grace_period_s: float = 0.0
    """`--eviction-max-pod-grace-period`: the longest a soft eviction waits for a pod."""
    interval_s: float = 10.0
    """How often the signals are measured (the kubelet's housekeeping interval)."""


def eviction_config(
    hard: str,
    soft: str = "",
    soft_grace_periods: str = "",
    transition_period: str = "5m",
    max_pod_grace_period_s: float = 0.0,
    interval: str = "10s",
) -> EvictionConfig:
    """The settings from `recon serve`'s flags (the kubelet's names and syntax)."""
    graces = parse_grace_periods(soft_grace_periods)
    thresholds = parse_thresholds(hard) + parse_thresholds(soft, hard=False, grace_periods=graces)
    seconds = parse_duration(interval)
    if seconds <= 0:
        raise ThresholdError(f"the housekeeping interval must be positive: {interval!r}")
    return EvictionConfig(
        thresholds, parse_duration(transition_period), max_pod_grace_period_s, seconds
    )
