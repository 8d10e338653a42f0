"""The Job controller: run pods until `completions` succeed, or give up.

`plan` (pure) reads the Job, its pods, what the controller remembers of pods that are gone
(`Ledger`) and the time, and decides:
- how many pods to start (up to `parallelism`, never more than completions still needed),
  once the failure back-off has passed: 10 s doubling per failure since the last success
  (at most 6 min), from the moment the last failed pod stopped;
- which active pods to delete (surplus, or all once the Job finished, failed or suspended);
- the status: active / ready / terminating / succeeded / failed counts, startTime,
  completionTime and the conditions `kubectl wait --for=condition=complete` waits on;
- when a finished Job with `ttlSecondsAfterFinished` is due for deletion.

A Job ends in two steps, as upstream's (1.31+): first SuccessCriteriaMet (reason
CompletionsReached, or SuccessPolicy) or FailureTarget (reason BackoffLimitExceeded — more
failures than `backoffLimit`, 6 by default —, DeadlineExceeded, PodFailurePolicy,
FailedIndexes, MaxFailedIndexesExceeded), while its remaining pods are deleted; then, once
none of its pods is terminating any more, Complete or Failed with the same reason and
message (and `completionTime` for Complete).

Failures count failed pods, plus container restarts for `restartPolicy: OnFailure`, as
Kubernetes does; a pod deleted (or evicted through the API) before it succeeded is a
failure too: at once with the default `podReplacementPolicy: TerminatingOrFailed`, once it
stopped with `Failed` (or a `podFailurePolicy`). Upstream keeps such pods with a tracking
finalizer until it counted them; Recon's pods have none, so the controller tallies the
deletions its informer sees (`Ledger`) and `status.failed` keeps them after they are gone.
The ledger lives in the controller's memory: after a restart `plan` recovers the gone pods'
failures from `status.failed` (a pod deleted and gone while the controller was down is
missed). The pods the controller deletes itself as surplus, duplicates, on suspension or
after success are not failures. Unlike upstream, a pod deleted while running does not
delay its replacement by the back-off (it counts toward `backoffLimit`, though).

`successPolicy` (Indexed Jobs) ends a Job once the indexes a rule names succeeded (reason
SuccessPolicy) and stops the rest.

`backoffLimitPerIndex` (Indexed Jobs) gives each index its own back-off limit and back-off
(10 s doubling, at most 6 min, from the index's last failure); each pod carries its
index's failures in `batch.kubernetes.io/job-index-failure-count` (`job_indexes.py`). An
index failing more often (or by a `FailIndex` rule) is given up (`status.failedIndexes`)
while the others run; the Job then fails with reason FailedIndexes, or at once with
MaxFailedIndexesExceeded past `maxFailedIndexes`.

`podReplacementPolicy: Failed` holds replacements back until the pods being deleted have
stopped (`status.terminating` counts them either way).

`podFailurePolicy` decides what each failed pod means first (`pod_failure_policy.py`): it
may fail the Job at once (reason PodFailurePolicy) or not count at all.

`completionMode: Indexed`: each of `completions` indexes needs one pod to succeed
(`job_indexes.py`); new pods take the lowest indexes neither succeeded nor running, a failed
index is run again, duplicates and indexes out of range are deleted, and
`status.completedIndexes` lists the succeeded ones in upstream's notation (`0-2,4,7,8`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import ClientError, NotFoundError
from reconciler.client.events import EventRecorder
from reconciler.clock import Clock, parse_rfc3339, rfc3339
from reconciler.controllers.base import Result, enqueue_controller_owner, enqueue_self
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey
from reconciler.controllers.job_indexes import (
    INDEX_ENV,
    INDEX_KEY,
    IndexFailures,
    completion_index,
    index_ranges,
    index_tallies,
    index_wait,
    indexed_pod,
    parse_indexes,
    success_rule,
)
from reconciler.controllers.job_pods import (
    backoff,
    deleting,
    finished_at,
    is_failed,
    only_replace_failed,
    phase,
    pod_uid,
)
from reconciler.controllers.pod_failure_policy import decide
from reconciler.controllers.podutil import controller_ref, is_ready, restart_count
from reconciler.controllers.queue import WorkQueue
from reconciler.controllers.replicaset import Expectations, pod_from_template

__all__ = [
    "INDEX_ENV",
    "INDEX_KEY",
    "JobController",
    "Ledger",
    "Plan",
    "backoff",
    "completion_index",
    "index_ranges",
    "indexed_pod",
    "parse_indexes",
    "plan",
    "success_rule",
]

JSONDict = dict[str, Any]

JOB_CONTROLLER = "kubernetes.io/job-controller"
"""A Job whose `spec.managedBy` names another controller is left to it."""

_INTERIM = {"Complete": "SuccessCriteriaMet", "Failed": "FailureTarget"}
"""The condition a Job gets while its last pods stop, before the terminal one."""


@dataclass
class Plan:
    create: int = 0
    delete: list[str] = field(default_factory=list)
    status: JSONDict = field(default_factory=dict)
    delete_job: bool = False
    requeue_after: float | None = None
    create_indexes: list[int] = field(default_factory=list)
    """With `completionMode: Indexed`, the index of each pod to create."""
    index_failures: dict[int, IndexFailures] = field(default_factory=dict)
    """With `backoffLimitPerIndex`, the failures so far of each index to create (the new
    pod's failure-count annotations)."""
    uncounted: list[str] = field(default_factory=list)
    """Pods in `delete` that are not failures once gone (surplus, duplicates, suspension,
    success)."""
    gone_failed: int = 0
    """The failures of gone pods `status.failed` holds (the ledger's, or recovered from the
    status when the ledger is new)."""


@dataclass(frozen=True)
class Ledger:
    """What the controller remembers of a Job's pods that the API may no longer show.

    `gone_failed` / `gone_by_index`: failures of pods deleted before they succeeded, counted
    when the informer saw them go. `uncounted`: uids of pods the controller deleted itself
    as not failures. A ledger not `seeded` is one the controller started after the Job's
    status was written: `plan` recovers the gone pods' failures from `status.failed`."""

    seeded: bool = False
    gone_failed: int = 0
    gone_by_index: Mapping[int, IndexFailures] = field(default_factory=dict)
    uncounted: frozenset[str] = frozenset()


def _condition(ctype: str, reason: str, message: str, now: datetime) -> JSONDict:
    stamp = rfc3339(now)
    return {
        "type": ctype,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
    }


def _true(status: Mapping[str, Any], ctype: str) -> JSONDict | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == ctype and cond.get("status") == "True":
            return dict(cond)
    return None


def _finished(status: JSONDict) -> tuple[str, str] | None:
    """(condition type, time) once the Job completed or failed."""
    for cond in status.get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"]), str(cond.get("lastTransitionTime") or "")
    return None


def plan(job: JSONDict, pods: list[JSONDict], now: datetime, ledger: Ledger | None = None) -> Plan:
    """What to do about `job` given its `pods` (and, when the controller kept one, its
    `ledger` of pods gone) at `now`."""
    spec, status = job.get("spec") or {}, dict(job.get("status") or {})
    ledger = ledger or Ledger()
    out = Plan()
    active = [p for p in pods if phase(p) not in ("Succeeded", "Failed") and not deleting(p)]
    terminating = [p for p in pods if deleting(p) and phase(p) not in ("Succeeded", "Failed")]
    succeeded = sum(1 for p in pods if phase(p) == "Succeeded")
    indexed = spec.get("completionMode") == "Indexed"
    count = int(spec.get("completions") or 0)
    done_indexes: set[int] = set()
    running_indexes: set[int] = set()
    extra: list[str] = []
    if indexed:
        done_indexes = {
            i
            for p in pods
            if phase(p) == "Succeeded" and (i := completion_index(p)) is not None and i < count
        }
        done_indexes |= parse_indexes(str(status.get("completedIndexes") or ""), count)
        succeeded = len(done_indexes)
        kept = []
        for p in sorted(active, key=lambda q: str((q.get("metadata") or {}).get("name"))):
            i = completion_index(p)
            if i is None or not 0 <= i < count or i in running_indexes or i in done_indexes:
                extra.append(p["metadata"]["name"])  # a duplicate, or no index it may have
            else:
                running_indexes.add(i)
                kept.append(p)
        active = kept
    only_failed = only_replace_failed(spec)
    if only_failed:
        # a terminating pod keeps its index until it stopped
        running_indexes |= {i for p in terminating if (i := completion_index(p)) is not None}
    policy = spec.get("podFailurePolicy")
    per_index = spec.get("backoffLimitPerIndex") if indexed else None
    failed_pods: list[JSONDict] = []
    ignored_pods: list[JSONDict] = []
    fail_job: str | None = None
    fail_index: set[int] = set()
    for p in pods:
        if not is_failed(p, spec) or pod_uid(p) in ledger.uncounted:
            continue
        i = completion_index(p)
        if indexed and (i is None or i >= count):
            continue  # upstream counts the pods of valid indexes only
        decision = decide(policy, p)
        if decision.action == "Ignore":
            ignored_pods.append(p)  # replaced, but not a failure of the Job
            continue
        if decision.action == "FailJob" and fail_job is None:
            fail_job = decision.message
        if decision.action == "FailIndex" and i is not None:
            fail_index.add(i)
        failed_pods.append(p)
    tallies: dict[int, IndexFailures] = {}
    failed_indexes: set[int] = set()
    met = _true(status, "SuccessCriteriaMet")
    target = _true(status, "FailureTarget")
    if per_index is not None and (met is not None or target is not None):
        # ending: the pods stopped now are not failures of their indexes (upstream
        # accounted for them when it took the decision)
        failed_indexes = parse_indexes(str(status.get("failedIndexes") or ""), count)
    elif per_index is not None:
        tallies = index_tallies(count, pods, failed_pods, ignored_pods, ledger.gone_by_index)
        failed_indexes = {i for i, t in tallies.items() if t.counted > int(per_index)}
        failed_indexes |= fail_index | parse_indexes(str(status.get("failedIndexes") or ""), count)
        failed_indexes -= done_indexes
        running_indexes |= failed_indexes  # never run again
    gone_failed = ledger.gone_failed
    if not ledger.seeded:
        gone_failed += max(0, int(status.get("failed") or 0) - len(failed_pods))
    out.gone_failed = gone_failed
    failed = len(failed_pods) + gone_failed
    restarts = 0
    if (spec.get("template") or {}).get("spec", {}).get("restartPolicy") == "OnFailure":
        restarts = sum(restart_count(p) for p in pods)
    finished = _finished(status)
    if finished is not None:
        out.delete = [p["metadata"]["name"] for p in active]
        out.status = {
            **status,
            "active": 0,
            "ready": 0,
            "succeeded": status.get("succeeded", succeeded),
            "failed": status.get("failed", failed),
        }
        ttl = spec.get("ttlSecondsAfterFinished")
        if ttl is not None and finished[1]:
            due = parse_rfc3339(finished[1]) + timedelta(seconds=int(ttl))
            if now >= due:
                out.delete_job = True
            else:
                out.requeue_after = (due - now).total_seconds()
        return out
    suspended = bool(spec.get("suspend"))
    if "startTime" not in status and not suspended:
        status["startTime"] = rfc3339(now)
    completions = spec.get("completions")
    parallelism = int(spec.get("parallelism", 1))
    backoff_limit = int(spec.get("backoffLimit", 6 if per_index is None else 2**31 - 1))
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "Suspended"]
    deadline = spec.get("activeDeadlineSeconds")
    started = parse_rfc3339(status["startTime"]) if status.get("startTime") else now
    # How the Job ends, in upstream's order: a decision already taken first (its interim
    # condition), then the failures, then success.
    ending: tuple[str, str, str] | None = None
    rule = success_rule(spec.get("successPolicy"), done_indexes) if indexed else None
    overdue = deadline is not None and (now - started).total_seconds() >= int(deadline)
    overdue = overdue and not suspended
    decided = met or target
    if decided is not None:
        final = "Complete" if met is not None else "Failed"
        ending = (final, str(decided.get("reason") or ""), str(decided.get("message") or ""))
    elif fail_job is not None:
        ending = ("Failed", "PodFailurePolicy", fail_job)
    elif failed + restarts > backoff_limit:
        ending = ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    elif overdue:
        ending = ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
    elif per_index is not None and (
        spec.get("maxFailedIndexes") is not None
        and len(failed_indexes) > int(spec["maxFailedIndexes"])
    ):
        message = "Job has exceeded the specified maximal number of failed indexes"
        ending = ("Failed", "MaxFailedIndexesExceeded", message)
    elif per_index is not None and failed_indexes and len(done_indexes | failed_indexes) >= count:
        ending = ("Failed", "FailedIndexes", "Job has failed indexes")
    elif rule is not None:
        ending = ("Complete", "SuccessPolicy", f"Matched rules at index {rule}")
    elif (completions is not None and succeeded >= int(completions)) or (
        completions is None and succeeded > 0 and not active
    ):
        message = "Reached expected number of succeeded pods"
        ending = ("Complete", "CompletionsReached", message)
    if ending is not None:
        if not any(c.get("type") == _INTERIM[ending[0]] for c in conditions):
            conditions.append(_condition(_INTERIM[ending[0]], ending[1], ending[2], now))
        out.delete = [p["metadata"]["name"] for p in active]
        if ending[0] == "Complete":
            out.uncounted = list(out.delete)  # lingering pods stopped: not failures
        active = []
    elif suspended:
        conditions.append({**_condition("Suspended", "JobSuspended", "Job suspended", now)})
        out.delete = [p["metadata"]["name"] for p in active]
        out.uncounted = list(out.delete)
        active = []
    else:
        if completions is not None:
            wanted = max(0, min(parallelism, int(completions) - succeeded))
        elif succeeded:
            wanted = min(parallelism, len(active))  # a work queue: once one succeeded, no new
        else:  # pods, and the running ones finish on their own
            wanted = parallelism
        missing = wanted - len(active)
        if only_failed:
            # replacements wait until the pods being deleted have stopped (their phase
            # terminal, or gone), as upstream's podReplacementPolicy: Failed
            missing -= len(terminating)
        if len(active) > wanted:
            surplus = sorted(active, key=lambda p: is_ready(p))[: len(active) - wanted]
            out.delete += [p["metadata"]["name"] for p in surplus]
            out.uncounted += [p["metadata"]["name"] for p in surplus]
        elif missing > 0 and per_index is not None:
            free = [i for i in range(count) if i not in done_indexes and i not in running_indexes]
            waits = {i: index_wait(tallies.get(i), now) for i in free[:missing]}
            out.create_indexes = [i for i, left in waits.items() if not left]
            for i in out.create_indexes:
                tally = tallies.get(i, IndexFailures())
                out.index_failures[i] = IndexFailures(tally.counted, tally.ignored)
            out.create = len(out.create_indexes)
            later = [left for left in waits.values() if left]
            if later:
                out.requeue_after = min(later)
        elif missing > 0:
            # The delay counts the failures since the last success, as Kubernetes' backoff
            # record does (the backoffLimit counts them all). Pods deleted while running
            # count toward the limit but, as before, do not delay their replacement.
            wins = [finished_at(p) for p in pods if phase(p) == "Succeeded"]
            last_success = max((t for t in wins if t is not None), default=None)
            stops = [
                t
                for t in (finished_at(p) for p in failed_pods if phase(p) == "Failed")
                if t is not None
            ]
            recent = [t for t in stops if last_success is None or t > last_success]
            last_failure = max(recent, default=None)
            wait = backoff(len(recent) + restarts)
            ready_at = last_failure + timedelta(seconds=wait) if last_failure else None
            if wait and ready_at is not None and now < ready_at:
                out.requeue_after = (ready_at - now).total_seconds()
            elif indexed:
                free = [
                    i for i in range(count) if i not in done_indexes and i not in running_indexes
                ]
                out.create_indexes = free[:missing]
                out.create = len(out.create_indexes)
            else:
                out.create = missing
        if deadline is not None and not suspended:
            left = int(deadline) - (now - started).total_seconds()
            out.requeue_after = min(left, out.requeue_after or left)
    deleted = list(dict.fromkeys([*out.delete, *extra]))
    staying = [p for p in active if p["metadata"]["name"] not in deleted]
    status.update(
        {
            "active": len(staying),
            "ready": sum(1 for p in staying if is_ready(p)),
            "succeeded": succeeded,
            "failed": failed,
            "terminating": len(terminating) + len(deleted),
        }
    )
    if ending is not None and status["terminating"] == 0:
        # the last pod stopped: the terminal condition, as upstream's enactJobFinished
        conditions.append(_condition(ending[0], ending[1], ending[2], now))
        if ending[0] == "Complete":
            status["completionTime"] = rfc3339(now)
    if conditions:
        status["conditions"] = conditions
    if done_indexes:
        status["completedIndexes"] = index_ranges(done_indexes)
    if failed_indexes:
        status["failedIndexes"] = index_ranges(failed_indexes)
    out.delete = deleted
    out.uncounted = list(dict.fromkeys([*out.uncounted, *extra]))
    out.status = status
    return out


@dataclass
class _Tally:
    """The controller's ledger of one Job (by uid), updated as its pods go."""

    uid: str
    seeded: bool = False
    gone_failed: int = 0
    gone_by_index: dict[int, IndexFailures] = field(default_factory=dict)
    uncounted: set[str] = field(default_factory=set)

    def ledger(self) -> Ledger:
        return Ledger(
            self.seeded, self.gone_failed, dict(self.gone_by_index), frozenset(self.uncounted)
        )


class JobController:
    name = "job"

    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.recorder = EventRecorder(client, clock, "job-controller")
        self.queue: WorkQueue[ObjKey] = WorkQueue(clock)
        self.expectations = Expectations(clock)
        self.jobs: Informer
        self.pods: Informer
        self._tallies: dict[ObjKey, _Tally] = {}

    def setup(self, factory: InformerFactory) -> None:
        self.jobs = factory.informer("batch/v1", "Job")
        self.pods = factory.informer("v1", "Pod")
        mine = enqueue_self(self.queue)
        self.jobs.add_handlers(Handlers(mine, lambda _o, n: mine(n), mine))
        owner = enqueue_controller_owner(self.queue, "Job")

        def seen(pod: JSONDict) -> None:
            ref = controller_ref(pod)
            if ref is not None and ref.get("kind") == "Job":
                key = (str(pod["metadata"].get("namespace", "")), str(ref.get("name")))
                self.expectations.observe(key, str(pod["metadata"].get("name")))
            owner(pod)

        def gone(pod: JSONDict) -> None:
            self._pod_gone(pod)
            seen(pod)

        self.pods.add_handlers(Handlers(seen, lambda _o, n: owner(n), gone))

    def _tally(self, key: ObjKey, uid: str) -> _Tally:
        tally = self._tallies.get(key)
        if tally is None or tally.uid != uid:
            tally = self._tallies[key] = _Tally(uid)
        return tally

    def _pod_gone(self, pod: JSONDict) -> None:
        """Tally a pod of a running Job that left the API before it succeeded."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "Job":
            return
        key = (str(pod["metadata"].get("namespace", "")), str(ref.get("name")))
        job = self.jobs.get(*key)
        if job is None or job["metadata"].get("uid") != ref.get("uid"):
            return
        spec = job.get("spec") or {}
        if spec.get("managedBy", JOB_CONTROLLER) != JOB_CONTROLLER:
            return
        if _finished(job.get("status") or {}) is not None:
            return
        tally = self._tally(key, str(ref.get("uid")))
        uid = pod_uid(pod)
        if uid in tally.uncounted:
            tally.uncounted.discard(uid)
            return
        state = phase(pod)
        index = completion_index(pod)
        indexed = spec.get("completionMode") == "Indexed"
        if state == "Succeeded" or (
            indexed and (index is None or index >= int(spec.get("completions") or 0))
        ):
            return
        if state == "Failed" and not tally.seeded:
            return  # counted in status.failed already: the first plan recovers it
        ignored = decide(spec.get("podFailurePolicy"), pod).action == "Ignore"
        if indexed and index is not None and spec.get("backoffLimitPerIndex") is not None:
            before = tally.gone_by_index.get(index, IndexFailures())
            stopped = finished_at(pod) if state == "Failed" else self.clock.now()
            tally.gone_by_index[index] = before.merge(
                IndexFailures(before.counted + (not ignored), before.ignored + ignored, stopped)
            )
        if not ignored:
            tally.gone_failed += 1

    async def reconcile(self, key: ObjKey) -> Result:
        namespace, name = key
        job = self.jobs.get(namespace, name)
        if job is None or (job.get("metadata") or {}).get("deletionTimestamp"):
            self.expectations.forget(key)
            self._tallies.pop(key, None)
            return Result()
        if (job.get("spec") or {}).get("managedBy", JOB_CONTROLLER) != JOB_CONTROLLER:
            return Result()  # another controller (MultiKueue, ...) runs it, as upstream
        uid = job["metadata"].get("uid")
        pods = [p for p in self.pods.list(namespace) if (controller_ref(p) or {}).get("uid") == uid]
        tally = self._tally(key, str(uid))
        decided = plan(job, pods, self.clock.now(), tally.ledger())
        # no await since the ledger was read: no deletion seen in between is lost
        tally.seeded, tally.gone_failed = True, decided.gone_failed
        uids = {str(p["metadata"].get("name")): pod_uid(p) for p in pods}
        tally.uncounted.update(uids[n] for n in decided.uncounted if n in uids)
        if _finished(job.get("status") or {}) is not None:
            self._tallies.pop(key, None)
        if not self.expectations.satisfied(key):
            decided.create = 0
        if decided.delete_job:
            with contextlib.suppress(NotFoundError):
                await self.client.delete(
                    "batch/v1", "Job", name, namespace, propagation="Background"
                )
            return Result()
        created: set[str] = set()
        try:
            indexes: list[int | None] = list(decided.create_indexes) or [None] * decided.create
            for index in indexes:
                template = (job.get("spec") or {}).get("template") or {}
                body = pod_from_template(job, template, name)
                if index is not None:
                    body = indexed_pod(body, name, index, decided.index_failures.get(index))
                try:
                    pod = await self.client.create(body)
                except ClientError as e:
                    self.recorder.record(job, "Warning", "FailedCreate", f"Error creating: {e}")
                    raise
                created.add(str(pod["metadata"]["name"]))
                message = f"Created pod: {pod['metadata']['name']}"
                self.recorder.record(job, "Normal", "SuccessfulCreate", message)
        finally:
            self.expectations.expect(key, created)
        for pod_name in decided.delete:
            with contextlib.suppress(NotFoundError):
                await self.client.delete("v1", "Pod", pod_name, namespace)
                self.recorder.record(job, "Normal", "SuccessfulDelete", f"Deleted pod: {pod_name}")
        current = job.get("status") or {}
        if any(current.get(k) != v for k, v in decided.status.items()):
            try:
                await self.client.patch(
                    "batch/v1",
                    "Job",
                    name,
                    {"status": decided.status},
                    namespace=namespace,
                    subresource="status",
                )
            except NotFoundError:
                pass
            else:
                self._record_ending(job, current, decided.status)
        return Result(requeue_after=decided.requeue_after)

    def _record_ending(self, job: JSONDict, before: JSONDict, after: JSONDict) -> None:
        """The event `kubectl describe job` ends with: Completed, or why the Job failed."""
        if _finished(before) is not None:
            return
        failed = _true(after, "Failed")
        if _true(after, "Complete") is not None:
            self.recorder.record(job, "Normal", "Completed", "Job completed")
        elif failed is not None:
            reason = str(failed.get("reason") or "Failed")
            self.recorder.record(job, "Warning", reason, str(failed.get("message")))
