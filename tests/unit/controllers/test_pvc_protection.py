"""PVC protection: a claim a running pod mounts outlives its deletion until the pod is gone
or finished, then goes."""

from __future__ import annotations

from typing import Any

from reconciler.client.errors import NotFoundError
from reconciler.controllers.pvc_protection import (
    PVC_PROTECTION,
    PvcProtectionController,
    claims_of,
    in_use,
)

JSONDict = dict[str, Any]


def claim(name: str) -> JSONDict:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def pod(name: str, claim_name: str, phase: str | None = None) -> JSONDict:
    obj: JSONDict = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "containers": [{"name": "c", "image": "busybox"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}],
        },
    }
    if phase:
        obj["status"] = {"phase": phase}
    return obj


def test_claims_of_a_pod_include_ephemeral_ones() -> None:
    p = pod("web-0", "data-web-0")
    p["spec"]["volumes"].append({"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}})
    p["spec"]["volumes"].append({"name": "tmp", "emptyDir": {}})
    assert claims_of(p) == {"data-web-0", "web-0-scratch"}


def test_only_unfinished_pods_use_a_claim() -> None:
    assert in_use("data", [pod("a", "data", "Running")])
    assert in_use("data", [pod("a", "data")])  # pending: about to mount it
    assert not in_use("data", [pod("a", "data", "Succeeded"), pod("b", "data", "Failed")])
    assert not in_use("data", [pod("a", "other", "Running")])


async def _gone(p: Any, name: str) -> bool:
    try:
        await p.client.get("v1", "PersistentVolumeClaim", name, "default")
    except NotFoundError:
        return True
    return False


async def test_a_new_claim_carries_the_finalizer(plane: Any) -> None:
    p = await plane()
    created = await p.client.create(claim("data"))
    assert PVC_PROTECTION in created["metadata"]["finalizers"]


async def test_a_claim_in_use_waits_for_its_pod(plane: Any) -> None:
    p = await plane(PvcProtectionController)
    await p.client.create(claim("data"))
    await p.client.create(pod("user", "data"))
    await p.client.delete("v1", "PersistentVolumeClaim", "data", "default")
    still = await p.client.get("v1", "PersistentVolumeClaim", "data", "default")
    assert still["metadata"]["deletionTimestamp"]
    assert PVC_PROTECTION in still["metadata"]["finalizers"]

    await p.client.delete("v1", "Pod", "user", "default")

    await p.eventually(
        lambda: _gone(p, "data"), timeout=5, what="the claim deleted once its pod is gone"
    )


async def test_a_finished_pod_does_not_hold_a_claim(plane: Any) -> None:
    p = await plane(PvcProtectionController)
    await p.client.create(claim("data"))
    await p.client.create(pod("done", "data"))
    done = await p.client.get("v1", "Pod", "done", "default")
    done["status"] = {"phase": "Succeeded"}
    await p.client.update(done, subresource="status")
    await p.client.delete("v1", "PersistentVolumeClaim", "data", "default")

    await p.eventually(
        lambda: _gone(p, "data"), timeout=5, what="the claim deleted: its only pod finished"
    )


async def test_the_controller_adds_a_missing_finalizer(plane: Any) -> None:
    p = await plane(PvcProtectionController)
    await p.client.create(claim("old"))
    await p.client.patch(
        "v1",
        "PersistentVolumeClaim",
        "old",
        {"metadata": {"finalizers": None}},
        namespace="default",
    )

    async def protected() -> bool:
        got = await p.client.get("v1", "PersistentVolumeClaim", "old", "default")
        return PVC_PROTECTION in (got["metadata"].get("finalizers") or [])

    await p.eventually(protected, timeout=5, what="the finalizer added back")


async def test_without_the_controller_a_deleted_claim_stays_terminating(plane: Any) -> None:
    """The API server alone keeps the claim: its removal is the controller's decision."""
    p = await plane()
    await p.client.create(claim("data"))
    await p.client.delete("v1", "PersistentVolumeClaim", "data", "default")
    stuck = await p.client.get("v1", "PersistentVolumeClaim", "data", "default")
    assert stuck["metadata"]["finalizers"] == [PVC_PROTECTION]
