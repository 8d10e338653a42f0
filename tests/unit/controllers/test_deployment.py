"""The Deployment controller: rolling arithmetic, plans, and rollouts on an embedded server."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reconciler.controllers.deployment import DeploymentController, plan
from reconciler.controllers.deployment_util import (
    REVISION,
    max_scale_down,
    new_replicas_rolling,
    resolve_int_or_percent,
    surge_and_unavailable,
    template_hash,
)
from reconciler.controllers.replicaset import ReplicaSetController

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def deploy(
    replicas: int = 10,
    image: str = "web:1",
    strategy: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": strategy
            or {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
            **spec,
        },
        "status": status or {},
    }


def rs_of(
    d: dict[str, Any], replicas: int, available: int, revision: int, image: str | None = None
) -> dict[str, Any]:
    template = d["spec"]["template"]
    if image is not None:
        template = {**template, "spec": {"containers": [{"name": "c", "image": image}]}}
    h = template_hash(template)
    labeled = {**template, "metadata": {"labels": {"app": "web", "pod-template-hash": h}}}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"web-{h}",
            "namespace": "default",
            "uid": f"rs-{h}",
            "labels": {"app": "web", "pod-template-hash": h},
            "annotations": {REVISION: str(revision)},
            "creationTimestamp": f"2026-01-01T00:00:0{revision}Z",
            "ownerReferences": [
                {"kind": "Deployment", "name": "web", "uid": "d-uid", "controller": True}
            ],
        },
        "spec": {"replicas": replicas, "template": labeled},
        "status": {
            "replicas": replicas,
            "readyReplicas": available,
            "availableReplicas": available,
        },
    }


@pytest.mark.parametrize(
    ("value", "total", "up", "expected"),
    [
        ("25%", 10, True, 3),
        ("25%", 10, False, 2),
        (1, 10, True, 1),
        ("0%", 4, True, 0),
        ("50%", 3, False, 1),
        ("50%", 3, True, 2),
    ],
)
def test_int_or_percent(value: Any, total: int, up: bool, expected: int) -> None:
    assert resolve_int_or_percent(value, total, up) == expected


def test_both_zero_means_one_unavailable() -> None:
    d = deploy(
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}
    )
    assert surge_and_unavailable(d) == (0, 1)


def test_worked_example_of_the_module_docstring() -> None:
    # 10 replicas, surge 3, unavailable 2: the new RS may start with 3 ...
    assert new_replicas_rolling(10, 3, total_pods=10, new_rs_replicas=0) == 3
    # ... and then 2 old pods may go (13 pods, 8 must stay available, 3 new unavailable).
    assert max_scale_down(10, 2, total_pods=13, new_rs_replicas=3, new_rs_available=0) == 2


def test_template_hash_is_stable_and_label_safe() -> None:
    t = deploy()["spec"]["template"]
    assert template_hash(t) == template_hash(dict(t))
    assert template_hash(t) != template_hash(t, collision_count=1)
    assert all(ch in "bcdfghjklmnpqrstvwxz2456789" for ch in template_hash(t))


def test_first_sync_creates_the_new_replicaset_with_surge() -> None:
    decided = plan(deploy(), [], [], NOW)
    assert decided.create is not None
    assert decided.create["spec"]["replicas"] == 10  # no pods yet: up to replicas at once
    assert decided.create["metadata"]["annotations"][REVISION] == "1"
    assert decided.create["spec"]["selector"]["matchLabels"]["pod-template-hash"]
    progressing = decided.status["conditions"][1]
    assert progressing["reason"] == "NewReplicaSetCreated"


def test_rolling_update_steps_respect_the_bounds() -> None:
    d = deploy(image="web:2")
    old = rs_of(d, replicas=10, available=10, revision=1, image="web:1")
    decided = plan(d, [old], [], NOW)
    assert decided.create is not None and decided.create["spec"]["replicas"] == 3
    assert decided.create["metadata"]["annotations"][REVISION] == "2"
    new = rs_of(d, replicas=3, available=0, revision=2)
    decided = plan(d, [old, new], [], NOW)
    assert decided.scale == {old["metadata"]["name"]: 8}  # 13 - 8 - 3 = 2 may go
    new_ready = rs_of(d, replicas=3, available=3, revision=2)
    old_8 = rs_of(d, replicas=8, available=8, revision=1, image="web:1")
    decided = plan(d, [old_8, new_ready], [], NOW)
    # New RS up to 5 (13 pods max), then old down by 13 - 8 - 2 unavailable new = 3.
    assert decided.scale == {new_ready["metadata"]["name"]: 5, old_8["metadata"]["name"]: 5}


def test_rollout_complete_status() -> None:
    d = deploy(image="web:2")
    new = rs_of(d, replicas=10, available=10, revision=2)
    decided = plan(d, [new], [], NOW)
    assert decided.scale == {} and decided.create is None
    assert decided.status["updatedReplicas"] == 10 and decided.status["availableReplicas"] == 10
    reasons = [c["reason"] for c in decided.status["conditions"]]
    assert reasons == ["MinimumReplicasAvailable", "NewReplicaSetAvailable"]


def test_recreate_scales_old_to_zero_and_waits_for_pods() -> None:
    d = deploy(image="web:2", strategy={"type": "Recreate"})
    old = rs_of(d, replicas=10, available=10, revision=1, image="web:1")
    decided = plan(d, [old], [], NOW)
    assert decided.create is not None and decided.create["spec"]["replicas"] == 0
    new = rs_of(d, replicas=0, available=0, revision=2)
    decided = plan(d, [old, new], [], NOW)
    assert decided.scale == {old["metadata"]["name"]: 0}
    old_pod = {
        "metadata": {
            "name": "p",
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": old["metadata"]["name"], "controller": True}
            ],
        },
        "status": {"phase": "Running"},
    }
    old_zero = rs_of(d, replicas=0, available=0, revision=1, image="web:1")
    assert plan(d, [old_zero, new], [old_pod], NOW).scale == {}
    assert plan(d, [old_zero, new], [], NOW).scale == {new["metadata"]["name"]: 10}


def test_rollback_reuses_the_old_replicaset_and_bumps_its_revision() -> None:
    d = deploy(image="web:1")
    old = rs_of(d, replicas=0, available=0, revision=1)  # web:1, the rollback target
    current = rs_of(d, replicas=10, available=10, revision=2, image="web:2")
    decided = plan(d, [old, current], [], NOW)
    assert decided.create is None
    assert decided.annotate[old["metadata"]["name"]] == {
        REVISION: "3",
        "deployment.kubernetes.io/revision-history": "1",
    }


def test_history_limit_deletes_the_oldest_idle_replicasets() -> None:
    d = deploy(image="web:9", revisionHistoryLimit=2)
    olds = [rs_of(d, 0, 0, i, image=f"web:{i}") for i in range(1, 5)]
    for o in olds:
        o["status"]["replicas"] = 0
    new = rs_of(d, replicas=10, available=10, revision=5)
    decided = plan(d, [*olds, new], [], NOW)
    assert decided.delete == [olds[0]["metadata"]["name"], olds[1]["metadata"]["name"]]


def test_progress_deadline_exceeded_after_no_progress() -> None:
    d = deploy(image="web:2", progressDeadlineSeconds=60)
    old = rs_of(d, replicas=8, available=8, revision=1, image="web:1")
    new = rs_of(d, replicas=5, available=0, revision=2)
    first = plan(d, [old, new], [], NOW)
    d["status"] = first.status
    stuck_old = rs_of(d, replicas=8, available=8, revision=1, image="web:1")
    assert (
        plan(d, [stuck_old, new], [], NOW + timedelta(seconds=30)).status["conditions"][1]["reason"]
        == "ReplicaSetUpdated"
    )
    late = plan(d, [stuck_old, new], [], NOW + timedelta(seconds=61))
    assert late.status["conditions"][1]["reason"] == "ProgressDeadlineExceeded"
    assert late.status["conditions"][1]["status"] == "False"


def test_paused_deployment_only_scales() -> None:
    d = deploy(image="web:2", paused=True)
    old = rs_of(d, replicas=10, available=10, revision=1, image="web:1")
    decided = plan(d, [old], [], NOW)
    assert decided.create is None
    assert decided.status["conditions"][1]["reason"] == "DeploymentPaused"


async def fake_kubelet(plane: Any) -> None:
    """Test stand-in for the node agent: marks every pod Running and Ready at once."""
    while True:
        for pod in await plane.pods():
            if pod.get("status", {}).get("phase") != "Running":
                await plane.client.patch(
                    "v1",
                    "Pod",
                    pod["metadata"]["name"],
                    {
                        "status": {
                            "phase": "Running",
                            "conditions": [
                                {
                                    "type": "Ready",
                                    "status": "True",
                                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                                }
                            ],
                        }
                    },
                    namespace="default",
                    subresource="status",
                )
        await asyncio.sleep(0.01)


async def test_rollout_and_undo_against_the_embedded_server(plane: Any) -> None:
    p = await plane(ReplicaSetController, DeploymentController)
    kubelet = asyncio.create_task(fake_kubelet(p))
    try:
        d = deploy(
            replicas=4,
            strategy={
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
        )
        del d["metadata"]["uid"], d["status"]
        await p.client.create(d)

        async def rolled(image: str, replicas: int = 4) -> bool:
            got = await p.client.get("apps/v1", "Deployment", "web", "default")
            st = got.get("status", {})
            pods = await p.pods()
            images = {q["spec"]["containers"][0]["image"] for q in pods}
            return bool(
                st.get("updatedReplicas") == replicas
                and st.get("availableReplicas") == replicas
                and st.get("replicas") == replicas
                and len(pods) == replicas
                and images == {image}
                and st.get("observedGeneration") == got["metadata"]["generation"]
            )

        await p.eventually(lambda: rolled("web:1"), timeout=10, what="first rollout")
        await p.client.patch(
            "apps/v1",
            "Deployment",
            "web",
            {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "web:2"}]}}}},
            namespace="default",
            patch_type="strategic",
        )
        await p.eventually(lambda: rolled("web:2"), timeout=10, what="rollout to web:2")
        rss = (await p.client.list("apps/v1", "ReplicaSet", "default")).items
        revisions = sorted(int(r["metadata"]["annotations"][REVISION]) for r in rss)
        assert revisions == [1, 2]
        # `kubectl rollout undo`: the old template comes back, its ReplicaSet is reused.
        await p.client.patch(
            "apps/v1",
            "Deployment",
            "web",
            {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "web:1"}]}}}},
            namespace="default",
            patch_type="strategic",
        )
        await p.eventually(lambda: rolled("web:1"), timeout=10, what="rollback to web:1")
        rss = (await p.client.list("apps/v1", "ReplicaSet", "default")).items
        assert len(rss) == 2
        assert sorted(int(r["metadata"]["annotations"][REVISION]) for r in rss) == [2, 3]
        # `kubectl scale` after rollouts: the change reaches the ReplicaSet, down and up.
        for replicas in (1, 3):
            await p.client.update_scale(
                "apps/v1", "Deployment", "web", {"spec": {"replicas": replicas}}, "default"
            )
            await p.eventually(
                lambda n=replicas: rolled("web:1", n), timeout=10, what=f"scaled to {replicas}"
            )
        scaling = await p.events("web", "ScalingReplicaSet")
        web_1 = next(
            r for r in rss if r["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1"
        )
        name = web_1["metadata"]["name"]
        assert f"Scaled down replica set {name} from 4 to 1" in scaling
        assert f"Scaled up replica set {name} from 1 to 3" in scaling
        assert f"Scaled up replica set {name} from 0 to 4" in scaling  # the first rollout
        assert f"Scaled up replica set {name} from 0 to 1" in scaling  # the rollback
    finally:
        kubelet.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await kubelet


async def test_recreate_rollout_against_the_embedded_server(plane: Any) -> None:
    """Recreate waits for the old pods to go: their deletion (a pod event) must wake it."""
    p = await plane(ReplicaSetController, DeploymentController)
    kubelet = asyncio.create_task(fake_kubelet(p))
    try:
        d = deploy(replicas=2, strategy={"type": "Recreate"})
        del d["metadata"]["uid"], d["status"]
        await p.client.create(d)

        async def running(image: str) -> bool:
            got = await p.client.get("apps/v1", "Deployment", "web", "default")
            st = got.get("status", {})
            images = [q["spec"]["containers"][0]["image"] for q in await p.pods()]
            return bool(
                images == [image, image]
                and st.get("updatedReplicas") == 2
                and st.get("availableReplicas") == 2
                and st.get("observedGeneration") == got["metadata"]["generation"]
            )

        await p.eventually(lambda: running("web:1"), timeout=10, what="web:1 running")
        await p.client.patch(
            "apps/v1",
            "Deployment",
            "web",
            {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "web:2"}]}}}},
            namespace="default",
            patch_type="strategic",
        )
        await p.eventually(lambda: running("web:2"), timeout=10, what="recreated on web:2")
    finally:
        kubelet.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await kubelet


async def test_pods_the_api_refuses_are_a_replica_failure_until_it_accepts_them(
    plane: Any,
) -> None:
    p = await plane(ReplicaSetController, DeploymentController)
    d = deploy(replicas=2)
    del d["metadata"]["uid"], d["status"]
    d["spec"]["template"]["spec"]["priorityClassName"] = "batch"
    await p.client.create(d)

    def failure(obj: dict[str, Any]) -> dict[str, Any] | None:
        conditions = (obj.get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "ReplicaFailure"), None)

    async def rs_failure() -> Any:
        listed = (await p.client.list("apps/v1", "ReplicaSet", "default")).items
        return listed and failure(listed[0])

    condition = await p.eventually(rs_failure, what="the ReplicaSet's ReplicaFailure")
    assert (condition["status"], condition["reason"]) == ("True", "FailedCreate")
    # named by the generateName, as upstream: the same message at every retry, one Event
    assert condition["message"].endswith(
        '-" is forbidden: no PriorityClass with name batch was found'
    )

    async def deployment_failure() -> Any:
        return failure(await p.client.get("apps/v1", "Deployment", "web", "default"))

    mirrored = await p.eventually(deployment_failure, what="the Deployment's ReplicaFailure")
    assert mirrored["message"] == condition["message"]

    async def events() -> Any:
        listed = (await p.client.list("v1", "Event", "default")).items
        return [e["message"] for e in listed if e.get("reason") == "FailedCreate"]

    (message,) = await p.eventually(events, what="a FailedCreate event")
    assert message == f"Error creating: {condition['message']}"
    assert await p.pods() == []

    await p.client.create(
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": "batch"},
            "value": 10,
        }
    )
    await p.eventually(lambda: _two_pods(p), timeout=15, what="the pods, once the class exists")

    async def cleared() -> bool:
        listed = (await p.client.list("apps/v1", "ReplicaSet", "default")).items
        return failure(listed[0]) is None and await deployment_failure() is None

    await p.eventually(cleared, what="ReplicaFailure gone")


async def _two_pods(p: Any) -> bool:
    return len(await p.pods()) == 2
