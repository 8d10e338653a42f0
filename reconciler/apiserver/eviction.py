"""`pods/eviction`: delete a pod only if its PodDisruptionBudget has room for it.

Why: `kubectl drain` (like autoscalers and operators that move pods) does not delete pods;
it POSTs a `policy/v1` Eviction to `pods/NAME/eviction` and the API server deletes the pod
only when that keeps the pod's PodDisruptionBudget satisfied, answering 429 otherwise, so
the client waits and tries again while replacements come up elsewhere. The semantics are
upstream's (`pkg/registry/core/pod/storage/eviction.go`):

1. The body is an Eviction (`policy/v1`, or `policy/v1beta1`) named as the URL; `dryRun`
   may come from the query or from its `deleteOptions`, and both must then agree.
2. No pod: 404. A pod that is finished (Succeeded/Failed), still Pending or already being
   deleted disrupts nothing more: it is deleted with the eviction's `deleteOptions`, its
   budget unchecked (a Pending pod's resourceVersion becomes a delete precondition, so a pod
   that started running in between is not removed behind its budget's back).
3. The budgets of the pod's namespace whose selector matches it: none, delete; more than
   one, 500 (upstream's message); one:
   - a pod that is not Ready is deleted without spending the budget when the budget says
     `unhealthyPodEvictionPolicy: AlwaysAllow`, or (the default, `IfHealthyBudget`) when
     the application is healthy anyway (`currentHealthy >= desiredHealthy > 0`);
   - otherwise check and decrement: a status not yet computed for the budget's current
     generation, or `disruptionsAllowed` 0, is a 429 TooManyRequests with a
     `DisruptionBudget` cause; a negative count or an overfull `disruptedPods` is 403;
     else `disruptionsAllowed` goes down by one and the pod is recorded in
     `disruptedPods` (name -> time) through the status subresource, with the budget's
     resourceVersion (re-read and retried on a conflict), and then the pod is deleted.
4. Success is a 201 `Status` Success, as the upstream create handler answers.

A refused eviction writes nothing; a dry run writes nothing either. Before deleting (not in
a dry run), the pod gets upstream's `DisruptionTarget` condition (reason
`EvictionByEvictionAPI`), which tells its controller why it goes.

The decisions are pure functions (`parse_eviction`, `merge_dry_run`, `can_ignore_budget`,
`budgets_for`, `unhealthy_may_go`, `decrement`); `Evictions.evict` performs them against the
`ObjectService`. The disruption controller (`controllers/disruption.py`) keeps each budget's
status current; this module only reads it and spends it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.apiserver import errors
from reconciler.apiserver.errors import ApiError, Cause
from reconciler.apiserver.objects import ObjectService
from reconciler.apiserver.resources import ResourceType
from reconciler.clock import Clock, rfc3339
from reconciler.selectors import SelectorError, label_selector_from_spec

__all__ = [
    "EVICTION_VERSIONS",
    "MAX_DISRUPTED_PODS",
    "MULTIPLE_BUDGETS",
    "TOO_MANY_REQUESTS",
    "EvictionRequest",
    "Evictions",
    "budgets_for",
    "can_ignore_budget",
    "decrement",
    "enforces_resource_version",
    "is_dry_run",
    "merge_dry_run",
    "parse_eviction",
    "still_processing",
    "success_status",
    "unhealthy_may_go",
]

JSONDict = dict[str, Any]

EVICTION_VERSIONS = ("policy/v1", "policy/v1beta1")
# Upstream refuses evictions while this many approved ones wait for the controller to see
# the pods go: a budget whose controller is not running cannot be spent without bound.
MAX_DISRUPTED_PODS = 2000
# Conflicts on the budget's status are retried this many times (upstream: 20 steps).
_CONFLICT_RETRIES = 20

TOO_MANY_REQUESTS = "Cannot evict pod as it would violate the pod's disruption budget."
MULTIPLE_BUDGETS = (
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not "
    "support."
)
_DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"
_DELETE_OPTION_KEYS = frozenset(
    {
        "kind",
        "apiVersion",
        "gracePeriodSeconds",
        "preconditions",
        "orphanDependents",
        "propagationPolicy",
        "dryRun",
        "ignoreStoreReadErrorWithClusterBreakingPotential",
    }
)


@dataclass(frozen=True)
class EvictionRequest:
    """What an Eviction body asks for: the pod, and how to delete it."""

    name: str
    delete_options: JSONDict = field(default_factory=dict)


def _ready(pod: Mapping[str, Any]) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def _phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def _deleting(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def parse_eviction(body: object, name: str, namespace: str) -> EvictionRequest:
    """The Eviction in a request body, checked as the API server checks it."""
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be an Eviction object")
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if kind != "Eviction" or api_version not in EVICTION_VERSIONS:
        raise errors.bad_request(
            f"the body of pods/eviction must be an Eviction of {' or '.join(EVICTION_VERSIONS)}"
            f", not kind {kind!r} of apiVersion {api_version!r}"
        )
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        raise errors.bad_request("metadata: the Eviction needs metadata with the pod's name")
    if meta.get("name") != name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    if meta.get("namespace") not in (None, "", namespace):
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    options = body.get("deleteOptions")
    if options is None:
        return EvictionRequest(name)
    if not isinstance(options, dict):
        raise errors.bad_request("deleteOptions: must be a DeleteOptions object")
    unknown = sorted(set(options) - _DELETE_OPTION_KEYS)
    if unknown:
        raise errors.bad_request(f"deleteOptions: unknown field {unknown[0]!r}")
    grace = options.get("gracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
        raise errors.bad_request("deleteOptions.gracePeriodSeconds: must be an integer")
    preconditions = options.get("preconditions")
    if preconditions is not None and not isinstance(preconditions, dict):
        raise errors.bad_request("deleteOptions.preconditions: must be an object")
    dry_run = options.get("dryRun")
    if dry_run is not None and (not isinstance(dry_run, list) or any(v != "All" for v in dry_run)):
        raise errors.bad_request("deleteOptions.dryRun: the only valid value is ['All']")
    return EvictionRequest(name, dict(options))


def merge_dry_run(options: Mapping[str, Any], query_dry_run: list[str]) -> JSONDict:
    """The delete options with the request's `dryRun` (upstream's `propagateDryRun`): the
    query's when the body has none; a mismatch between two given values is an error."""
    merged = dict(options)
    body_dry_run = list(merged.get("dryRun") or [])
    if not body_dry_run:
        if query_dry_run:
            merged["dryRun"] = list(query_dry_run)
        return merged
    if query_dry_run and query_dry_run != body_dry_run:
        raise errors.bad_request(
            f"Non-matching dry-run options in request and content: {query_dry_run} and "
            f"{body_dry_run}"
        )
    return merged


def is_dry_run(options: Mapping[str, Any]) -> bool:
    return "All" in (options.get("dryRun") or [])


def can_ignore_budget(pod: Mapping[str, Any]) -> bool:
    """A pod whose eviction disrupts nothing more: finished, not started, or going already."""
    return _phase(pod) in ("Succeeded", "Failed", "Pending") or _deleting(pod)


def enforces_resource_version(pod: Mapping[str, Any]) -> bool:
    """Whether a direct deletion must not race the pod becoming healthy (all but finished
    pods and pods already being deleted)."""
    return not (_phase(pod) in ("Succeeded", "Failed") or _deleting(pod))


def budgets_for(pod: Mapping[str, Any], budgets: Iterable[Mapping[str, Any]]) -> list[JSONDict]:
    """The budgets (of the pod's namespace) whose selector matches the pod's labels. An
    absent selector matches nothing, `{}` everything; an invalid one matches nothing."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    out: list[JSONDict] = []
    for budget in budgets:
        if (budget.get("metadata") or {}).get("namespace") != meta.get("namespace"):
            continue
        try:
            selector = label_selector_from_spec((budget.get("spec") or {}).get("selector"))
        except SelectorError:
            continue
        if selector.matches(labels):
            out.append(dict(budget))
    return out


def unhealthy_may_go(pod: Mapping[str, Any], budget: Mapping[str, Any]) -> bool:
    """May this pod go without spending the budget? Only an unready one: with
    `unhealthyPodEvictionPolicy: AlwaysAllow` always, with `IfHealthyBudget` (the default)
    when the application is as healthy as the budget asks (`currentHealthy >=
    desiredHealthy > 0`): removing a pod that serves nothing disrupts nothing then."""
    if _ready(pod):
        return False
    if (budget.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
        return True
    status = budget.get("status") or {}
    desired = int(status.get("desiredHealthy") or 0)
    return int(status.get("currentHealthy") or 0) >= desired > 0


def _too_many_requests(cause: str, retry_after: int | None = None) -> ApiError:
    return ApiError(
        429,
        "TooManyRequests",
        TOO_MANY_REQUESTS,
        causes=[Cause("", cause, _DISRUPTION_BUDGET_CAUSE)],
        retry_after=retry_after,
    )


def still_processing(name: str) -> ApiError:
    return _too_many_requests(
        f"The disruption budget {name} is still being processed by the server.", 10
    )


def _forbidden(name: str, why: str) -> ApiError:
    return ApiError(
        403,
        "Forbidden",
        f'poddisruptionbudgets.policy "{name}" is forbidden: {why}',
        "poddisruptionbudgets",
        name,
        "policy",
    )


def decrement(budget: Mapping[str, Any], pod_name: str, now: datetime) -> JSONDict:
    """The budget's status after approving the eviction of `pod_name`, or the ApiError that
    refuses it (upstream's `checkAndDecrement`).

    Worked example: minAvailable 2 over 3 ready pods: the controller wrote currentHealthy 3,
    desiredHealthy 2, disruptionsAllowed 1. The first eviction gets disruptionsAllowed 0 and
    `disruptedPods: {web-1: now}` (so the controller does not count web-1 as healthy while
    it shuts down); the second gets a 429 "needs 2 healthy pods and has 3 currently" until
    the controller, seeing web-1 gone and its replacement ready, writes 1 again.
    """
    meta = budget.get("metadata") or {}
    name = str(meta.get("name") or "")
    status = copy.deepcopy(dict(budget.get("status") or {}))
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        raise still_processing(name)
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise _forbidden(name, "pdb disruptions allowed is negative")
    disrupted = dict(status.get("disruptedPods") or {})
    if len(disrupted) > MAX_DISRUPTED_PODS:
        raise _forbidden(
            name, "DisruptedPods map too big - too many evictions not confirmed by PDB controller"
        )
    if allowed == 0:
        raise _too_many_requests(
            f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} "
            f"healthy pods and has {int(status.get('currentHealthy') or 0)} currently"
        )
    status["disruptionsAllowed"] = allowed - 1
    if allowed - 1 == 0:
        status["conditions"] = _insufficient(status, now)
    disrupted[pod_name] = rfc3339(now)
    status["disruptedPods"] = disrupted
    return status


def _insufficient(status: Mapping[str, Any], now: datetime) -> list[JSONDict]:
    """The `DisruptionAllowed` condition turned False, as upstream's helper does the moment
    an eviction spends the last allowed disruption (the controller writes it otherwise)."""
    conditions = [dict(c) for c in status.get("conditions") or () if isinstance(c, Mapping)]
    wanted: JSONDict = {
        "type": "DisruptionAllowed",
        "status": "False",
        "reason": "InsufficientPods",
        "message": "",
        "observedGeneration": int(status.get("observedGeneration") or 0),
        "lastTransitionTime": rfc3339(now),
    }
    for i, condition in enumerate(conditions):
        if condition.get("type") == "DisruptionAllowed":
            if condition.get("status") == "False":
                wanted["lastTransitionTime"] = condition.get("lastTransitionTime")
            conditions[i] = wanted
            return conditions
    return [*conditions, wanted]


def success_status() -> JSONDict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": 201,
    }


def _failure_status(code: int, message: str) -> JSONDict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "code": code,
    }


def _with_resource_version(options: Mapping[str, Any], resource_version: str) -> JSONDict:
    out = dict(options)
    given = options.get("preconditions") or {}
    out["preconditions"] = {**given, "resourceVersion": resource_version}
    return out


def _resource_version_unset(options: Mapping[str, Any]) -> bool:
    return not (options.get("preconditions") or {}).get("resourceVersion")


class Evictions:
    """Performs evictions against the object service (pods and PodDisruptionBudgets)."""

    def __init__(
        self, service: ObjectService, pods: ResourceType, budgets: ResourceType, clock: Clock
    ) -> None:
        self.service = service
        self.pods = pods
        self.budgets = budgets
        self.clock = clock

    def evict(
        self, namespace: str, name: str, body: object, query_dry_run: list[str]
    ) -> tuple[int, JSONDict]:
        """The HTTP status and `Status` body answering an eviction; refusals raise ApiError."""
        request = parse_eviction(body, name, namespace)
        options = merge_dry_run(request.delete_options, query_dry_run)
        pod = self.service.get(self.pods, namespace, name)
        rv = str(pod["metadata"].get("resourceVersion") or "")
        if can_ignore_budget(pod):
            if enforces_resource_version(pod) and _resource_version_unset(options):
                options = _with_resource_version(options, rv)
            self._delete(namespace, name, options)
            return 201, success_status()
        matching = budgets_for(pod, self.service.list(self.budgets, namespace).items)
        if len(matching) > 1:
            return 500, _failure_status(500, MULTIPLE_BUDGETS)
        if matching:
            budget = matching[0]
            if unhealthy_may_go(pod, budget):
                try:
                    self._delete(namespace, name, _with_resource_version(options, rv))
                except ApiError as e:
                    if e.code == 409 and _resource_version_unset(options):
                        # The pod changed (maybe became ready): the client should try again.
                        raise still_processing(str(budget["metadata"]["name"])) from e
                    raise
                return 201, success_status()
            self._spend(namespace, name, budget, is_dry_run(options))
        self._delete(namespace, name, options)
        return 201, success_status()

    def _spend(self, namespace: str, pod_name: str, budget: JSONDict, dry_run: bool) -> None:
        """Check and decrement the budget, re-reading it after a write conflict."""
        budget_name = str(budget["metadata"]["name"])
        for _ in range(_CONFLICT_RETRIES):
            status = decrement(budget, pod_name, self.clock.now())
            if dry_run:
                return
            updated = copy.deepcopy(budget)  # stored objects are shared: never changed
            updated["status"] = status
            try:
                self.service.update(
                    self.budgets, namespace, budget_name, updated, subresource="status"
                )
                return
            except ApiError as e:
                if e.code != 409:
                    raise
            budget = self.service.get(self.budgets, namespace, budget_name)
        raise ApiError(
            504,
            "Timeout",
            f'couldn\'t update PodDisruptionBudget "{budget_name}" due to conflicts',
            retry_after=10,
        )

    def _delete(self, namespace: str, name: str, options: Mapping[str, Any]) -> None:
        dry_run = is_dry_run(options)
        preconditions = dict(options.get("preconditions") or {})
        if not dry_run:
            preconditions = self._mark_disruption_target(namespace, name, preconditions)
        propagation = options.get("propagationPolicy")
        if options.get("orphanDependents") is True and propagation is None:
            propagation = "Orphan"
        self.service.delete(
            self.pods,
            namespace,
            name,
            propagation=propagation,
            preconditions=preconditions,
            grace_period=options.get("gracePeriodSeconds"),
            dry_run=dry_run,
        )

    def _mark_disruption_target(
        self, namespace: str, name: str, preconditions: JSONDict
    ) -> JSONDict:
        """Upstream's `DisruptionTarget` condition on the pod about to go; the preconditions
        are checked first and a resourceVersion one moves to the version just written."""
        pod = self.service.get(self.pods, namespace, name)
        meta = pod["metadata"]
        uid, rv = preconditions.get("uid"), preconditions.get("resourceVersion")
        stale = bool(rv) and str(rv) != str(meta.get("resourceVersion"))
        if (uid and uid != meta.get("uid")) or stale:
            return preconditions  # the delete refuses it with the API server's message
        updated = copy.deepcopy(pod)  # stored objects are shared: never changed
        status = updated.setdefault("status", {})
        conditions = [
            c for c in status.get("conditions") or () if c.get("type") != "DisruptionTarget"
        ]
        conditions.append(
            {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "EvictionByEvictionAPI",
                "message": "Eviction API: evicting",
                "lastTransitionTime": rfc3339(self.clock.now()),
            }
        )
        status["conditions"] = conditions
        written = self.service.update(self.pods, namespace, name, updated, subresource="status")
        if rv:
            return {**preconditions, "resourceVersion": written["metadata"]["resourceVersion"]}
        return preconditions
