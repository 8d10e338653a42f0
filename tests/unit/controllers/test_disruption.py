"""The disruption controller: budget arithmetic as tables, then the controller keeping a
budget's status current against the in-process API (pods made ready by hand: no node)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reconciler.clock import ManualClock, rfc3339
from reconciler.controllers.disruption import (
    BudgetError,
    DisruptionController,
    Owner,
    count_healthy,
    expected_and_desired,
    failed_status,
    live_disruptions,
    plan_status,
    scaled_value,
)

JSONDict = dict[str, Any]

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def pod(
    name: str,
    ready: bool = True,
    owner: str | None = "web-rs",
    phase: str = "Running",
    deleting: bool = False,
    labels: dict[str, str] | None = None,
) -> JSONDict:
    meta: JSONDict = {"name": name, "namespace": "default", "labels": labels or {"app": "web"}}
    if owner:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": owner,
                "uid": f"uid-{owner}",
                "controller": True,
            }
        ]
    if deleting:
        meta["deletionTimestamp"] = rfc3339(NOW)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pdb(name: str = "web", generation: int = 1, **spec: Any) -> JSONDict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": "default", "generation": generation},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
    }


def scale_of(replicas: int) -> Any:
    return lambda p: Owner("uid-deploy", replicas)


# -- arithmetic ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "total", "count"),
    [(2, 10, 2), (0, 3, 0), ("50%", 3, 2), ("34%", 3, 2), ("33%", 3, 1), ("100%", 7, 7)],
)
def test_scaled_values_round_up(value: Any, total: int, count: int) -> None:
    assert scaled_value("spec.minAvailable", value, total) == count


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2", "spec.minAvailable: Invalid value: '2': must be an integer or a percentage"),
        ("half%", "must be an integer or a percentage"),
        (-1, "spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"),
        ("120%", "must be no more than 100%"),
        (True, "must be an integer or a percentage"),
    ],
)
def test_bad_counts_name_the_field(value: Any, message: str) -> None:
    with pytest.raises(BudgetError, match=message):
        scaled_value("spec.minAvailable", value, 3)


PODS = [pod("a"), pod("b"), pod("c", ready=False)]


@pytest.mark.parametrize(
    ("spec", "replicas", "expected", "desired"),
    [
        ({"minAvailable": 2}, 5, 3, 2),  # a number: over the matching pods, scale unused
        ({"minAvailable": "50%"}, 5, 5, 3),  # a percentage: of the controller's scale
        ({"maxUnavailable": 1}, 5, 5, 4),
        ({"maxUnavailable": "25%"}, 4, 4, 3),
        ({"maxUnavailable": 9}, 3, 3, 0),  # never below 0
        ({}, 3, 0, 0),  # neither: nothing expected, nothing may go
    ],
)
def test_expected_and_desired(spec: JSONDict, replicas: int, expected: int, desired: int) -> None:
    assert expected_and_desired(spec, PODS, scale_of(replicas)) == (expected, desired)


def test_each_controller_counts_once_and_unowned_pods_not_at_all() -> None:
    owners = {"uid-a": Owner("uid-a", 3), "uid-b": Owner("uid-b", 2)}
    pods = [pod("a1", owner="a"), pod("a2", owner="a"), pod("b1", owner="b"), pod("x", owner=None)]

    def owner_of(p: Any) -> Owner:
        return owners[p["metadata"]["ownerReferences"][0]["uid"]]

    assert expected_and_desired({"maxUnavailable": 1}, pods, owner_of) == (5, 4)


def test_a_pod_whose_controller_is_missing_fails_the_budget() -> None:
    with pytest.raises(BudgetError, match='found no controllers for pod "a"'):
        expected_and_desired({"maxUnavailable": 1}, [pod("a")], lambda p: None)
    with pytest.raises(BudgetError, match="cannot be both set"):
        expected_and_desired({"minAvailable": 1, "maxUnavailable": 1}, [], lambda p: None)


def test_disrupted_pods_are_kept_until_deleted_or_timed_out() -> None:
    recorded = {
        "fresh": rfc3339(NOW - timedelta(seconds=30)),
        "old": rfc3339(NOW - timedelta(seconds=121)),
        "going": rfc3339(NOW),
        "gone": rfc3339(NOW),
        "garbled": "yesterday",
    }
    pods = [pod("fresh"), pod("old"), pod("going", deleting=True), pod("garbled")]
    live, first_expiry = live_disruptions(recorded, pods, NOW)
    assert live == {"fresh": recorded["fresh"]}
    assert first_expiry == NOW + timedelta(seconds=90)


def test_healthy_pods_are_ready_active_and_not_being_evicted() -> None:
    pods = [
        pod("ok"),
        pod("unready", ready=False),
        pod("deleting", deleting=True),
        pod("done", phase="Succeeded"),
        pod("evicted"),
    ]
    assert count_healthy(pods, {"evicted": rfc3339(NOW)}) == 1


def test_the_status_of_a_budget_at_its_limit() -> None:
    """3 replicas, minAvailable 2, one approved eviction: 2 healthy, none may go."""
    budget = pdb(minAvailable=2)
    budget["status"] = {"disruptedPods": {"a": rfc3339(NOW - timedelta(seconds=10))}}
    plan = plan_status(budget, [pod("a"), pod("b"), pod("c")], scale_of(3), NOW)
    assert plan.status == {
        "observedGeneration": 1,
        "disruptionsAllowed": 0,
        "currentHealthy": 2,
        "desiredHealthy": 2,
        "expectedPods": 3,
        "disruptedPods": {"a": rfc3339(NOW - timedelta(seconds=10))},
        "conditions": [
            {
                "type": "DisruptionAllowed",
                "status": "False",
                "reason": "InsufficientPods",
                "message": "",
                "observedGeneration": 1,
                "lastTransitionTime": rfc3339(NOW),
            }
        ],
    }
    assert plan.recheck_after == 110


def test_no_pods_yet_means_no_disruption_even_with_min_available_zero() -> None:
    plan = plan_status(pdb(minAvailable=0), [], scale_of(0), NOW)
    assert plan.status["disruptionsAllowed"] == 0 and plan.recheck_after is None


def test_the_condition_moves_only_when_its_status_changes() -> None:
    budget = pdb(minAvailable=1)
    first = plan_status(budget, [pod("a"), pod("b")], scale_of(2), NOW).status
    assert first["conditions"][0]["reason"] == "SufficientPods"
    budget["status"] = first
    later = NOW + timedelta(minutes=5)
    again = plan_status(budget, [pod("a"), pod("b")], scale_of(2), later).status
    assert again == first  # nothing changed: nothing to write
    budget["status"] = again
    short = plan_status(budget, [pod("a")], scale_of(2), later).status
    assert short["conditions"][0]["lastTransitionTime"] == rfc3339(later)


def test_failing_safe_keeps_the_numbers_and_says_why() -> None:
    budget = pdb(minAvailable="x")
    budget["status"] = {"observedGeneration": 1, "disruptionsAllowed": 2, "currentHealthy": 3}
    status = failed_status(budget, "spec.minAvailable: bad", NOW)
    assert status["disruptionsAllowed"] == 0 and status["currentHealthy"] == 3
    (condition,) = status["conditions"]
    assert condition["reason"] == "SyncFailed" and condition["message"] == "spec.minAvailable: bad"


# -- the controller --------------------------------------------------------------------------


async def _ready_pod(p: Any, name: str, owner: JSONDict | None, ready: bool = True) -> JSONDict:
    body = pod(name, ready=ready, owner=None)
    body.pop("status")
    if owner is not None:
        body["metadata"]["ownerReferences"] = [
            {
                "apiVersion": owner["apiVersion"],
                "kind": owner["kind"],
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
            }
        ]
    created = await p.client.create(body)
    created["status"] = pod(name, ready=ready)["status"]
    return dict(await p.client.update(created, subresource="status"))


async def _status(p: Any, name: str = "web") -> JSONDict:
    got = await p.client.get("policy/v1", "PodDisruptionBudget", name, "default")
    return dict(got.get("status") or {})


async def _deployment_and_rs(p: Any, replicas: int) -> tuple[JSONDict, JSONDict]:
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    spec = {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}}
    deploy = await p.client.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {**spec, "template": template},
        }
    )
    rs = await p.client.create(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": "web-1",
                "namespace": "default",
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": "web",
                        "uid": deploy["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {**spec, "template": template},
        }
    )
    return deploy, rs


async def test_the_controller_counts_pods_and_follows_them(plane: Any) -> None:
    p = await plane(DisruptionController)
    for name in ("web-a", "web-b", "web-c"):
        await _ready_pod(p, name, None)
    await p.client.create(pdb(minAvailable=2))

    await p.eventually(lambda: _allowed_is(p, 1), what="1 disruption allowed over 3 ready pods")
    status = await _status(p)
    assert status["expectedPods"] == 3 and status["desiredHealthy"] == 2
    assert status["currentHealthy"] == 3
    assert status["observedGeneration"] == 1
    assert status["conditions"][0]["reason"] == "SufficientPods"

    # A pod going unready is seen without anything else happening.
    unready = await p.client.get("v1", "Pod", "web-c", "default")
    unready["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    await p.client.update(unready, subresource="status")
    await p.eventually(lambda: _allowed_is(p, 0), what="no disruption with 2 ready pods")
    status = await _status(p)
    assert status["currentHealthy"] == 2
    assert status["conditions"][0]["reason"] == "InsufficientPods"

    # A new generation is observed.
    await p.client.patch(
        "policy/v1",
        "PodDisruptionBudget",
        "web",
        {"spec": {"minAvailable": 1}},
        namespace="default",
    )

    async def observed() -> bool:
        status = await _status(p)
        return status.get("observedGeneration") == 2 and status.get("disruptionsAllowed") == 1

    await p.eventually(observed, what="generation 2 observed")


async def test_percentages_use_the_deployment_scale(plane: Any) -> None:
    p = await plane(DisruptionController)
    _, rs = await _deployment_and_rs(p, replicas=4)
    for name in ("web-a", "web-b"):
        await _ready_pod(p, name, rs)
    await p.client.create(pdb(maxUnavailable="50%"))

    async def counted(expected: int, allowed: int) -> bool:
        status = await _status(p)
        return (
            status.get("expectedPods") == expected and status.get("disruptionsAllowed") == allowed
        )

    # expected 4 (the Deployment's replicas, not the 2 pods), desired 4 - 2 = 2, allowed 0.
    await p.eventually(lambda: counted(4, 0), what="the Deployment's scale counted")
    await p.client.patch(
        "apps/v1", "Deployment", "web", {"spec": {"replicas": 2}}, namespace="default"
    )
    # expected 2, desired 1, healthy 2: allowed 1 — seen from the scale change alone.
    await p.eventually(lambda: counted(2, 1), what="the new scale")


async def test_a_pod_without_its_controller_fails_safe(plane: Any) -> None:
    p = await plane(DisruptionController)
    # A controller with no scale (the API's garbage collector would remove a pod whose
    # controller is gone, so "missing" here means "not a kind with replicas").
    unscaled = await p.client.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}}
    )
    await _ready_pod(p, "web-a", unscaled)
    await p.client.create(pdb(maxUnavailable=1))

    async def failed() -> Any:
        conditions = (await _status(p)).get("conditions") or []
        return conditions and conditions[0]["reason"] == "SyncFailed" and conditions[0]

    condition = await p.eventually(failed, what="SyncFailed")
    assert condition["message"] == 'found no controllers for pod "web-a"'
    assert (await _status(p))["disruptionsAllowed"] == 0


async def test_approved_evictions_expire_after_two_minutes(plane: Any) -> None:
    clock = ManualClock(NOW)
    p = await plane(DisruptionController, clock=clock)
    for name in ("web-a", "web-b", "web-c"):
        await _ready_pod(p, name, None)
    await p.client.create(pdb(minAvailable=2))
    await p.eventually(lambda: _allowed_is(p, 1), what="1 allowed")
    # An eviction was approved for web-a, but its delete never came.
    budget = await p.client.get("policy/v1", "PodDisruptionBudget", "web", "default")
    budget["status"]["disruptionsAllowed"] = 0
    budget["status"]["disruptedPods"] = {"web-a": rfc3339(NOW)}
    await p.client.update(budget, subresource="status")

    async def held() -> bool:
        status = await _status(p)
        return status.get("currentHealthy") == 2 and status.get("disruptionsAllowed") == 0

    await p.eventually(held, what="web-a not counted while its eviction is pending")
    clock.advance(121)
    await p.eventually(lambda: _allowed_is(p, 1), what="the record expired")
    assert "disruptedPods" not in await _status(p)


async def _allowed_is(p: Any, n: int) -> bool:
    return (await _status(p)).get("disruptionsAllowed") == n
