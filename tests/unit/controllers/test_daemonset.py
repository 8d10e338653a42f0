"""The DaemonSet controller: node verdicts, its pure plan, and rollouts on an embedded server."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.controllers.daemonset import DaemonSetController
from reconciler.controllers.daemonset_plan import plan
from reconciler.controllers.daemonset_pods import (
    GENERATION_LABEL,
    HASH_LABEL,
    daemon_pod,
    node_should_run,
    target_node,
    with_daemon_tolerations,
)
from reconciler.controllers.scheduler import Scheduler

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def ds(strategy: dict[str, Any] | None = None, **template_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "default", "uid": "ds-uid", "generation": 3},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": strategy
            or {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "c", "image": "agent:1"}], **template_spec},
            },
        },
    }


def node(
    name: str,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {**({"taints": taints} if taints else {}), **spec},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def pod(
    name: str,
    on: str,
    hash_: str = "h1",
    ready: bool = True,
    phase: str = "Running",
    created: str = "2026-01-01T00:00:00Z",
    deleting: bool = False,
    bound: bool = True,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "creationTimestamp": created,
        "labels": {"app": "agent", HASH_LABEL: hash_},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "name": "agent",
                "uid": "ds-uid",
                "controller": True,
            }
        ],
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    spec: dict[str, Any] = (
        {"nodeName": on}
        if bound
        else {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchFields": [
                                    {"key": "metadata.name", "operator": "In", "values": [on]}
                                ]
                            }
                        ]
                    }
                }
            }
        }
    )
    return {
        "metadata": meta,
        "spec": spec,
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}


# -- which nodes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template_spec", "the_node", "verdict"),
    [
        ({}, node("n1"), (True, True)),
        ({"nodeSelector": {"role": "edge"}}, node("n1"), (False, False)),
        ({"nodeSelector": {"role": "edge"}}, node("n1", {"role": "edge"}), (True, True)),
        ({"nodeName": "n2"}, node("n1"), (False, False)),
        # default tolerations: cordoned, not-ready and pressured nodes still run daemons
        ({}, node("n1", unschedulable=True), (True, True)),
        ({}, node("n1", taints=[NOT_READY_TAINT]), (True, True)),
        (
            {},
            node(
                "n1", taints=[{"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"}]
            ),
            (True, True),
        ),
        # an untolerated NoSchedule taint: no new pod, but a running one stays
        ({}, node("n1", taints=[{"key": "gpu", "effect": "NoSchedule"}]), (False, True)),
        # an untolerated NoExecute taint: the pod must go
        ({}, node("n1", taints=[{"key": "gpu", "effect": "NoExecute"}]), (False, False)),
        (
            {"tolerations": [{"key": "gpu", "operator": "Exists"}]},
            node("n1", taints=[{"key": "gpu", "effect": "NoExecute"}]),
            (True, True),
        ),
        (
            {},
            node(
                "n1",
                taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}],
            ),
            (False, True),
        ),
        (
            {"hostNetwork": True},
            node(
                "n1",
                taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}],
            ),
            (True, True),
        ),
    ],
)
def test_node_should_run(
    template_spec: dict[str, Any], the_node: dict[str, Any], verdict: tuple[bool, bool]
) -> None:
    assert node_should_run(template_spec, the_node) == verdict


def test_default_tolerations_replace_bounded_ones_and_are_not_duplicated() -> None:
    bounded = {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    }
    spec = with_daemon_tolerations({"tolerations": [bounded, {"key": "x", "operator": "Exists"}]})
    keys = [t.get("key") for t in spec["tolerations"]]
    assert keys.count("node.kubernetes.io/not-ready") == 1
    assert "tolerationSeconds" not in spec["tolerations"][0]
    assert len(spec["tolerations"]) == 7  # 6 defaults + the template's own
    assert with_daemon_tolerations(spec)["tolerations"] == spec["tolerations"]


def test_daemon_pod_is_pinned_by_node_affinity_not_bound() -> None:
    role = {"matchExpressions": [{"key": "role", "operator": "Exists"}]}
    d = ds(
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [role]}
            }
        }
    )
    created = daemon_pod(d, "n7", "h1")
    assert "nodeName" not in created["spec"]
    assert created["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ] == {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}
        ]
    }
    assert target_node(created) == "n7"
    assert created["metadata"]["generateName"] == "agent-"
    assert created["metadata"]["labels"] == {
        "app": "agent",
        HASH_LABEL: "h1",
        GENERATION_LABEL: "3",
    }
    assert created["metadata"]["ownerReferences"][0]["uid"] == "ds-uid"
    assert any(
        t["key"] == "node.kubernetes.io/unschedulable" for t in created["spec"]["tolerations"]
    )


# -- manage -----------------------------------------------------------------------------


def test_creates_one_pod_per_fitting_node() -> None:
    nodes = [node("n1"), node("n2", {"role": "x"}), node("n3")]
    decided = plan(ds(), [pod("a", "n1")], nodes, "h1", NOW)
    assert decided.create_on == ["n2", "n3"] and decided.delete == []
    picky = ds(nodeSelector={"role": "x"})
    decided = plan(picky, [pod("a", "n1")], nodes, "h1", NOW)
    assert decided.create_on == ["n2"] and decided.delete == ["a"]


def test_extra_failed_and_orphaned_pods_are_removed() -> None:
    pods = [
        pod("old", "n1", created="2026-01-01T00:00:00Z"),
        pod("dup", "n1", created="2026-01-01T00:01:00Z"),
        pod("failed", "n2", phase="Failed", ready=False),
        pod("ghost", "gone"),
        pod("ghost-pending", "gone", bound=False),
    ]
    decided = plan(ds(), pods, [node("n1"), node("n2")], "h1", NOW)
    assert decided.delete == ["dup", "failed", "ghost-pending"]
    assert decided.force_delete == ["ghost"]
    assert decided.create_on == []  # n2 gets its pod once the failed one is gone


def test_terminating_pod_blocks_a_new_one_on_its_node() -> None:
    decided = plan(ds(), [pod("leaving", "n1", deleting=True)], [node("n1")], "h1", NOW)
    assert decided.create_on == [] and decided.delete == []


def test_unscheduled_pods_count_for_their_target_node() -> None:
    decided = plan(ds(), [pod("p", "n1", bound=False, ready=False)], [node("n1")], "h1", NOW)
    assert decided.create_on == []
    assert decided.status["currentNumberScheduled"] == 1 and decided.status["numberReady"] == 0


def test_orphans_are_adopted() -> None:
    orphan = pod("o", "n1")
    del orphan["metadata"]["ownerReferences"]
    decided = plan(ds(), [orphan], [node("n1")], "h1", NOW)
    assert decided.adopt == ["o"] and decided.create_on == []


def test_empty_selector_is_refused() -> None:
    d = ds()
    d["spec"]["selector"] = {}
    decided = plan(d, [], [node("n1")], "h1", NOW)
    assert decided.create_on == [] and decided.status == {}


# -- updates ----------------------------------------------------------------------------


def test_rolling_update_replaces_max_unavailable_at_a_time() -> None:
    nodes = [node(f"n{i}") for i in range(5)]
    old = [pod(f"p{i}", f"n{i}", hash_="h1") for i in range(5)]
    decided = plan(ds(), old, nodes, "h2", NOW)
    assert decided.delete == ["p0"] and decided.create_on == []
    # n0 has a new pod that is not ready yet: that is the one allowed unavailable.
    mid = [pod("q0", "n0", hash_="h2", ready=False), *old[1:]]
    assert plan(ds(), mid, nodes, "h2", NOW).delete == []
    done0 = [pod("q0", "n0", hash_="h2"), *old[1:]]
    assert plan(ds(), done0, nodes, "h2", NOW).delete == ["p1"]
    # With 2 unavailable allowed, two go at once; an unavailable old pod goes regardless.
    two = ds({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}})
    sick = [pod("p0", "n0", ready=False), *old[1:]]
    assert plan(two, sick, nodes, "h2", NOW).delete == ["p0", "p1"]


def test_percent_max_unavailable_rounds_up() -> None:
    nodes = [node(f"n{i}") for i in range(10)]
    old = [pod(f"p{i}", f"n{i}") for i in range(10)]
    quarter = ds({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%"}})
    assert len(plan(quarter, old, nodes, "h2", NOW).delete) == 3


def test_surge_starts_new_pods_beside_old_ones() -> None:
    surge = ds({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
    nodes = [node("n1"), node("n2")]
    old = [pod("p1", "n1"), pod("p2", "n2")]
    decided = plan(surge, old, nodes, "h2", NOW)
    assert decided.create_on == ["n1"] and decided.delete == []
    waiting = [*old, pod("q1", "n1", hash_="h2", ready=False, created="2026-01-01T00:05:00Z")]
    decided = plan(surge, waiting, nodes, "h2", NOW)
    assert decided.create_on == [] and decided.delete == []
    ready = [*old, pod("q1", "n1", hash_="h2", created="2026-01-01T00:05:00Z")]
    assert plan(surge, ready, nodes, "h2", NOW).delete == ["p1"]


def test_on_delete_leaves_old_pods() -> None:
    on_delete = ds({"type": "OnDelete"})
    decided = plan(on_delete, [pod("p1", "n1")], [node("n1"), node("n2")], "h2", NOW)
    assert decided.delete == [] and decided.create_on == ["n2"]
    assert decided.status["updatedNumberScheduled"] == 0


def test_status() -> None:
    nodes = [node("n1"), node("n2"), node("n3", taints=[{"key": "x", "effect": "NoExecute"}])]
    pods = [
        pod("a", "n1", hash_="h2"),
        pod("b", "n2", hash_="h1", ready=False),
        pod("c", "n3", hash_="h2"),
    ]
    decided = plan(ds(), pods, nodes, "h2", NOW)
    assert decided.status == {
        "observedGeneration": 3,
        "desiredNumberScheduled": 2,
        "currentNumberScheduled": 2,
        "numberMisscheduled": 1,
        "numberReady": 1,
        "numberAvailable": 1,
        "numberUnavailable": 1,
        "updatedNumberScheduled": 1,
    }
    assert decided.delete == ["c"]
    pending = plan(ds(), pods, nodes, "h2", NOW, sync=False)
    assert pending.status["observedGeneration"] == 0 and pending.delete == []


# -- against the embedded server ----------------------------------------------------------


async def fake_kubelet(plane: Any) -> None:
    """Test stand-in for the node agents: bound pods become Running and Ready; pods being
    deleted are finished off."""
    while True:
        listed = await plane.client.list("v1", "Pod", "default")
        for p in listed.items:
            name = p["metadata"]["name"]
            with contextlib.suppress(Exception):
                if p["metadata"].get("deletionTimestamp"):
                    await plane.client.delete("v1", "Pod", name, "default", grace_period=0)
                elif p["spec"].get("nodeName") and p.get("status", {}).get("phase") != "Running":
                    await plane.client.patch(
                        "v1",
                        "Pod",
                        name,
                        {
                            "status": {
                                "phase": "Running",
                                "conditions": [{"type": "Ready", "status": "True"}],
                            }
                        },
                        namespace="default",
                        subresource="status",
                    )
        await asyncio.sleep(0.01)


async def test_rollout_across_nodes_with_our_scheduler(plane: Any) -> None:
    p = await plane(Scheduler, DaemonSetController)
    kubelet = asyncio.create_task(fake_kubelet(p))
    try:
        for name, labels in [("n1", {}), ("n2", {}), ("n3", {"role": "edge"})]:
            await p.client.create(node(name, labels))
        d = ds()
        del d["metadata"]["uid"], d["metadata"]["generation"]
        await p.client.create(d)

        async def placed() -> dict[str, str]:
            return {
                q["spec"].get("nodeName", ""): q["spec"]["containers"][0]["image"]
                for q in await p.pods()
            }

        async def rolled(image: str, nodes: set[str]) -> bool:
            got = await p.client.get("apps/v1", "DaemonSet", "agent", "default")
            st = got.get("status", {})
            where = await placed()
            return bool(
                st.get("observedGeneration") == got["metadata"]["generation"]
                and st.get("desiredNumberScheduled") == len(nodes)
                and st.get("updatedNumberScheduled") == len(nodes)
                and st.get("numberAvailable") == len(nodes)
                and where == dict.fromkeys(nodes, image)
            )

        await p.eventually(lambda: rolled("agent:1", {"n1", "n2", "n3"}), timeout=10, what="start")
        await p.client.patch(
            "apps/v1",
            "DaemonSet",
            "agent",
            {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "agent:2"}]}}}},
            namespace="default",
            patch_type="strategic",
        )
        await p.eventually(lambda: rolled("agent:2", {"n1", "n2", "n3"}), timeout=10, what="roll")
        revisions = (await p.client.list("apps/v1", "ControllerRevision", "default")).items
        assert sorted(r["revision"] for r in revisions) == [1, 2]
        # Restrict to edge nodes: the pods elsewhere go.
        await p.client.patch(
            "apps/v1",
            "DaemonSet",
            "agent",
            {"spec": {"template": {"spec": {"nodeSelector": {"role": "edge"}}}}},
            namespace="default",
            patch_type="strategic",
        )
        await p.eventually(lambda: rolled("agent:2", {"n3"}), timeout=10, what="edge only")
        # A node gaining the label gets a pod; a deleted node loses it.
        await p.client.patch("v1", "Node", "n1", {"metadata": {"labels": {"role": "edge"}}})
        await p.eventually(lambda: rolled("agent:2", {"n1", "n3"}), timeout=10, what="n1 joins")
        await p.client.delete("v1", "Node", "n3")
        await p.eventually(lambda: rolled("agent:2", {"n1"}), timeout=10, what="n3 is gone")
    finally:
        kubelet.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await kubelet


async def test_a_daemonset_created_again_adopts_what_an_orphaning_delete_left(
    plane: Any,
) -> None:
    p = await plane(Scheduler, DaemonSetController)
    kubelet = asyncio.create_task(fake_kubelet(p))
    try:
        await p.client.create(node("n1"))
        d = ds()
        del d["metadata"]["uid"], d["metadata"]["generation"]
        first = await p.client.create(d)

        async def ready(uid: str) -> bool:
            got = await p.client.get("apps/v1", "DaemonSet", "agent", "default")
            st = got.get("status", {})
            return bool(got["metadata"]["uid"] == uid and st.get("numberAvailable") == 1)

        await p.eventually(lambda: ready(first["metadata"]["uid"]), what="the first pod")
        pods = [q["metadata"]["uid"] for q in await p.pods()]
        revisions = (await p.client.list("apps/v1", "ControllerRevision", "default")).items
        await p.client.delete("apps/v1", "DaemonSet", "agent", "default", propagation="Orphan")

        async def orphaned() -> bool:
            listed = await p.client.list("apps/v1", "ControllerRevision", "default")
            return not any(r["metadata"].get("ownerReferences") for r in listed.items)

        await p.eventually(orphaned, what="the revision orphaned")
        second = await p.client.create(d)
        uid = second["metadata"]["uid"]

        async def adopted() -> bool:
            listed = await p.client.list("apps/v1", "ControllerRevision", "default")
            owners = {
                ref["uid"]
                for obj in [*listed.items, *await p.pods()]
                for ref in obj["metadata"].get("ownerReferences") or []
            }
            return owners == {uid} and await ready(uid)

        await p.eventually(adopted, what="the pod and the revision adopted")
        assert [q["metadata"]["uid"] for q in await p.pods()] == pods  # not replaced
        listed = (await p.client.list("apps/v1", "ControllerRevision", "default")).items
        assert [r["metadata"]["name"] for r in listed] == [r["metadata"]["name"] for r in revisions]
    finally:
        kubelet.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await kubelet
