"""PVC protection: a claim a pod still uses is not deleted under it.

As Kubernetes: every PersistentVolumeClaim carries the `kubernetes.io/pvc-protection`
finalizer (set by the API server at creation, and by this controller on claims that lack
it); a deleted claim stays `Terminating` until no pod that is not finished (phase Succeeded
or Failed) mounts it — by `persistentVolumeClaim.claimName`, or as the claim of a generic
ephemeral volume (`<pod>-<volume>`) — and then this controller removes the finalizer, so
the claim, and then its data, goes. Without it, deleting a claim (or its namespace) while a
StatefulSet's pod writes to it would pull the volume out from under the pod.

`in_use` (pure) decides; the controller only adds or removes the finalizer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import NotFoundError
from reconciler.clock import Clock
from reconciler.controllers.base import Result, enqueue_self
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey
from reconciler.controllers.podutil import is_terminal
from reconciler.controllers.queue import WorkQueue

__all__ = ["PVC_PROTECTION", "PvcProtectionController", "claims_of", "in_use"]

JSONDict = dict[str, Any]

PVC_PROTECTION = "kubernetes.io/pvc-protection"


def claims_of(pod: Mapping[str, Any]) -> set[str]:
    """The names of the claims `pod` mounts."""
    name = str((pod.get("metadata") or {}).get("name") or "")
    claims: set[str] = set()
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        source = volume.get("persistentVolumeClaim")
        if isinstance(source, dict) and source.get("claimName"):
            claims.add(str(source["claimName"]))
        elif isinstance(volume.get("ephemeral"), dict):
            claims.add(f"{name}-{volume.get('name')}")
    return claims


def in_use(claim: str, pods: Iterable[Mapping[str, Any]]) -> bool:
    """Does a pod that has not finished mount `claim` (pods of its namespace)?"""
    return any(not is_terminal(p) and claim in claims_of(p) for p in pods)


class PvcProtectionController:
    name = "pvc-protection"

    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.queue: WorkQueue[ObjKey] = WorkQueue(clock)
        self.claims: Informer
        self.pods: Informer

    def setup(self, factory: InformerFactory) -> None:
        self.claims = factory.informer("v1", "PersistentVolumeClaim")
        self.pods = factory.informer("v1", "Pod")
        mine = enqueue_self(self.queue)
        self.claims.add_handlers(Handlers(mine, lambda _o, n: mine(n), lambda _o: None))

        def pod_changed(pod: JSONDict) -> None:
            # Only a pod that stops using its claims can unblock a deletion.
            if is_terminal(pod) or (pod.get("metadata") or {}).get("deletionTimestamp"):
                self._enqueue_claims(pod)

        self.pods.add_handlers(
            Handlers(lambda _p: None, lambda _o, n: pod_changed(n), self._enqueue_claims)
        )

    def _enqueue_claims(self, pod: JSONDict) -> None:
        namespace = str((pod.get("metadata") or {}).get("namespace") or "")
        for claim in claims_of(pod):
            self.queue.add((namespace, claim))

    async def reconcile(self, key: ObjKey) -> Result:
        namespace, name = key
        claim = self.claims.get(namespace, name)
        if claim is None:
            return Result()
        meta = claim.get("metadata") or {}
        finalizers = list(meta.get("finalizers") or [])
        deleting = bool(meta.get("deletionTimestamp"))
        if not deleting and PVC_PROTECTION not in finalizers:
            finalizers.append(PVC_PROTECTION)
        elif deleting and PVC_PROTECTION in finalizers:
            if in_use(name, self.pods.list(namespace)):
                return Result()  # a pod event brings it back when that changes
            finalizers.remove(PVC_PROTECTION)
        else:
            return Result()
        patch = {
            "metadata": {"finalizers": finalizers, "resourceVersion": meta.get("resourceVersion")}
        }
        with contextlib.suppress(NotFoundError):
            await self.client.patch("v1", "PersistentVolumeClaim", name, patch, namespace=namespace)
        return Result()
