"""PersistentVolumeClaims on the node: one engine volume per claim, named after the claim's
uid, kept across pods, removed once the claim is gone and no container uses it."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.node.claim_volumes import reclaimable
from tests.unit.node.conftest import NodeHarness, condition

JSONDict = dict[str, Any]

AGENT = {"recon.dev/agent": "test"}


def running(pod: JSONDict) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and condition(pod, "Ready") == "True"


@pytest.mark.parametrize(
    ("volumes", "live", "expected"),
    [
        ([], set(), []),
        (["recon-pvc-a"], {"a"}, []),
        (["recon-pvc-a", "recon-pvc-b"], {"a"}, ["recon-pvc-b"]),
        (["recon-pvc-b", "recon-pvc-a"], set(), ["recon-pvc-a", "recon-pvc-b"]),
        # emptyDir volumes (`recon-<pod uid>-<name>`) are never a claim's
        (["recon-0b1c-scratch", "recon-pvc-a"], set(), ["recon-pvc-a"]),
    ],
)
def test_reclaimable_are_the_claim_volumes_whose_claim_is_gone(
    volumes: list[str], live: set[str], expected: list[str]
) -> None:
    assert reclaimable(volumes, live) == expected


async def _claim(node: NodeHarness, name: str) -> JSONDict:
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}},
    }
    return await node.client.create(body)


async def _pod_on(node: NodeHarness, name: str, claim: str) -> JSONDict:
    await node.create_pod(
        name,
        {
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "c",
                    "image": "fake/pause",
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
        },
    )
    return await node.wait_pod(name, running)


async def _gone(node: NodeHarness, name: str) -> None:
    async def check() -> bool:
        listed = await node.client.list("v1", "Pod", "default")
        return all(p["metadata"]["name"] != name for p in listed.items)

    await node.eventually(check, what=f"pod {name} removed")


async def test_a_claim_is_one_volume_named_by_its_uid_and_bound(node: NodeHarness) -> None:
    claim = await _claim(node, "data")
    pod = await _pod_on(node, "db", "data")
    volume = f"recon-pvc-{claim['metadata']['uid']}"
    assert await node.runtime.list_volumes(AGENT) == [volume]
    assert await node.runtime.list_volumes({"recon.dev/pvc": "default.data"}) == [volume]
    bound = await node.client.get("v1", "PersistentVolumeClaim", "data", "default")
    assert bound["status"]["phase"] == "Bound"
    # provisioned in the default class once the pod was placed: `kubectl get pvc` shows it
    assert bound["spec"]["volumeName"] == f"pvc-{claim['metadata']['uid']}"
    pv = await node.client.get("v1", "PersistentVolume", bound["spec"]["volumeName"])
    assert pv["spec"]["csi"]["volumeHandle"] == volume
    # The pod goes, the claim and its volume stay; the next pod mounts the same volume.
    await node.client.delete("v1", "Pod", "db", "default")
    await _gone(node, "db")

    async def containers_removed() -> bool:
        uid = pod["metadata"]["uid"]
        return not await node.runtime.list_containers({"recon.dev/pod-uid": uid})

    await node.eventually(containers_removed, what="the pod's containers removed")
    await _pod_on(node, "db2", "data")
    assert await node.runtime.list_volumes(AGENT) == [volume]


async def test_a_pod_waits_for_its_claim(node: NodeHarness) -> None:
    await node.create_pod(
        "early",
        {
            "containers": [{"name": "c", "image": "fake/pause"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "later"}}],
        },
    )

    async def unschedulable() -> bool:
        pod = await node.client.get("v1", "Pod", "early", "default")
        return any(
            c["type"] == "PodScheduled"
            and c["status"] == "False"
            and c["message"].startswith(
                '0/1 nodes are available: persistentvolumeclaim "later" not found.'
            )
            for c in (pod.get("status") or {}).get("conditions") or []
        )

    await node.eventually(unschedulable, what="the pod unschedulable without its claim")
    assert not await node.runtime.list_volumes(AGENT)
    await _claim(node, "later")
    await node.wait_pod("early", running, what="the pod running once its claim exists")


async def test_the_volume_goes_with_its_claim_once_no_pod_uses_it(node: NodeHarness) -> None:
    claim = await _claim(node, "data")
    await _pod_on(node, "db", "data")
    volume = f"recon-pvc-{claim['metadata']['uid']}"
    # Deleted while a pod still mounts it: the volume stays until the pod is done.
    await node.client.delete("v1", "PersistentVolumeClaim", "data", "default")
    await node.settle()
    assert await node.runtime.list_volumes(AGENT) == [volume]
    await node.client.delete("v1", "Pod", "db", "default")
    await _gone(node, "db")

    async def reclaimed() -> bool:
        return not await node.runtime.list_volumes(AGENT)

    await node.eventually(reclaimed, what="the claim's volume removed")
    # A claim created again under the same name starts with a new, empty volume.
    again = await _claim(node, "data")
    await _pod_on(node, "db3", "data")
    assert await node.runtime.list_volumes(AGENT) == [f"recon-pvc-{again['metadata']['uid']}"]


async def test_claims_deleted_while_the_agent_was_down_are_reclaimed_at_start(
    node: NodeHarness,
) -> None:
    kept, dropped = await _claim(node, "kept"), await _claim(node, "dropped")
    await _pod_on(node, "a", "kept")
    await _pod_on(node, "b", "dropped")
    # Another agent's volume on the same engine is never touched.
    await node.runtime.ensure_volume("recon-pvc-other", {"recon.dev/agent": "someone-else"})
    await node.stop_agent()
    await node.client.delete("v1", "Pod", "b", "default", grace_period=0)
    await node.client.delete("v1", "PersistentVolumeClaim", "dropped", "default")
    assert dropped["metadata"]["uid"] != kept["metadata"]["uid"]
    await node.start_agent()

    async def reclaimed() -> bool:
        return await node.runtime.list_volumes(AGENT) == [f"recon-pvc-{kept['metadata']['uid']}"]

    await node.eventually(reclaimed, what="only the deleted claim's volume removed")
    assert await node.runtime.list_volumes({"recon.dev/agent": "someone-else"}) == [
        "recon-pvc-other"
    ]
    await node.wait_pod("a", running)


async def test_a_claim_bound_to_a_host_path_volume_mounts_that_path(
    node: NodeHarness, tmp_path: Any
) -> None:
    data = tmp_path / "pv-data"
    await node.client.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "task-pv"},
            "spec": {
                "storageClassName": "manual",
                "capacity": {"storage": "10Gi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": str(data)},
            },
        }
    )
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "task-claim", "namespace": "default"},
        "spec": {
            "storageClassName": "manual",
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "3Gi"}},
        },
    }
    await node.client.create(body)
    pod = await _pod_on(node, "task", "task-claim")
    (c,) = await node.containers(pod, "c")
    mounts = {m.target: m for m in c.mounts}
    assert (mounts["/data"].kind, mounts["/data"].source) == ("bind", str(data))
    assert data.is_dir()  # made, as a hostPath volume's DirectoryOrCreate
    claim = await node.client.get("v1", "PersistentVolumeClaim", "task-claim", "default")
    assert (claim["spec"]["volumeName"], claim["status"]["capacity"]) == (
        "task-pv",
        {"storage": "10Gi"},
    )
    assert not await node.runtime.list_volumes(AGENT)  # no engine volume for it
