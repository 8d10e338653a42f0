"""The CronJob controller: a day of schedules in milliseconds, missed runs, concurrency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.clock import rfc3339
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
            "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}},
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


def test_starting_deadline_skips_a_run_that_is_too_late() -> None:
    late = plan(cronjob(startingDeadlineSeconds=60), [], T0 + timedelta(minutes=7))
    assert late.create is None
    in_time = plan(cronjob(startingDeadlineSeconds=60), [], T0 + timedelta(minutes=5, seconds=30))
    assert in_time.create is not None


def test_too_many_missed_runs_still_start_the_latest() -> None:
    decided = plan(cronjob(schedule="* * * * *"), [], T0 + timedelta(days=1))
    assert decided.create is not None and decided.skipped is not None
    assert "too many missed" in decided.skipped


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
