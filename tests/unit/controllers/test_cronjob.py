"""The CronJob controller: a day of schedules in milliseconds, missed runs, concurrency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.clock import ManualClock, rfc3339
from reconciler.controllers.cronjob import SCHEDULED_AT, CronJobController, job_name, plan

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def cronjob(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": "report",
            "namespace": "default",
            "uid": "cj-uid",
            "creationTimestamp": rfc3339(T0),
        },
        "spec": {
            "schedule": "*/5 * * * *",
            "concurrencyPolicy": "Allow",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {
                "spec": {"template": {"spec": {"containers": [], "restartPolicy": "Never"}}}
            },
            **spec,
        },
        "status": status or {},
    }


def finished(job: dict[str, Any], kind: str = "Complete", at: datetime = T0) -> dict[str, Any]:
    job = {
        **job,
        "status": {"conditions": [{"type": kind, "status": "True"}], "completionTime": rfc3339(at)},
    }
    return job


def test_a_day_of_every_five_minutes_keeps_three_successful_jobs() -> None:
    cj = cronjob()
    jobs: list[dict[str, Any]] = []
    created = []
    now = T0
    for _ in range(24 * 60):  # every minute of a day, as the requeue would wake us
        now += timedelta(minutes=1)
        decided = plan(cj, jobs, now)
        jobs = [j for j in jobs if j["metadata"]["name"] not in decided.delete_jobs]
        if decided.create is not None:
            created.append(decided.create["metadata"]["name"])
            jobs.append(finished(decided.create, at=now))
        cj = {**cj, "status": decided.status}
        assert decided.requeue_after is not None and decided.requeue_after <= 300
    assert len(created) == 288 and len(set(created)) == 288
    assert created[0] == job_name("report", T0 + timedelta(minutes=5))
    # The next reconcile (a minute later, nothing due) trims the history to the limit.
    after = plan(cj, jobs, now + timedelta(minutes=1))
    assert after.create is None
    assert len([j for j in jobs if j["metadata"]["name"] not in after.delete_jobs]) == 3
    assert cj["status"]["lastScheduleTime"] == rfc3339(T0 + timedelta(days=1))


def test_job_is_named_by_scheduled_minute_and_owned() -> None:
    decided = plan(cronjob(), [], T0 + timedelta(minutes=5, seconds=1))
    assert decided.create is not None
    assert decided.create["metadata"]["name"] == f"report-{int(T0.timestamp() // 60) + 5}"
    assert decided.create["metadata"]["annotations"][SCHEDULED_AT] == "2026-01-01T00:05:00Z"
    assert decided.create["metadata"]["ownerReferences"][0]["uid"] == "cj-uid"
    assert decided.requeue_after == 299


def test_missed_runs_while_down_start_only_the_latest() -> None:
    decided = plan(cronjob(), [], T0 + timedelta(hours=2, minutes=2))
    assert decided.create is not None
    assert decided.create["metadata"]["annotations"][SCHEDULED_AT] == "2026-01-01T02:00:00Z"
    assert decided.status["lastScheduleTime"] == "2026-01-01T02:00:00Z"
    assert decided.events == [] and decided.requeue_after == 180
    after = plan(
        cronjob(status=decided.status), [decided.create], T0 + timedelta(hours=2, minutes=3)
    )
    assert after.create is None and after.requeue_after == 120


def test_a_day_woken_only_at_the_scheduled_times() -> None:
    """Time moves only by what each reconcile asked for: no wake-up without a run, and every
    Job is created exactly at its scheduled time."""
    cj, jobs, now = cronjob(), [], T0
    wakes = 0
    while now < T0 + timedelta(days=1):
        decided = plan(cj, jobs, now)
        assert (decided.create is not None) == (now > T0)
        if decided.create is not None:
            assert decided.create["metadata"]["annotations"][SCHEDULED_AT] == rfc3339(now)
            jobs.append(finished(decided.create, at=now))
        jobs = [j for j in jobs if j["metadata"]["name"] not in decided.delete_jobs]
        assert len(jobs) <= 4
        cj = {**cj, "status": decided.status}
        assert decided.requeue_after == 300
        now += timedelta(seconds=decided.requeue_after)
        wakes += 1
    assert wakes == 288  # the creation, then 287 runs; the 288th is at T0 + 1 day
    assert plan(cj, jobs, now).create is not None


def test_starting_deadline_skips_a_run_that_is_too_late() -> None:
    late = plan(cronjob(startingDeadlineSeconds=60), [], T0 + timedelta(minutes=7))
    assert late.create is None
    in_time = plan(cronjob(startingDeadlineSeconds=60), [], T0 + timedelta(minutes=5, seconds=30))
    assert in_time.create is not None


def test_too_many_missed_runs_start_only_the_latest() -> None:
    down = T0 + timedelta(days=1, seconds=20)  # 1,440 missed minutes
    decided = plan(cronjob(schedule="* * * * *"), [], down)
    assert decided.create is not None
    assert decided.create["metadata"]["annotations"][SCHEDULED_AT] == "2026-01-02T00:00:00Z"
    assert decided.status["lastScheduleTime"] == "2026-01-02T00:00:00Z"
    assert [e.reason for e in decided.events] == ["TooManyMissedTimes"]
    assert decided.requeue_after == 40
    # Recorded: the next wake-up starts only the next minute, with no warning.
    cj = cronjob(status=decided.status, schedule="* * * * *")
    again = plan(cj, [decided.create], down + timedelta(seconds=40))
    assert again.create is not None and again.events == []
    assert again.create["metadata"]["name"] == job_name("report", T0 + timedelta(days=1, minutes=1))


def test_years_of_missed_runs_cost_milliseconds() -> None:
    decided = plan(cronjob(schedule="*/5 * * * *"), [], T0 + timedelta(days=5 * 365, minutes=7))
    assert decided.create is not None
    assert decided.status["lastScheduleTime"] == rfc3339(T0 + timedelta(days=5 * 365, minutes=5))


def test_starting_deadline_bounds_what_counts_as_missed() -> None:
    decided = plan(
        cronjob(schedule="* * * * *", startingDeadlineSeconds=200), [], T0 + timedelta(days=1)
    )
    assert decided.create is not None and decided.events == []
    assert decided.status["lastScheduleTime"] == "2026-01-02T00:00:00Z"


def test_forbid_skips_a_run_and_starts_it_late_once_the_previous_one_ends() -> None:
    first = plan(cronjob(concurrencyPolicy="Forbid"), [], T0 + timedelta(minutes=5))
    assert first.create is not None
    running = {**first.create, "metadata": {**first.create["metadata"], "uid": "j1"}}
    cj = cronjob(status=first.status, concurrencyPolicy="Forbid")
    # 00:10: the 00:05 run is still going: nothing starts, nothing is recorded as scheduled.
    at_ten = plan(cj, [running], T0 + timedelta(minutes=10))
    assert at_ten.create is None and at_ten.skipped == T0 + timedelta(minutes=10)
    assert at_ten.status["lastScheduleTime"] == "2026-01-01T00:05:00Z"
    assert at_ten.status["active"][0]["name"] == running["metadata"]["name"]
    assert at_ten.requeue_after == 300
    # 00:11:30: it finished; without a starting deadline the skipped run starts late, as on
    # Kubernetes ...
    done = finished(running, at=T0 + timedelta(minutes=11, seconds=30))
    late = plan(cj, [done], T0 + timedelta(minutes=11, seconds=30))
    assert late.create is not None
    assert late.create["metadata"]["name"] == job_name("report", T0 + timedelta(minutes=10))
    # ... and with a 60 s deadline it is dropped; the next one starts on time.
    strict = cronjob(status=first.status, concurrencyPolicy="Forbid", startingDeadlineSeconds=60)
    assert plan(strict, [done], T0 + timedelta(minutes=11, seconds=30)).create is None
    on_time = plan(strict, [done], T0 + timedelta(minutes=15))
    assert on_time.create is not None
    assert on_time.create["metadata"]["name"] == job_name("report", T0 + timedelta(minutes=15))


def test_a_started_run_whose_status_write_was_lost_is_recorded() -> None:
    job = plan(cronjob(), [], T0 + timedelta(minutes=5)).create
    assert job is not None
    again = plan(cronjob(), [job], T0 + timedelta(minutes=5, seconds=1))
    assert again.create is None
    assert again.status["lastScheduleTime"] == "2026-01-01T00:05:00Z"


def test_a_schedule_that_never_fires_is_an_error_not_a_crash() -> None:
    decided = plan(cronjob(schedule="0 0 31 2 *"), [], T0 + timedelta(minutes=5))
    assert decided.error is not None and decided.requeue_after is None
    assert [e.reason for e in decided.events] == ["InvalidSchedule"]


def test_forbid_and_replace() -> None:
    running = {"metadata": {"name": "report-old", "uid": "u1"}, "status": {"active": 1}}
    forbid = plan(cronjob(concurrencyPolicy="Forbid"), [running], T0 + timedelta(minutes=5))
    assert forbid.create is None and forbid.status["active"][0]["name"] == "report-old"
    replace = plan(cronjob(concurrencyPolicy="Replace"), [running], T0 + timedelta(minutes=5))
    assert replace.create is not None and replace.delete_jobs == ["report-old"]
    allow = plan(cronjob(), [running], T0 + timedelta(minutes=5))
    assert allow.create is not None and allow.delete_jobs == []


def test_suspended_cronjob_starts_nothing() -> None:
    decided = plan(cronjob(suspend=True), [], T0 + timedelta(minutes=5))
    assert decided.create is None and decided.requeue_after is None


def test_failed_history_limit_and_last_successful_time() -> None:
    jobs = [
        finished(
            {
                "metadata": {
                    "name": f"f{i}",
                    "annotations": {SCHEDULED_AT: rfc3339(T0 + timedelta(minutes=i))},
                }
            },
            "Failed",
        )
        for i in range(3)
    ]
    jobs.append(
        finished({"metadata": {"name": "ok", "annotations": {}}}, at=T0 + timedelta(minutes=9))
    )
    decided = plan(cronjob(), jobs, T0 + timedelta(minutes=10))
    assert decided.delete_jobs == ["f0", "f1"]
    assert decided.status["lastSuccessfulTime"] == "2026-01-01T00:09:00Z"


def test_a_job_that_was_active_and_ended_is_seen_once() -> None:
    ref = {"kind": "Job", "name": "report-1", "uid": "u1"}
    ended = finished({"metadata": {"name": "report-1", "uid": "u1"}}, "Failed")
    decided = plan(cronjob(status={"active": [ref]}), [ended], T0 + timedelta(minutes=1))
    assert decided.events == [
        ("Normal", "SawCompletedJob", "Saw completed job: report-1, condition: Failed")
    ]
    assert "active" not in decided.status
    # Once out of `active`, the ended Job is not seen again.
    assert plan(cronjob(status=decided.status), [ended], T0 + timedelta(minutes=2)).events == []


def test_bad_schedule_is_reported_not_retried() -> None:
    decided = plan(cronjob(schedule="every minute"), [], T0)
    assert decided.error is not None and "5 fields" in decided.error


async def test_cronjob_creates_jobs_on_the_embedded_server(plane: Any) -> None:
    p = await plane(CronJobController)
    cj = cronjob(schedule="* * * * *")
    del cj["metadata"]["uid"], cj["metadata"]["creationTimestamp"], cj["status"]
    # Created 61 s "ago" by hand-setting lastScheduleTime: one run is due right away.
    created = await p.client.create(cj)
    created["status"] = {
        "lastScheduleTime": rfc3339(
            p.server.clock.now().replace(second=0, microsecond=0) - timedelta(minutes=1)
        )
    }
    await p.client.update(created, subresource="status")

    async def jobs() -> list[Any]:
        return (await p.client.list("batch/v1", "Job", "default")).items

    found = await p.eventually(jobs, timeout=5, what="a Job from the CronJob")
    assert found[0]["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert found[0]["metadata"]["name"].startswith("report-")


# --- The controller on an embedded server whose clock only moves when the test says so. ---


async def settle(check: Any, what: str) -> Any:
    """Let the event loop run (real time, a second at most) until `check()` is truthy."""
    for _ in range(2000):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.0005)
    raise AssertionError(f"timed out waiting for {what}")


def new_cronjob(name: str = "report", **spec: Any) -> dict[str, Any]:
    cj = cronjob(**spec)
    cj["metadata"] = {"name": name, "namespace": "default"}
    del cj["status"]
    return cj


async def job_names(p: Any) -> list[str]:
    return sorted(j["metadata"]["name"] for j in await jobs_of(p))


async def jobs_of(p: Any) -> list[dict[str, Any]]:
    return [
        j
        for j in (await p.client.list("batch/v1", "Job", "default")).items
        if not j["metadata"].get("deletionTimestamp")
    ]


async def complete(p: Any, name: str) -> None:
    now = rfc3339(p.server.clock.now())
    await p.client.patch(
        "batch/v1",
        "Job",
        name,
        {
            "status": {
                "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": now}],
                "completionTime": now,
                "succeeded": 1,
            }
        },
        namespace="default",
        subresource="status",
    )


async def test_a_day_of_every_five_minutes_on_the_injected_clock(plane: Any) -> None:
    clock = ManualClock(T0)
    p = await plane(CronJobController, clock=clock)
    await p.client.create(new_cronjob())
    for run in range(1, 24 * 12 + 1):
        clock.advance(299)
        if run == 1:  # a second early, nothing runs
            await asyncio.sleep(0.02)
            assert await job_names(p) == []
        clock.advance(1)  # the requeue timer alone wakes the controller, on the minute
        expected = job_name("report", T0 + timedelta(minutes=5 * run))

        async def started(expected: str = expected) -> bool:
            return expected in await job_names(p)

        await settle(started, f"run {run}")
        await complete(p, expected)
    # The last completion trims the history to 3 successful Jobs: the three latest runs.
    day = T0 + timedelta(days=1)

    async def trimmed() -> list[str]:
        names = await job_names(p)
        return names if len(names) == 3 else []

    assert await settle(trimmed, "the history limit") == sorted(
        job_name("report", day - timedelta(minutes=m)) for m in (0, 5, 10)
    )
    cj = await p.client.get("batch/v1", "CronJob", "report", "default")
    assert cj["status"]["lastScheduleTime"] == rfc3339(day)
    assert cj["status"]["lastSuccessfulTime"] == rfc3339(day)
    assert "active" not in cj["status"]


async def test_runs_missed_while_the_server_was_down_on_restart(plane: Any) -> None:
    clock = ManualClock(T0)
    p = await plane(CronJobController, clock=clock)
    await p.client.create(new_cronjob("late-ok"))
    await p.client.create(new_cronjob("strict", startingDeadlineSeconds=60))
    clock.advance(300)
    first = [job_name(n, T0 + timedelta(minutes=5)) for n in ("late-ok", "strict")]

    async def both_started() -> bool:
        return await job_names(p) == sorted(first)

    await settle(both_started, "the 00:05 runs")
    await p.stop()
    clock.advance(2 * 3600 + 2 * 60)  # down from 00:05 to 02:07
    p = await plane(CronJobController, clock=clock)
    # The one without a deadline starts the most recent missed run (02:05), once; the one
    # with a 60 s deadline starts nothing late.
    late = job_name("late-ok", T0 + timedelta(hours=2, minutes=5))

    async def caught_up() -> bool:
        return late in await job_names(p)

    await settle(caught_up, "the missed run")
    await asyncio.sleep(0.05)
    assert await job_names(p) == sorted([*first, late])
    ok = await p.client.get("batch/v1", "CronJob", "late-ok", "default")
    assert ok["status"]["lastScheduleTime"] == "2026-01-01T02:05:00Z"
    strict = await p.client.get("batch/v1", "CronJob", "strict", "default")
    assert strict["status"]["lastScheduleTime"] == "2026-01-01T00:05:00Z"
    # Both are back on schedule at 02:10.
    clock.advance(180)
    on_time = [job_name(n, T0 + timedelta(hours=2, minutes=10)) for n in ("late-ok", "strict")]

    async def back_on_schedule() -> bool:
        return set(on_time) <= set(await job_names(p))

    await settle(back_on_schedule, "the 02:10 runs")


async def test_an_edited_schedule_wakes_before_the_old_timer(plane: Any) -> None:
    clock = ManualClock(T0)
    p = await plane(CronJobController, clock=clock)
    await p.client.create(new_cronjob(schedule="@hourly"))
    await asyncio.sleep(0.05)  # reconciled: the next wake-up is an hour away
    clock.advance(30)
    cj = await p.client.get("batch/v1", "CronJob", "report", "default")
    cj["spec"]["schedule"] = "* * * * *"
    await p.client.update(cj)
    await asyncio.sleep(0.05)
    clock.advance(30)
    expected = job_name("report", T0 + timedelta(minutes=1))

    async def started() -> bool:
        return expected in await job_names(p)

    await settle(started, "the first run of the new schedule")


async def test_forbid_on_the_injected_clock_records_the_skip(plane: Any) -> None:
    clock = ManualClock(T0)
    p = await plane(CronJobController, clock=clock)
    await p.client.create(new_cronjob(schedule="* * * * *", concurrencyPolicy="Forbid"))
    clock.advance(60)
    first = job_name("report", T0 + timedelta(minutes=1))

    async def started() -> bool:
        return first in await job_names(p)

    await settle(started, "the first run")
    clock.advance(60)  # 00:02: the 00:01 run is still going

    async def skip_event() -> list[Any]:
        events = (await p.client.list("v1", "Event", "default")).items
        return [e for e in events if e["reason"] == "JobAlreadyActive"]

    await settle(skip_event, "the JobAlreadyActive event")
    assert await job_names(p) == [first]
    await complete(p, first)  # it ends at 00:02: the skipped run starts, late
    second = job_name("report", T0 + timedelta(minutes=2))

    async def late_start() -> bool:
        return second in await job_names(p)

    await settle(late_start, "the skipped run to start once the first ended")
    reasons = {e["reason"] for e in (await p.client.list("v1", "Event", "default")).items}
    assert {"SuccessfulCreate", "JobAlreadyActive"} <= reasons
