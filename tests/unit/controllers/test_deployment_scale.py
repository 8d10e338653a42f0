"""Scaling events of a Deployment: `kubectl scale` (or an autoscaler) between and during
rollouts reaches the ReplicaSets at once, shared out in proportion mid-rollout."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reconciler.controllers.deployment import plan
from reconciler.controllers.deployment_scale import (
    active_or_latest,
    is_scaling_event,
    proportional_sizes,
)
from reconciler.controllers.deployment_util import DESIRED_REPLICAS, MAX_REPLICAS

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def rs(
    name: str,
    replicas: int,
    desired: int | None,
    bound: int | None,
    *,
    second: int = 0,
    available: int | None = None,
) -> dict[str, Any]:
    annotations = {}
    if desired is not None:
        annotations[DESIRED_REPLICAS] = str(desired)
    if bound is not None:
        annotations[MAX_REPLICAS] = str(bound)
    return {
        "metadata": {
            "name": name,
            "annotations": annotations,
            "creationTimestamp": f"2026-01-01T00:00:{second:02d}Z",
        },
        "spec": {"replicas": replicas},
        "status": {"availableReplicas": replicas if available is None else available},
    }


def size(r: dict[str, Any]) -> int:
    return int(r["spec"]["replicas"])


def test_a_scaling_event_is_an_active_replicaset_sized_for_another_count() -> None:
    assert is_scaling_event(5, [rs("a", 3, 3, 4)], size)
    assert not is_scaling_event(3, [rs("a", 3, 3, 4)], size)
    # Idle ReplicaSets and those without the annotation (adopted ones) say nothing.
    assert not is_scaling_event(5, [rs("a", 0, 3, 4), rs("b", 5, None, None)], size)


def test_one_active_replicaset_takes_every_replica() -> None:
    new, old = rs("new", 3, 3, 4, second=2), rs("old", 0, 3, 4, second=1)
    assert proportional_sizes(1, 1, new, [old], True, size) == {"new": 1}
    assert proportional_sizes(7, 2, new, [old], False, size) == {"new": 7}


def test_with_none_active_the_newest_takes_them() -> None:
    older, newer = rs("older", 0, 2, 3, second=1), rs("newer", 0, 2, 3, second=5)
    assert active_or_latest(None, [older, newer], size) is newer
    assert proportional_sizes(4, 1, None, [older, newer], True, size) == {"newer": 4}
    new = rs("new", 0, 2, 3, second=0)
    assert proportional_sizes(4, 1, new, [newer], True, size) == {"new": 4}


def test_scaling_up_mid_rollout_shares_in_proportion() -> None:
    # replicas 10, maxSurge 3: old 8 and new 5 pods; scaled to 15, the bound is 18.
    old = rs("old", 8, 10, 13, second=1)
    new = rs("new", 5, 10, 13, second=2)
    assert proportional_sizes(15, 3, new, [old], True, size) == {"old": 11, "new": 7}


def test_scaling_down_mid_rollout_shares_in_proportion() -> None:
    old = rs("old", 8, 10, 13, second=1)
    new = rs("new", 5, 10, 13, second=2)
    assert proportional_sizes(5, 3, new, [old], True, size) == {"old": 5, "new": 3}


def test_what_rounding_leaves_goes_to_the_first_in_order() -> None:
    # Three ReplicaSets of 3 sized for a bound of 9: to a bound of 10 each share is
    # round(3 * 10 / 9) - 3 = 0, so the one pod left goes to the first in order: on a tie
    # the newest when adding, the oldest when removing.
    a, b, c = (rs(n, 3, 8, 9, second=s) for n, s in (("a", 1), ("b", 2), ("c", 3)))
    assert proportional_sizes(9, 1, c, [a, b], True, size) == {"c": 4, "b": 3, "a": 3}
    assert proportional_sizes(7, 1, c, [a, b], True, size) == {"a": 2, "b": 3, "c": 3}


def test_scaling_to_zero_empties_every_replicaset() -> None:
    old, new = rs("old", 8, 10, 13, second=1), rs("new", 5, 10, 13, second=2)
    assert proportional_sizes(0, 3, new, [old], True, size) == {"old": 0, "new": 0}


def test_a_saturated_new_replicaset_sends_the_old_ones_to_zero() -> None:
    new = rs("new", 6, 6, 8, second=2)
    old = rs("old", 2, 4, 5, second=1)
    assert proportional_sizes(6, 2, new, [old], True, size) == {"old": 0}


def test_recreate_has_no_proportional_scaling() -> None:
    old, new = rs("old", 2, 4, 4, second=1), rs("new", 2, 4, 4, second=2)
    assert proportional_sizes(6, 0, new, [old], False, size) == {}


def _deployment(replicas: int, image: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": 2},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
        "status": {},
    }


def _owned(
    d: dict[str, Any], image: str, replicas: int, sized_for: int, revision: int
) -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": "web", "pod-template-hash": image[-1]}},
        "spec": {"containers": [{"name": "c", "image": image}]},
    }
    return {
        "metadata": {
            "name": f"web-{image[-1]}",
            "namespace": "default",
            "labels": template["metadata"]["labels"],
            "annotations": {
                "deployment.kubernetes.io/revision": str(revision),
                DESIRED_REPLICAS: str(sized_for),
                MAX_REPLICAS: str(sized_for + 1),
            },
            "creationTimestamp": f"2026-01-01T00:00:0{revision}Z",
            "ownerReferences": [
                {"kind": "Deployment", "name": "web", "uid": "d-uid", "controller": True}
            ],
        },
        "spec": {"replicas": replicas, "template": template},
        "status": {"replicas": replicas, "availableReplicas": replicas},
    }


def test_plan_scales_down_a_deployment_that_has_rolled_out_before() -> None:
    """The bug this module fixed: with an old ReplicaSet left at 0, `kubectl scale` down
    went through the rollout arithmetic, which never shrinks the new ReplicaSet."""
    d = _deployment(1, "web:2")
    old = _owned(d, "web:1", 0, 3, 1)
    new = _owned(d, "web:2", 3, 3, 2)
    decided = plan(d, [old, new], [], NOW)
    assert decided.scale == {"web-2": 1}
    assert decided.create is None


def test_plan_scales_mid_rollout_before_it_rolls_on() -> None:
    d = _deployment(8, "web:2")
    old = _owned(d, "web:1", 3, 4, 1)
    new = _owned(d, "web:2", 2, 4, 2)
    decided = plan(d, [old, new], [], NOW)
    # Bound 4 + 1 = 5 becomes 8 + 1 = 9: old 3 * 9 / 5 = 5.4 → 5, new 2 * 9 / 5 = 3.6 → 4.
    assert decided.scale == {"web-1": 5, "web-2": 4}


def test_plan_with_annotations_up_to_date_rolls_on() -> None:
    d = _deployment(4, "web:2")
    old = _owned(d, "web:1", 3, 4, 1)
    new = _owned(d, "web:2", 2, 4, 2)
    decided = plan(d, [old, new], [], NOW)
    # No scaling event: the rollout takes old down within maxUnavailable 0, total 5.
    assert decided.scale == {"web-1": 2}
