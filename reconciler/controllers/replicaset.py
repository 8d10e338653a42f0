"""The ReplicaSet controller: keep `replicas` pods of the template running.

Decide in `plan` (pure), act in `ReplicaSetController.reconcile`:

- pods this ReplicaSet controls whose labels no longer match its selector are *released*
  (its ownerReference removed); matching pods nobody controls are *adopted*;
- too few active pods → create the difference (from the template, owned by the ReplicaSet);
- too many → delete the surplus, worst first (`podutil.deletion_rank`: unscheduled,
  Pending, not ready, crash-looping and newest pods go first);
- status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas (ready for
  minReadySeconds), observedGeneration.

Status-only pod changes (a pod bound, started, turned Ready) are batched: the ReplicaSet is
enqueued after a delay that grows with its size (`status_batch_delay`), so the status of a
ReplicaSet of 1,000 pods is recomputed a few times a second while its pods start, not once
per pod event. Everything its decisions depend on (a pod added, deleted, finished,
relabelled or re-owned) enqueues it at once.

Expectations: after creating or deleting pods the controller waits until its informer has
seen them before deciding again, so a second reconcile that runs before the watch events
arrive does not create the same pods twice.

The same controller keeps the pods of v1 ReplicationControllers (`replication.py`), as
upstream's replication manager is its ReplicaSet controller adapted: what differs is the
owner's API version and kind and how its selector is written (`Replicated`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from reconciler.client.base import Client
from reconciler.client.errors import ClientError, ConflictError, NotFoundError
from reconciler.client.events import EventRecorder
from reconciler.clock import Clock, rfc3339
from reconciler.controllers.base import (
    Result,
    enqueue_controller_owner,
    enqueue_self,
    enqueue_unless_status_only,
)
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey
from reconciler.controllers.podutil import (
    controller_ref,
    deletion_rank,
    is_active,
    is_available,
    is_ready,
    owner_reference,
)
from reconciler.controllers.queue import WorkQueue
from reconciler.selectors import LabelSelector, SelectorError, label_selector_from_spec

JSONDict = dict[str, Any]

log = logging.getLogger(__name__)

BURST = 500  # the most pods created in one reconcile, as the upstream controller's burst
EXPECTATION_TIMEOUT = 300.0
# A reconcile costs roughly 10-20 us per pod (plan and status over every pod it owns), so a
# delay of 0.2 ms per pod keeps recomputing a busy ReplicaSet's status to about a tenth of
# the event loop; 3 pods wait 0.6 ms, 1,000 pods (and more) 0.2 s.
STATUS_BATCH_PER_POD_S = 0.0002
STATUS_BATCH_MAX_S = 0.2


SelectorOf = Callable[[JSONDict], LabelSelector]
"""An owner's selector, read from its `spec`; raises `SelectorError` when it is invalid."""


def replica_set_selector(spec: JSONDict) -> LabelSelector:
    """A ReplicaSet's `spec.selector`: a LabelSelector (`matchLabels`, `matchExpressions`)."""
    return label_selector_from_spec(spec.get("selector") or {})


@dataclass(frozen=True)
class Replicated:
    """The kind of object whose pods the controller keeps: ReplicaSet or
    ReplicationController."""

    api_version: str
    kind: str
    selector: SelectorOf
    event_source: str  # the component named in the Events the controller records


REPLICA_SET = Replicated("apps/v1", "ReplicaSet", replica_set_selector, "replicaset-controller")


@dataclass(frozen=True)
class Plan:
    adopt: list[str] = field(default_factory=list)
    release: list[str] = field(default_factory=list)
    create: int = 0
    delete: list[str] = field(default_factory=list)
    status: JSONDict = field(default_factory=dict)


def _name(obj: JSONDict) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def plan(
    rs: JSONDict,
    pods: list[JSONDict],
    now: datetime,
    sync: bool = True,
    selector_of: SelectorOf = replica_set_selector,
) -> Plan:
    """What to do for `rs`, given the pods of its namespace that concern it (those it
    controls and those nobody controls; any others are ignored). `sync=False`
    (expectations pending) computes status only."""
    meta, spec = rs.get("metadata") or {}, rs.get("spec") or {}
    uid = meta.get("uid")
    deleting = bool(meta.get("deletionTimestamp"))
    try:
        selector = selector_of(spec)
    except SelectorError:
        return Plan(status=_status(rs, [], now))
    replicas = int(spec.get("replicas", 1))
    claimed: list[JSONDict] = []
    adopt: list[str] = []
    release: list[str] = []
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        ref = controller_ref(pod)
        matches = selector.matches(labels) and not selector.empty
        if ref is not None and ref.get("uid") == uid:
            if matches:
                claimed.append(pod)
            else:
                release.append(_name(pod))
        elif ref is None and matches and is_active(pod) and not deleting:
            adopt.append(_name(pod))
            claimed.append(pod)
    active = [p for p in claimed if is_active(p)]
    create, delete = 0, []
    if sync and not deleting:
        diff = len(active) - replicas
        if diff < 0:
            create = min(-diff, BURST)
        elif diff > 0:
            delete = [_name(p) for p in sorted(active, key=deletion_rank)[:diff]]
    return Plan(adopt, release, create, delete, _status(rs, active, now))


def _status(rs: JSONDict, active: list[JSONDict], now: datetime) -> JSONDict:
    spec = rs.get("spec") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds", 0))
    fully = ready = available = 0
    for p in active:  # one pass: this runs on every pod event of a large ReplicaSet
        labels = (p.get("metadata") or {}).get("labels") or {}
        if all(labels.get(k) == v for k, v in template_labels.items()):
            fully += 1
        if is_ready(p):
            ready += 1
            if min_ready <= 0 or is_available(p, min_ready, now):
                available += 1
    return {
        "replicas": len(active),
        "fullyLabeledReplicas": fully,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": (rs.get("metadata") or {}).get("generation", 1),
    }


def status_batch_delay(pods: int) -> float:
    """How long a status-only pod change may wait before its ReplicaSet of `pods` pods is
    reconciled (more changes arriving meanwhile share that reconcile)."""
    return min(STATUS_BATCH_MAX_S, STATUS_BATCH_PER_POD_S * pods)


def status_only_change(old: JSONDict, new: JSONDict) -> bool:
    """True when `old` -> `new` can change a ReplicaSet's status (readiness, binding) but
    none of its decisions: the pod stays active, with the same labels and owners."""
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    return (
        is_active(old)
        and is_active(new)
        and old_meta.get("labels") == new_meta.get("labels")
        and old_meta.get("ownerReferences") == new_meta.get("ownerReferences")
    )


def pod_from_template(owner: JSONDict, template: JSONDict, name_prefix: str) -> JSONDict:
    """A Pod of `template`, controlled by `owner`, named by the server from `name_prefix`."""
    tmeta = template.get("metadata") or {}
    meta: JSONDict = {
        "generateName": f"{name_prefix}-",
        "namespace": (owner.get("metadata") or {}).get("namespace"),
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [owner_reference(owner)],
    }
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec") or {}}


class Expectations:
    """Pod names a controller created or deleted and has not yet seen in its informer."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._pending: dict[ObjKey, tuple[set[str], float]] = {}

    def expect(self, key: ObjKey, names: set[str]) -> None:
        if names:
            current, _ = self._pending.get(key, (set(), 0.0))
            self._pending[key] = (current | names, self._clock.monotonic() + EXPECTATION_TIMEOUT)

    def observe(self, key: ObjKey, name: str) -> None:
        pending = self._pending.get(key)
        if pending is not None:
            pending[0].discard(name)
            if not pending[0]:
                del self._pending[key]

    def satisfied(self, key: ObjKey) -> bool:
        pending = self._pending.get(key)
        if pending is None:
            return True
        if self._clock.monotonic() > pending[1]:
            del self._pending[key]  # the events never came: decide afresh
            return True
        return False

    def forget(self, key: ObjKey) -> None:
        self._pending.pop(key, None)


def _failure_conditions(rs: JSONDict, failure: ClientError | None, now: datetime) -> list[JSONDict]:
    """The ReplicaSet's conditions with ReplicaFailure set while pods cannot be created, and
    gone once they can (upstream's `calculateStatus`)."""
    conditions = [
        c
        for c in (rs.get("status") or {}).get("conditions") or []
        if c.get("type") != "ReplicaFailure"
    ]
    if failure is None:
        return conditions
    previous: JSONDict = next(
        (
            c
            for c in (rs.get("status") or {}).get("conditions") or []
            if c.get("type") == "ReplicaFailure"
        ),
        {},
    )
    message = str(failure)
    if previous.get("message") == message:
        return [*conditions, previous]
    return [
        *conditions,
        {
            "type": "ReplicaFailure",
            "status": "True",
            "reason": "FailedCreate",
            "message": message,
            "lastTransitionTime": previous.get("lastTransitionTime") or rfc3339(now),
        },
    ]


class ReplicaSetController:
    """Keeps the pods of ReplicaSets; a subclass with another `replicated` keeps those of
    another kind the same way (`replication.ReplicationManager`)."""

    name = "replicaset"
    replicated: ClassVar[Replicated] = REPLICA_SET

    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.queue: WorkQueue[ObjKey] = WorkQueue(clock)
        self.expectations = Expectations(clock)
        self.recorder = EventRecorder(client, clock, self.replicated.event_source)
        self.replicasets: Informer  # the owners: ReplicaSets, or `replicated.kind`
        self.pods: Informer

    def setup(self, factory: InformerFactory) -> None:
        kind = self.replicated.kind
        self.replicasets = factory.informer(self.replicated.api_version, kind)
        self.pods = factory.informer("v1", "Pod")
        self.replicasets.add_handlers(
            Handlers(
                enqueue_self(self.queue),
                enqueue_unless_status_only(self.queue),  # not on its own status writes
                enqueue_self(self.queue),
            )
        )
        owner = enqueue_controller_owner(self.queue, kind)

        def pod_seen(pod: JSONDict) -> None:
            ref = controller_ref(pod)
            if ref is not None and ref.get("kind") == kind:
                key = (str(pod["metadata"].get("namespace", "")), str(ref.get("name")))
                self.expectations.observe(key, _name(pod))
            owner(pod)

        def pod_updated(old: JSONDict, new: JSONDict) -> None:
            if status_only_change(old, new):
                self._enqueue_batched(new)
                return
            owner(old)
            owner(new)
            if (new.get("metadata") or {}).get("deletionTimestamp"):
                pod_seen(new)  # a pod being deleted counts as deleted
            self._enqueue_matching(new)

        def pod_added(pod: JSONDict) -> None:
            pod_seen(pod)
            if controller_ref(pod) is None:
                self._enqueue_matching(pod)

        self.pods.add_handlers(Handlers(pod_added, pod_updated, pod_seen))

    def _enqueue_batched(self, pod: JSONDict) -> None:
        """Enqueue the pod's controlling ReplicaSet after `status_batch_delay` (an earlier
        timer for it wins, so a burst of changes becomes one reconcile)."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != self.replicated.kind:
            return
        key = (str((pod.get("metadata") or {}).get("namespace") or ""), str(ref.get("name")))
        self.queue.add_after(key, status_batch_delay(self.pods.owned_count(str(ref.get("uid")))))

    def _enqueue_matching(self, pod: JSONDict) -> None:
        """An orphan pod may be adopted by any ReplicaSet whose selector matches it."""
        if controller_ref(pod) is not None:
            return
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        for rs in self.replicasets.list(str(meta.get("namespace", ""))):
            try:
                selector = self.replicated.selector(rs.get("spec") or {})
            except SelectorError:
                continue
            if not selector.empty and selector.matches(labels):
                self.queue.add((str(meta.get("namespace", "")), _name(rs)))

    async def reconcile(self, key: ObjKey) -> Result:
        namespace, name = key
        rs = self.replicasets.get(namespace, name)
        if rs is None:
            self.expectations.forget(key)
            return Result()
        pods = self._candidates(rs)
        decided = plan(
            rs,
            pods,
            self.clock.now(),
            sync=self.expectations.satisfied(key),
            selector_of=self.replicated.selector,
        )
        ref = owner_reference(rs)
        for pod_name in decided.adopt:
            await self._patch_owner(namespace, pod_name, {"metadata": {"ownerReferences": [ref]}})
        for pod_name in decided.release:
            await self._patch_owner(
                namespace,
                pod_name,
                {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": ref["uid"]}]}},
            )
        created: set[str] = set()
        template = (rs.get("spec") or {}).get("template") or {}
        failure: ClientError | None = None
        try:
            for _ in range(decided.create):
                pod = await self.client.create(pod_from_template(rs, template, name))
                created.add(_name(pod))
                self.recorder.record(rs, "Normal", "SuccessfulCreate", f"Created pod: {_name(pod)}")
        except ClientError as e:
            # Refused by the API (admission, quota, validation): said where users look
            # (`kubectl describe rs|deployment`), then retried with back-off.
            failure = e
            self.recorder.record(rs, "Warning", "FailedCreate", f"Error creating: {e}")
        finally:
            self.expectations.expect(key, created)
        deleted: set[str] = set()
        try:
            for pod_name in decided.delete:
                try:
                    await self.client.delete("v1", "Pod", pod_name, namespace)
                    deleted.add(pod_name)
                    self.recorder.record(
                        rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pod_name}"
                    )
                except NotFoundError:
                    pass
        finally:
            self.expectations.expect(key, deleted)
        status = dict(decided.status)
        status["conditions"] = _failure_conditions(rs, failure, self.clock.now())
        if not status["conditions"] and not (rs.get("status") or {}).get("conditions"):
            del status["conditions"]
        await self._write_status(rs, status)
        if failure is not None:
            return Result(error=f"creating pods: {failure}")
        return self._requeue(rs, pods)

    def _candidates(self, rs: JSONDict) -> list[JSONDict]:
        """The pods `plan` needs, from the informer's indexes: those with an ownerReference
        to `rs` and those nobody controls (adoptable). Pods of other controllers cannot
        concern it, and skipping them keeps a reconcile O(own pods), not O(namespace)."""
        meta = rs.get("metadata") or {}
        owned = self.pods.owned_by(str(meta.get("uid")))
        orphans = self.pods.uncontrolled(str(meta.get("namespace") or ""))
        if not orphans:
            return owned
        seen = {_name(p) for p in owned}
        return owned + [p for p in orphans if _name(p) not in seen]

    async def _patch_owner(self, namespace: str, pod_name: str, patch: JSONDict) -> None:
        with contextlib.suppress(NotFoundError, ConflictError):
            await self.client.patch(
                "v1", "Pod", pod_name, patch, namespace=namespace, patch_type="strategic"
            )

    async def _write_status(self, rs: JSONDict, status: JSONDict) -> None:
        current = rs.get("status") or {}
        if all(current.get(k) == v for k, v in status.items()):
            return
        meta = rs.get("metadata") or {}
        with contextlib.suppress(NotFoundError):
            await self.client.patch(
                self.replicated.api_version,
                self.replicated.kind,
                str(meta.get("name")),
                {"status": status},
                namespace=str(meta.get("namespace")),
                subresource="status",
            )

    def _requeue(self, rs: JSONDict, pods: list[JSONDict]) -> Result:
        """With minReadySeconds, look again when the next ready pod becomes available."""
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds", 0))
        if min_ready > 0 and any(is_ready(p) for p in pods):
            return Result(requeue_after=float(min_ready))
        return Result()
