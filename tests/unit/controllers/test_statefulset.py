"""The StatefulSet controller: its pure plan, revisions, and rollouts on an embedded server."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from reconciler.controllers.pvc_protection import PvcProtectionController
from reconciler.controllers.revision_history import (
    choose_revision,
    claim_revisions,
    revision_data,
    revision_template,
    revisions_to_prune,
)
from reconciler.controllers.statefulset import StatefulSetController
from reconciler.controllers.statefulset_plan import Revisions, plan
from reconciler.controllers.statefulset_pods import (
    HASH_LABEL,
    POD_INDEX_LABEL,
    POD_NAME_LABEL,
    REVISION_LABEL,
    claim_owner_references,
    ordinal_of,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TEMPLATE = {
    "metadata": {"labels": {"app": "db"}},
    "spec": {"containers": [{"name": "c", "image": "db:1"}]},
}
V2 = {
    "metadata": {"labels": {"app": "db"}},
    "spec": {"containers": [{"name": "c", "image": "db:2"}]},
}
REVS = Revisions("db-r1", TEMPLATE, "db-r1", TEMPLATE)
ROLLING = Revisions("db-r1", TEMPLATE, "db-r2", V2)


def sts(replicas: int = 3, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "default", "uid": "sts-uid", "generation": 2},
        "spec": {
            "replicas": replicas,
            "serviceName": "db-headless",
            "selector": {"matchLabels": {"app": "db"}},
            "template": TEMPLATE,
            **spec,
        },
    }


def pod(
    ordinal: int,
    revision: str = "db-r1",
    phase: str = "Running",
    ready: bool = True,
    deleting: bool = False,
    owner: str | None = "sts-uid",
) -> dict[str, Any]:
    name = f"db-{ordinal}"
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "uid": f"pod-{ordinal}",
        "labels": {
            "app": "db",
            REVISION_LABEL: revision,
            POD_NAME_LABEL: name,
            POD_INDEX_LABEL: str(ordinal),
        },
    }
    if owner:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "name": "db",
                "uid": owner,
                "controller": True,
            }
        ]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def names(objs: list[dict[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


# -- identity ------------------------------------------------------------------------


def test_ordinals_parse_only_members() -> None:
    assert ordinal_of("db", "db-0") == 0
    assert ordinal_of("db", "db-12") == 12
    assert ordinal_of("db", "db-01") is None
    assert ordinal_of("db", "dbx-1") is None
    assert ordinal_of("web-db", "web-db-3") == 3
    assert ordinal_of("db", "db-x") is None


def test_created_pod_has_stable_identity_and_storage() -> None:
    s = sts(volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {"accessModes": ["RWO"]}}])
    decided = plan(s, [], {}, REVS, NOW)
    (created,) = decided.create_pods
    meta, spec = created["metadata"], created["spec"]
    assert meta["name"] == "db-0"
    assert meta["labels"] == {
        "app": "db",
        POD_NAME_LABEL: "db-0",
        POD_INDEX_LABEL: "0",
        REVISION_LABEL: "db-r1",
    }
    assert meta["ownerReferences"][0]["controller"] is True
    assert spec["hostname"] == "db-0" and spec["subdomain"] == "db-headless"
    assert spec["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}
    ]
    (claim,) = decided.create_claims
    assert claim["metadata"]["name"] == "data-db-0"
    assert claim["metadata"]["labels"] == {"app": "db"}
    assert "ownerReferences" not in claim["metadata"]  # Retain: no owner, never collected


# -- OrderedReady and Parallel ---------------------------------------------------------


def test_ordered_ready_creates_one_pod_at_a_time() -> None:
    assert names(plan(sts(3), [], {}, REVS, NOW).create_pods) == ["db-0"]
    waiting = plan(sts(3), [pod(0, ready=False)], {}, REVS, NOW)
    assert waiting.create_pods == [] and "db-0" in waiting.waiting
    assert names(plan(sts(3), [pod(0)], {}, REVS, NOW).create_pods) == ["db-1"]
    pending = plan(sts(3), [pod(0), pod(1, phase="Pending", ready=False)], {}, REVS, NOW)
    assert pending.create_pods == []


def test_parallel_creates_and_deletes_everything_at_once() -> None:
    decided = plan(sts(3, podManagementPolicy="Parallel"), [], {}, REVS, NOW)
    assert names(decided.create_pods) == ["db-0", "db-1", "db-2"]
    decided = plan(sts(0, podManagementPolicy="Parallel"), [pod(0), pod(1), pod(2)], {}, REVS, NOW)
    assert decided.delete_pods == ["db-2", "db-1", "db-0"]


def test_ordered_scale_down_from_the_highest_one_at_a_time() -> None:
    pods = [pod(0), pod(1), pod(2), pod(3)]
    assert plan(sts(2), pods, {}, REVS, NOW).delete_pods == ["db-3"]
    leaving = [pod(0), pod(1), pod(2), pod(3, deleting=True)]
    assert plan(sts(2), leaving, {}, REVS, NOW).delete_pods == []  # wait for db-3 to go
    assert plan(sts(2), pods[:3], {}, REVS, NOW).delete_pods == ["db-2"]


def test_ordered_scale_down_waits_for_unhealthy_predecessors() -> None:
    # db-1 is in range and not ready: nothing is removed.
    assert plan(sts(2), [pod(0), pod(1, ready=False), pod(2)], {}, REVS, NOW).delete_pods == []
    # The only unhealthy pod is the one being removed: it may go.
    assert plan(sts(2), [pod(0), pod(1), pod(2, ready=False)], {}, REVS, NOW).delete_pods == [
        "db-2"
    ]
    # db-3 is unhealthy, and so is db-2 below it: db-3 waits (upstream's firstUnhealthyPod).
    pods = [pod(0), pod(1), pod(2, ready=False), pod(3, ready=False)]
    assert plan(sts(2), pods, {}, REVS, NOW).delete_pods == []


def test_failed_pod_is_deleted_then_recreated_under_its_name() -> None:
    failed = plan(sts(2), [pod(0, phase="Failed", ready=False), pod(1)], {}, REVS, NOW)
    assert failed.delete_pods == ["db-0"] and failed.create_pods == []
    gone = plan(sts(2), [pod(1)], {}, REVS, NOW)
    assert names(gone.create_pods) == ["db-0"]


def test_orphans_are_adopted_and_mismatched_pods_released() -> None:
    orphan = pod(0, owner=None)
    relabelled = pod(1)
    relabelled["metadata"]["labels"]["app"] = "other"
    decided = plan(sts(1), [orphan, relabelled], {}, REVS, NOW)
    assert decided.adopt == ["db-0"] and decided.release == ["db-1"]
    assert decided.status["replicas"] == 1


def test_missing_identity_labels_are_restored() -> None:
    bare = pod(0)
    del bare["metadata"]["labels"][POD_NAME_LABEL]
    decided = plan(sts(1), [bare], {}, REVS, NOW)
    assert decided.relabel == {"db-0": {POD_NAME_LABEL: "db-0", POD_INDEX_LABEL: "0"}}


def test_pod_waits_while_its_claim_is_being_deleted() -> None:
    s = sts(1, volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {}}])
    claim = {"metadata": {"name": "data-db-0", "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    decided = plan(s, [], {"data-db-0": claim}, REVS, NOW)
    assert decided.create_pods == [] and decided.create_claims == []
    assert "data-db-0" in decided.waiting


def test_nothing_but_status_while_expectations_are_pending() -> None:
    decided = plan(sts(3), [], {}, REVS, NOW, sync=False)
    assert decided.create_pods == [] and decided.status["replicas"] == 0


def test_ordinals_start() -> None:
    decided = plan(sts(2, ordinals={"start": 5}), [], {}, REVS, NOW)
    assert names(decided.create_pods) == ["db-5"]
    assert plan(sts(1, ordinals={"start": 5}), [pod(5), pod(0)], {}, REVS, NOW).delete_pods == [
        "db-0"
    ]


# -- updates ---------------------------------------------------------------------------


def test_rolling_update_replaces_from_the_highest_ordinal() -> None:
    pods = [pod(0), pod(1), pod(2)]
    assert plan(sts(3), pods, {}, ROLLING, NOW).delete_pods == ["db-2"]
    # db-2 is back at r2 but not ready yet: wait.
    pods = [pod(0), pod(1), pod(2, "db-r2", ready=False)]
    assert plan(sts(3), pods, {}, ROLLING, NOW).delete_pods == []
    pods = [pod(0), pod(1), pod(2, "db-r2")]
    assert plan(sts(3), pods, {}, ROLLING, NOW).delete_pods == ["db-1"]


def test_recreated_pods_use_the_update_revision_above_the_partition() -> None:
    decided = plan(sts(3), [pod(0), pod(1)], {}, ROLLING, NOW)
    assert decided.create_pods[0]["metadata"]["labels"][REVISION_LABEL] == "db-r2"
    assert decided.create_pods[0]["spec"]["containers"][0]["image"] == "db:2"
    partitioned = sts(
        3, updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
    )
    decided = plan(partitioned, [pod(1), pod(2, "db-r2")], {}, ROLLING, NOW)
    assert decided.create_pods[0]["metadata"]["labels"][REVISION_LABEL] == "db-r1"
    assert decided.create_pods[0]["spec"]["containers"][0]["image"] == "db:1"


def test_partition_stops_the_rollout() -> None:
    s = sts(3, updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    pods = [pod(0), pod(1), pod(2, "db-r2")]
    decided = plan(s, pods, {}, ROLLING, NOW)
    assert decided.delete_pods == []
    assert decided.status["updatedReplicas"] == 1 and decided.status["currentRevision"] == "db-r1"


def test_on_delete_never_deletes_for_an_update() -> None:
    s = sts(3, updateStrategy={"type": "OnDelete"})
    assert plan(s, [pod(0), pod(1), pod(2)], {}, ROLLING, NOW).delete_pods == []
    decided = plan(s, [pod(0), pod(1)], {}, ROLLING, NOW)
    assert decided.create_pods[0]["metadata"]["labels"][REVISION_LABEL] == "db-r2"


def test_status_counts_and_rollout_completion() -> None:
    mid = plan(sts(3), [pod(0), pod(1, "db-r2"), pod(2, "db-r2")], {}, ROLLING, NOW).status
    assert mid == {
        "observedGeneration": 2,
        "replicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "currentReplicas": 1,
        "updatedReplicas": 2,
        "currentRevision": "db-r1",
        "updateRevision": "db-r2",
        "collisionCount": 0,
    }
    done = plan(sts(3), [pod(i, "db-r2") for i in range(3)], {}, ROLLING, NOW).status
    assert done["currentRevision"] == "db-r2" and done["currentReplicas"] == 3


# -- PVC retention ---------------------------------------------------------------------


def test_claim_owners_follow_the_retention_policy() -> None:
    claim = {"metadata": {"name": "data-db-3"}}
    p = pod(3)
    retain = sts(2)
    assert claim_owner_references(retain, claim, p, in_range=False) == []
    both = sts(
        2, persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Delete"}
    )
    assert [r["uid"] for r in claim_owner_references(both, claim, p, in_range=True)] == ["sts-uid"]
    assert [r["uid"] for r in claim_owner_references(both, claim, p, in_range=False)] == ["pod-3"]
    deleted_only = sts(2, persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete"})
    assert [r["uid"] for r in claim_owner_references(deleted_only, claim, p, False)] == ["sts-uid"]


def test_scaled_down_claims_get_the_pod_as_owner_before_the_pod_goes() -> None:
    s = sts(
        1,
        volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {}}],
        persistentVolumeClaimRetentionPolicy={"whenScaled": "Delete"},
    )
    claims = {f"data-db-{i}": {"metadata": {"name": f"data-db-{i}"}} for i in range(2)}
    decided = plan(s, [pod(0), pod(1)], claims, REVS, NOW)
    assert decided.delete_pods == ["db-1"]
    assert [r["uid"] for r in decided.claim_owners["data-db-1"]] == ["pod-1"]
    assert "data-db-0" not in decided.claim_owners


# -- revisions -------------------------------------------------------------------------


def revision(name: str, number: int, template: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {HASH_LABEL: name}},
        "data": revision_data({"spec": {"template": template}}),
        "revision": number,
    }


def test_first_revision_is_created_from_the_template() -> None:
    choice = choose_revision(sts(), [], HASH_LABEL)
    assert choice.create and choice.update["revision"] == 1
    assert choice.update["data"]["spec"]["template"]["$patch"] == "replace"
    assert revision_template(choice.update) == TEMPLATE
    assert choice.update_name.startswith("db-")
    assert choice.update["metadata"]["labels"]["app"] == "db"  # the selector lists it
    assert choice.current is choice.update


def test_unchanged_template_reuses_the_newest_revision() -> None:
    r1 = revision("db-r1", 1, TEMPLATE)
    choice = choose_revision(sts(), [r1], HASH_LABEL, "db-r1")
    assert not choice.create and choice.renumber is None and choice.update is r1


def test_rollback_renumbers_the_old_revision() -> None:
    r1, r2 = revision("db-r1", 1, TEMPLATE), revision("db-r2", 2, V2)
    choice = choose_revision(sts(), [r1, r2], HASH_LABEL, "db-r2")
    assert choice.update is r1 and choice.renumber == 3
    assert choice.current is r2


def test_history_pruning_keeps_live_revisions() -> None:
    revs = [revision(f"r{i}", i, TEMPLATE) for i in range(1, 6)]
    assert revisions_to_prune(revs, {"r5", "r1"}, 2) == ["r2"]
    assert revisions_to_prune(revs, {"r5"}, 10) == []


def test_orphaned_revisions_the_selector_matches_are_claimed() -> None:
    def labelled(name: str, labels: dict[str, str], owner: str | None) -> dict[str, Any]:
        r = revision(name, 1, TEMPLATE)
        r["metadata"]["labels"] = {**labels, HASH_LABEL: name}
        if owner:
            r["metadata"]["ownerReferences"] = [{"uid": owner, "controller": True}]
        return r

    mine = labelled("mine", {"app": "db"}, "sts-uid")
    orphan = labelled("orphan", {"app": "db"}, None)
    foreign = labelled("foreign", {"app": "db"}, "other-uid")
    unmatched = labelled("unmatched", {"app": "cache"}, None)
    owned, orphans = claim_revisions(sts(), [mine, orphan, foreign, unmatched])
    assert names(owned) == ["mine", "orphan"] and names(orphans) == ["orphan"]
    deleting = sts()
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert claim_revisions(deleting, [mine, orphan]) == ([mine], [])
    assert claim_revisions(sts(selector={}), [mine, orphan]) == ([mine], [])


# -- against the embedded server -------------------------------------------------------


async def mark_ready(plane: Any, name: str) -> None:
    await plane.client.patch(
        "v1",
        "Pod",
        name,
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


async def fake_kubelet(plane: Any) -> None:
    """Test stand-in for the node agent: every pod becomes Running and Ready at once."""
    while True:
        for p in await plane.pods():
            if p.get("status", {}).get("phase") != "Running":
                with contextlib.suppress(Exception):
                    await mark_ready(plane, p["metadata"]["name"])
        await asyncio.sleep(0.01)


CLAIM_SPEC = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}


def new_sts(replicas: int, **spec: Any) -> dict[str, Any]:
    s = sts(replicas, **spec)
    del s["metadata"]["uid"], s["metadata"]["generation"]
    return s


async def test_ordered_start_with_claims_against_the_embedded_server(plane: Any) -> None:
    p = await plane(StatefulSetController)
    await p.client.create(
        new_sts(
            2,
            volumeClaimTemplates=[
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        )
    )

    async def pod_names() -> list[str]:
        return sorted(names(await p.pods()))

    await p.eventually(lambda: _eq(pod_names, ["db-0"]), what="db-0 first")
    claims = (await p.client.list("v1", "PersistentVolumeClaim", "default")).items
    assert names(claims) == ["data-db-0"]
    await asyncio.sleep(0.05)
    assert await pod_names() == ["db-0"]  # db-1 waits for db-0 to be ready
    await mark_ready(p, "db-0")
    await p.eventually(lambda: _eq(pod_names, ["db-0", "db-1"]), what="db-1 after db-0")
    db1 = await p.client.get("v1", "Pod", "db-1", "default")
    assert db1["spec"]["hostname"] == "db-1" and db1["spec"]["subdomain"] == "db-headless"
    await mark_ready(p, "db-1")
    # A deleted pod comes back under the same name, with the same claim.
    await p.client.delete("v1", "Pod", "db-0", "default")
    await p.eventually(lambda: _eq(pod_names, ["db-0", "db-1"]), what="db-0 recreated")
    # Scale down: the pod goes, the claim stays (Retain).
    await p.client.patch(
        "apps/v1", "StatefulSet", "db", {"spec": {"replicas": 0}}, namespace="default"
    )
    await mark_ready(p, "db-0")
    await p.eventually(lambda: _eq(pod_names, []), what="scale down to 0")
    claims = (await p.client.list("v1", "PersistentVolumeClaim", "default")).items
    assert sorted(names(claims)) == ["data-db-0", "data-db-1"]


async def test_claims_of_scaled_away_pods_go_with_when_scaled_delete(plane: Any) -> None:
    p = await plane(StatefulSetController, PvcProtectionController)
    kubelet = asyncio.create_task(fake_kubelet(p))
    try:
        await p.client.create(
            new_sts(
                2,
                volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": CLAIM_SPEC}],
                persistentVolumeClaimRetentionPolicy={
                    "whenDeleted": "Retain",
                    "whenScaled": "Delete",
                },
            )
        )

        async def claim_names() -> list[str]:
            listed = await p.client.list("v1", "PersistentVolumeClaim", "default")
            return sorted(names(listed.items))

        await p.eventually(lambda: _eq(claim_names, ["data-db-0", "data-db-1"]), what="claims")
        await p.client.patch(
            "apps/v1", "StatefulSet", "db", {"spec": {"replicas": 1}}, namespace="default"
        )
        await p.eventually(lambda: _eq(claim_names, ["data-db-0"]), what="data-db-1 collected")
        assert names(await p.pods()) == ["db-0"]
    finally:
        kubelet.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await kubelet


async def test_rolling_update_and_undo_against_the_embedded_server(plane: Any) -> None:
    p = await plane(StatefulSetController)
    kubelet = asyncio.create_task(fake_kubelet(p))
    try:
        await p.client.create(new_sts(3))

        async def rolled(image: str) -> bool:
            got = await p.client.get("apps/v1", "StatefulSet", "db", "default")
            st = got.get("status", {})
            images = {q["spec"]["containers"][0]["image"] for q in await p.pods()}
            return bool(
                st.get("observedGeneration") == got["metadata"]["generation"]
                and st.get("readyReplicas") == 3
                and st.get("updatedReplicas") == 3
                and st.get("currentRevision") == st.get("updateRevision")
                and images == {image}
            )

        await p.eventually(lambda: rolled("db:1"), timeout=10, what="first rollout")
        await p.client.patch(
            "apps/v1",
            "StatefulSet",
            "db",
            {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "db:2"}]}}}},
            namespace="default",
            patch_type="strategic",
        )
        await p.eventually(lambda: rolled("db:2"), timeout=10, what="rollout to db:2")
        revisions = (await p.client.list("apps/v1", "ControllerRevision", "default")).items
        assert sorted(r["revision"] for r in revisions) == [1, 2]
        first = next(r for r in revisions if r["revision"] == 1)
        # `kubectl rollout undo`: the revision's data, sent as a strategic merge patch.
        await p.client.patch(
            "apps/v1",
            "StatefulSet",
            "db",
            first["data"],
            namespace="default",
            patch_type="strategic",
        )
        await p.eventually(lambda: rolled("db:1"), timeout=10, what="undo to db:1")
        revisions = (await p.client.list("apps/v1", "ControllerRevision", "default")).items
        by_name = {r["metadata"]["name"]: r["revision"] for r in revisions}
        assert by_name[first["metadata"]["name"]] == 3 and sorted(by_name.values()) == [2, 3]
        got = await p.client.get("apps/v1", "StatefulSet", "db", "default")
        assert got["status"]["updateRevision"] == first["metadata"]["name"]
    finally:
        kubelet.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await kubelet


async def test_a_set_created_again_adopts_what_an_orphaning_delete_left(plane: Any) -> None:
    """`kubectl delete sts --cascade=orphan`, then apply it again: the new set adopts the
    pods and the revisions, replaces nothing and creates no new revision."""
    p = await plane(StatefulSetController)
    kubelet = asyncio.create_task(fake_kubelet(p))
    try:
        await p.client.create(new_sts(2))

        async def ready(uid: str | None = None) -> dict[str, Any] | None:
            got = await p.client.get("apps/v1", "StatefulSet", "db", "default")
            st = got.get("status", {})
            done = st.get("readyReplicas") == 2 and st.get("observedGeneration") == 1
            return got if done and uid in (None, got["metadata"]["uid"]) else None

        first = await p.eventually(ready, what="the first set ready")
        pods = {q["metadata"]["name"]: q["metadata"]["uid"] for q in await p.pods()}
        revisions = (await p.client.list("apps/v1", "ControllerRevision", "default")).items
        assert len(revisions) == 1
        await p.client.delete("apps/v1", "StatefulSet", "db", "default", propagation="Orphan")

        async def orphaned() -> bool:
            listed = await p.client.list("apps/v1", "ControllerRevision", "default")
            return not any(r["metadata"].get("ownerReferences") for r in listed.items) and not [
                q for q in await p.pods() if q["metadata"].get("ownerReferences")
            ]

        await p.eventually(orphaned, what="the set gone, its pods and revision orphaned")
        second = await p.client.create(new_sts(2))
        uid = second["metadata"]["uid"]
        assert uid != first["metadata"]["uid"]

        async def adopted() -> dict[str, Any] | None:
            got = await ready(uid)
            listed = await p.client.list("apps/v1", "ControllerRevision", "default")
            owners = {
                ref["uid"]
                for obj in [*listed.items, *await p.pods()]
                for ref in obj["metadata"].get("ownerReferences") or []
            }
            return got if got is not None and owners == {uid} else None

        got = await p.eventually(adopted, what="the pods and the revision adopted")
        assert {q["metadata"]["name"]: q["metadata"]["uid"] for q in await p.pods()} == pods
        listed = (await p.client.list("apps/v1", "ControllerRevision", "default")).items
        assert names(listed) == names(revisions)
        assert got["status"]["currentRevision"] == revisions[0]["metadata"]["name"]
        assert got["status"].get("collisionCount", 0) == 0
    finally:
        kubelet.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await kubelet


async def _eq(fn: Any, value: Any) -> bool:
    return bool(await fn() == value)
