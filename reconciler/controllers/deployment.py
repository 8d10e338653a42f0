"""The Deployment controller: ReplicaSets per template revision, rolled over safely.

`plan` (pure) decides, from the Deployment, the ReplicaSets in its namespace, their pods
and the time, what to write: which ReplicaSet is the *new* one (its template equals the
Deployment's; created if missing, named `<deployment>-<pod-template-hash>`), how many
replicas each ReplicaSet gets (`deployment_util` holds the RollingUpdate arithmetic;
Recreate first scales every old ReplicaSet to zero and waits for their pods to go), which
old ReplicaSets fall out of `revisionHistoryLimit`, and the status kubectl reads for
`rollout status` (replica counts, `Available` and `Progressing` conditions, the progress
deadline). `DeploymentController` performs the plan.

Rollback (`kubectl rollout undo`) needs nothing special: kubectl copies an old ReplicaSet's
template into the Deployment, that ReplicaSet becomes the new one again and its revision
moves to the top, keeping the old number in `deployment.kubernetes.io/revision-history`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import AlreadyExistsError, ConflictError, NotFoundError
from reconciler.client.events import EventRecorder
from reconciler.clock import Clock, parse_rfc3339, rfc3339
from reconciler.controllers.base import (
    Result,
    enqueue_controller_owner,
    enqueue_self,
    enqueue_unless_status_only,
)
from reconciler.controllers.deployment_scale import is_scaling_event, proportional_sizes
from reconciler.controllers.deployment_util import (
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    POD_TEMPLATE_HASH,
    REVISION,
    REVISION_HISTORY,
    max_scale_down,
    new_replicas_rolling,
    revision_of,
    strip_hash,
    surge_and_unavailable,
    template_hash,
)
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey
from reconciler.controllers.podutil import controller_ref, is_active, owner_reference
from reconciler.controllers.queue import WorkQueue
from reconciler.selectors import SelectorError, label_selector_from_spec

JSONDict = dict[str, Any]


@dataclass
class Plan:
    adopt: list[str] = field(default_factory=list)
    release: list[str] = field(default_factory=list)
    create: JSONDict | None = None
    scale: dict[str, int] = field(default_factory=dict)  # RS name -> replicas
    annotate: dict[str, dict[str, str]] = field(default_factory=dict)  # RS name -> annotations
    delete: list[str] = field(default_factory=list)
    status: JSONDict = field(default_factory=dict)
    requeue_after: float | None = None
    revision: str | None = None  # the Deployment's own revision annotation, when it changes


def _meta(obj: JSONDict) -> JSONDict:
    return obj.get("metadata") or {}


def _name(obj: JSONDict) -> str:
    return str(_meta(obj).get("name", ""))


def _recreate(d: JSONDict) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate"


def _spec_replicas(rs: JSONDict) -> int:
    return int((rs.get("spec") or {}).get("replicas", 0))


def _annotations_stale(rs: JSONDict, replicas: int, surge: int) -> bool:
    """The ReplicaSet was last sized for another Deployment size or surge."""
    annotations = _meta(rs).get("annotations") or {}
    return annotations.get(DESIRED_REPLICAS) != str(replicas) or annotations.get(
        MAX_REPLICAS
    ) != str(replicas + surge)


def _status_int(rs: JSONDict, key: str) -> int:
    return int((rs.get("status") or {}).get(key, 0))


def new_replica_set(d: JSONDict, name_hash: str, replicas: int, revision: int) -> JSONDict:
    spec = d.get("spec") or {}
    template = strip_hash(spec.get("template") or {})
    template.setdefault("metadata", {}).setdefault("labels", {})[POD_TEMPLATE_HASH] = name_hash
    selector = dict(spec.get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), POD_TEMPLATE_HASH: name_hash}
    surge, _ = surge_and_unavailable(d)
    meta = _meta(d)
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta.get('name')}-{name_hash}",
            "namespace": meta.get("namespace"),
            "labels": dict(template["metadata"]["labels"]),
            "annotations": {
                REVISION: str(revision),
                DESIRED_REPLICAS: str(spec.get("replicas", 1)),
                MAX_REPLICAS: str(int(spec.get("replicas", 1)) + surge),
                **{
                    k: v
                    for k, v in (meta.get("annotations") or {}).items()
                    if k == "kubernetes.io/change-cause"
                },
            },
            "ownerReferences": [owner_reference(d)],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": spec.get("minReadySeconds", 0),
            "selector": selector,
            "template": template,
        },
    }


def _condition(
    ctype: str,
    status: str,
    reason: str,
    message: str,
    now: datetime,
    previous: JSONDict | None,
    touch: bool = False,
) -> JSONDict:
    """A condition; an unchanged one is returned as it was (no write, no event loop) unless
    `touch` records progress in `lastUpdateTime` (what the progress deadline counts from)."""
    if (
        previous is not None
        and not touch
        and previous.get("status") == status
        and previous.get("reason") == reason
        and previous.get("message") == message
    ):
        return dict(previous)
    same = previous is not None and previous.get("status") == status
    transition = previous.get("lastTransitionTime") if same and previous else rfc3339(now)
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": rfc3339(now),
        "lastTransitionTime": transition,
    }


def plan(d: JSONDict, replica_sets: list[JSONDict], pods: list[JSONDict], now: datetime) -> Plan:
    """What to write for `d`, given the ReplicaSets of its namespace that concern it (those
    it controls and those nobody controls) and, for Recreate only, their pods."""
    meta, spec = _meta(d), d.get("spec") or {}
    out = Plan()
    uid = meta.get("uid")
    try:
        selector = label_selector_from_spec(spec.get("selector") or {})
    except SelectorError:
        return out
    owned: list[JSONDict] = []
    for rs in replica_sets:
        labels = _meta(rs).get("labels") or {}
        ref = controller_ref(rs)
        matches = not selector.empty and selector.matches(labels)
        if ref is not None and ref.get("uid") == uid:
            if matches:
                owned.append(rs)
            else:
                out.release.append(_name(rs))
        elif ref is None and matches and not meta.get("deletionTimestamp"):
            out.adopt.append(_name(rs))
            owned.append(rs)
    template = spec.get("template") or {}
    wanted = strip_hash(template)
    new_rs = next(
        (rs for rs in owned if strip_hash((rs.get("spec") or {}).get("template") or {}) == wanted),
        None,
    )
    old = sorted(
        (rs for rs in owned if rs is not new_rs),
        key=lambda r: (revision_of(r), str(_meta(r).get("creationTimestamp", ""))),
    )
    replicas = int(spec.get("replicas", 1))
    surge, unavailable = surge_and_unavailable(d)
    recreate = _recreate(d)
    max_old_revision = max((revision_of(rs) for rs in old), default=0)
    paused = bool(spec.get("paused"))
    created_now = False
    scale = out.scale

    def current(rs: JSONDict) -> int:
        return scale.get(_name(rs), _spec_replicas(rs))

    total = sum(current(rs) for rs in owned)
    if new_rs is not None and revision_of(new_rs) <= max_old_revision:
        history = (_meta(new_rs).get("annotations") or {}).get(REVISION_HISTORY)
        previous = str(revision_of(new_rs))
        out.annotate[_name(new_rs)] = {
            REVISION: str(max_old_revision + 1),
            REVISION_HISTORY: f"{history},{previous}" if history else previous,
        }
    resized = (
        proportional_sizes(replicas, surge, new_rs, old, not recreate, current)
        if paused or is_scaling_event(replicas, owned, current)
        else None
    )
    if resized is not None and (resized or not recreate or paused):
        # A scaling event (or a paused Deployment) only scales; the rollout goes on after.
        by_name = {_name(rs): rs for rs in owned}
        for rs_name, size in resized.items():
            rs = by_name[rs_name]
            if size != current(rs) or _annotations_stale(rs, replicas, surge):
                scale[rs_name] = size
    elif new_rs is None:
        collision = int((d.get("status") or {}).get("collisionCount", 0))
        name_hash = template_hash(template, collision)
        if recreate:
            first = 0 if any(current(rs) > 0 for rs in old) else replicas
        else:
            first = new_replicas_rolling(replicas, surge, total, 0)
        out.create = new_replica_set(d, name_hash, first, max_old_revision + 1)
        created_now = True
    else:
        if not old:
            if current(new_rs) != replicas:
                scale[_name(new_rs)] = replicas
        elif recreate:
            for rs in old:
                if current(rs) != 0:
                    scale[_name(rs)] = 0
            old_names = {_name(rs) for rs in old}
            old_pods_left = any(_status_int(rs, "replicas") > 0 for rs in old) or any(
                is_active(p) and (controller_ref(p) or {}).get("name") in old_names for p in pods
            )
            if not scale and not old_pods_left and current(new_rs) != replicas:
                scale[_name(new_rs)] = replicas
        else:
            target = min(new_replicas_rolling(replicas, surge, total, current(new_rs)), replicas)
            if target != current(new_rs):
                scale[_name(new_rs)] = target
            total = sum(current(rs) for rs in owned)
            allowed = max_scale_down(
                replicas,
                unavailable,
                total,
                current(new_rs),
                _status_int(new_rs, "availableReplicas"),
            )
            # Unhealthy old pods go first: removing them costs no availability.
            for rs in old:
                unhealthy = current(rs) - _status_int(rs, "availableReplicas")
                step = min(max(unhealthy, 0), allowed)
                if step:
                    scale[_name(rs)] = current(rs) - step
                    allowed -= step
            for rs in old:
                step = min(current(rs), allowed)
                if step:
                    scale[_name(rs)] = current(rs) - step
                    allowed -= step
    # Old ReplicaSets beyond the history limit, oldest first.
    limit = int(spec.get("revisionHistoryLimit", 10))
    idle = [rs for rs in old if current(rs) == 0 and _status_int(rs, "replicas") == 0]
    if len(idle) > limit:
        out.delete = [_name(rs) for rs in idle[: len(idle) - limit]]
    out.status, out.requeue_after = _status(d, owned, new_rs, out, created_now, now)
    if out.create is not None:
        current_revision = str(_meta(out.create)["annotations"][REVISION])
    elif new_rs is not None:
        current_revision = out.annotate.get(_name(new_rs), {}).get(REVISION) or str(
            revision_of(new_rs)
        )
    else:
        current_revision = None
    annotations = meta.get("annotations") or {}
    if current_revision is not None and annotations.get(REVISION) != current_revision:
        out.revision = current_revision  # kubectl rollout history/undo read it here too
    return out


def _status(
    d: JSONDict,
    owned: list[JSONDict],
    new_rs: JSONDict | None,
    decided: Plan,
    created_now: bool,
    now: datetime,
) -> tuple[JSONDict, float | None]:
    meta, spec = _meta(d), d.get("spec") or {}
    previous = d.get("status") or {}
    replicas = int(spec.get("replicas", 1))
    _, unavailable = surge_and_unavailable(d)
    live = [rs for rs in owned if _name(rs) not in decided.delete]
    total = sum(_status_int(rs, "replicas") for rs in live)
    updated = _status_int(new_rs, "replicas") if new_rs is not None else 0
    ready = sum(_status_int(rs, "readyReplicas") for rs in live)
    available = sum(_status_int(rs, "availableReplicas") for rs in live)
    status: JSONDict = {
        "observedGeneration": meta.get("generation", 1),
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": max(0, replicas - available),
    }
    if previous.get("collisionCount"):
        status["collisionCount"] = previous["collisionCount"]
    old_conditions = {c.get("type"): c for c in previous.get("conditions") or []}
    conditions = []
    if available >= replicas - unavailable:
        conditions.append(
            _condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                now,
                old_conditions.get("Available"),
            )
        )
    else:
        conditions.append(
            _condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                now,
                old_conditions.get("Available"),
            )
        )
    rs_name = (
        _name(new_rs) if new_rs is not None else str(_meta(decided.create or {}).get("name", ""))
    )
    prev_progress = old_conditions.get("Progressing")
    deadline = int(spec.get("progressDeadlineSeconds", 600))
    requeue: float | None = None
    complete = (
        new_rs is not None
        and updated == replicas
        and available >= replicas
        and total == replicas
        and not decided.scale
    )
    progressed = (
        created_now
        or bool(decided.scale)
        or any(
            status[k] != previous.get(k)
            for k in ("updatedReplicas", "readyReplicas", "availableReplicas", "replicas")
        )
    )
    if spec.get("paused"):
        progress = _condition(
            "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", now, prev_progress
        )
    elif complete:
        keep = prev_progress is not None and prev_progress.get("reason") == (
            "NewReplicaSetAvailable"
        )
        progress = (
            dict(prev_progress)
            if keep and prev_progress
            else _condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
                now,
                prev_progress,
            )
        )
    elif created_now:
        progress = _condition(
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            f'Created new replica set "{rs_name}"',
            now,
            prev_progress,
        )
        requeue = float(deadline)
    elif (
        progressed
        or prev_progress is None
        or prev_progress.get("reason") == ("NewReplicaSetAvailable")
    ):
        progress = _condition(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            f'ReplicaSet "{rs_name}" is progressing.',
            now,
            prev_progress,
            touch=progressed,
        )
        requeue = float(deadline)
    else:
        last = parse_rfc3339(str(prev_progress.get("lastUpdateTime") or rfc3339(now)))
        elapsed = (now - last).total_seconds()
        if prev_progress.get("reason") == "ProgressDeadlineExceeded" or elapsed >= deadline:
            progress = dict(prev_progress)
            if prev_progress.get("reason") != "ProgressDeadlineExceeded":
                progress = _condition(
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    f'ReplicaSet "{rs_name}" has timed out progressing.',
                    now,
                    prev_progress,
                )
        else:
            progress = dict(prev_progress)
            requeue = max(0.1, deadline - elapsed)
    conditions.append(progress)
    # A ReplicaSet that cannot create its pods says why on the Deployment too (upstream's
    # getReplicaFailures: the new ReplicaSet's first, else any other's).
    failures = [
        c
        for rs in ([new_rs] if new_rs is not None else []) + live
        for c in (rs.get("status") or {}).get("conditions") or []
        if c.get("type") == "ReplicaFailure" and c.get("status") == "True"
    ]
    if failures:
        failure = failures[0]
        conditions.append(
            _condition(
                "ReplicaFailure",
                "True",
                str(failure.get("reason") or "FailedCreate"),
                str(failure.get("message") or ""),
                now,
                old_conditions.get("ReplicaFailure"),
            )
        )
    status["conditions"] = conditions
    return status, requeue


class DeploymentController:
    name = "deployment"

    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.queue: WorkQueue[ObjKey] = WorkQueue(clock)
        self.recorder = EventRecorder(client, clock, "deployment-controller")
        self.deployments: Informer
        self.replica_sets: Informer
        self.pods: Informer

    def setup(self, factory: InformerFactory) -> None:
        self.deployments = factory.informer("apps/v1", "Deployment")
        self.replica_sets = factory.informer("apps/v1", "ReplicaSet")
        self.pods = factory.informer("v1", "Pod")
        mine = enqueue_self(self.queue)
        # Not on its own status writes: those change none of plan's inputs.
        self.deployments.add_handlers(Handlers(mine, enqueue_unless_status_only(self.queue), mine))
        owner = enqueue_controller_owner(self.queue, "Deployment")
        self.replica_sets.add_handlers(Handlers(owner, lambda _o, n: owner(n), owner))

        def pod_gone(pod: JSONDict) -> None:
            # Recreate waits for old pods to disappear: their deletion may unblock it. The
            # other strategy reads only ReplicaSet status, so pods do not concern it.
            ref = controller_ref(pod)
            if ref is None or ref.get("kind") != "ReplicaSet":
                return
            namespace = str(_meta(pod).get("namespace", ""))
            rs = self.replica_sets.get(namespace, str(ref["name"]))
            d_ref = controller_ref(rs) if rs is not None else None
            if d_ref is None or d_ref.get("kind") != "Deployment":
                return
            d = self.deployments.get(namespace, str(d_ref.get("name")))
            if d is not None and _recreate(d):
                self.queue.add((namespace, _name(d)))

        def pod_updated(_old: JSONDict, new: JSONDict) -> None:
            if not is_active(new):  # being deleted or finished: gone, for Recreate
                pod_gone(new)

        self.pods.add_handlers(Handlers(None, pod_updated, pod_gone))

    def _replica_sets_of(self, d: JSONDict) -> list[JSONDict]:
        """The ReplicaSets `plan` needs, from the informer's indexes: those with an
        ownerReference to `d` and those nobody controls (adoptable); O(own), not
        O(namespace), per reconcile."""
        meta = _meta(d)
        owned = self.replica_sets.owned_by(str(meta.get("uid")))
        orphans = self.replica_sets.uncontrolled(str(meta.get("namespace") or ""))
        if not orphans:
            return owned
        seen = {_name(rs) for rs in owned}
        return owned + [rs for rs in orphans if _name(rs) not in seen]

    def _pods_of(self, replica_sets: list[JSONDict]) -> list[JSONDict]:
        return [p for rs in replica_sets for p in self.pods.owned_by(str(_meta(rs).get("uid")))]

    async def reconcile(self, key: ObjKey) -> Result:
        namespace, name = key
        d = self.deployments.get(namespace, name)
        if d is None or _meta(d).get("deletionTimestamp"):
            return Result()
        replica_sets = self._replica_sets_of(d)
        pods = self._pods_of(replica_sets) if _recreate(d) else []  # only Recreate reads them
        decided = plan(d, replica_sets, pods, self.clock.now())
        ref = owner_reference(d)
        for rs_name in decided.adopt:
            await self._patch_rs(
                namespace, rs_name, {"metadata": {"ownerReferences": [ref]}}, "strategic"
            )
        for rs_name in decided.release:
            await self._patch_rs(
                namespace,
                rs_name,
                {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": ref["uid"]}]}},
                "strategic",
            )
        if decided.create is not None:
            try:
                await self.client.create(decided.create)
                first = _spec_replicas(decided.create)
                if first:
                    self._record_scaling(d, _name(decided.create), 0, first)
            except AlreadyExistsError:
                existing = self.replica_sets.get(namespace, _name(decided.create))
                ours = (
                    existing is not None
                    and (controller_ref(existing) or {}).get("uid") == ref["uid"]
                )
                if not ours:  # a hash collision: try the next hash
                    collisions = int((d.get("status") or {}).get("collisionCount", 0)) + 1
                    await self._patch_status(d, {"collisionCount": collisions})
                    return Result(requeue_after=0.0)
        for rs_name, revision_notes in decided.annotate.items():
            await self._patch_rs(namespace, rs_name, {"metadata": {"annotations": revision_notes}})
        for rs_name, replicas in decided.scale.items():
            surge, _ = surge_and_unavailable(d)
            replicas_total = int((d.get("spec") or {}).get("replicas", 1))
            before = self.replica_sets.get(namespace, rs_name)
            if before is not None and _spec_replicas(before) != replicas:
                self._record_scaling(d, rs_name, _spec_replicas(before), replicas)
            await self._patch_rs(
                namespace,
                rs_name,
                {
                    "metadata": {
                        "annotations": {
                            DESIRED_REPLICAS: str(replicas_total),
                            MAX_REPLICAS: str(replicas_total + surge),
                        }
                    },
                    "spec": {"replicas": replicas},
                },
            )
        for rs_name in decided.delete:
            with contextlib.suppress(NotFoundError):
                await self.client.delete("apps/v1", "ReplicaSet", rs_name, namespace)
        if decided.revision is not None:
            with contextlib.suppress(NotFoundError, ConflictError):
                await self.client.patch(
                    "apps/v1",
                    "Deployment",
                    name,
                    {"metadata": {"annotations": {REVISION: decided.revision}}},
                    namespace=namespace,
                )
        await self._patch_status(d, decided.status)
        await self.recorder.flush()
        return Result(requeue_after=decided.requeue_after)

    def _record_scaling(self, d: JSONDict, rs_name: str, before: int, after: int) -> None:
        """The event `kubectl describe deployment` lists for every resize of a ReplicaSet."""
        direction = "up" if after > before else "down"
        message = f"Scaled {direction} replica set {rs_name} from {before} to {after}"
        self.recorder.record(d, "Normal", "ScalingReplicaSet", message)

    async def _patch_rs(
        self, namespace: str, name: str, patch: JSONDict, patch_type: str = "merge"
    ) -> None:
        with contextlib.suppress(NotFoundError, ConflictError):
            await self.client.patch(
                "apps/v1",
                "ReplicaSet",
                name,
                patch,
                namespace=namespace,
                patch_type="strategic" if patch_type == "strategic" else "merge",
            )

    async def _patch_status(self, d: JSONDict, status: JSONDict) -> None:
        current = d.get("status") or {}
        if all(current.get(k) == v for k, v in status.items()):
            return
        with contextlib.suppress(NotFoundError):
            await self.client.patch(
                "apps/v1",
                "Deployment",
                _name(d),
                {"status": status},
                namespace=str(_meta(d).get("namespace")),
                subresource="status",
            )
