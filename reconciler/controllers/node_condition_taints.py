"""Node conditions become taints: upstream's "TaintNodesByCondition", the part of the node
lifecycle controller that keeps a Node's NoSchedule taints in step with its conditions.

A node in trouble says so in `status.conditions` (the kubelet posts MemoryPressure,
DiskPressure and PIDPressure, a network plugin NetworkUnavailable; here whoever writes the
Node's status), and the scheduler keeps new pods off it because of the taint this
controller puts on it, not because of the condition: a pod that tolerates the taint (a
DaemonSet's pods do, by default) still lands there. As upstream's
`nodeConditionToTaintKeyStatusMap`:

    MemoryPressure=True      node.kubernetes.io/memory-pressure:NoSchedule
    DiskPressure=True        node.kubernetes.io/disk-pressure:NoSchedule
    PIDPressure=True         node.kubernetes.io/pid-pressure:NoSchedule
    NetworkUnavailable=True  node.kubernetes.io/network-unavailable:NoSchedule

False or Unknown gives no taint. The taints have no value; one this controller adds gets
`timeAdded` (upstream's `SwapNodeControllerTaint` stamps every taint it adds, NoSchedule
ones included), and one already there with the same key and effect is left as it is.

Not the Ready-based taints (`node.kubernetes.io/not-ready`, `node.kubernetes.io/unreachable`):
on one host the node is NotReady only while `recon serve` itself is down, when no
controller runs to add them, and a not-ready taint left over from before a restart would
hold every pod Pending at start until this controller had removed it. Nor upstream's
`node.kubernetes.io/unschedulable` taint for a cordoned node: the scheduler reads
`spec.unschedulable` itself (`nodefit.fits`). The taints this controller owns are the four
keys above with effect NoSchedule; every other taint (`kubectl taint`, other effects, the
same key with NoExecute) is kept untouched and in its place.

`condition_taints` and `merged_taints` (pure) decide; the controller writes `spec.taints`
as a whole list with a merge patch carrying the resourceVersion it read, so a change made
in between is a conflict, retried, never overwritten.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import ConflictError, NotFoundError
from reconciler.clock import Clock, rfc3339
from reconciler.controllers.base import Result, enqueue_self
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey
from reconciler.controllers.queue import WorkQueue

__all__ = [
    "CONDITION_TAINTS",
    "NodeConditionTaintController",
    "condition_taints",
    "merged_taints",
]

JSONDict = dict[str, Any]

NO_SCHEDULE = "NoSchedule"
CONDITION_TAINTS: Mapping[str, str] = {
    "MemoryPressure": "node.kubernetes.io/memory-pressure",
    "DiskPressure": "node.kubernetes.io/disk-pressure",
    "PIDPressure": "node.kubernetes.io/pid-pressure",
    "NetworkUnavailable": "node.kubernetes.io/network-unavailable",
}
"""Condition type (when its status is True) -> the key of the NoSchedule taint it calls for."""

_OWNED_KEYS = frozenset(CONDITION_TAINTS.values())


def condition_taints(node: Mapping[str, Any]) -> list[JSONDict]:
    """The NoSchedule taints the node's conditions call for, in the order of its conditions
    (as upstream ranges over them), each once."""
    taints: list[JSONDict] = []
    for condition in (node.get("status") or {}).get("conditions") or []:
        key = CONDITION_TAINTS.get(str(condition.get("type") or ""))
        if key is None or condition.get("status") != "True":
            continue
        taint = {"key": key, "effect": NO_SCHEDULE}
        if taint not in taints:
            taints.append(taint)
    return taints


def _owned(taint: Mapping[str, Any]) -> bool:
    return taint.get("effect") == NO_SCHEDULE and taint.get("key") in _OWNED_KEYS


def _matches(taint: Mapping[str, Any], taints: Iterable[Mapping[str, Any]]) -> bool:
    """Upstream's `TaintExists`: a taint is the same taint when key and effect are (value and
    timeAdded do not count)."""
    return any(
        t.get("key") == taint.get("key") and t.get("effect") == taint.get("effect") for t in taints
    )


def merged_taints(
    current: Iterable[Mapping[str, Any]], wanted: Iterable[Mapping[str, Any]]
) -> list[JSONDict] | None:
    """The node's taints with the ones this controller owns made to match `wanted`; None when
    nothing changes.

    Taints it does not own are kept as they are, in their order; an owned taint still wanted
    is kept as it is (its value and timeAdded too); an owned taint no longer wanted goes; a
    wanted one missing is added at the end (upstream's `AddOrUpdateTaint` appends). Entries
    of `wanted` it does not own are ignored: it never writes a taint it would not remove.

    Worked example: the node has `dedicated=gpu:NoSchedule` (the user's), then
    `node.kubernetes.io/disk-pressure:NoSchedule` and `node.kubernetes.io/memory-pressure:
    NoExecute` (the user's too: another effect); DiskPressure is now False and
    MemoryPressure True, so `wanted` is `[memory-pressure:NoSchedule]`. The result:
    `dedicated=gpu:NoSchedule`, `memory-pressure:NoExecute`, `memory-pressure:NoSchedule`.
    """
    have = [dict(t) for t in current]
    want = [dict(t) for t in wanted if _owned(t)]
    kept = [t for t in have if not _owned(t) or _matches(t, want)]
    added: list[JSONDict] = []
    for taint in want:
        if not _matches(taint, have) and not _matches(taint, added):
            added.append(taint)
    if len(kept) == len(have) and not added:
        return None
    return kept + added


class NodeConditionTaintController:
    name = "node-lifecycle-controller"

    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.queue: WorkQueue[ObjKey] = WorkQueue(clock)
        self.nodes: Informer

    def setup(self, factory: InformerFactory) -> None:
        self.nodes = factory.informer("v1", "Node")
        mine = enqueue_self(self.queue)
        # Every update, heartbeats included: conditions live in the status, and a reconcile
        # with nothing to change reads only the cache.
        self.nodes.add_handlers(Handlers(mine, lambda _o, n: mine(n), None))

    async def reconcile(self, key: ObjKey) -> Result:
        _, name = key
        node = self.nodes.get("", name)
        if node is None:
            return Result()
        meta = node.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return Result()
        now = rfc3339(self.clock.now())
        wanted = [{**t, "timeAdded": now} for t in condition_taints(node)]
        taints = merged_taints((node.get("spec") or {}).get("taints") or [], wanted)
        if taints is None:
            return Result()
        patch = {
            "metadata": {"resourceVersion": meta.get("resourceVersion")},
            "spec": {"taints": taints or None},  # none left: the field goes, as upstream
        }
        try:
            await self.client.patch("v1", "Node", name, patch)
        except NotFoundError:
            return Result()
        except ConflictError:
            return Result(error="the node changed while its condition taints were written")
        return Result()
