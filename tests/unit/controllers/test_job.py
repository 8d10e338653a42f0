"""The Job controller: completions, parallelism, back-off, deadlines, TTL — with a clock."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.controllers.job import JobController, backoff, plan

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def job(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "default", "uid": "j-uid"},
        "spec": {
            "completions": 1,
            "parallelism": 1,
            "backoffLimit": 6,
            "template": {"spec": {"restartPolicy": "Never", "containers": []}},
            **spec,
        },
        "status": status or {},
    }


def pod(name: str, phase: str, started: datetime = NOW) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": started.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "status": {"phase": phase},
    }


def conditions(p: Any) -> list[tuple[str, str]]:
    return [(c["type"], c["reason"]) for c in p.status.get("conditions", [])]


def test_backoff_doubles_from_ten_seconds_to_six_minutes() -> None:
    assert [backoff(n) for n in range(0, 8)] == [0, 10, 20, 40, 80, 160, 320, 360]


def test_starts_pods_up_to_parallelism_and_completions() -> None:
    assert plan(job(completions=5, parallelism=2), [], NOW).create == 2
    p = plan(job(completions=5, parallelism=3), [pod("a", "Succeeded")] * 3, NOW)
    assert p.create == 2 and p.status["succeeded"] == 3
    assert plan(job(), [], NOW).status["startTime"] == "2026-01-01T00:00:00Z"


def test_complete_when_enough_pods_succeeded() -> None:
    p = plan(job(completions=2), [pod("a", "Succeeded"), pod("b", "Succeeded")], NOW)
    assert conditions(p) == [("Complete", "CompletionsReached")]
    assert p.status["completionTime"] == "2026-01-01T00:00:00Z" and p.create == 0


def test_failures_back_off_then_hit_the_limit() -> None:
    failed = [pod("a", "Failed", NOW)]
    early = plan(job(), failed, NOW + timedelta(seconds=5))
    assert early.create == 0 and early.requeue_after == 5
    assert plan(job(), failed, NOW + timedelta(seconds=10)).create == 1
    many = [pod(f"f{i}", "Failed") for i in range(3)]
    p = plan(job(backoffLimit=2), many, NOW)
    assert conditions(p) == [("Failed", "BackoffLimitExceeded")] and p.create == 0


def test_restarts_count_as_failures_with_on_failure() -> None:
    running = pod("a", "Running")
    running["status"]["containerStatuses"] = [{"restartCount": 3}]
    spec = job(backoffLimit=2)
    spec["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    p = plan(spec, [running], NOW)
    assert conditions(p) == [("Failed", "BackoffLimitExceeded")] and p.delete == ["a"]


def test_active_deadline() -> None:
    started = {"startTime": "2026-01-01T00:00:00Z"}
    p = plan(
        job(status=started, activeDeadlineSeconds=60),
        [pod("a", "Running")],
        NOW + timedelta(seconds=30),
    )
    assert p.requeue_after == 30 and conditions(p) == []
    p = plan(
        job(status=started, activeDeadlineSeconds=60),
        [pod("a", "Running")],
        NOW + timedelta(seconds=61),
    )
    assert conditions(p) == [("Failed", "DeadlineExceeded")] and p.delete == ["a"]


def test_ttl_after_finished() -> None:
    done = {
        "conditions": [
            {"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        ]
    }
    assert (
        plan(
            job(status=done, ttlSecondsAfterFinished=100), [], NOW + timedelta(seconds=40)
        ).requeue_after
        == 60
    )
    assert plan(
        job(status=done, ttlSecondsAfterFinished=100), [], NOW + timedelta(seconds=100)
    ).delete_job


def test_suspend_deletes_active_pods() -> None:
    p = plan(job(suspend=True), [pod("a", "Running")], NOW)
    assert p.delete == ["a"] and conditions(p) == [("Suspended", "JobSuspended")]


async def fake_kubelet_completes(plane: Any) -> None:
    """Test stand-in for the node agent: every pod runs to success at once."""
    while True:
        for pod_obj in await plane.pods():
            if pod_obj.get("status", {}).get("phase") != "Succeeded":
                await plane.client.patch(
                    "v1",
                    "Pod",
                    pod_obj["metadata"]["name"],
                    {"status": {"phase": "Succeeded"}},
                    namespace="default",
                    subresource="status",
                )
        await asyncio.sleep(0.01)


async def test_job_completes_against_the_embedded_server(plane: Any) -> None:
    p = await plane(JobController)
    kubelet = asyncio.create_task(fake_kubelet_completes(p))
    try:
        created = job(completions=3, parallelism=2)
        del created["metadata"]["uid"], created["status"]
        await p.client.create(created)

        async def complete() -> bool:
            got = await p.client.get("batch/v1", "Job", "j", "default")
            return (
                any(c["type"] == "Complete" for c in got.get("status", {}).get("conditions", []))
                and got["status"]["succeeded"] == 3
            )

        await p.eventually(complete, timeout=10, what="the Job to complete")
        listed = await p.client.list("v1", "Pod", "default", label_selector="job-name=j")
        assert len(listed.items) == 3
    finally:
        kubelet.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await kubelet
