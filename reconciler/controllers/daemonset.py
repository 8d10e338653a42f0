"""The DaemonSet controller: one pod on every node that fits the template.

Where it sits: fed by informers on DaemonSets, Pods, Nodes and ControllerRevisions;
`daemonset_plan.plan` (pure) decides, `DaemonSetController` performs. One reconcile:

1. resolve the update revision (`revision_history`; its `controller-revision-hash` label is
   what new pods carry and what "updated" means), renumbering an old one after
   `kubectl rollout undo`;
2. plan from the cached pods and nodes (only the status while earlier creates/deletes are
   not yet seen: expectations, as the ReplicaSet controller keeps them);
3. perform: adopt/release, deletes, creates (pods are pinned to their node by a required
   `matchFields` node affinity; the scheduler binds them); write the status once, in a
   `finally`;
4. drop revisions beyond `revisionHistoryLimit` that no pod still runs.

Node changes re-run every DaemonSet for which the node's verdict (should run / may keep
running) changed, as upstream's `updateNode` does; heartbeats alone change nothing.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import ClientError, ConflictError, NotFoundError
from reconciler.client.events import EventRecorder
from reconciler.clock import Clock
from reconciler.controllers.base import Result, enqueue_controller_owner, enqueue_self
from reconciler.controllers.daemonset_plan import Plan, plan
from reconciler.controllers.daemonset_pods import HASH_LABEL, daemon_pod, node_should_run
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey, obj_key
from reconciler.controllers.podutil import controller_ref, owner_reference
from reconciler.controllers.queue import WorkQueue
from reconciler.controllers.replicaset import Expectations
from reconciler.controllers.revision_history import (
    adopt_revisions,
    choose_revision,
    claim_revisions,
    revisions_to_prune,
    store_revision,
)
from reconciler.selectors import SelectorError, label_selector_from_spec

__all__ = ["DaemonSetController"]

JSONDict = dict[str, Any]

log = logging.getLogger(__name__)

KIND = "DaemonSet"
BURST = 250  # the most pods created or deleted in one reconcile


def _meta(obj: JSONDict) -> JSONDict:
    return obj.get("metadata") or {}


def _name(obj: JSONDict) -> str:
    return str(_meta(obj).get("name", ""))


def _template_spec(ds: JSONDict) -> JSONDict:
    return ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}


class DaemonSetController:
    name = "daemonset"

    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.queue: WorkQueue[ObjKey] = WorkQueue(clock)
        self.expectations = Expectations(clock)
        self.recorder = EventRecorder(client, clock, "daemonset-controller")
        self.daemonsets: Informer
        self.pods: Informer
        self.nodes: Informer
        self.revisions: Informer

    # -- wiring ----------------------------------------------------------------------

    def setup(self, factory: InformerFactory) -> None:
        self.daemonsets = factory.informer("apps/v1", KIND)
        self.pods = factory.informer("v1", "Pod")
        self.nodes = factory.informer("v1", "Node")
        self.revisions = factory.informer("apps/v1", "ControllerRevision")
        mine = enqueue_self(self.queue)
        self.daemonsets.add_handlers(Handlers(mine, lambda _o, n: mine(n), mine))
        owner = enqueue_controller_owner(self.queue, KIND)
        self.revisions.add_handlers(Handlers(owner, lambda _o, n: owner(n), owner))

        def pod_seen(pod: JSONDict) -> None:
            ref = controller_ref(pod)
            if ref is not None and ref.get("kind") == KIND:
                key = (str(_meta(pod).get("namespace", "")), str(ref.get("name")))
                self.expectations.observe(key, _name(pod))
            owner(pod)

        def pod_added(pod: JSONDict) -> None:
            pod_seen(pod)
            self._enqueue_matching(pod)

        def pod_updated(old: JSONDict, new: JSONDict) -> None:
            owner(old)
            owner(new)
            if _meta(new).get("deletionTimestamp"):
                pod_seen(new)  # a pod being deleted counts as deleted
            self._enqueue_matching(new)

        self.pods.add_handlers(Handlers(pod_added, pod_updated, pod_seen))
        self.nodes.add_handlers(
            Handlers(
                on_add=lambda _n: self._enqueue_all(),
                on_update=self._node_updated,
                on_delete=lambda _n: self._enqueue_all(),
            )
        )

    def _enqueue_all(self) -> None:
        for ds in self.daemonsets.list():
            self.queue.add(obj_key(ds))

    def _node_updated(self, old: JSONDict, new: JSONDict) -> None:
        for ds in self.daemonsets.list():
            spec = _template_spec(ds)
            if node_should_run(spec, old) != node_should_run(spec, new):
                self.queue.add(obj_key(ds))

    def _enqueue_matching(self, pod: JSONDict) -> None:
        """An orphan pod may be adopted by a DaemonSet whose selector matches it."""
        if controller_ref(pod) is not None:
            return
        namespace = str(_meta(pod).get("namespace", ""))
        labels = _meta(pod).get("labels") or {}
        for ds in self.daemonsets.list(namespace):
            try:
                selector = label_selector_from_spec((ds.get("spec") or {}).get("selector") or {})
            except SelectorError:
                continue
            if not selector.empty and selector.matches(labels):
                self.queue.add((namespace, _name(ds)))

    # -- the loop --------------------------------------------------------------------

    async def reconcile(self, key: ObjKey) -> Result:
        namespace, name = key
        ds = self.daemonsets.get(namespace, name)
        if ds is None:
            self.expectations.forget(key)
            return Result()
        if _meta(ds).get("deletionTimestamp"):
            return Result()  # the garbage collector removes its pods
        owned_revisions, orphans = claim_revisions(ds, self.revisions.list(namespace))
        await adopt_revisions(self.client, ds, orphans)
        choice = choose_revision(ds, owned_revisions, HASH_LABEL)
        update = await store_revision(self.client, ds, choice)
        if update is None:
            return Result(requeue_after=0.0)  # hash collision: collisionCount was bumped
        hash_ = str((_meta(update).get("labels") or {}).get(HASH_LABEL, ""))
        decided = plan(
            ds,
            self.pods.list(namespace),
            self.nodes.list(),
            hash_,
            self.clock.now(),
            sync=self.expectations.satisfied(key),
        )
        try:
            await self._perform(key, ds, decided, hash_)
        finally:
            await self._write_status(ds, decided.status)
        await self._prune_history(ds, owned_revisions, _name(update))
        return Result(requeue_after=decided.requeue_after)

    async def _perform(self, key: ObjKey, ds: JSONDict, decided: Plan, hash_: str) -> None:
        namespace, _ = key
        ref = owner_reference(ds)
        for pod_name in decided.adopt:
            await self._patch_pod(namespace, pod_name, {"metadata": {"ownerReferences": [ref]}})
        for pod_name in decided.release:
            await self._patch_pod(
                namespace,
                pod_name,
                {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": ref["uid"]}]}},
            )
        doomed: list[tuple[str, int | None]] = [(n, None) for n in decided.delete]
        doomed += [(n, 0) for n in decided.force_delete]  # no node agent left to finish it
        deleted: set[str] = set()
        try:
            for pod_name, grace in doomed[:BURST]:
                with contextlib.suppress(NotFoundError):
                    await self.client.delete("v1", "Pod", pod_name, namespace, grace_period=grace)
                    deleted.add(pod_name)
                    message = f"Deleted pod: {pod_name}"
                    self.recorder.record(ds, "Normal", "SuccessfulDelete", message)
        finally:
            self.expectations.expect(key, deleted)
        created: set[str] = set()
        try:
            for node_name in decided.create_on[:BURST]:
                try:
                    pod = await self.client.create(daemon_pod(ds, node_name, hash_))
                except ClientError as e:
                    self.recorder.record(ds, "Warning", "FailedCreate", f"Error creating: {e}")
                    raise
                created.add(_name(pod))
                message = f"Created pod: {_name(pod)}"
                self.recorder.record(ds, "Normal", "SuccessfulCreate", message)
        finally:
            self.expectations.expect(key, created)

    async def _patch_pod(self, namespace: str, name: str, patch: JSONDict) -> None:
        with contextlib.suppress(NotFoundError, ConflictError):
            await self.client.patch(
                "v1", "Pod", name, patch, namespace=namespace, patch_type="strategic"
            )

    async def _write_status(self, ds: JSONDict, status: JSONDict) -> None:
        current = ds.get("status") or {}
        if not status or all(current.get(k) == v for k, v in status.items()):
            return
        with contextlib.suppress(NotFoundError):
            await self.client.patch(
                "apps/v1",
                KIND,
                _name(ds),
                {"status": status},
                namespace=str(_meta(ds).get("namespace")),
                subresource="status",
            )

    async def _prune_history(self, ds: JSONDict, owned: list[JSONDict], update: str) -> None:
        hashes = {
            str((_meta(p).get("labels") or {}).get(HASH_LABEL, ""))
            for p in self.pods.owned_by(str(_meta(ds).get("uid")))
        }
        live = {update} | {
            _name(r) for r in owned if (_meta(r).get("labels") or {}).get(HASH_LABEL) in hashes
        }
        limit = int((ds.get("spec") or {}).get("revisionHistoryLimit", 10))
        namespace = str(_meta(ds).get("namespace", ""))
        for revision_name in revisions_to_prune(owned, live, limit):
            with contextlib.suppress(NotFoundError):
                await self.client.delete("apps/v1", "ControllerRevision", revision_name, namespace)
