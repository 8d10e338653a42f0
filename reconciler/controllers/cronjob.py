"""The CronJob controller: start a Job at each scheduled time, and keep a short history.

No polling: each reconcile returns the time to the next scheduled run (apscheduler's
`CronTrigger`, in Kubernetes' cron dialect: `cron_schedule`), and the work queue wakes the
CronJob's key at that moment on the injected clock; Job events wake it in between. `plan`
(pure) decides, given the CronJob, its Jobs and the time, as Kubernetes' controller does:

- the most recent scheduled time in (`lastScheduleTime` or creation, now], bounded below by
  now - `startingDeadlineSeconds`: a time missed while the server was down (or skipped by
  Forbid) starts late, once, unless it is older than the deadline; more than 100 missed times
  start only the latest, with a TooManyMissedTimes warning;
- concurrencyPolicy: Allow runs alongside, Forbid skips the run while a Job is active (it
  starts once that Job finishes, if still within the deadline), Replace deletes the active
  Jobs first;
- the Job, named `<cronjob>-<scheduled time in minutes since the epoch>` (so a run can never
  start twice), owned by the CronJob;
- which finished Jobs fall out of successfulJobsHistoryLimit (3) / failedJobsHistoryLimit
  (1), and status: active, lastScheduleTime, lastSuccessfulTime; the Events `kubectl
  describe cronjob` shows (SuccessfulCreate, SawCompletedJob, SuccessfulDelete,
  JobAlreadyActive, ...).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from reconciler.client.base import Client
from reconciler.client.errors import AlreadyExistsError, NotFoundError
from reconciler.client.events import EventRecorder
from reconciler.clock import Clock, parse_rfc3339, rfc3339
from reconciler.controllers.base import Result, enqueue_controller_owner, enqueue_self
from reconciler.controllers.cron_schedule import ScheduleError, parse
from reconciler.controllers.informer import Handlers, Informer, InformerFactory, ObjKey
from reconciler.controllers.podutil import controller_ref, owner_reference
from reconciler.controllers.queue import WorkQueue

JSONDict = dict[str, Any]

SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MISSED_LIMIT = 100
FORBID_MESSAGE = (
    "Not starting job because prior execution is running and concurrency policy is Forbid"
)


class Event(NamedTuple):
    """An Event to record on the CronJob, as Kubernetes' CronJob controller does."""

    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Plan:
    create: JSONDict | None = None
    delete_jobs: list[str] = field(default_factory=list)
    status: JSONDict = field(default_factory=dict)
    requeue_after: float | None = None
    error: str | None = None
    skipped: datetime | None = None
    """A due run that did not start because a previous one is active (Forbid)."""
    events: list[Event] = field(default_factory=list)


def _finished(job: JSONDict) -> str | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"])
    return None


def _scheduled_at(job: JSONDict) -> str:
    meta = job.get("metadata") or {}
    return str(
        (meta.get("annotations") or {}).get(SCHEDULED_AT) or meta.get("creationTimestamp") or ""
    )


def job_name(cronjob_name: str, scheduled: datetime) -> str:
    return f"{cronjob_name}-{int(scheduled.timestamp() // 60)}"


def job_for(cj: JSONDict, scheduled: datetime) -> JSONDict:
    meta = cj.get("metadata") or {}
    template = (cj.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(str(meta.get("name")), scheduled),
            "namespace": meta.get("namespace"),
            "labels": dict(tmeta.get("labels") or {}),
            "annotations": {**(tmeta.get("annotations") or {}), SCHEDULED_AT: rfc3339(scheduled)},
            "ownerReferences": [owner_reference(cj)],
        },
        "spec": template.get("spec") or {},
    }


def _ref(job: JSONDict) -> JSONDict:
    meta = job.get("metadata") or {}
    return {
        "kind": "Job",
        "apiVersion": "batch/v1",
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
    }


def plan(cj: JSONDict, jobs: list[JSONDict], now: datetime) -> Plan:
    meta, spec = cj.get("metadata") or {}, cj.get("spec") or {}
    status = dict(cj.get("status") or {})
    out = Plan()
    active = [j for j in jobs if _finished(j) is None]
    was_active = {ref.get("uid") for ref in status.get("active") or []}
    for j in jobs:
        ending = _finished(j)
        if ending is not None and (j.get("metadata") or {}).get("uid") in was_active:
            name = (j.get("metadata") or {}).get("name")
            message = f"Saw completed job: {name}, condition: {ending}"
            out.events.append(Event("Normal", "SawCompletedJob", message))
    succeeded = sorted((j for j in jobs if _finished(j) == "Complete"), key=_scheduled_at)
    failed = sorted((j for j in jobs if _finished(j) == "Failed"), key=_scheduled_at)
    for kept, limit in (
        (succeeded, spec.get("successfulJobsHistoryLimit", 3)),
        (failed, spec.get("failedJobsHistoryLimit", 1)),
    ):
        surplus = len(kept) - int(limit)
        if surplus > 0:
            out.delete_jobs += [str(j["metadata"]["name"]) for j in kept[:surplus]]
    completions = [str((j.get("status") or {}).get("completionTime") or "") for j in succeeded]
    if any(completions):
        status["lastSuccessfulTime"] = max(completions)
    last = status.get("lastScheduleTime")
    earliest = parse_rfc3339(str(last or meta.get("creationTimestamp") or rfc3339(now)))
    deadline = spec.get("startingDeadlineSeconds")
    if deadline is not None:
        earliest = max(earliest, now - timedelta(seconds=int(deadline)))
    due: datetime | None = None
    try:
        schedule = parse(str(spec.get("schedule", "")), spec.get("timeZone"))
        if not spec.get("suspend"):
            missed = schedule.missed(earliest, now, MISSED_LIMIT)
            if len(missed) > MISSED_LIMIT:
                due = schedule.latest(earliest, now)
                out.events.append(
                    Event(
                        "Warning",
                        "TooManyMissedTimes",
                        f"too many missed start times (> {MISSED_LIMIT}): only the most recent "
                        "starts; set or decrease .spec.startingDeadlineSeconds or check clock "
                        "skew",
                    )
                )
            elif missed:
                due = missed[-1]
            out.requeue_after = max(0.0, (schedule.next_after(now) - now).total_seconds())
    except ScheduleError as e:
        out.error = str(e)
        out.events.append(Event("Warning", "InvalidSchedule", str(e)))
        due, out.requeue_after = None, None
    existing = {str((j.get("metadata") or {}).get("name")) for j in jobs}
    if due is not None:
        name = job_name(str(meta.get("name")), due)
        policy = spec.get("concurrencyPolicy", "Allow")
        if name in existing:
            # This run started already; its status write may have been lost: record it.
            if not last or parse_rfc3339(str(last)) < due:
                status["lastScheduleTime"] = rfc3339(due)
        elif active and policy == "Forbid":
            out.skipped = due
        else:
            if active and policy == "Replace":
                out.delete_jobs += [str(j["metadata"]["name"]) for j in active]
                active = []
            out.create = job_for(cj, due)
            status["lastScheduleTime"] = rfc3339(due)
    out.status = {**status, "active": [_ref(j) for j in active]}
    if not out.status["active"]:
        out.status.pop("active")
    return out


class CronJobController:
    name = "cronjob"

    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.queue: WorkQueue[ObjKey] = WorkQueue(clock)
        self.recorder = EventRecorder(client, clock, "cronjob-controller")
        self._skipped: dict[ObjKey, datetime] = {}  # the due run last reported as skipped
        self.cronjobs: Informer
        self.jobs: Informer

    def setup(self, factory: InformerFactory) -> None:
        self.cronjobs = factory.informer("batch/v1", "CronJob")
        self.jobs = factory.informer("batch/v1", "Job")
        mine = enqueue_self(self.queue)
        self.cronjobs.add_handlers(Handlers(mine, lambda _o, n: mine(n), mine))
        owner = enqueue_controller_owner(self.queue, "CronJob")
        self.jobs.add_handlers(Handlers(owner, lambda _o, n: owner(n), owner))

    async def reconcile(self, key: ObjKey) -> Result:
        namespace, name = key
        cj = self.cronjobs.get(namespace, name)
        if cj is None or (cj.get("metadata") or {}).get("deletionTimestamp"):
            self._skipped.pop(key, None)
            return Result()
        uid = cj["metadata"].get("uid")
        jobs = [j for j in self.jobs.list(namespace) if (controller_ref(j) or {}).get("uid") == uid]
        decided = plan(cj, jobs, self.clock.now())
        events = list(decided.events)
        if decided.skipped is not None and self._skipped.get(key) != decided.skipped:
            self._skipped[key] = decided.skipped
            events.append(Event("Normal", "JobAlreadyActive", FORBID_MESSAGE))
        try:
            for job_to_delete in decided.delete_jobs:
                with contextlib.suppress(NotFoundError):
                    await self.client.delete(
                        "batch/v1", "Job", job_to_delete, namespace, propagation="Background"
                    )
                    events.append(
                        Event("Normal", "SuccessfulDelete", f"Deleted job {job_to_delete}")
                    )
            if decided.create is not None:
                with contextlib.suppress(AlreadyExistsError):
                    created = await self.client.create(decided.create)
                    decided.status.setdefault("active", []).append(_ref(created))
                    events.append(
                        Event(
                            "Normal",
                            "SuccessfulCreate",
                            f"Created job {created['metadata']['name']}",
                        )
                    )
            current = cj.get("status") or {}
            if decided.status != current:
                with contextlib.suppress(NotFoundError):
                    await self.client.update({**cj, "status": decided.status}, subresource="status")
        finally:
            for event in events:
                self.recorder.record(cj, *event)
            await self.recorder.flush()
        if decided.error:
            return Result()  # a schedule that cannot parse stays broken until edited
        return Result(requeue_after=decided.requeue_after)
