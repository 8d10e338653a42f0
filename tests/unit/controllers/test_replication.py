"""The replication manager: the ReplicaSet controller run on v1 ReplicationControllers,
whose selector is a plain map of labels. Its selector and plan (pure), then the loop
against an embedded server: pods owned by the RC, scaling, adoption and release, status,
ReplicaFailure, and garbage collection of its pods."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from reconciler.controllers.replicaset import plan
from reconciler.controllers.replication import ReplicationManager, replication_controller_selector
from reconciler.selectors import SelectorError

NOW = datetime(2026, 1, 1, tzinfo=UTC)
RC = ("v1", "ReplicationController")


def rc(replicas: int = 2, uid: str = "rc-uid", **spec: Any) -> dict[str, Any]:
    """An RC as the API stores it once defaulted: with its selector written out."""
    meta: dict[str, Any] = {"name": "web", "namespace": "default", "generation": 2}
    if uid:
        meta["uid"] = uid
    return {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"app": "web"},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "front"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
            **spec,
        },
    }


def pod(name: str, owner: str | None = "rc-uid", labels: dict[str, str] | None = None) -> Any:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "labels": labels if labels is not None else {"app": "web", "tier": "front"},
        "creationTimestamp": "2026-01-01T00:00:00Z",
    }
    if owner:
        meta["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "ReplicationController",
                "name": "web",
                "uid": owner,
                "controller": True,
            }
        ]
    return {
        "metadata": meta,
        "spec": {"nodeName": "n"},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


# -- the selector and the plan ---------------------------------------------------------------


def test_the_selector_is_equality_on_every_label_of_the_map() -> None:
    spec = rc()["spec"] | {"selector": {"app": "web", "tier": "front"}}
    selector = replication_controller_selector(spec)
    assert selector.matches({"app": "web", "tier": "front", "extra": "x"})
    assert not selector.matches({"app": "web"})
    assert not selector.matches({"app": "web", "tier": "back"})


@pytest.mark.parametrize(
    ("selector", "template_labels", "why"),
    [
        ({}, {"app": "web"}, "Required value"),  # the apiserver would have defaulted it
        (None, {"app": "web"}, "Required value"),
        ({"app": "api"}, {"app": "web"}, "does not match"),  # it would have refused it
        ({"app": 1}, {"app": "web"}, "must be a string"),
    ],
)
def test_selectors_the_apiserver_would_not_store_are_refused(
    selector: Any, template_labels: dict[str, str], why: str
) -> None:
    spec = rc()["spec"] | {"selector": selector}
    spec["template"] = {"metadata": {"labels": template_labels}}
    with pytest.raises(SelectorError, match=why):
        replication_controller_selector(spec)


def test_plan_adopts_by_the_label_map_and_releases_pods_that_left_it() -> None:
    pods = [
        pod("mine"),
        pod("orphan", owner=None, labels={"app": "web"}),  # matches the selector
        pod("stranger", owner=None, labels={"app": "api"}),
        pod("relabelled", labels={"app": "debug"}),
    ]
    decided = plan(rc(3), pods, NOW, selector_of=replication_controller_selector)
    assert decided.adopt == ["orphan"] and decided.release == ["relabelled"]
    assert decided.create == 1
    # the orphan lacks the template's `tier` label: a replica, but not a fully labelled one
    assert decided.status["replicas"] == 2 and decided.status["fullyLabeledReplicas"] == 1


def test_an_invalid_selector_creates_nothing() -> None:
    """Created pods would not match it: released at once, replaced, released, ..."""
    decided = plan(
        rc(3, selector={"app": "api"}), [], NOW, selector_of=replication_controller_selector
    )
    assert decided.create == 0 and decided.status["replicas"] == 0


# -- against the embedded server --------------------------------------------------------------


async def test_keeps_replicas_of_pods_it_owns_and_reports_their_status(plane: Any) -> None:
    p = await plane(ReplicationManager)
    created = await p.client.create(rc(2, uid=""))
    uid = created["metadata"]["uid"]

    async def count() -> int:
        return len(await p.pods(selector="app=web"))

    await p.eventually(lambda: _eq(count, 2), what="2 pods")
    pods = await p.pods()
    for q in pods:
        (ref,) = q["metadata"]["ownerReferences"]
        assert (ref["apiVersion"], ref["kind"], ref["uid"]) == (*RC, uid)
        assert ref["name"] == "web" and ref["controller"] is True
        assert q["metadata"]["name"].startswith("web-")
        assert q["metadata"]["labels"] == {"app": "web", "tier": "front"}

    await p.client.delete("v1", "Pod", pods[0]["metadata"]["name"], "default")
    await p.eventually(lambda: _eq(count, 2), what="a replacement pod")
    await p.client.patch(*RC, "web", {"spec": {"replicas": 4}}, namespace="default")
    await p.eventually(lambda: _eq(count, 4), what="scale up to 4")
    await p.client.patch(*RC, "web", {"spec": {"replicas": 1}}, namespace="default")
    await p.eventually(lambda: _eq(count, 1), what="scale down to 1")

    ready = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    (last,) = await p.pods()
    await p.client.patch(
        "v1", "Pod", last["metadata"]["name"], ready, namespace="default", subresource="status"
    )

    async def status() -> Any:
        got = await p.client.get(*RC, "web", "default")
        st = got.get("status") or {}
        counts = (st.get("replicas"), st.get("fullyLabeledReplicas"), st.get("readyReplicas"))
        current = st.get("observedGeneration") == got["metadata"]["generation"]
        return current and counts == (1, 1, 1) and st.get("availableReplicas") == 1 and st

    assert await p.eventually(status, what="status replicas, ready and available 1")


async def test_adopts_a_matching_orphan_and_releases_a_relabelled_pod(plane: Any) -> None:
    p = await plane(ReplicationManager)
    orphan = pod("orphan", owner=None)
    orphan["spec"] = {"containers": [{"name": "c", "image": "x"}]}
    del orphan["status"], orphan["metadata"]["creationTimestamp"]
    await p.client.create({"apiVersion": "v1", "kind": "Pod"} | orphan)
    created = await p.client.create(rc(2, uid=""))
    uid = created["metadata"]["uid"]

    async def owners() -> dict[str, str | None]:
        return {
            q["metadata"]["name"]: next(
                (r["uid"] for r in q["metadata"].get("ownerReferences") or []), None
            )
            for q in await p.pods()
        }

    async def adopted() -> bool:
        got = await owners()
        return len(got) == 2 and got.get("orphan") == uid and set(got.values()) == {uid}

    await p.eventually(adopted, what="the orphan adopted and one pod created")

    await p.client.patch(
        "v1", "Pod", "orphan", {"metadata": {"labels": {"app": "debug"}}}, namespace="default"
    )

    async def released() -> bool:
        got = await owners()
        mine = [name for name, owner in got.items() if owner == uid]
        return got.get("orphan", "gone") is None and len(mine) == 2

    await p.eventually(released, what="the relabelled pod released and replaced")


async def test_pods_the_api_refuses_are_a_replica_failure(plane: Any) -> None:
    p = await plane(ReplicationManager)
    refused = rc(1, uid="")
    refused["spec"]["template"]["spec"]["priorityClassName"] = "missing"
    await p.client.create(refused)

    async def failure() -> Any:
        got = await p.client.get(*RC, "web", "default")
        conditions = (got.get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "ReplicaFailure"), None)

    condition = await p.eventually(failure, what="a ReplicaFailure condition")
    assert (condition["status"], condition["reason"]) == ("True", "FailedCreate")
    assert condition["message"].endswith("no PriorityClass with name missing was found")

    async def events() -> Any:
        listed = (await p.client.list("v1", "Event", "default")).items
        return [
            (e["source"].get("component"), e["involvedObject"]["kind"])
            for e in listed
            if e.get("reason") == "FailedCreate"
        ]

    assert await p.eventually(events, what="a FailedCreate event") == [
        ("replication-controller", "ReplicationController")
    ]
    assert await p.pods() == []


async def test_deleting_the_rc_deletes_its_pods_unless_they_are_orphaned(plane: Any) -> None:
    p = await plane(ReplicationManager)
    await p.client.create(rc(2, uid=""))

    async def count() -> int:
        return len(await p.pods())

    await p.eventually(lambda: _eq(count, 2), what="2 pods")
    await p.client.delete(*RC, "web", "default", propagation="Orphan")

    async def orphaned() -> bool:
        pods = await p.pods()
        return len(pods) == 2 and not any(q["metadata"].get("ownerReferences") for q in pods)

    await p.eventually(orphaned, what="the pods kept, without their owner")

    await p.client.create(rc(2, uid=""))  # created again: adopts them, creates nothing

    async def adopted() -> bool:
        pods = await p.pods()
        return len(pods) == 2 and all(q["metadata"].get("ownerReferences") for q in pods)

    await p.eventually(adopted, what="the pods adopted again")
    await p.client.delete(*RC, "web", "default")
    await p.eventually(lambda: _eq(count, 0), what="the pods collected with their RC")


async def _eq(fn: Any, value: int) -> bool:
    return bool(await fn() == value)
