"""The ReplicaSet controller: its pure plan, and the loop against an embedded server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reconciler.controllers.replicaset import (
    STATUS_BATCH_MAX_S,
    ReplicaSetController,
    plan,
    status_batch_delay,
    status_only_change,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def rs(replicas: int = 3, uid: str = "rs-uid", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web", "namespace": "default", "uid": uid, "generation": 2},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
            **spec,
        },
    }


def pod(
    name: str,
    owner: str | None = "rs-uid",
    labels: dict[str, str] | None = None,
    phase: str = "Running",
    ready: bool = True,
    node: str = "n",
    created: str = "2026-01-01T00:00:00Z",
    restarts: int = 0,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "labels": labels if labels is not None else {"app": "web"},
        "creationTimestamp": created,
    }
    if owner:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web",
                "uid": owner,
                "controller": True,
            }
        ]
    return {
        "metadata": meta,
        "spec": {"nodeName": node},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"restartCount": restarts}],
        },
    }


def test_creates_the_missing_pods() -> None:
    decided = plan(rs(3), [pod("a")], NOW)
    assert decided.create == 2 and decided.delete == []
    assert decided.status["replicas"] == 1 and decided.status["observedGeneration"] == 2


def test_deletes_the_worst_pods_first() -> None:
    pods = [
        pod("old-ready", created="2026-01-01T00:00:00Z"),
        pod("new-ready", created="2026-01-01T00:05:00Z"),
        pod("not-ready", ready=False),
        pod("unscheduled", node="", phase="Pending", ready=False),
        pod("crashy", restarts=5),
    ]
    decided = plan(rs(2), pods, NOW)
    assert decided.delete == ["unscheduled", "not-ready", "crashy"]


def test_adopts_orphans_and_releases_mismatched_pods() -> None:
    pods = [
        pod("orphan", owner=None),
        pod("relabelled", labels={"app": "other"}),
        pod("foreign", owner="someone-else"),
        pod("done", owner=None, phase="Succeeded"),
    ]
    decided = plan(rs(1), pods, NOW)
    assert decided.adopt == ["orphan"] and decided.release == ["relabelled"]
    assert decided.create == 0 and decided.status["replicas"] == 1


def test_terminal_and_deleting_pods_do_not_count() -> None:
    deleting = pod("leaving")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    decided = plan(rs(2), [pod("a"), pod("b", phase="Failed"), deleting], NOW)
    assert decided.create == 1


def test_status_counts_ready_and_available_with_min_ready_seconds() -> None:
    fresh = pod("fresh")
    fresh["status"]["conditions"][0]["lastTransitionTime"] = "2025-12-31T23:59:55Z"
    old = pod("old")
    old["status"]["conditions"][0]["lastTransitionTime"] = "2025-12-31T23:00:00Z"
    decided = plan(rs(2, minReadySeconds=30), [fresh, old], NOW)
    assert decided.status["readyReplicas"] == 2 and decided.status["availableReplicas"] == 1


def test_without_sync_only_status_is_computed() -> None:
    decided = plan(rs(3), [], NOW, sync=False)
    assert decided.create == 0 and decided.status["replicas"] == 0


def test_status_only_changes_are_batched_by_size() -> None:
    assert status_only_change(pod("a", ready=False), pod("a", ready=True))
    assert status_only_change(pod("a", node=""), pod("a"))  # bound
    assert not status_only_change(pod("a"), pod("a", phase="Failed"))  # finished: replace it
    assert not status_only_change(pod("a"), pod("a", labels={"app": "other"}))
    assert not status_only_change(pod("a"), pod("a", owner=None))
    deleting = pod("a")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not status_only_change(pod("a"), deleting)
    # 3 pods: well under a millisecond; 1,000 pods and more: the cap.
    assert status_batch_delay(3) < 0.001
    assert status_batch_delay(1000) == STATUS_BATCH_MAX_S
    assert status_batch_delay(100_000) == STATUS_BATCH_MAX_S


async def test_readiness_reaches_status_and_other_controllers_pods_are_ignored(
    plane: Any,
) -> None:
    p = await plane(ReplicaSetController)
    await p.client.create(rs(2, uid=""))
    other = rs(1, uid="")
    other["metadata"]["name"] = "other"  # the same selector, but these pods are its own
    await p.client.create(other)

    async def counts() -> tuple[int, int]:
        web = await p.client.get("apps/v1", "ReplicaSet", "web", "default")
        oth = await p.client.get("apps/v1", "ReplicaSet", "other", "default")
        return (web.get("status", {}).get("replicas", 0), oth.get("status", {}).get("replicas", 0))

    await p.eventually(lambda: _is(counts, (2, 1)), what="2 pods for web, 1 for other")
    assert len(await p.pods()) == 3
    ready = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    for q in await p.pods():
        await p.client.patch(
            "v1", "Pod", q["metadata"]["name"], ready, namespace="default", subresource="status"
        )

    async def ready_counts() -> tuple[int, int]:
        web = await p.client.get("apps/v1", "ReplicaSet", "web", "default")
        oth = await p.client.get("apps/v1", "ReplicaSet", "other", "default")
        return (
            web.get("status", {}).get("readyReplicas", 0),
            oth.get("status", {}).get("readyReplicas", 0),
        )

    await p.eventually(lambda: _is(ready_counts, (2, 1)), what="readyReplicas 2 and 1")
    assert len(await p.pods()) == 3


async def _is(fn: Any, value: Any) -> bool:
    return bool(await fn() == value)


async def test_controller_keeps_replicas_against_the_embedded_server(plane: Any) -> None:
    p = await plane(ReplicaSetController)
    created = await p.client.create(rs(3, uid=""))
    uid = created["metadata"]["uid"]

    async def count() -> int:
        return len(await p.pods(selector="app=web"))

    await p.eventually(lambda: _eq(count, 3), what="3 pods")
    pods = await p.pods()
    assert all(q["metadata"]["ownerReferences"][0]["uid"] == uid for q in pods)
    assert all(q["metadata"]["name"].startswith("web-") for q in pods)
    await p.client.delete("v1", "Pod", pods[0]["metadata"]["name"], "default")
    await p.eventually(lambda: _eq(count, 3), what="a replacement pod")
    await p.client.patch(
        "apps/v1", "ReplicaSet", "web", {"spec": {"replicas": 1}}, namespace="default"
    )
    await p.eventually(lambda: _eq(count, 1), what="scale down to 1")
    # `kubectl describe rs` lists each pod made and removed.
    made = {f"Created pod: {q['metadata']['name']}" for q in pods}

    async def all_made() -> bool:
        return made <= await p.events("web", "SuccessfulCreate")

    await p.eventually(all_made, what="an event per pod made")

    async def two_deleted() -> bool:
        return len(await p.events("web", "SuccessfulDelete")) == 2

    await p.eventually(two_deleted, what="an event per pod deleted")

    async def status() -> bool:
        got = await p.client.get("apps/v1", "ReplicaSet", "web", "default")
        return bool(
            got.get("status", {}).get("replicas") == 1
            and got["status"].get("observedGeneration") == got["metadata"]["generation"]
        )

    await p.eventually(status, what="status replicas 1")
    # An orphan with matching labels is adopted instead of a new pod being created.
    await p.client.patch(
        "apps/v1", "ReplicaSet", "web", {"spec": {"replicas": 2}}, namespace="default"
    )
    await p.eventually(lambda: _eq(count, 2), what="scale up to 2")
    assert len(await p.pods()) == 2


async def _eq(fn: Any, value: int) -> bool:
    return bool(await fn() == value)
