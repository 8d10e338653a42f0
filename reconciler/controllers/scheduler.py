"""The scheduler: binds each pod without a node to a node it fits, or says why it cannot.

Why in-process and this small: Recon has one node (or a few registered by hand), so the
scheduling question is "does it fit", not "where is best" — but it must be answered the way
kube-scheduler answers it, because users read the answer: a pod that fits nowhere stays
Pending with `PodScheduled=False`, reason `Unschedulable` and the scheduler's message
(`0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.`), plus a
FailedScheduling Event; a placed pod gets `spec.nodeName` and a Scheduled Event. Pods that
could not be placed are retried when any Node changes (a label added, a taint removed) or
when a pod stops taking a node's resources (deleted, finished, or bound elsewhere).

What each node already holds (pods, requested CPU and memory) is kept by `NodeLedger`,
updated from the pod informer's events as kube-scheduler's cache is: placing a pod reads
one `NodeUsage` per node instead of adding up every pod of the cache (which made binding
1,000 pods quadratic).

Pods can keep each other apart or together (`pod_affinity.py`, required terms only) and
spread over topology domains (`topology_spread.py`, DoNotSchedule constraints): the
placed pods with anti-affinity terms are kept by the ledger, all placed pods are looked at
only for a pod with terms of its own, and a pod waiting on other pods is tried again when a
pod is bound or a bound pod's labels change.

Binding is a patch of `spec.nodeName` (the API server allows it while the pod is unbound,
as the `pods/binding` subresource would). Pods naming another `schedulerName` are left
alone, and so are pods with `schedulingGates` until the last gate is removed (PodScheduled
False, reason SchedulingGated: STATUS SchedulingGated in `kubectl get pods`).

Pod priority (`spec.priority`, resolved from the PriorityClass at admission): waiting pods
are taken highest priority first, and a pod that fits nowhere preempts pods of lower
priority (`preemption.py` chooses them): the victims get a `DisruptionTarget` condition, a
Preempted Event and a graceful deletion, and the pod is nominated to the node
(`status.nominatedNodeName`, the NOMINATED NODE column), whose room is kept for it: pods of
lower priority are placed as if it were already there. It binds when the victims are gone.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import ConflictError, NotFoundError
from reconciler.client.events import EventRecorder
from reconciler.clock import Clock, rfc3339
from reconciler.controllers.base import Result
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey, obj_key
from reconciler.controllers.nodefit import NodeUsage, Requests, fits, pod_requests, usage_fits
from reconciler.controllers.pod_affinity import AffinityCheck, Placed
from reconciler.controllers.podutil import is_terminal
from reconciler.controllers.preemption import Budget, Candidate, Choice, plan, pod_priority
from reconciler.controllers.queue import WorkQueue
from reconciler.controllers.topology_spread import spread_filter
from reconciler.quantity import QuantityError
from reconciler.selectors import SelectorError, label_selector_from_spec

__all__ = ["SCHEDULER_NAME", "NodeLedger", "Scheduler", "choose_node"]

JSONDict = dict[str, Any]

SCHEDULER_NAME = "default-scheduler"
GATED = "Scheduling is blocked due to non-empty scheduling gates"


def _node_ready(node: JSONDict) -> bool:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def choose_node(
    pod: JSONDict,
    nodes: list[JSONDict],
    usage: Mapping[str, NodeUsage],
    placement: Callable[[str], str | None] | None = None,
) -> tuple[str | None, str]:
    """(the node to bind to, "") or (None, the scheduler's message). `usage` maps node name
    to what the pods already on it take (a node missing from it holds nothing); `placement`,
    the filters that look at the other pods (inter-pod affinity), runs last, as upstream's.
    Among fitting nodes the one with fewest pods wins, ties by name: spreading,
    deterministically."""
    spec = pod.get("spec") or {}
    want = pod_requests(spec)
    reasons: Counter[str] = Counter()
    fitting: list[tuple[int, str]] = []
    for node in nodes:
        name = str((node.get("metadata") or {}).get("name"))
        on_node = usage.get(name, _EMPTY)
        reason = fits(spec, node)
        if reason is None:
            reason = usage_fits(want, (node.get("status") or {}).get("allocatable") or {}, on_node)
        if reason is None and placement is not None:
            reason = placement(name)
        if reason is None:
            fitting.append((on_node.pods, name))
        else:
            reasons[reason] += 1
    if fitting:
        return min(fitting)[1], ""
    if not nodes:
        return None, "no nodes available to schedule pods"
    detail = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    return None, f"0/{len(nodes)} nodes are available: {detail}."


_EMPTY = NodeUsage()


def _placed_differently(old: JSONDict | None, new: JSONDict) -> bool:
    """Whether a pod event can change what inter-pod affinity sees: a pod bound, or a bound
    pod's labels changed."""
    node = (new.get("spec") or {}).get("nodeName")
    if not node:
        return False
    if old is None or not (old.get("spec") or {}).get("nodeName"):
        return True
    return (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels")


def _candidate(pod: JSONDict) -> Candidate | None:
    """A bound pod as preemption weighs it (None if its requests cannot be read)."""
    meta = pod.get("metadata") or {}
    try:
        requests = pod_requests(pod.get("spec") or {})
    except QuantityError:
        return None
    return Candidate(
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
        pod_priority(pod),
        requests,
        str((pod.get("status") or {}).get("startTime") or meta.get("creationTimestamp") or ""),
        meta.get("labels") or {},
    )


class NodeLedger:
    """Per node, what the pods bound to it take (`NodeUsage`), kept from pod events.

    A pod is charged to its node while it is bound (`spec.nodeName`) and not finished
    (Succeeded or Failed), terminating pods included, as kube-scheduler counts them. Each
    event moves at most one charge, so the ledger always equals a sum over the informer's
    cache without ever computing one. Worked example: pod a (100m) is bound to n1:
    n1 = (1 pod, 100m); a finishes: n1 = (0, 0m) and `observe` says resources were freed.
    """

    def __init__(self) -> None:
        self._charges: dict[ObjKey, tuple[str, Requests]] = {}
        self._usage: dict[str, NodeUsage] = {}
        self._holders: dict[ObjKey, Placed] = {}

    @property
    def anti_affinity_holders(self) -> Iterable[Placed]:
        """The charged pods with required anti-affinity terms (what every new pod is checked
        against, so kept here rather than found among all pods each time)."""
        return self._holders.values()

    @property
    def usage(self) -> Mapping[str, NodeUsage]:
        """Node name -> usage; nodes holding nothing are absent."""
        return self._usage

    def observe(self, pod: JSONDict, *, deleted: bool = False) -> bool:
        """Account for the pod's current state (or its deletion). True when a node's
        resources were freed (the pod was released from a node), which can make a waiting
        pod fit."""
        key = obj_key(pod)
        spec = pod.get("spec") or {}
        node = spec.get("nodeName")
        charge: tuple[str, Requests] | None = None
        if not deleted and node and not is_terminal(pod):
            try:
                requests = pod_requests(spec)
            except QuantityError:
                # Never raise in an informer handler; the pod still counts against max pods.
                requests = Requests()
            charge = (str(node), requests)
        placed = Placed.of(pod) if charge is not None else None
        if placed is not None and placed.anti_terms:
            self._holders[key] = placed
        else:
            self._holders.pop(key, None)
        old = self._charges.get(key)
        if old == charge:
            return False
        if old is not None:
            self._release(old)
        if charge is None:
            self._charges.pop(key, None)
        else:
            self._charges[key] = charge
            name, requests = charge
            self._usage[name] = self._usage.get(name, _EMPTY).plus(requests)
        return old is not None

    def _release(self, charge: tuple[str, Requests]) -> None:
        name, requests = charge
        left = self._usage[name].minus(requests)
        if left.pods:
            self._usage[name] = left
        else:
            del self._usage[name]


class Scheduler:
    name = "scheduler"

    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        # Waiting pods are taken highest priority first (the last known priority of each).
        self._priorities: dict[ObjKey, int] = {}
        self.queue: WorkQueue[ObjKey] = WorkQueue(
            clock, rank=lambda key: -self._priorities.get(key, 0)
        )
        self.recorder = EventRecorder(client, clock, SCHEDULER_NAME)
        self.pods: Informer | None = None
        self.nodes: Informer | None = None
        self.budgets: Informer | None = None
        self.claims: Informer | None = None
        self.classes: Informer | None = None
        self.namespaces: Informer | None = None
        self._unschedulable: set[ObjKey] = set()
        # Unschedulable pods that other pods keep off (affinity): tried again when a pod
        # is bound or a bound pod's labels change.
        self._waiting_on_pods: set[ObjKey] = set()
        self.ledger = NodeLedger()
        # Pods nominated to a node by their preemption: key -> (node, priority, requests).
        self._nominated: dict[ObjKey, tuple[str, int, Requests]] = {}

    def setup(self, factory: InformerFactory) -> None:
        self.pods = factory.informer("v1", "Pod")
        self.nodes = factory.informer("v1", "Node")
        self.budgets = factory.informer("policy/v1", "PodDisruptionBudget")
        self.claims = factory.informer("v1", "PersistentVolumeClaim")
        self.classes = factory.informer("storage.k8s.io/v1", "StorageClass")
        self.namespaces = factory.informer("v1", "Namespace")  # affinity's namespaceSelector
        retry = Handlers(
            on_add=lambda _o: self._retry_unschedulable(),
            on_update=lambda _o, _n: self._retry_unschedulable(),
        )
        self.claims.add_handlers(retry)  # a claim made or bound can unblock a pod
        self.classes.add_handlers(retry)
        self.pods.add_handlers(
            Handlers(
                on_add=self._pod_changed,
                on_update=lambda old, new: self._pod_changed(new, old),
                on_delete=self._pod_deleted,
            )
        )
        self.nodes.add_handlers(
            Handlers(
                on_add=lambda _n: self._retry_unschedulable(),
                on_update=self._node_updated,
            )
        )

    def _wants_scheduling(self, pod: JSONDict) -> bool:
        spec = pod.get("spec") or {}
        meta = pod.get("metadata") or {}
        return (
            not spec.get("nodeName")
            and (spec.get("schedulerName") or SCHEDULER_NAME) == SCHEDULER_NAME
            and not meta.get("deletionTimestamp")
            and not is_terminal(pod)
        )

    def _pod_changed(self, pod: JSONDict, old: JSONDict | None = None) -> None:
        key = obj_key(pod)
        if self.ledger.observe(pod):
            self._retry_unschedulable()  # resources were freed
        if self._waiting_on_pods and _placed_differently(old, pod):
            for waiting in self._waiting_on_pods:
                self.queue.add(waiting)
        wants = self._wants_scheduling(pod)
        self._note_nomination(key, pod if wants else None)
        if wants:
            self._priorities[key] = pod_priority(pod)
            self.queue.add(key)
        else:
            self._priorities.pop(key, None)

    def _pod_deleted(self, pod: JSONDict) -> None:
        key = obj_key(pod)
        self._unschedulable.discard(key)
        self._waiting_on_pods.discard(key)
        self._priorities.pop(key, None)
        self._note_nomination(key, None)
        self.ledger.observe(pod, deleted=True)
        if (pod.get("spec") or {}).get("nodeName"):
            self._retry_unschedulable()  # resources were freed

    def _note_nomination(self, key: ObjKey, waiting: JSONDict | None) -> None:
        node = ((waiting or {}).get("status") or {}).get("nominatedNodeName")
        if waiting is None or not node:
            if self._nominated.pop(key, None) is not None:
                self._retry_unschedulable()  # the room kept for it is free again
            return
        try:
            requests = pod_requests(waiting.get("spec") or {})
        except QuantityError:
            requests = Requests()
        self._nominated[key] = (str(node), pod_priority(waiting), requests)

    def _node_updated(self, old: JSONDict, new: JSONDict) -> None:
        def shape(node: JSONDict) -> tuple[Any, ...]:
            return (
                (node.get("metadata") or {}).get("labels"),
                node.get("spec"),
                _node_ready(node),  # taints follow readiness on real clusters
                (node.get("status") or {}).get("allocatable"),
            )

        if shape(old) != shape(new):
            self._retry_unschedulable()

    def _retry_unschedulable(self) -> None:
        for key in self._unschedulable:
            self.queue.add(key)

    def _claims_block(self, pod: JSONDict, namespace: str) -> str | None:
        """Why the pod's claims keep it off every node: a claim that does not exist, or
        one not bound whose class binds immediately (a WaitForFirstConsumer claim is bound
        once the pod is placed)."""
        assert self.claims is not None and self.classes is not None
        unbound = False
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            source = volume.get("persistentVolumeClaim") if isinstance(volume, dict) else None
            if not isinstance(source, dict):
                continue
            claim_name = str(source.get("claimName") or "")
            claim = self.claims.get(namespace, claim_name)
            if claim is None:
                return f'persistentvolumeclaim "{claim_name}" not found'
            if (claim.get("metadata") or {}).get("deletionTimestamp"):
                return f'persistentvolumeclaim "{claim_name}" is being deleted'
            if (claim.get("spec") or {}).get("volumeName"):
                continue
            class_name = (claim.get("spec") or {}).get("storageClassName")
            storage_class = self.classes.get("", str(class_name)) if class_name else None
            if class_name and storage_class is None:
                return f'storageclass.storage.k8s.io "{class_name}" not found'
            if (storage_class or {}).get("volumeBindingMode") != "WaitForFirstConsumer":
                unbound = True
        return "pod has unbound immediate PersistentVolumeClaims" if unbound else None

    def _usage_for(self, key: ObjKey, priority: int) -> Mapping[str, NodeUsage]:
        """The ledger plus the room kept for pods nominated by their preemption, of at least
        `priority` (a pod of lower priority must not take it; upstream's nominated pods)."""
        usage = self.ledger.usage
        kept = [
            (node, requests)
            for other, (node, their_priority, requests) in self._nominated.items()
            if other != key and their_priority >= priority
        ]
        if not kept:
            return usage
        with_kept = dict(usage)
        for node, requests in kept:
            with_kept[node] = with_kept.get(node, _EMPTY).plus(requests)
        return with_kept

    async def reconcile(self, key: ObjKey) -> Result:
        assert self.pods is not None and self.nodes is not None
        pod = self.pods.get(*key)
        if pod is None or not self._wants_scheduling(pod):
            self._unschedulable.discard(key)
            return Result()
        if (pod.get("spec") or {}).get("schedulingGates"):
            # upstream's SchedulingGates: not tried until every gate is removed (an update
            # of the pod, which queues it again)
            self._unschedulable.discard(key)
            await self._mark_unschedulable(pod, GATED, reason="SchedulingGated")
            return Result()
        nodes = self.nodes.list()
        namespace, name = key
        blocked = self._claims_block(pod, namespace)
        if blocked is not None:
            # upstream's VolumeBinding PreFilter: no node can help, so no preemption either
            self._unschedulable.add(key)
            message = (
                f"0/{len(nodes)} nodes are available: {blocked}. preemption: 0/{len(nodes)} "
                f"nodes are available: {len(nodes)} Preemption is not helpful for scheduling."
            )
            await self._mark_unschedulable(pod, message, None)
            return Result()
        usage = self._usage_for(key, pod_priority(pod))
        affinity = self._placement(pod, nodes)
        node, message = choose_node(pod, nodes, usage, affinity)
        if node is None:
            self._unschedulable.add(key)
            if affinity is not None:
                self._waiting_on_pods.add(key)
            nominated, why = await self._preempt(pod, nodes, usage, affinity)
            if why:
                message = f"{message} preemption: {why}"
            await self._mark_unschedulable(pod, message, nominated)
            return Result()
        self._unschedulable.discard(key)
        self._waiting_on_pods.discard(key)
        try:
            await self.client.patch(
                "v1", "Pod", name, {"spec": {"nodeName": node}}, namespace=namespace
            )
        except NotFoundError:
            return Result()
        except ConflictError:
            return Result(error="pod changed while binding")
        status: JSONDict = {
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": rfc3339(self.clock.now()),
                }
            ]
        }
        if (pod.get("status") or {}).get("nominatedNodeName"):
            status["nominatedNodeName"] = None  # placed: the nomination has served
        with contextlib.suppress(NotFoundError):
            await self.client.patch(
                "v1",
                "Pod",
                name,
                {"status": status},
                namespace=namespace,
                patch_type="strategic",
                subresource="status",
            )
        self.recorder.record(
            pod, "Normal", "Scheduled", f"Successfully assigned {namespace}/{name} to {node}"
        )
        return Result()

    def _placement(
        self, pod: JSONDict, nodes: list[JSONDict]
    ) -> Callable[[str], str | None] | None:
        """The filters that look at the placed pods, topology spread and inter-pod affinity,
        for this pod; None when nothing could refuse it (no constraints or terms of its own,
        no placed pod's anti-affinity about it)."""
        assert self.pods is not None and self.namespaces is not None
        pods, namespaces = self.pods, self.namespaces

        def placed() -> list[Placed]:
            return [
                Placed.of(p)
                for p in pods.list()
                if (p.get("spec") or {}).get("nodeName") and not is_terminal(p)
            ]

        def namespace_labels(name: str) -> Mapping[str, str] | None:
            found = namespaces.get("", name)
            return None if found is None else (found.get("metadata") or {}).get("labels") or {}

        def spreading() -> list[tuple[str, Mapping[str, str], str]]:
            found = []
            for p in pods.list():
                meta, node = p.get("metadata") or {}, (p.get("spec") or {}).get("nodeName")
                if node and not is_terminal(p) and not meta.get("deletionTimestamp"):
                    found.append((str(meta.get("namespace") or ""), meta.get("labels") or {}, node))
            return found

        check = AffinityCheck(
            pod, nodes, placed, self.ledger.anti_affinity_holders, namespace_labels
        )
        affinity = check.reason if check.needed else None
        spread = spread_filter(pod, nodes, spreading)
        if spread is None or affinity is None:
            return spread or affinity

        def both(node: str) -> str | None:
            return spread(node) or affinity(node)  # PodTopologySpread runs first upstream

        return both

    async def _preempt(
        self,
        pod: JSONDict,
        nodes: list[JSONDict],
        usage: Mapping[str, NodeUsage],
        affinity: Callable[[str], str | None] | None = None,
    ) -> tuple[str | None, str]:
        """Evict pods of lower priority for `pod` if that makes it fit somewhere: (the node
        it is nominated to, "") or (its current nomination, why preemption does not help)."""
        assert self.pods is not None
        spec = pod.get("spec") or {}
        current = (pod.get("status") or {}).get("nominatedNodeName") or None
        if spec.get("preemptionPolicy") == "Never":
            return current, "not eligible due to preemptionPolicy=Never."
        priority = pod_priority(pod)
        on_nodes: dict[str, list[Candidate]] = {}
        for other in self.pods.list():
            where = (other.get("spec") or {}).get("nodeName")
            if not where or is_terminal(other):
                continue
            if (other.get("metadata") or {}).get("deletionTimestamp"):
                if where == current and pod_priority(other) < priority:
                    # Its victims are still going: wait for them, do not preempt more.
                    return current, "not eligible due to a terminating pod on the nominated node."
                continue
            candidate = _candidate(other)
            if candidate is not None:
                on_nodes.setdefault(str(where), []).append(candidate)
        choice, why = plan(pod, nodes, usage, on_nodes, self._budgets(), affinity)
        if choice is None:
            return current, why
        await self._evict(pod, choice)
        return choice.node, ""

    def _budgets(self) -> list[Budget]:
        assert self.budgets is not None
        found = []
        for budget in self.budgets.list():
            try:
                selector = label_selector_from_spec((budget.get("spec") or {}).get("selector"))
            except SelectorError:
                continue
            allowed = (budget.get("status") or {}).get("disruptionsAllowed")
            namespace = str((budget.get("metadata") or {}).get("namespace") or "")
            found.append(Budget(namespace, selector, allowed if isinstance(allowed, int) else 0))
        return found

    async def _evict(self, pod: JSONDict, choice: Choice) -> None:
        """Preempt `choice.victims` for `pod`: upstream's DisruptionTarget condition, an
        Event on each, a graceful deletion; lower-priority pods nominated to the node lose
        their nomination (the room they were promised is taken)."""
        assert self.pods is not None
        meta = pod.get("metadata") or {}
        who = f"{meta.get('namespace')}/{meta.get('name')}"
        priority = pod_priority(pod)
        for victim in choice.victims:
            cached = self.pods.get(victim.namespace, victim.name)
            condition = {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "PreemptionByScheduler",
                "message": f"{SCHEDULER_NAME}: preempting to accommodate a higher priority pod",
                "lastTransitionTime": rfc3339(self.clock.now()),
            }
            with contextlib.suppress(NotFoundError):
                await self.client.patch(
                    "v1",
                    "Pod",
                    victim.name,
                    {"status": {"conditions": [condition]}},
                    namespace=victim.namespace,
                    patch_type="strategic",
                    subresource="status",
                )
                await self.client.delete("v1", "Pod", victim.name, victim.namespace)
                if cached is not None:
                    self.recorder.record(
                        cached, "Normal", "Preempted", f"Preempted by {who} on node {choice.node}"
                    )
        for other, (node, their_priority, _requests) in list(self._nominated.items()):
            if node == choice.node and their_priority < priority and other != obj_key(pod):
                with contextlib.suppress(NotFoundError):
                    await self.client.patch(
                        "v1",
                        "Pod",
                        other[1],
                        {"status": {"nominatedNodeName": None}},
                        namespace=other[0],
                        patch_type="strategic",
                        subresource="status",
                    )

    async def _mark_unschedulable(
        self,
        pod: JSONDict,
        message: str,
        nominated: str | None = None,
        reason: str = "Unschedulable",
    ) -> None:
        status = pod.get("status") or {}
        for condition in status.get("conditions") or []:
            if (
                condition.get("type") == "PodScheduled"
                and condition.get("message") == message
                and (status.get("nominatedNodeName") or None) == nominated
            ):
                return  # already says so
        meta = pod.get("metadata") or {}
        patch = {
            "status": {
                "nominatedNodeName": nominated,
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": reason,
                        "message": message,
                        "lastProbeTime": None,
                        "lastTransitionTime": rfc3339(self.clock.now()),
                    }
                ],
            }
        }
        with contextlib.suppress(NotFoundError):
            await self.client.patch(
                "v1",
                "Pod",
                str(meta.get("name")),
                patch,
                namespace=str(meta.get("namespace")),
                patch_type="strategic",
                subresource="status",
            )
        if reason == "Unschedulable":
            self.recorder.record(pod, "Warning", "FailedScheduling", message)
