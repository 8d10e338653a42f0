"""The PersistentVolume controller: binds claims to volumes, provisions, reclaims.

What `kubectl get pv,pvc` shows on a cluster, done the way upstream's PV controller and
an external provisioner do it together:

- a Pending claim binds to the volume `volume_binding.find_volume` picks: the volume gets
  the claim in `claimRef` and phase Bound, the claim gets `volumeName`, phase Bound and the
  volume's capacity and access modes (`pv.kubernetes.io/bind-completed`);
- with no such volume and a StorageClass whose provisioner is Recon's
  (`ENGINE_PROVISIONER`), a volume `pvc-<claim uid>` is provisioned for it (a named engine
  volume the node creates on first mount) and bound; another provisioner is waited for;
- a class with `volumeBindingMode: WaitForFirstConsumer` (Recon's `standard` is one, as
  kind's) binds or provisions only once a pod using the claim is placed on a node; until
  then the claim is Pending with a WaitForFirstConsumer event;
- when a bound claim goes, its volume is Released, and deleted if its reclaim policy is
  Delete (the node removes the engine volume of a provisioned one; a hostPath's data stay).

Keys: `(namespace, name)` for claims, `("", name)` for volumes (claims always have a
namespace). Claims bound before this controller existed (`volumeName` naming an engine
volume, no PersistentVolume) are left as they are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import AlreadyExistsError, ConflictError, NotFoundError
from reconciler.client.events import EventRecorder
from reconciler.clock import Clock
from reconciler.controllers.base import Result
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey, obj_key
from reconciler.controllers.pvc_protection import claims_of
from reconciler.controllers.queue import WorkQueue
from reconciler.controllers.volume_binding import claim_class, find_volume, provisioned_volume
from reconciler.storage_classes import ENGINE_PROVISIONER

__all__ = ["PersistentVolumeController"]

JSONDict = dict[str, Any]

WAIT_FOR_CONSUMER = "WaitForFirstConsumer"


class PersistentVolumeController:
    name = "persistentvolume"

    def __init__(self, client: Client, clock: Clock, volume_handle: Callable[[str], str]) -> None:
        """`volume_handle`: the engine volume's name for a claim uid (the node's naming)."""
        self.client = client
        self.clock = clock
        self.volume_handle = volume_handle
        self.queue: WorkQueue[ObjKey] = WorkQueue(clock)
        self.recorder = EventRecorder(client, clock, "persistentvolume-controller")
        self.claims: Informer
        self.volumes: Informer
        self.classes: Informer
        self.pods: Informer
        self._waiting: set[str] = set()  # claim uids told they wait for a consumer

    def setup(self, factory: InformerFactory) -> None:
        self.claims = factory.informer("v1", "PersistentVolumeClaim")
        self.volumes = factory.informer("v1", "PersistentVolume")
        self.classes = factory.informer("storage.k8s.io/v1", "StorageClass")
        self.pods = factory.informer("v1", "Pod")

        def claim(obj: JSONDict) -> None:
            self.queue.add(obj_key(obj))
            volume = (obj.get("spec") or {}).get("volumeName")
            if volume:
                self.queue.add(("", str(volume)))

        def volume(obj: JSONDict) -> None:
            self.queue.add(obj_key(obj))
            self._pending_claims()  # a new or freed volume may fit a waiting claim

        def pod(obj: JSONDict) -> None:
            if (obj.get("spec") or {}).get("nodeName"):
                namespace = str((obj.get("metadata") or {}).get("namespace") or "")
                for name in claims_of(obj):
                    self.queue.add((namespace, name))

        self.claims.add_handlers(Handlers(claim, lambda _o, n: claim(n), claim))
        self.volumes.add_handlers(Handlers(volume, lambda _o, n: volume(n), volume))
        self.classes.add_handlers(
            Handlers(lambda _c: self._pending_claims(), lambda _o, _n: self._pending_claims())
        )
        self.pods.add_handlers(Handlers(pod, lambda _o, n: pod(n), None))

    def _pending_claims(self) -> None:
        for claim in self.claims.list():
            if (claim.get("status") or {}).get("phase") != "Bound":
                self.queue.add(obj_key(claim))

    async def reconcile(self, key: ObjKey) -> Result:
        namespace, name = key
        if not namespace:
            await self._sync_volume(name)
            return Result()
        claim = self.claims.get(namespace, name)
        if claim is None or (claim.get("metadata") or {}).get("deletionTimestamp"):
            return Result()
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if volume_name and (claim.get("status") or {}).get("phase") == "Bound":
            return Result()
        if (
            volume_name
            and self.volumes.get("", str(volume_name)) is None
            and str(volume_name).startswith(self.volume_handle(""))
        ):
            return Result()  # bound by an earlier Recon's node, without a volume object
        storage_class = self.classes.get("", claim_class(claim)) if claim_class(claim) else None
        if (
            storage_class is not None
            and storage_class.get("volumeBindingMode") == WAIT_FOR_CONSUMER
            and not self._consumed(claim)
        ):
            uid = str((claim.get("metadata") or {}).get("uid"))
            if uid not in self._waiting:
                self._waiting.add(uid)
                self.recorder.record(
                    claim,
                    "Normal",
                    "WaitForFirstConsumer",
                    "waiting for first consumer to be created before binding",
                )
            return Result()
        volume = find_volume(claim, self.volumes.list())
        if volume is not None:
            await self._bind(claim, volume)
            return Result()
        if storage_class is None:
            self.recorder.record(
                claim,
                "Normal",
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set"
                if not claim_class(claim)
                else f'storageclass.storage.k8s.io "{claim_class(claim)}" not found',
            )
            return Result()
        provisioner = str(storage_class.get("provisioner") or "")
        if provisioner != ENGINE_PROVISIONER:
            self.recorder.record(
                claim,
                "Normal",
                "ExternalProvisioning",
                f"Waiting for a volume to be created either by the external provisioner "
                f'"{provisioner}" or manually by the system administrator. If volume creation '
                "is delayed, please verify that the provisioner is running and correctly "
                "registered.",
            )
            return Result()
        uid = str((claim.get("metadata") or {}).get("uid"))
        made = provisioned_volume(claim, storage_class, self.volume_handle(uid))
        with contextlib.suppress(AlreadyExistsError):
            made = await self.client.create(made)
            self.recorder.record(
                claim,
                "Normal",
                "ProvisioningSucceeded",
                f"Successfully provisioned volume {made['metadata']['name']}",
            )
        return Result()  # the new volume's event brings the claim back to bind it

    def _consumed(self, claim: JSONDict) -> bool:
        meta = claim.get("metadata") or {}
        return any(
            (pod.get("spec") or {}).get("nodeName") and meta.get("name") in claims_of(pod)
            for pod in self.pods.list(str(meta.get("namespace") or ""))
        )

    async def _bind(self, claim: JSONDict, volume: Mapping[str, Any]) -> None:
        meta, vmeta = claim.get("metadata") or {}, volume.get("metadata") or {}
        namespace, name, volume_name = str(meta["namespace"]), str(meta["name"]), str(vmeta["name"])
        ref = {
            "kind": "PersistentVolumeClaim",
            "apiVersion": "v1",
            "namespace": namespace,
            "name": name,
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        try:
            await self.client.patch(
                "v1",
                "PersistentVolume",
                volume_name,
                {
                    "metadata": {"annotations": {"pv.kubernetes.io/bound-by-controller": "yes"}},
                    "spec": {"claimRef": ref},
                },
            )
            await self.client.patch(
                "v1",
                "PersistentVolume",
                volume_name,
                {"status": {"phase": "Bound"}},
                subresource="status",
            )
            await self.client.patch(
                "v1",
                "PersistentVolumeClaim",
                name,
                {
                    "metadata": {
                        "annotations": {
                            "pv.kubernetes.io/bind-completed": "yes",
                            "pv.kubernetes.io/bound-by-controller": "yes",
                        }
                    },
                    "spec": {"volumeName": volume_name},
                },
                namespace=namespace,
            )
            vspec = volume.get("spec") or {}
            await self.client.patch(
                "v1",
                "PersistentVolumeClaim",
                name,
                {
                    "status": {
                        "phase": "Bound",
                        "accessModes": vspec.get("accessModes") or [],
                        "capacity": vspec.get("capacity") or {},
                    }
                },
                namespace=namespace,
                subresource="status",
            )
        except (NotFoundError, ConflictError):
            self.queue.add((namespace, name))
        self._waiting.discard(str(meta.get("uid")))

    async def _sync_volume(self, name: str) -> None:
        volume = self.volumes.get("", name)
        if volume is None or (volume.get("metadata") or {}).get("deletionTimestamp"):
            return
        spec, status = volume.get("spec") or {}, volume.get("status") or {}
        ref = spec.get("claimRef") or {}
        phase = status.get("phase")
        wanted = phase
        if not ref:
            wanted = "Available"
        else:
            claim = self.claims.get(str(ref.get("namespace") or ""), str(ref.get("name") or ""))
            gone = claim is None or (
                ref.get("uid") and (claim.get("metadata") or {}).get("uid") != ref.get("uid")
            )
            if gone and ref.get("uid"):
                if spec.get("persistentVolumeReclaimPolicy") == "Delete":
                    with contextlib.suppress(NotFoundError):
                        await self.client.delete("v1", "PersistentVolume", name)
                    return
                wanted = "Released"
            elif not gone and (claim or {}).get("spec", {}).get("volumeName") == name:
                wanted = "Bound"
            elif phase is None:
                wanted = "Available"  # pre-bound, waiting for its claim
        if wanted != phase:
            with contextlib.suppress(NotFoundError):
                await self.client.patch(
                    "v1",
                    "PersistentVolume",
                    name,
                    {"status": {"phase": wanted}},
                    subresource="status",
                )
