"""The Job controller: run pods until `completions` succeed, or give up.

`plan` (pure) reads the Job, its pods and the time and decides:
- how many pods to start (up to `parallelism`, never more than completions still needed),
  once the failure back-off has passed: 10 s doubling per failure since the last success
  (at most 6 min), from the moment the last failed pod stopped;
- which active pods to delete (surplus, or all once the Job finished, failed or suspended);
- the status: active / ready / succeeded / failed counts, startTime, completionTime and the
  conditions `kubectl wait --for=condition=complete` waits on — Complete, or Failed with
  reason BackoffLimitExceeded (more failures than `backoffLimit`, 6 by default) or
  DeadlineExceeded (`activeDeadlineSeconds` passed), or Suspended;
- when a finished Job with `ttlSecondsAfterFinished` is due for deletion.

Failures count failed pods, plus container restarts for `restartPolicy: OnFailure`, as
Kubernetes does.

`successPolicy` (Indexed Jobs) completes a Job once the indexes a rule names succeeded
(conditions SuccessCriteriaMet and Complete, reason SuccessPolicy) and stops the rest.

`backoffLimitPerIndex` (Indexed Jobs) gives each index its own back-off limit: an index
failing more often (or by a `FailIndex` rule) is given up (`status.failedIndexes`) while
the others run; the Job then fails with reason FailedIndexes, or at once with
MaxFailedIndexesExceeded past `maxFailedIndexes`.

`podReplacementPolicy: Failed` holds replacements back until the pods being deleted have
stopped (`status.terminating` counts them either way).

`podFailurePolicy` decides what each failed pod means first (`pod_failure_policy.py`): it
may fail the Job at once (reason PodFailurePolicy) or not count at all.

`completionMode: Indexed`: each of `completions` indexes needs one pod to succeed. A pod of
index i is named `<job>-<i>-<random>`, has the host name `<job>-<i>`, the index in the
`batch.kubernetes.io/job-completion-index` annotation and label and in `$JOB_COMPLETION_INDEX`
(from the annotation, by the downward API); new pods take the lowest indexes neither
succeeded nor running, a failed index is run again, duplicates and indexes out of range are
deleted, and `status.completedIndexes` lists the succeeded ones as ranges (`0-2,4`).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import ClientError, NotFoundError
from reconciler.client.events import EventRecorder
from reconciler.clock import Clock, parse_rfc3339, rfc3339
from reconciler.controllers.base import Result, enqueue_controller_owner, enqueue_self
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey
from reconciler.controllers.pod_failure_policy import decide
from reconciler.controllers.podutil import controller_ref, is_ready, restart_count
from reconciler.controllers.queue import WorkQueue
from reconciler.controllers.replicaset import Expectations, pod_from_template

JSONDict = dict[str, Any]

BACKOFF_BASE = 10.0
BACKOFF_MAX = 360.0

JOB_CONTROLLER = "kubernetes.io/job-controller"
"""A Job whose `spec.managedBy` names another controller is left to it."""
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
INDEX_ENV = "JOB_COMPLETION_INDEX"


@dataclass
class Plan:
    create: int = 0
    delete: list[str] = field(default_factory=list)
    status: JSONDict = field(default_factory=dict)
    delete_job: bool = False
    requeue_after: float | None = None
    create_indexes: list[int] = field(default_factory=list)
    """With `completionMode: Indexed`, the index of each pod to create."""


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


def _finished(status: JSONDict) -> tuple[str, str] | None:
    """(condition type, time) once the Job completed or failed."""
    for cond in status.get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"]), str(cond.get("lastTransitionTime") or "")
    return None


def _finished_at(pod: JSONDict) -> datetime | None:
    """When a finished pod stopped: its containers' last `finishedAt` (as the Job controller's
    `getFinishedTime`), else its start or creation time."""
    status = pod.get("status") or {}
    times = [
        str(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt") or "")
        for cs in status.get("containerStatuses") or []
    ]
    stamp = max(times, default="") or str(
        status.get("startTime") or (pod.get("metadata") or {}).get("creationTimestamp") or ""
    )
    return parse_rfc3339(stamp) if stamp else None


def completion_index(pod: JSONDict) -> int | None:
    """The index an Indexed Job gave the pod (None when it has none it could read)."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(INDEX_KEY)
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None


def index_ranges(indexes: set[int]) -> str:
    """upstream's `completedIndexes`: {0, 1, 2, 4} -> "0-2,4"."""
    parts: list[str] = []
    run: list[int] = []
    for index in sorted(indexes):
        if run and index == run[-1] + 1:
            run.append(index)
            continue
        if run:
            parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [index]
    if run:
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(parts)


def parse_indexes(text: str) -> set[int]:
    """`"0,2-3"` -> {0, 2, 3}: upstream's index-set notation (`completedIndexes`,
    `successPolicy.rules[].succeededIndexes`)."""
    found: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, _, last = part.partition("-")
        found.update(range(int(first), int(last or first) + 1))
    return found


def success_rule(policy: JSONDict | None, done: set[int]) -> int | None:
    """The index of the first `successPolicy` rule the succeeded indexes meet (Indexed
    Jobs): the listed indexes all succeeded, or `succeededCount` of them (of all indexes
    when none are listed)."""
    for index, rule in enumerate((policy or {}).get("rules") or []):
        listed = rule.get("succeededIndexes")
        count = rule.get("succeededCount")
        within = done & parse_indexes(str(listed)) if listed is not None else done
        wanted = int(count) if count is not None else len(parse_indexes(str(listed or "")))
        if wanted and len(within) >= wanted:
            return index
    return None


def indexed_pod(pod: JSONDict, job_name: str, index: int) -> JSONDict:
    """A pod of an Indexed Job for `index`, as upstream's controller makes it."""
    meta = pod["metadata"]
    meta["generateName"] = f"{job_name}-{index}-"
    meta.setdefault("annotations", {})[INDEX_KEY] = str(index)
    meta.setdefault("labels", {})[INDEX_KEY] = str(index)
    spec = json.loads(json.dumps(pod.get("spec") or {}))
    spec.setdefault("hostname", f"{job_name}-{index}"[:63])
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            env = container.setdefault("env", [])
            if not any(e.get("name") == INDEX_ENV for e in env):
                path = f"metadata.annotations['{INDEX_KEY}']"
                env.append({"name": INDEX_ENV, "valueFrom": {"fieldRef": {"fieldPath": path}}})
    pod["spec"] = spec
    return pod


def backoff(failures: int) -> float:
    if failures <= 0:
        return 0.0
    return float(min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (failures - 1)))


def plan(job: JSONDict, pods: list[JSONDict], now: datetime) -> Plan:
    spec, status = job.get("spec") or {}, dict(job.get("status") or {})
    out = Plan()
    active = [
        p
        for p in pods
        if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        and not (p.get("metadata") or {}).get("deletionTimestamp")
    ]
    succeeded = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded")
    indexed = spec.get("completionMode") == "Indexed"
    done_indexes: set[int] = set()
    running_indexes: set[int] = set()
    extra: list[str] = []
    if indexed:
        count = int(spec.get("completions") or 0)
        done_indexes = {
            i
            for p in pods
            if (p.get("status") or {}).get("phase") == "Succeeded"
            and (i := completion_index(p)) is not None
            and 0 <= i < count
        }
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
    terminating = [
        p
        for p in pods
        if (p.get("metadata") or {}).get("deletionTimestamp")
        and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    ]
    if spec.get("podReplacementPolicy") == "Failed":
        # a terminating pod keeps its index until it stopped
        running_indexes |= {i for p in terminating if (i := completion_index(p)) is not None}
    policy = spec.get("podFailurePolicy")
    failed_pods, fail_job = [], None
    per_index = spec.get("backoffLimitPerIndex") if indexed else None
    index_failures: dict[int, int] = {}
    failed_indexes: set[int] = set()
    for p in pods:
        if (p.get("status") or {}).get("phase") != "Failed":
            continue
        decision = decide(policy, p)
        if decision.action == "Ignore":
            continue  # replaced, but not a failure of the Job (`pod_failure_policy.py`)
        if decision.action == "FailJob" and fail_job is None:
            fail_job = decision.message
        failed_pods.append(p)
        i = completion_index(p)
        if per_index is not None and i is not None:
            index_failures[i] = index_failures.get(i, 0) + 1
            if decision.action == "FailIndex" or index_failures[i] > int(per_index):
                failed_indexes.add(i)
    failed_indexes -= done_indexes
    running_indexes |= failed_indexes  # never run again
    failures = len(failed_pods)
    if (spec.get("template") or {}).get("spec", {}).get("restartPolicy") == "OnFailure":
        failures += sum(restart_count(p) for p in pods)
    finished = _finished(status)
    if finished is not None:
        out.delete = [p["metadata"]["name"] for p in active]
        out.status = {
            **status,
            "active": 0,
            "ready": 0,
            "succeeded": succeeded,
            "failed": len(failed_pods),
        }
        ttl = spec.get("ttlSecondsAfterFinished")
        if ttl is not None and finished[1]:
            due = parse_rfc3339(finished[1]) + timedelta(seconds=int(ttl))
            if now >= due:
                out.delete_job = True
            else:
                out.requeue_after = (due - now).total_seconds()
        return out
    if "startTime" not in status and not spec.get("suspend"):
        status["startTime"] = rfc3339(now)
    completions = spec.get("completions")
    parallelism = int(spec.get("parallelism", 1))
    backoff_limit = int(spec.get("backoffLimit", 6))
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "Suspended"]
    deadline = spec.get("activeDeadlineSeconds")
    started = parse_rfc3339(status["startTime"]) if status.get("startTime") else now
    met = success_rule(spec.get("successPolicy"), done_indexes) if indexed else None
    done = (completions is not None and succeeded >= int(completions)) or (
        completions is None and succeeded > 0 and not active
    )
    if met is not None and not done:
        message = f"Matched rules at index {met}"
        conditions.append(_condition("SuccessCriteriaMet", "SuccessPolicy", message, now))
        conditions.append(_condition("Complete", "SuccessPolicy", message, now))
        status["completionTime"] = rfc3339(now)
        out.delete = [p["metadata"]["name"] for p in active]
        active = []
    elif done:
        conditions.append(
            _condition(
                "Complete", "CompletionsReached", "Reached expected number of succeeded pods", now
            )
        )
        status["completionTime"] = rfc3339(now)
        out.delete = [p["metadata"]["name"] for p in active]
        active = []
    elif fail_job is not None:
        conditions.append(_condition("Failed", "PodFailurePolicy", fail_job, now))
        out.delete = [p["metadata"]["name"] for p in active]
        active = []
    elif per_index is not None and (
        spec.get("maxFailedIndexes") is not None
        and len(failed_indexes) > int(spec["maxFailedIndexes"])
    ):
        message = "Job has exceeded the specified maximal number of failed indexes"
        conditions.append(_condition("Failed", "MaxFailedIndexesExceeded", message, now))
        out.delete = [p["metadata"]["name"] for p in active]
        active = []
    elif (
        per_index is not None
        and failed_indexes
        and len(done_indexes) + len(failed_indexes) >= int(completions or 0)
    ):
        conditions.append(_condition("Failed", "FailedIndexes", "Job has failed indexes", now))
        out.delete = [p["metadata"]["name"] for p in active]
        active = []
    elif per_index is None and failures > backoff_limit:
        conditions.append(
            _condition(
                "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit", now
            )
        )
        out.delete = [p["metadata"]["name"] for p in active]
        active = []
    elif deadline is not None and (now - started).total_seconds() >= int(deadline):
        conditions.append(
            _condition(
                "Failed", "DeadlineExceeded", "Job was active longer than specified deadline", now
            )
        )
        out.delete = [p["metadata"]["name"] for p in active]
        active = []
    elif spec.get("suspend"):
        conditions.append({**_condition("Suspended", "JobSuspended", "Job suspended", now)})
        out.delete = [p["metadata"]["name"] for p in active]
        active = []
    else:
        if completions is not None:
            wanted = max(0, min(parallelism, int(completions) - succeeded))
        elif succeeded:
            wanted = min(parallelism, len(active))  # a work queue: once one succeeded, no new
        else:  # pods, and the running ones finish on their own
            wanted = parallelism
        if len(active) > wanted:
            surplus = sorted(active, key=lambda p: is_ready(p))[: len(active) - wanted]
            out.delete += [p["metadata"]["name"] for p in surplus]
        elif len(active) < wanted:
            # The delay counts the failures since the last success, as Kubernetes' backoff
            # record does (the backoffLimit counts them all).
            wins = [
                _finished_at(p) for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"
            ]
            last_success = max((t for t in wins if t is not None), default=None)
            stops = [t for t in (_finished_at(p) for p in failed_pods) if t is not None]
            recent = [t for t in stops if last_success is None or t > last_success]
            last_failure = max(recent, default=None)
            wait = backoff(len(recent) + (failures - len(failed_pods)))
            if wait and last_failure is not None:
                ready_at = last_failure + timedelta(seconds=wait)
                if now < ready_at:
                    out.requeue_after = (ready_at - now).total_seconds()
                else:
                    out.create = wanted - len(active)
            else:
                out.create = wanted - len(active)
        if out.create and spec.get("podReplacementPolicy") == "Failed":
            # replacements wait until the pods being deleted have stopped (their phase
            # terminal, or gone), as upstream's podReplacementPolicy: Failed
            out.create = max(0, out.create - len(terminating))
        if indexed and out.create:
            free = [
                i
                for i in range(int(completions or 0))
                if i not in done_indexes and i not in running_indexes
            ]
            out.create_indexes = free[: out.create]
            out.create = len(out.create_indexes)
        if deadline is not None:
            left = int(deadline) - (now - started).total_seconds()
            out.requeue_after = min(left, out.requeue_after or left)
    status.update(
        {
            "active": len(active)
            - len([n for n in out.delete if n in {p["metadata"]["name"] for p in active}]),
            "ready": sum(1 for p in active if is_ready(p)),
            "succeeded": succeeded,
            "failed": len(failed_pods),
            "terminating": len(terminating),
        }
    )
    if conditions:
        status["conditions"] = conditions
    if done_indexes:
        status["completedIndexes"] = index_ranges(done_indexes)
    if failed_indexes:
        status["failedIndexes"] = index_ranges(failed_indexes)
    out.delete = list(dict.fromkeys([*out.delete, *extra]))
    out.status = status
    return out


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

        self.pods.add_handlers(Handlers(seen, lambda _o, n: owner(n), seen))

    async def reconcile(self, key: ObjKey) -> Result:
        namespace, name = key
        job = self.jobs.get(namespace, name)
        if job is None or (job.get("metadata") or {}).get("deletionTimestamp"):
            self.expectations.forget(key)
            return Result()
        if (job.get("spec") or {}).get("managedBy", JOB_CONTROLLER) != JOB_CONTROLLER:
            return Result()  # another controller (MultiKueue, ...) runs it, as upstream
        uid = job["metadata"].get("uid")
        pods = [p for p in self.pods.list(namespace) if (controller_ref(p) or {}).get("uid") == uid]
        decided = plan(job, pods, self.clock.now())
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
                    body = indexed_pod(body, name, index)
                try:
                    pod = await self.client.create(body)
                except ClientError as e:
                    self.recorder.record(job, "Warning", "FailedCreate", f"Error creating: {e}")
                    raise
                created.add(str(pod["metadata"]["name"]))
        finally:
            self.expectations.expect(key, created)
        for pod_name in decided.delete:
            with contextlib.suppress(NotFoundError):
                await self.client.delete("v1", "Pod", pod_name, namespace)
        current = job.get("status") or {}
        if any(current.get(k) != v for k, v in decided.status.items()):
            with contextlib.suppress(NotFoundError):
                await self.client.patch(
                    "batch/v1",
                    "Job",
                    name,
                    {"status": decided.status},
                    namespace=namespace,
                    subresource="status",
                )
        return Result(requeue_after=decided.requeue_after)
