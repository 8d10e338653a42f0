"""PersistentVolumes and claims on an embedded server: static binding by the rules users
write PVs for, provisioning in the default class once a pod is placed, release and reclaim."""

from __future__ import annotations

from typing import Any

from reconciler.controllers.persistentvolume import PersistentVolumeController
from reconciler.controllers.pvc_protection import PvcProtectionController
from reconciler.controllers.volume_binding import find_volume

JSONDict = dict[str, Any]


def volume(
    name: str, size: str, cls: str = "manual", policy: str = "Retain", **labels: str
) -> JSONDict:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": cls,
            "persistentVolumeReclaimPolicy": policy,
            "hostPath": {"path": f"/srv/{name}"},
        },
    }


def claim(name: str, size: str, cls: str | None = "manual", **spec: Any) -> JSONDict:
    body: JSONDict = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
        **spec,
    }
    if cls is not None:
        body["storageClassName"] = cls
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
        "spec": body,
    }


def controller(client: Any, clock: Any) -> PersistentVolumeController:
    return PersistentVolumeController(client, clock, lambda uid: f"recon-pvc-{uid}")


def test_the_smallest_fitting_volume_of_the_class_wins() -> None:
    volumes = [volume("big", "10Gi"), volume("small", "1Gi"), volume("mid", "5Gi")]
    volumes.append(volume("other", "5Gi", cls="fast"))
    assert find_volume(claim("c", "3Gi"), volumes)["metadata"]["name"] == "mid"  # type: ignore[index]
    assert find_volume(claim("c", "20Gi"), volumes) is None
    wide = claim("c", "1Gi", accessModes=["ReadWriteMany"])
    assert find_volume(wide, volumes) is None
    picky = claim("c", "1Gi", selector={"matchLabels": {"tier": "db"}})
    assert (
        find_volume(picky, [*volumes, volume("db", "8Gi", tier="db")])["metadata"]["name"] == "db"
    )  # type: ignore[index]
    taken = volume("mid", "5Gi")
    taken["spec"]["claimRef"] = {"namespace": "default", "name": "someone", "uid": "x"}
    assert (
        find_volume(claim("c", "3Gi"), [taken, volume("big", "10Gi")])["metadata"]["name"] == "big"
    )  # type: ignore[index]
    prebound = volume("huge", "100Gi")
    prebound["spec"]["claimRef"] = {"namespace": "default", "name": "c"}
    assert find_volume(claim("c", "3Gi"), [*volumes, prebound])["metadata"]["name"] == "huge"  # type: ignore[index]


async def _phase(p: Any, kind: str, name: str) -> str:
    namespace = "default" if kind == "PersistentVolumeClaim" else None
    got = await p.client.get("v1", kind, name, namespace)
    return str((got.get("status") or {}).get("phase"))


async def test_static_binding_release_and_retain(plane: Any) -> None:
    p = await plane(controller, PvcProtectionController)
    await p.client.create(volume("pv-small", "1Gi"))
    await p.client.create(volume("pv-big", "5Gi"))
    await p.eventually(
        lambda: _is(p, "PersistentVolume", "pv-small", "Available"), what="Available"
    )
    body = claim("data", "2Gi")
    del body["metadata"]["uid"]
    await p.client.create(body)
    await p.eventually(lambda: _is(p, "PersistentVolumeClaim", "data", "Bound"), what="claim Bound")
    got = await p.client.get("v1", "PersistentVolumeClaim", "data", "default")
    assert got["spec"]["volumeName"] == "pv-big"
    assert got["status"]["capacity"] == {"storage": "5Gi"}
    pv = await p.client.get("v1", "PersistentVolume", "pv-big")
    assert pv["status"]["phase"] == "Bound"
    assert (pv["spec"]["claimRef"]["name"], pv["spec"]["claimRef"]["uid"]) == (
        "data",
        got["metadata"]["uid"],
    )
    await p.client.delete("v1", "PersistentVolumeClaim", "data", "default")
    await p.eventually(lambda: _is(p, "PersistentVolume", "pv-big", "Released"), what="Released")
    # a Released volume is not bound again (its data belong to the old claim)
    again = claim("again", "2Gi")
    del again["metadata"]["uid"]
    await p.client.create(again)
    await p.eventually(lambda: _is(p, "PersistentVolumeClaim", "again", "Pending"), what="Pending")
    assert (await p.client.get("v1", "PersistentVolumeClaim", "again", "default"))["spec"].get(
        "volumeName"
    ) is None


async def _is(p: Any, kind: str, name: str, phase: str) -> bool:
    return await _phase(p, kind, name) == phase


async def test_the_default_class_provisions_for_the_first_consumer(plane: Any) -> None:
    p = await plane(controller, PvcProtectionController)
    classes = (await p.client.list("storage.k8s.io/v1", "StorageClass")).items
    assert [(c["metadata"]["name"], c["volumeBindingMode"]) for c in classes] == [
        ("standard", "WaitForFirstConsumer")
    ]
    body = claim("cache", "1Gi", cls=None)
    del body["metadata"]["uid"]
    created = await p.client.create(body)
    assert created["spec"]["storageClassName"] == "standard"  # DefaultStorageClass admission

    async def waiting() -> bool:
        events = (await p.client.list("v1", "Event", "default")).items
        return any(e.get("reason") == "WaitForFirstConsumer" for e in events)

    await p.eventually(waiting, what="the WaitForFirstConsumer event")
    assert await _phase(p, "PersistentVolumeClaim", "cache") == "Pending"
    await p.client.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "user", "namespace": "default"},
            "spec": {
                "nodeName": "n1",
                "containers": [{"name": "c", "image": "x"}],
                "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "cache"}}],
            },
        }
    )
    await p.eventually(lambda: _is(p, "PersistentVolumeClaim", "cache", "Bound"), what="Bound")
    uid = created["metadata"]["uid"]
    pv = await p.client.get("v1", "PersistentVolume", f"pvc-{uid}")
    assert pv["spec"]["csi"] == {
        "driver": "recon.dev/engine-volume",
        "volumeHandle": f"recon-pvc-{uid}",
    }
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    await p.client.delete("v1", "Pod", "user", "default", grace_period=0)
    await p.client.delete("v1", "PersistentVolumeClaim", "cache", "default")

    async def pv_gone() -> bool:
        names = [
            v["metadata"]["name"] for v in (await p.client.list("v1", "PersistentVolume")).items
        ]
        return f"pvc-{uid}" not in names

    await p.eventually(pv_gone, what="the provisioned volume deleted with its claim")
