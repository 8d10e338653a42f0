"""The StatefulSet controller: stable pod names, ordered rollout, per-pod storage.

Where it sits: fed by informers on StatefulSets, Pods, PersistentVolumeClaims and
ControllerRevisions; `statefulset_plan.plan` (pure) decides, `StatefulSetController`
performs. One reconcile:

1. resolve the revisions (`revision_history`): create the update revision, or renumber an
   earlier one after `kubectl rollout undo`; a hash collision bumps `collisionCount` and
   reconciles again;
2. plan from the cached pods and claims (only the status while earlier creates/deletes
   are not yet seen, as the ReplicaSet controller's expectations);
3. perform: adopt/release, claim owners (retention policy), claims before pods, creates,
   deletes; write the status once, in a `finally`;
4. drop revisions beyond `revisionHistoryLimit` that no pod still runs.

Pods are named, so a duplicate create is an AlreadyExists and a stale delete a NotFound:
both are harmless and ignored.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import (
    AlreadyExistsError,
    ClientError,
    ConflictError,
    NotFoundError,
)
from reconciler.client.events import EventRecorder
from reconciler.clock import Clock
from reconciler.controllers.base import Result, enqueue_controller_owner, enqueue_self
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey
from reconciler.controllers.podutil import controller_ref, owner_reference
from reconciler.controllers.queue import WorkQueue
from reconciler.controllers.replicaset import Expectations
from reconciler.controllers.revision_history import (
    adopt_revisions,
    choose_revision,
    claim_revisions,
    revision_template,
    revisions_to_prune,
    store_revision,
)
from reconciler.controllers.statefulset_plan import Plan, Revisions, plan
from reconciler.controllers.statefulset_pods import HASH_LABEL, REVISION_LABEL
from reconciler.selectors import SelectorError, label_selector_from_spec

__all__ = ["StatefulSetController"]

JSONDict = dict[str, Any]

log = logging.getLogger(__name__)

KIND = "StatefulSet"


def _meta(obj: JSONDict) -> JSONDict:
    return obj.get("metadata") or {}


def _name(obj: JSONDict) -> str:
    return str(_meta(obj).get("name", ""))


class StatefulSetController:
    name = "statefulset"

    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.queue: WorkQueue[ObjKey] = WorkQueue(clock)
        self.expectations = Expectations(clock)
        self.recorder = EventRecorder(client, clock, "statefulset-controller")
        self.sets: Informer
        self.pods: Informer
        self.claims: Informer
        self.revisions: Informer

    # -- wiring ----------------------------------------------------------------------

    def setup(self, factory: InformerFactory) -> None:
        self.sets = factory.informer("apps/v1", KIND)
        self.pods = factory.informer("v1", "Pod")
        self.claims = factory.informer("v1", "PersistentVolumeClaim")
        self.revisions = factory.informer("apps/v1", "ControllerRevision")
        mine = enqueue_self(self.queue)
        self.sets.add_handlers(Handlers(mine, lambda _o, n: mine(n), mine))
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
        # A pod waits while its claim is being deleted: the claim going may unblock it.
        self.claims.add_handlers(Handlers(on_delete=self._claim_gone))

    def _enqueue_matching(self, pod: JSONDict) -> None:
        """An orphan pod may be adopted by a StatefulSet whose selector matches it."""
        if controller_ref(pod) is not None:
            return
        namespace = str(_meta(pod).get("namespace", ""))
        labels = _meta(pod).get("labels") or {}
        for sts in self.sets.list(namespace):
            try:
                selector = label_selector_from_spec((sts.get("spec") or {}).get("selector") or {})
            except SelectorError:
                continue
            if not selector.empty and selector.matches(labels):
                self.queue.add((namespace, _name(sts)))

    def _claim_gone(self, claim: JSONDict) -> None:
        namespace = str(_meta(claim).get("namespace", ""))
        for sts in self.sets.list(namespace):
            if (sts.get("spec") or {}).get("volumeClaimTemplates"):
                self.queue.add((namespace, _name(sts)))

    # -- the loop --------------------------------------------------------------------

    async def reconcile(self, key: ObjKey) -> Result:
        namespace, name = key
        sts = self.sets.get(namespace, name)
        if sts is None:
            self.expectations.forget(key)
            return Result()
        if _meta(sts).get("deletionTimestamp"):
            return Result()  # the garbage collector removes its pods
        owned_revisions, orphans = claim_revisions(sts, self.revisions.list(namespace))
        await adopt_revisions(self.client, sts, orphans)
        choice = choose_revision(
            sts,
            owned_revisions,
            HASH_LABEL,
            str((sts.get("status") or {}).get("currentRevision") or ""),
        )
        update = await store_revision(self.client, sts, choice)
        if update is None:
            return Result(requeue_after=0.0)  # hash collision: collisionCount was bumped
        current = update if choice.current is choice.update else choice.current
        revisions = Revisions(
            current_name=_name(current),
            current_template=revision_template(current),
            update_name=_name(update),
            update_template=revision_template(update),
        )
        claims = {_name(c): c for c in self.claims.list(namespace)}
        decided = plan(
            sts,
            self.pods.list(namespace),
            claims,
            revisions,
            self.clock.now(),
            sync=self.expectations.satisfied(key),
        )
        if decided.waiting:
            log.debug("statefulset %s/%s: %s", namespace, name, decided.waiting)
        try:
            await self._perform(key, sts, decided)
        finally:
            await self._write_status(sts, decided.status)
        await self._prune_history(sts, owned_revisions, decided, revisions)
        return Result(requeue_after=decided.requeue_after)

    async def _perform(self, key: ObjKey, sts: JSONDict, decided: Plan) -> None:
        namespace, name = key
        ref = owner_reference(sts)
        for pod_name in decided.adopt:
            await self._patch(
                "Pod", namespace, pod_name, {"metadata": {"ownerReferences": [ref]}}, "strategic"
            )
        for pod_name in decided.release:
            await self._patch(
                "Pod",
                namespace,
                pod_name,
                {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": ref["uid"]}]}},
                "strategic",
            )
        for pod_name, labels in decided.relabel.items():
            await self._patch("Pod", namespace, pod_name, {"metadata": {"labels": labels}})
        for claim_name, refs in decided.claim_owners.items():
            await self._patch(
                "PersistentVolumeClaim",
                namespace,
                claim_name,
                {"metadata": {"ownerReferences": refs or None}},
            )
        for claim in decided.create_claims:
            with contextlib.suppress(AlreadyExistsError):
                await self.client.create(claim)
                self.recorder.record(
                    sts,
                    "Normal",
                    "SuccessfulCreate",
                    f"create Claim {_name(claim)} in StatefulSet {name} success",
                )
        created: set[str] = set()
        try:
            for pod in decided.create_pods:
                try:
                    await self.client.create(pod)
                except AlreadyExistsError:
                    continue
                except ClientError as e:
                    self.recorder.record(
                        sts,
                        "Warning",
                        "FailedCreate",
                        f"create Pod {_name(pod)} in StatefulSet {name} failed error: {e}",
                    )
                    raise
                created.add(_name(pod))
                self.recorder.record(
                    sts,
                    "Normal",
                    "SuccessfulCreate",
                    f"create Pod {_name(pod)} in StatefulSet {name} successful",
                )
        finally:
            self.expectations.expect(key, created)
        deleted: set[str] = set()
        try:
            for pod_name in decided.delete_pods:
                with contextlib.suppress(NotFoundError):
                    await self.client.delete("v1", "Pod", pod_name, namespace)
                    deleted.add(pod_name)
                    self.recorder.record(
                        sts,
                        "Normal",
                        "SuccessfulDelete",
                        f"delete Pod {pod_name} in StatefulSet {name} successful",
                    )
        finally:
            self.expectations.expect(key, deleted)

    async def _patch(
        self, kind: str, namespace: str, name: str, patch: JSONDict, patch_type: str = "merge"
    ) -> None:
        with contextlib.suppress(NotFoundError, ConflictError):
            await self.client.patch(
                "v1",
                kind,
                name,
                patch,
                namespace=namespace,
                patch_type="strategic" if patch_type == "strategic" else "merge",
            )

    async def _write_status(self, sts: JSONDict, status: JSONDict) -> None:
        current = sts.get("status") or {}
        if not status or all(current.get(k) == v for k, v in status.items()):
            return
        with contextlib.suppress(NotFoundError):
            await self.client.patch(
                "apps/v1",
                KIND,
                _name(sts),
                {"status": status},
                namespace=str(_meta(sts).get("namespace")),
                subresource="status",
            )

    async def _prune_history(
        self, sts: JSONDict, owned: list[JSONDict], decided: Plan, revisions: Revisions
    ) -> None:
        live = {revisions.current_name, revisions.update_name}
        live.add(str(decided.status.get("currentRevision") or ""))
        namespace = str(_meta(sts).get("namespace", ""))
        for pod in self.pods.owned_by(str(_meta(sts).get("uid"))):
            live.add(str((_meta(pod).get("labels") or {}).get(REVISION_LABEL, "")))
        limit = int((sts.get("spec") or {}).get("revisionHistoryLimit", 10))
        for revision_name in revisions_to_prune(owned, live, limit):
            with contextlib.suppress(NotFoundError):
                await self.client.delete("apps/v1", "ControllerRevision", revision_name, namespace)
