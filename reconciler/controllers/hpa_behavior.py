"""From a metric's proposal to the replicas an HPA may set now: stabilization and rate. Pure.

The proposal (`hpa_math`) is what the metrics ask for this instant; acting on each one would
flap. As upstream's controller does, two things stand between it and the target:

- **stabilization**: every proposal is remembered with its time; a scale-down goes no lower
  than the highest proposal of the scale-down window (300 s by default), a scale-up no
  higher than the lowest of the scale-up window (0 s by default: at once);
- **rate**: the scaling policies bound how far the replicas may move within a period,
  counting the moves already made in it (`History`). Scale-up defaults: +100% or +4 pods
  per 15 s, whichever allows more (selectPolicy Max); scale-down: -100% per 15 s.

An HPA without `spec.behavior` takes upstream's older path (`normalize_legacy`): the same
300 s scale-down window, and a scale-up bounded to max(2 x current, 4) per step.

Concrete example (defaults): 2 replicas, the metrics ask for 12. The up window is 0 s, so
12 stands; the policies allow max(2 + 4, ceil(2 x 2)) = 6, and the HPA scales to 6
(ScalingLimited True, ScaleUpLimit). Fifteen seconds later the 4 added pods have left the
period: from 6 the next step allows max(10, 12) = 12.

`History` is per HPA and kept in memory (upstream does the same: a restart forgets it and
the windows start empty).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "DOWNSCALE_STABILIZATION",
    "Behavior",
    "History",
    "Normalized",
    "Recommendation",
    "ScaleEvent",
    "ScalingPolicy",
    "ScalingRules",
    "behavior_from_spec",
    "normalize_legacy",
    "normalize_with_behavior",
    "record_scale",
]

JSONDict = dict[str, Any]

DOWNSCALE_STABILIZATION = 300
"""--horizontal-pod-autoscaler-downscale-stabilization, in seconds."""
_LEGACY_UP_FACTOR = 2.0
_LEGACY_UP_MINIMUM = 4.0


@dataclass(frozen=True)
class ScalingPolicy:
    type: str  # Pods | Percent
    value: int
    period_seconds: int


@dataclass(frozen=True)
class ScalingRules:
    stabilization_window_seconds: int
    select_policy: str  # Max | Min | Disabled
    policies: tuple[ScalingPolicy, ...]


@dataclass(frozen=True)
class Behavior:
    scale_up: ScalingRules
    scale_down: ScalingRules


@dataclass(frozen=True)
class Recommendation:
    replicas: int
    at: datetime


@dataclass(frozen=True)
class ScaleEvent:
    change: int
    at: datetime
    outdated: bool = False


@dataclass(frozen=True)
class History:
    """What one HPA recommended and did recently (the windows' and periods' memory)."""

    recommendations: tuple[Recommendation, ...] = ()
    scale_up: tuple[ScaleEvent, ...] = ()
    scale_down: tuple[ScaleEvent, ...] = ()


@dataclass(frozen=True)
class Normalized:
    """The replicas to set, the AbleToScale reason/message (stabilized or not) and the
    ScalingLimited status/reason/message (bounded by min/max or a rate, or not)."""

    replicas: int
    able_reason: str
    able_message: str
    limited: bool
    limited_reason: str
    limited_message: str
    history: History = field(default_factory=History)


_UP_DEFAULT = ScalingRules(
    0, "Max", (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15))
)
_DOWN_DEFAULT_POLICIES = (ScalingPolicy("Percent", 100, 15),)


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _rules(
    spec: Any, default_window: int, default_policies: tuple[ScalingPolicy, ...]
) -> ScalingRules:
    spec = spec if isinstance(spec, dict) else {}
    policies = tuple(
        ScalingPolicy(str(p.get("type")), _int(p.get("value"), 0), _int(p.get("periodSeconds"), 0))
        for p in spec.get("policies") or []
        if isinstance(p, dict)
    )
    return ScalingRules(
        _int(spec.get("stabilizationWindowSeconds"), default_window),
        str(spec.get("selectPolicy") or "Max"),
        policies or default_policies,
    )


def behavior_from_spec(
    behavior: Any, downscale_window: int = DOWNSCALE_STABILIZATION
) -> Behavior | None:
    """`spec.behavior` with upstream's defaults filled in; None when it is absent (the
    legacy path)."""
    if not isinstance(behavior, dict):
        return None
    return Behavior(
        _rules(
            behavior.get("scaleUp"), _UP_DEFAULT.stabilization_window_seconds, _UP_DEFAULT.policies
        ),
        _rules(behavior.get("scaleDown"), downscale_window, _DOWN_DEFAULT_POLICIES),
    )


# -- stabilization -----------------------------------------------------------------------


def _remember(
    recs: tuple[Recommendation, ...], old_index: int | None, new: Recommendation
) -> tuple[Recommendation, ...]:
    """Add `new`, reusing one slot that fell out of every window (the list stays short)."""
    if old_index is None:
        return (*recs, new)
    return tuple(new if i == old_index else r for i, r in enumerate(recs))


def _stabilize_legacy(
    history: History, desired: int, now: datetime, window: int
) -> tuple[int, History]:
    cutoff = now - timedelta(seconds=window)
    highest, old = desired, None
    for i, rec in enumerate(history.recommendations):
        if rec.at < cutoff:
            old = i
        elif rec.replicas > highest:
            highest = rec.replicas
    recs = _remember(history.recommendations, old, Recommendation(desired, now))
    return highest, replace(history, recommendations=recs)


def _stabilize(
    history: History, behavior: Behavior, current: int, desired: int, now: datetime
) -> tuple[int, History]:
    up_cutoff = now - timedelta(seconds=behavior.scale_up.stabilization_window_seconds)
    down_cutoff = now - timedelta(seconds=behavior.scale_down.stabilization_window_seconds)
    up, down, old = desired, desired, None
    for i, rec in enumerate(history.recommendations):
        if rec.at > up_cutoff:
            up = min(up, rec.replicas)
        if rec.at > down_cutoff:
            down = max(down, rec.replicas)
        if rec.at < up_cutoff and rec.at < down_cutoff:
            old = i
    stabilized = min(max(current, up), down)
    recs = _remember(history.recommendations, old, Recommendation(desired, now))
    return stabilized, replace(history, recommendations=recs)


# -- rate --------------------------------------------------------------------------------


def _changed_within(events: tuple[ScaleEvent, ...], period: int, now: datetime) -> int:
    cutoff = now - timedelta(seconds=period)
    return sum(e.change for e in events if e.at > cutoff)


def _up_limit(current: int, history: History, rules: ScalingRules, now: datetime) -> int:
    if rules.select_policy == "Disabled":
        return current
    pick = min if rules.select_policy == "Min" else max
    result: int | None = None
    for policy in rules.policies:
        start = (
            current
            - _changed_within(history.scale_up, policy.period_seconds, now)
            + _changed_within(history.scale_down, policy.period_seconds, now)
        )
        if policy.type == "Pods":
            proposed = start + policy.value
        else:  # Percent: rounded up, or a small target could never grow
            proposed = math.ceil(start * (1 + policy.value / 100))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


def _down_limit(current: int, history: History, rules: ScalingRules, now: datetime) -> int:
    if rules.select_policy == "Disabled":
        return current
    pick = max if rules.select_policy == "Min" else min
    result: int | None = None
    for policy in rules.policies:
        start = (
            current
            - _changed_within(history.scale_up, policy.period_seconds, now)
            + _changed_within(history.scale_down, policy.period_seconds, now)
        )
        if policy.type == "Pods":
            proposed = start - policy.value
        else:
            proposed = int(start * (1 - policy.value / 100))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


_WITHIN = ("DesiredWithinRange", "the desired count is within the acceptable range")
_TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum replica count")
_TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")
_UP_RATE = (
    "ScaleUpLimit",
    "the desired replica count is increasing faster than the maximum scale rate",
)
_DOWN_RATE = (
    "ScaleDownLimit",
    "the desired replica count is decreasing faster than the maximum scale rate",
)
_READY = ("ReadyForNewScale", "recommended size matches current size")
_UP_STABILIZED = (
    "ScaleUpStabilized",
    "recent recommendations were lower than current one, applying the lowest recent recommendation",
)
_DOWN_STABILIZED = (
    "ScaleDownStabilized",
    "recent recommendations were higher than current one, applying the highest recent "
    "recommendation",
)


def _bounded(
    behavior: Behavior,
    history: History,
    current: int,
    desired: int,
    minimum: int,
    maximum: int,
    now: datetime,
) -> tuple[int, tuple[str, str]]:
    if desired > current:
        limit = max(_up_limit(current, history, behavior.scale_up, now), current)
        ceiling, why = (limit, _UP_RATE) if maximum > limit else (maximum, _TOO_MANY)
        if desired > ceiling:
            return ceiling, why
    elif desired < current:
        limit = min(_down_limit(current, history, behavior.scale_down, now), current)
        floor, why = (limit, _DOWN_RATE) if minimum < limit else (minimum, _TOO_FEW)
        if desired < floor:
            return floor, why
    return desired, _WITHIN


def normalize_with_behavior(
    history: History,
    behavior: Behavior,
    current: int,
    desired: int,
    minimum: int,
    maximum: int,
    now: datetime,
) -> Normalized:
    """Stabilize `desired`, then hold it to min/max and the policies' rate."""
    stabilized, history = _stabilize(history, behavior, current, desired, now)
    able = _READY
    if stabilized != desired:
        able = _UP_STABILIZED if desired >= current else _DOWN_STABILIZED
    replicas, limited = _bounded(behavior, history, current, stabilized, minimum, maximum, now)
    return Normalized(replicas, *able, replicas != stabilized, *limited, history=history)


def normalize_legacy(
    history: History,
    current: int,
    desired: int,
    minimum: int,
    maximum: int,
    now: datetime,
    window: int = DOWNSCALE_STABILIZATION,
) -> Normalized:
    """Without `spec.behavior`: the scale-down window, min/max, and at most
    max(2 x current, 4) replicas per step up."""
    stabilized, history = _stabilize_legacy(history, desired, now, window)
    able = _READY if stabilized == desired else _DOWN_STABILIZED
    up_limit = int(max(_LEGACY_UP_FACTOR * current, _LEGACY_UP_MINIMUM))
    ceiling, why = (up_limit, _UP_RATE) if maximum > up_limit else (maximum, _TOO_MANY)
    replicas, limited = stabilized, _WITHIN
    if stabilized < minimum:
        replicas, limited = minimum, _TOO_FEW
    elif stabilized > ceiling:
        replicas, limited = ceiling, why
    return Normalized(replicas, *able, replicas != stabilized, *limited, history=history)


def _longest_period(rules: ScalingRules) -> int:
    return max((p.period_seconds for p in rules.policies), default=0)


def _add_event(
    events: tuple[ScaleEvent, ...], change: int, longest: int, now: datetime
) -> tuple[ScaleEvent, ...]:
    """Add a scale event, reusing the slot of one older than every policy's period."""
    cutoff = now - timedelta(seconds=longest)
    marked = tuple(replace(e, outdated=e.outdated or e.at < cutoff) for e in events)
    old = next((i for i in range(len(marked) - 1, -1, -1) if marked[i].outdated), None)
    new = ScaleEvent(change, now)
    if old is None:
        return (*marked, new)
    return tuple(new if i == old else e for i, e in enumerate(marked))


def record_scale(
    history: History, behavior: Behavior | None, before: int, after: int, now: datetime
) -> History:
    """Remember a rescale that happened, for the policies' periods (only with a behavior:
    the legacy path does not count them)."""
    if behavior is None or before == after:
        return history
    if after > before:
        longest = _longest_period(behavior.scale_up)
        return replace(history, scale_up=_add_event(history.scale_up, after - before, longest, now))
    longest = _longest_period(behavior.scale_down)
    return replace(history, scale_down=_add_event(history.scale_down, before - after, longest, now))
