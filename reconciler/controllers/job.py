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
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from reconciler.client.base import Client
from reconciler.client.errors import ClientError, NotFoundError
from reconciler.client.events import EventRecorder
from reconciler.clock import Clock, parse_rfc3339, rfc3339
from reconciler.controllers.base import Result, enqueue_controller_owner, enqueue_self
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey
from reconciler.controllers.podutil import controller_ref, is_ready, restart_count
from reconciler.controllers.queue import WorkQueue
from reconciler.controllers.replicaset import Expectations, pod_from_template

JSONDict = dict[str, Any]

BACKOFF_BASE = 10.0
BACKOFF_MAX = 360.0


@dataclass
class Plan:
    create: int = 0
    delete: list[str] = field(default_factory=list)
    status: JSONDict = field(default_factory=dict)
    delete_job: bool = False
    requeue_after: float | None = None


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
    failed_pods = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
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
    done = (completions is not None and succeeded >= int(completions)) or (
        completions is None and succeeded > 0 and not active
    )
    if done:
        conditions.append(
            _condition(
                "Complete", "CompletionsReached", "Reached expected number of succeeded pods", now
            )
        )
        status["completionTime"] = rfc3339(now)
        out.delete = [p["metadata"]["name"] for p in active]
        active = []
    elif failures > backoff_limit:
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
            out.delete = [p["metadata"]["name"] for p in surplus]
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
        }
    )
    if conditions:
        status["conditions"] = conditions
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
            for _ in range(decided.create):
                template = (job.get("spec") or {}).get("template") or {}
                try:
                    pod = await self.client.create(pod_from_template(job, template, name))
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
