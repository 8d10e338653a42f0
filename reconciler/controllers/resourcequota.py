"""The ResourceQuota controller: keeps each quota's `status.hard` and `status.used`.

The API server's admission already refuses what would go over a quota, counting from the
store at that moment; this controller only keeps the status users read (`kubectl describe
quota`, `kubectl get quota`'s `pods: 1/10`), counted with the same `resource_quota.usage`.

A quota is recounted when it changes and when a pod, Service or claim of its namespace
does (the informers the other controllers share); what else it counts (ConfigMaps,
Secrets, `count/deployments.apps`, ...) is listed when it is recounted, and such quotas are
recounted every RECOUNT seconds, as upstream's quota controller resyncs.
"""

from __future__ import annotations

import contextlib
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import ClientError, NotFoundError
from reconciler.clock import Clock
from reconciler.controllers.base import Result, enqueue_self
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey
from reconciler.controllers.queue import WorkQueue
from reconciler.resource_quota import counted_resources, total_usage, used_status

__all__ = ["KINDS", "RECOUNT", "ResourceQuotaController"]

JSONDict = dict[str, Any]

RECOUNT = 10.0
# (resource, group) -> (apiVersion, kind) of what quotas can count by `count/...`.
KINDS: dict[tuple[str, str], tuple[str, str]] = {
    ("pods", ""): ("v1", "Pod"),
    ("services", ""): ("v1", "Service"),
    ("persistentvolumeclaims", ""): ("v1", "PersistentVolumeClaim"),
    ("configmaps", ""): ("v1", "ConfigMap"),
    ("secrets", ""): ("v1", "Secret"),
    ("replicationcontrollers", ""): ("v1", "ReplicationController"),
    ("resourcequotas", ""): ("v1", "ResourceQuota"),
    ("serviceaccounts", ""): ("v1", "ServiceAccount"),
    ("endpoints", ""): ("v1", "Endpoints"),
    ("limitranges", ""): ("v1", "LimitRange"),
    ("events", ""): ("v1", "Event"),
    ("deployments", "apps"): ("apps/v1", "Deployment"),
    ("replicasets", "apps"): ("apps/v1", "ReplicaSet"),
    ("statefulsets", "apps"): ("apps/v1", "StatefulSet"),
    ("daemonsets", "apps"): ("apps/v1", "DaemonSet"),
    ("controllerrevisions", "apps"): ("apps/v1", "ControllerRevision"),
    ("jobs", "batch"): ("batch/v1", "Job"),
    ("cronjobs", "batch"): ("batch/v1", "CronJob"),
    ("ingresses", "networking.k8s.io"): ("networking.k8s.io/v1", "Ingress"),
    ("networkpolicies", "networking.k8s.io"): ("networking.k8s.io/v1", "NetworkPolicy"),
    ("horizontalpodautoscalers", "autoscaling"): ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("poddisruptionbudgets", "policy"): ("policy/v1", "PodDisruptionBudget"),
    ("roles", "rbac.authorization.k8s.io"): ("rbac.authorization.k8s.io/v1", "Role"),
    ("rolebindings", "rbac.authorization.k8s.io"): (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
    ),
}
_WATCHED = {("pods", ""), ("services", ""), ("persistentvolumeclaims", "")}


class ResourceQuotaController:
    name = "resourcequota"

    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.queue: WorkQueue[ObjKey] = WorkQueue(clock)
        self.quotas: Informer
        self._watched: dict[tuple[str, str], Informer] = {}

    def setup(self, factory: InformerFactory) -> None:
        self.quotas = factory.informer("v1", "ResourceQuota")
        mine = enqueue_self(self.queue)
        self.quotas.add_handlers(Handlers(mine, lambda _old, new: mine(new), None))

        def namespace_changed(obj: JSONDict) -> None:
            namespace = str((obj.get("metadata") or {}).get("namespace") or "")
            for quota in self.quotas.list(namespace):
                mine(quota)

        for key in _WATCHED:
            api_version, kind = KINDS[key]
            informer = factory.informer(api_version, kind)
            informer.add_handlers(
                Handlers(
                    namespace_changed,
                    lambda _old, new: namespace_changed(new),
                    namespace_changed,
                )
            )
            self._watched[key] = informer

    async def _objects(self, resource: str, group: str, namespace: str) -> list[JSONDict]:
        informer = self._watched.get((resource, group))
        if informer is not None:
            return list(informer.list(namespace))
        known = KINDS.get((resource, group))
        if known is None:
            return []  # a kind Recon does not serve counts nothing
        try:
            return list((await self.client.list(*known, namespace=namespace)).items)
        except ClientError:
            return []

    async def reconcile(self, key: ObjKey) -> Result:
        namespace, name = key
        quota = self.quotas.get(namespace, name)
        if quota is None:
            return Result()
        counted = counted_resources(quota)
        objects = [
            (resource, group, obj)
            for resource, group in sorted(counted)
            for obj in await self._objects(resource, group, namespace)
        ]
        used = total_usage(quota, objects)
        hard: dict[str, Any] = dict((quota.get("spec") or {}).get("hard") or {})
        status: dict[str, dict[str, Any]] = {"hard": hard, "used": used_status(quota, used)}
        current = quota.get("status") or {}
        if current != status:
            patch = {
                part: {
                    **dict.fromkeys((current.get(part) or {}).keys() - status[part].keys()),
                    **status[part],
                }
                for part in ("hard", "used")
            }  # a merge patch: resources no longer in the quota are removed with null
            with contextlib.suppress(NotFoundError):
                await self.client.patch(
                    "v1",
                    "ResourceQuota",
                    name,
                    {"status": patch},
                    namespace=namespace,
                    subresource="status",
                )
        if counted - _WATCHED:
            return Result(requeue_after=RECOUNT)
        return Result()
