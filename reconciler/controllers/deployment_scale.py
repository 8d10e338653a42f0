"""Scaling events of a Deployment: `replicas` changed while its ReplicaSets say otherwise.

A rollout moves pods from old ReplicaSets to the new one within the surge and unavailability
bounds; a scaling event is different: the user (or an autoscaler) changed `spec.replicas`, and
the change must reach the ReplicaSets at once, whatever the rollout's state. Each ReplicaSet
remembers the Deployment size it was last sized for (the `desired-replicas` and
`max-replicas` annotations); an active ReplicaSet whose `desired-replicas` differs from
`spec.replicas` means a scaling event (upstream's `isScalingEvent`).

What each ReplicaSet becomes (upstream's `scale`):
- one active ReplicaSet (or none: the newest) takes all the replicas;
- a new ReplicaSet already saturated at the new size: the old ones go to 0;
- mid-rollout (RollingUpdate): the difference between the new bound (`replicas + maxSurge`)
  and the pods there are is shared in proportion to each ReplicaSet's size, the largest first
  (on a tie, newer ones first when adding, older ones first when removing); what rounding
  leaves over goes to the first. Example: replicas 10, maxSurge 3, old 8 and new 5 pods,
  scaled to 15 → bound 18, 5 to add: the old gets round(8 * 18 / 13) - 8 = 3, the new 2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from reconciler.controllers.deployment_util import DESIRED_REPLICAS, MAX_REPLICAS, annotation_int

JSONDict = dict[str, Any]
Size = Callable[[JSONDict], int]


def _name(rs: JSONDict) -> str:
    return str((rs.get("metadata") or {}).get("name", ""))


def _created(rs: JSONDict) -> str:
    return str((rs.get("metadata") or {}).get("creationTimestamp", ""))


def is_scaling_event(replicas: int, replica_sets: Sequence[JSONDict], size: Size) -> bool:
    """Some active ReplicaSet was sized for another `replicas` than the Deployment's now."""
    for rs in replica_sets:
        if size(rs) <= 0:
            continue
        desired = annotation_int(rs, DESIRED_REPLICAS)
        if desired is not None and desired != replicas:
            return True
    return False


def active_or_latest(
    new_rs: JSONDict | None, old: Sequence[JSONDict], size: Size
) -> JSONDict | None:
    """The ReplicaSet that takes all the replicas: the only active one, or with none active
    the new one (else the newest old one); None when several are active."""
    every = ([new_rs] if new_rs is not None else []) + list(old)
    active = [rs for rs in every if size(rs) > 0]
    if len(active) == 1:
        return active[0]
    if active:
        return None
    if new_rs is not None:
        return new_rs
    return max(old, key=_created) if old else None


def _saturated(rs: JSONDict | None, replicas: int, size: Size) -> bool:
    if rs is None:
        return False
    available = int((rs.get("status") or {}).get("availableReplicas", 0) or 0)
    return (
        size(rs) == replicas
        and annotation_int(rs, DESIRED_REPLICAS) == replicas
        and available == replicas
    )


def _fraction(rs: JSONDict, replicas: int, surge: int, fallback_total: int, size: Size) -> int:
    """How much `rs` grows (or shrinks) if the Deployment's bound went from what `rs` was
    sized for to `replicas + surge`."""
    if replicas == 0:
        return -size(rs)
    bound = replicas + surge
    before = annotation_int(rs, MAX_REPLICAS) or fallback_total
    if before <= 0:
        return 0
    return int(size(rs) * bound / before + 0.5) - size(rs)


def proportional_sizes(
    replicas: int,
    surge: int,
    new_rs: JSONDict | None,
    old: Sequence[JSONDict],
    rolling: bool,
    size: Size,
) -> dict[str, int]:
    """The size of each ReplicaSet after a scaling event (see the module docstring). Every
    active ReplicaSet is in the answer, changed or not, so its annotations are brought up to
    date and the scaling event ends."""
    single = active_or_latest(new_rs, old, size)
    if single is not None:
        return {_name(single): replicas}
    if _saturated(new_rs, replicas, size):
        return {_name(rs): 0 for rs in old if size(rs) > 0}
    if not rolling:
        return {}
    every = ([new_rs] if new_rs is not None else []) + list(old)
    active = [rs for rs in every if size(rs) > 0]
    total = sum(size(rs) for rs in active)
    bound = replicas + surge if replicas > 0 else 0
    to_add = bound - total
    # Largest first; on a tie newer first when adding, older first when removing.
    active.sort(key=_created, reverse=to_add > 0)
    active.sort(key=size, reverse=True)
    sizes: dict[str, int] = {}
    added = 0
    for rs in active:
        step = 0
        if to_add and added != to_add:
            fraction = _fraction(rs, replicas, surge, total, size)
            left = to_add - added
            step = min(fraction, left) if to_add > 0 else max(fraction, left)
        sizes[_name(rs)] = size(rs) + step
        added += step
    if active and to_add:
        first = _name(active[0])
        sizes[first] = max(0, sizes[first] + to_add - added)
    return sizes
