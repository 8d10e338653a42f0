"""The disruption controller: how many pods each PodDisruptionBudget may lose right now.

Why: the eviction subresource (`apiserver/eviction.py`) never counts pods itself; it reads
a budget's `status` and spends `disruptionsAllowed`. This controller keeps that status
current, as upstream's `pkg/controller/disruption` does, so `kubectl drain` can evict pods
without taking an application below what its budget promises, and `kubectl get pdb` shows
the numbers.

For each budget, from the pods its selector matches in its namespace (`plan_status`, pure):

- `expectedPods`: with `minAvailable` as a number, the number of matching pods; with
  `minAvailable` as a percentage, or with `maxUnavailable`, the sum of the scales of the
  pods' controllers (Deployment — through the pod's ReplicaSet —, ReplicaSet,
  StatefulSet, ReplicationController), each counted once. Pods with no controller do not
  count there; a pod whose controller cannot be found makes the budget fail safe.
- `desiredHealthy`: `minAvailable` (a percentage of expectedPods, rounded up), or
  expectedPods - `maxUnavailable` (likewise, never below 0).
- `currentHealthy`: matching pods that are Ready, not finished, not being deleted, and not
  just approved for eviction (in `disruptedPods`, younger than `DELETION_TIMEOUT`).
- `disruptionsAllowed`: currentHealthy - desiredHealthy, never below 0, and 0 while
  expectedPods is 0 (a budget whose pods have not appeared yet protects them on arrival).
- `disruptedPods`: the eviction subresource's records, dropped once the pod is gone or
  being deleted, or after `DELETION_TIMEOUT` (an approved eviction whose delete never came).
  The controller re-checks the budget when the oldest record would expire.
- `observedGeneration`, and the `DisruptionAllowed` condition: True/`SufficientPods` when
  disruptionsAllowed > 0, else False/`InsufficientPods`; a budget that cannot be computed
  (an invalid selector or count, both minAvailable and maxUnavailable, a pod whose
  controller is missing) gets disruptionsAllowed 0 and False/`SyncFailed` with the reason.

Concrete example: a Deployment of 3 ready replicas under `minAvailable: 2`: expected 3,
desired 2, healthy 3, allowed 1. One eviction is approved (allowed 0, the pod recorded);
while it shuts down and its replacement starts, healthy is 2 and allowed stays 0; when the
replacement is Ready, healthy is 3 and allowed is 1 again. With `maxUnavailable: 34%`:
expected 3 (the Deployment's scale), 34% of 3 is 1.02, rounded up 2, desired 1, allowed 2.

Not done: the scale of custom controllers (upstream reads any controller's `scale`
subresource); a pod they own makes its budget fail safe, with the pod named.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reconciler.client.base import Client
from reconciler.clock import Clock, parse_rfc3339, rfc3339
from reconciler.controllers.base import Result
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey, obj_key
from reconciler.controllers.podutil import controller_ref, is_active, is_ready
from reconciler.controllers.queue import WorkQueue
from reconciler.selectors import LabelSelector, SelectorError, label_selector_from_spec

__all__ = [
    "DELETION_TIMEOUT",
    "BudgetError",
    "DisruptionController",
    "Owner",
    "Plan",
    "count_healthy",
    "expected_and_desired",
    "failed_status",
    "live_disruptions",
    "plan_status",
    "scaled_value",
]

JSONDict = dict[str, Any]

log = logging.getLogger(__name__)

DELETION_TIMEOUT = timedelta(minutes=2)
CONDITION = "DisruptionAllowed"


class BudgetError(ValueError):
    """A budget whose status cannot be computed; the message names the field or the pod."""


@dataclass(frozen=True)
class Owner:
    """A pod's scaled controller: its uid (counted once) and its desired replicas."""

    uid: str
    replicas: int


OwnerOf = Callable[[Mapping[str, Any]], Owner | None]


@dataclass(frozen=True)
class Plan:
    """A budget's computed status, and when to look again (an expiring disruptedPods entry)."""

    status: JSONDict
    recheck_after: float | None = None


def scaled_value(field: str, value: Any, total: int) -> int:
    """An IntOrString count: an integer as it is, "N%" of `total` rounded up (as upstream's
    `GetScaledValueFromIntOrPercent(..., roundUp=true)`): 50% of 3 is 2, 34% of 3 is 2."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise BudgetError(
                f"{field}: Invalid value: {value}: must be greater than or equal to 0"
            )
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        percent = int(value[:-1])
        if percent > 100:
            raise BudgetError(f"{field}: Invalid value: {value!r}: must be no more than 100%")
        return math.ceil(percent * total / 100)
    raise BudgetError(
        f"{field}: Invalid value: {value!r}: must be an integer or a percentage (e.g. '50%')"
    )


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def expected_scale(pods: Iterable[Mapping[str, Any]], owner_of: OwnerOf) -> int:
    """The sum of the scales of the pods' controllers, each counted once; pods without a
    controller add nothing (upstream logs them and goes on)."""
    scales: dict[str, int] = {}
    for pod in pods:
        ref = controller_ref(pod)
        if ref is None:
            continue
        owner = owner_of(pod)
        if owner is None:
            raise BudgetError(f'found no controllers for pod "{_name(pod)}"')
        scales[owner.uid] = owner.replicas
    return sum(scales.values())


def expected_and_desired(
    spec: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], owner_of: OwnerOf
) -> tuple[int, int]:
    """(expectedPods, desiredHealthy) of a budget's spec over its matching pods."""
    min_available = spec.get("minAvailable")
    max_unavailable = spec.get("maxUnavailable")
    if min_available is not None and max_unavailable is not None:
        raise BudgetError("spec: minAvailable and maxUnavailable cannot be both set")
    if max_unavailable is not None:
        expected = expected_scale(pods, owner_of)
        unavailable = scaled_value("spec.maxUnavailable", max_unavailable, expected)
        return expected, max(0, expected - unavailable)
    if min_available is None:
        return 0, 0  # upstream: nothing expected, so nothing may be disrupted
    if isinstance(min_available, int) and not isinstance(min_available, bool):
        return len(pods), scaled_value("spec.minAvailable", min_available, len(pods))
    expected = expected_scale(pods, owner_of)
    return expected, scaled_value("spec.minAvailable", min_available, expected)


def _expiry(stamp: Any) -> datetime | None:
    try:
        return parse_rfc3339(str(stamp)) + DELETION_TIMEOUT
    except ValueError:
        return None  # an unreadable record is as good as expired


def live_disruptions(
    recorded: Mapping[str, Any], pods: Iterable[Mapping[str, Any]], now: datetime
) -> tuple[JSONDict, datetime | None]:
    """The approved evictions still pending (the pod exists, is not being deleted, and was
    approved less than `DELETION_TIMEOUT` ago), and when the first of them expires."""
    live: JSONDict = {}
    first: datetime | None = None
    for pod in pods:
        name = _name(pod)
        if (pod.get("metadata") or {}).get("deletionTimestamp") or name not in recorded:
            continue
        expiry = _expiry(recorded[name])
        if expiry is None or expiry <= now:
            log.info("disruption: pod %s was approved for eviction but not deleted", name)
            continue
        live[name] = recorded[name]
        first = expiry if first is None or expiry < first else first
    return live, first


def count_healthy(pods: Iterable[Mapping[str, Any]], disrupted: Mapping[str, Any]) -> int:
    """Ready pods that are not finishing, not being deleted and not about to be evicted
    (`disrupted` holds only live records: see `live_disruptions`)."""
    return sum(1 for p in pods if is_active(p) and is_ready(p) and _name(p) not in disrupted)


def _with_condition(
    conditions: Any, status: str, reason: str, message: str, generation: int, now: datetime
) -> list[JSONDict]:
    """`conditions` with `DisruptionAllowed` set, its transition time moved only when its
    status changes (as `meta.SetStatusCondition`)."""
    out = [dict(c) for c in conditions or () if isinstance(c, Mapping)]
    wanted: JSONDict = {
        "type": CONDITION,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": rfc3339(now),
    }
    for i, condition in enumerate(out):
        if condition.get("type") == CONDITION:
            if condition.get("status") == status and condition.get("lastTransitionTime"):
                wanted["lastTransitionTime"] = condition["lastTransitionTime"]
            out[i] = wanted
            return out
    return [*out, wanted]


def plan_status(
    budget: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    owner_of: OwnerOf,
    now: datetime,
) -> Plan:
    """The status of `budget` over its matching `pods` (pure; raises BudgetError)."""
    meta, old = budget.get("metadata") or {}, budget.get("status") or {}
    expected, desired = expected_and_desired(budget.get("spec") or {}, pods, owner_of)
    disrupted, first_expiry = live_disruptions(old.get("disruptedPods") or {}, pods, now)
    healthy = count_healthy(pods, disrupted)
    allowed = healthy - desired if expected > 0 else 0
    allowed = max(0, allowed)
    generation = int(meta.get("generation") or 0)
    status: JSONDict = {
        "observedGeneration": generation,
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
    }
    if disrupted:
        status["disruptedPods"] = disrupted
    reason = ("True", "SufficientPods") if allowed > 0 else ("False", "InsufficientPods")
    status["conditions"] = _with_condition(old.get("conditions"), *reason, "", generation, now)
    recheck = (first_expiry - now).total_seconds() if first_expiry is not None else None
    return Plan(status, recheck)


def failed_status(budget: Mapping[str, Any], message: str, now: datetime) -> JSONDict:
    """Fail safe (upstream's `failSafe`): no disruption allowed, and why, in the condition;
    the rest of the status, and the generation it was computed for, stay."""
    status = copy.deepcopy(dict(budget.get("status") or {}))
    status["disruptionsAllowed"] = 0
    generation = int(status.get("observedGeneration") or 0)
    status["conditions"] = _with_condition(
        status.get("conditions"), "False", "SyncFailed", message, generation, now
    )
    return status


def _replicas(obj: Mapping[str, Any]) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return int(value) if isinstance(value, int) else 1  # the API's default


class DisruptionController:
    name = "disruption"

    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.queue: WorkQueue[ObjKey] = WorkQueue(clock)
        self.budgets: Informer
        self.pods: Informer
        self._owners: dict[str, Informer] = {}
        # namespace -> budget key -> its parsed selector (valid selectors only)
        self._selectors: dict[str, dict[ObjKey, LabelSelector]] = {}

    def setup(self, factory: InformerFactory) -> None:
        self.budgets = factory.informer("policy/v1", "PodDisruptionBudget")
        self.pods = factory.informer("v1", "Pod")
        self._owners = {
            "ReplicaSet": factory.informer("apps/v1", "ReplicaSet"),
            "Deployment": factory.informer("apps/v1", "Deployment"),
            "StatefulSet": factory.informer("apps/v1", "StatefulSet"),
            "ReplicationController": factory.informer("v1", "ReplicationController"),
        }

        def budget(obj: JSONDict) -> None:
            self._remember_selector(obj)
            self.queue.add(obj_key(obj))

        def budget_deleted(obj: JSONDict) -> None:
            self._forget_selector(obj_key(obj))

        # Every update counts, status ones too: an eviction's write must be re-counted.
        self.budgets.add_handlers(Handlers(budget, lambda _o, n: budget(n), budget_deleted))

        def pod_changed(old: JSONDict, new: JSONDict) -> None:
            if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get(
                "labels"
            ):
                self._enqueue_for_pod(old)  # the pod may have left a budget ...
            self._enqueue_for_pod(new)  # ... or joined one

        self.pods.add_handlers(Handlers(self._enqueue_for_pod, pod_changed, self._enqueue_for_pod))

        def scaled(old: JSONDict, new: JSONDict) -> None:
            if _replicas(old) != _replicas(new):
                namespace = obj_key(new)[0]
                for key in list(self._selectors.get(namespace, {})):
                    self.queue.add(key)

        for informer in self._owners.values():
            informer.add_handlers(Handlers(on_update=scaled))

    def _remember_selector(self, budget: JSONDict) -> None:
        key = obj_key(budget)
        try:
            selector = label_selector_from_spec((budget.get("spec") or {}).get("selector"))
        except SelectorError:
            self._forget_selector(key)  # never raise in a handler; the reconcile reports it
            return
        self._selectors.setdefault(key[0], {})[key] = selector

    def _forget_selector(self, key: ObjKey) -> None:
        in_namespace = self._selectors.get(key[0])
        if in_namespace is not None:
            in_namespace.pop(key, None)
            if not in_namespace:
                del self._selectors[key[0]]

    def _enqueue_for_pod(self, pod: JSONDict) -> None:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        for key, selector in self._selectors.get(str(meta.get("namespace") or ""), {}).items():
            if selector.matches(labels):
                self.queue.add(key)

    def _owner(self, kind: str, namespace: str, ref: Mapping[str, Any]) -> JSONDict | None:
        """The controller `ref` points to, if it is cached and is the same object (uid)."""
        found = self._owners[kind].get(namespace, str(ref.get("name") or ""))
        if found is None or (found.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        return found

    def owner_of(self, pod: Mapping[str, Any]) -> Owner | None:
        """The pod's scaled controller: a ReplicaSet's Deployment when it has one."""
        ref = controller_ref(pod)
        namespace = str((pod.get("metadata") or {}).get("namespace") or "")
        if ref is None:
            return None
        kind, group = str(ref.get("kind")), str(ref.get("apiVersion") or "").rpartition("/")[0]
        if (kind, group) not in (
            ("ReplicaSet", "apps"),
            ("StatefulSet", "apps"),
            ("ReplicationController", ""),
        ):
            return None
        owner = self._owner(kind, namespace, ref)
        if owner is None:
            return None
        if kind == "ReplicaSet":
            parent = controller_ref(owner)
            if parent is not None and parent.get("kind") == "Deployment":
                owner = self._owner("Deployment", namespace, parent)
                if owner is None:
                    return None
        return Owner(str(owner["metadata"].get("uid")), _replicas(owner))

    async def reconcile(self, key: ObjKey) -> Result:
        namespace, name = key
        budget = self.budgets.get(namespace, name)
        if budget is None:
            return Result()
        now = self.clock.now()
        recheck: float | None = None
        try:
            try:
                spec_selector = (budget.get("spec") or {}).get("selector")
                selector = label_selector_from_spec(spec_selector)
            except SelectorError as e:
                raise BudgetError(f"spec.selector: {e}") from e
            pods = self.pods.list(namespace, selector)
            plan = plan_status(budget, pods, self.owner_of, now)
            status, recheck = plan.status, plan.recheck_after
        except BudgetError as e:
            log.info("disruption: PodDisruptionBudget %s/%s: %s", namespace, name, e)
            status = failed_status(budget, str(e), now)
        if status != budget.get("status"):
            body = copy.deepcopy(budget)  # cached objects are shared: never changed
            body["status"] = status
            # A 409 (the cache is behind an eviction's write) is raised and retried.
            await self.client.update(body, subresource="status")
        return Result(requeue_after=recheck)
