"""Node conditions become taints: which taints a node's conditions call for, how they are
merged into the node's own taints, and the controller (with the scheduler) on an embedded
server."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.controllers.base import Result
from reconciler.controllers.node_condition_taints import (
    NodeConditionTaintController,
    condition_taints,
    merged_taints,
)
from reconciler.controllers.scheduler import Scheduler

JSONDict = dict[str, Any]

MEMORY = "node.kubernetes.io/memory-pressure"
DISK = "node.kubernetes.io/disk-pressure"
PID = "node.kubernetes.io/pid-pressure"
NETWORK = "node.kubernetes.io/network-unavailable"


def conditions(**statuses: str) -> JSONDict:
    """A node whose conditions are `statuses` (type -> status), Ready True first."""
    listed = [{"type": "Ready", "status": "True"}]
    listed += [{"type": kind, "status": status} for kind, status in statuses.items()]
    return {"metadata": {"name": "n1"}, "status": {"conditions": listed}}


def no_schedule(key: str) -> JSONDict:
    return {"key": key, "effect": "NoSchedule"}


USER = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
USER_PREFER = {"key": "spot", "effect": "PreferNoSchedule"}


# -- the taints the conditions call for ---------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "key"),
    [
        ("MemoryPressure", MEMORY),
        ("DiskPressure", DISK),
        ("PIDPressure", PID),
        ("NetworkUnavailable", NETWORK),
    ],
)
def test_each_condition_true_calls_for_its_no_schedule_taint(condition: str, key: str) -> None:
    assert condition_taints(conditions(**{condition: "True"})) == [no_schedule(key)]


@pytest.mark.parametrize("status", ["False", "Unknown", ""])
@pytest.mark.parametrize(
    "condition", ["MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"]
)
def test_a_condition_not_true_calls_for_no_taint(condition: str, status: str) -> None:
    assert condition_taints(conditions(**{condition: status})) == []


def test_several_conditions_give_their_taints_in_the_order_of_the_conditions() -> None:
    node = conditions(PIDPressure="True", MemoryPressure="False", DiskPressure="True")
    assert condition_taints(node) == [no_schedule(PID), no_schedule(DISK)]


def test_readiness_and_unknown_conditions_call_for_nothing() -> None:
    node = {
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "Ready", "status": "Unknown"},
                {"type": "FrequentKubeletRestart", "status": "True"},
            ]
        }
    }
    assert condition_taints(node) == []
    assert condition_taints({}) == []
    assert condition_taints({"status": {"conditions": None}}) == []


def test_a_condition_listed_twice_gives_one_taint() -> None:
    node = conditions(MemoryPressure="True")
    node["status"]["conditions"].append({"type": "MemoryPressure", "status": "True"})
    assert condition_taints(node) == [no_schedule(MEMORY)]


# -- merged into the node's taints --------------------------------------------------------


def test_a_missing_condition_taint_is_added_after_the_users_taints() -> None:
    assert merged_taints([USER, USER_PREFER], [no_schedule(MEMORY)]) == [
        USER,
        USER_PREFER,
        no_schedule(MEMORY),
    ]
    assert merged_taints([], [no_schedule(DISK), no_schedule(PID)]) == [
        no_schedule(DISK),
        no_schedule(PID),
    ]


def test_a_stale_condition_taint_is_removed_and_the_others_keep_their_order() -> None:
    current = [USER, no_schedule(DISK), USER_PREFER, no_schedule(MEMORY)]
    assert merged_taints(current, [no_schedule(MEMORY)]) == [
        USER,
        USER_PREFER,
        no_schedule(MEMORY),
    ]
    assert merged_taints([no_schedule(DISK)], []) == []


def test_nothing_to_change_is_none() -> None:
    assert merged_taints([], []) is None
    assert merged_taints([USER], []) is None
    assert merged_taints([USER, no_schedule(PID)], [no_schedule(PID)]) is None


def test_a_taint_already_there_is_kept_as_it_is() -> None:
    """Same key and effect is the same taint (upstream's `TaintExists`): its value and
    timeAdded are not rewritten, so a reconcile with nothing new writes nothing."""
    there = {"key": MEMORY, "effect": "NoSchedule", "timeAdded": "2026-01-01T00:00:00Z"}
    wanted = {"key": MEMORY, "effect": "NoSchedule", "timeAdded": "2026-02-01T00:00:00Z"}
    assert merged_taints([there], [wanted]) is None
    added = merged_taints([there], [wanted, {**no_schedule(DISK), "timeAdded": "T"}])
    assert added == [there, {**no_schedule(DISK), "timeAdded": "T"}]


def test_the_users_taint_of_another_effect_with_the_same_key_is_left_alone() -> None:
    users = {"key": MEMORY, "effect": "NoExecute"}
    assert merged_taints([users], []) is None
    assert merged_taints([users], [no_schedule(MEMORY)]) == [users, no_schedule(MEMORY)]
    assert merged_taints([users, no_schedule(MEMORY)], []) == [users]


def test_readiness_taints_are_not_this_controllers() -> None:
    not_ready = no_schedule("node.kubernetes.io/not-ready")
    assert merged_taints([not_ready], []) is None
    assert merged_taints([not_ready], [not_ready]) is None  # never written by it either


def test_the_worked_example() -> None:
    current = [USER, no_schedule(DISK), {"key": MEMORY, "effect": "NoExecute"}]
    wanted = condition_taints(conditions(DiskPressure="False", MemoryPressure="True"))
    assert merged_taints(current, wanted) == [
        USER,
        {"key": MEMORY, "effect": "NoExecute"},
        no_schedule(MEMORY),
    ]


def test_the_inputs_are_not_changed() -> None:
    current = [USER, no_schedule(DISK)]
    wanted = [no_schedule(MEMORY)]
    merged = merged_taints(current, wanted)
    assert merged is not None
    merged[0]["value"] = "changed"
    assert current == [USER, no_schedule(DISK)] and USER["value"] == "gpu"
    assert wanted == [no_schedule(MEMORY)]


# -- the controller on the embedded server ------------------------------------------------


def node(name: str = "n1") -> JSONDict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "allocatable": {"pods": "110", "cpu": "4", "memory": "8Gi"},
        },
    }


async def _memory_pressure(p: Any, status: str, name: str = "n1") -> None:
    reason = "KubeletHasInsufficientMemory" if status == "True" else "KubeletHasSufficientMemory"
    conditions = [
        {"type": "Ready", "status": "True"},
        {"type": "MemoryPressure", "status": status, "reason": reason},
    ]
    await p.client.patch(
        "v1", "Node", name, {"status": {"conditions": conditions}}, subresource="status"
    )


async def _taints(p: Any, name: str = "n1") -> list[JSONDict]:
    got = await p.client.get("v1", "Node", name)
    return list((got.get("spec") or {}).get("taints") or [])


def _keys(taints: list[JSONDict]) -> list[tuple[str, str]]:
    return [(t["key"], t["effect"]) for t in taints]


async def test_memory_pressure_taints_the_node_until_it_ends(plane: Any) -> None:
    p = await plane(NodeConditionTaintController)
    await p.client.create(node())
    await p.client.patch("v1", "Node", "n1", {"spec": {"taints": [USER]}})

    await _memory_pressure(p, "True")

    async def tainted() -> list[JSONDict] | None:
        taints = await _taints(p)
        return taints if len(taints) == 2 else None

    taints = await p.eventually(tainted, what="the memory-pressure taint")
    assert _keys(taints) == [("dedicated", "NoSchedule"), (MEMORY, "NoSchedule")]
    assert taints[0] == USER
    assert "value" not in taints[1] and taints[1]["timeAdded"].endswith("Z")

    await _memory_pressure(p, "False")

    async def untainted() -> bool:
        return await _taints(p) == [USER]

    await p.eventually(untainted, what="the taint gone, the user's kept")


class _Cache:
    """Stands in for the controller's Node informer: the node as it was read, maybe stale."""

    def __init__(self, node: JSONDict | None) -> None:
        self.node = node

    def get(self, namespace: str, name: str) -> JSONDict | None:
        return self.node if (namespace, name) == ("", "n1") else None


def _controller(p: Any, cached: JSONDict | None) -> NodeConditionTaintController:
    controller = NodeConditionTaintController(p.client, p.server.clock)
    controller.nodes = _Cache(cached)  # type: ignore[assignment]
    return controller


async def test_nothing_to_change_writes_nothing(plane: Any) -> None:
    p = await plane()
    await p.client.create(node())
    await _memory_pressure(p, "False")
    live = await p.client.get("v1", "Node", "n1")

    assert await _controller(p, live).reconcile(("", "n1")) == Result()

    after = await p.client.get("v1", "Node", "n1")
    assert after["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]


async def test_a_node_changed_since_it_was_read_is_a_conflict_retried(plane: Any) -> None:
    p = await plane()
    await p.client.create(node())
    await _memory_pressure(p, "True")
    stale = await p.client.get("v1", "Node", "n1")
    await p.client.patch("v1", "Node", "n1", {"spec": {"taints": [USER]}})

    result = await _controller(p, stale).reconcile(("", "n1"))

    # retried with back-off, from the cache the watch brings up to date
    assert result == Result(error="the node changed while its condition taints were written")
    assert await _taints(p) == [USER]  # the user's change is not overwritten


async def test_a_node_gone_or_being_deleted_is_left_alone(plane: Any) -> None:
    p = await plane()
    assert await _controller(p, None).reconcile(("", "n1")) == Result()
    deleting = conditions(MemoryPressure="True")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert await _controller(p, deleting).reconcile(("", "n1")) == Result()


async def test_the_scheduler_keeps_untolerating_pods_off_a_node_under_pressure(
    plane: Any,
) -> None:
    p = await plane(NodeConditionTaintController, Scheduler)
    await p.client.create(node())
    await _memory_pressure(p, "True")

    async def tainted() -> bool:
        return _keys(await _taints(p)) == [(MEMORY, "NoSchedule")]

    await p.eventually(tainted, what="the memory-pressure taint")

    def pod(name: str, tolerations: list[JSONDict] | None = None) -> JSONDict:
        spec: JSONDict = {"containers": [{"name": "c", "image": "busybox"}]}
        if tolerations is not None:
            spec["tolerations"] = tolerations
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": spec,
        }

    await p.client.create(pod("plain"))
    await p.client.create(
        pod("tolerant", [{"key": MEMORY, "operator": "Exists", "effect": "NoSchedule"}])
    )

    async def bound(name: str) -> str:
        got = await p.client.get("v1", "Pod", name, "default")
        return str(got["spec"].get("nodeName") or "")

    async def unschedulable(name: str) -> str:
        got = await p.client.get("v1", "Pod", name, "default")
        for condition in (got.get("status") or {}).get("conditions") or []:
            if condition["type"] == "PodScheduled" and condition["status"] == "False":
                return str(condition["message"])
        return ""

    assert await p.eventually(lambda: bound("tolerant"), what="tolerant bound") == "n1"
    message = await p.eventually(lambda: unschedulable("plain"), what="plain unschedulable")
    assert message == (
        f"0/1 nodes are available: 1 node(s) had untolerated taint {{{MEMORY}: }}. "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    )
    assert await bound("plain") == ""

    # the pressure ends: the taint goes and the waiting pod is placed
    await _memory_pressure(p, "False")
    assert await p.eventually(lambda: bound("plain"), what="plain bound") == "n1"
