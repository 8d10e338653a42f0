"""The Job controller: completions, parallelism, back-off, deadlines, TTL — with a clock."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.clock import ManualClock, rfc3339
from reconciler.controllers.job import JobController, backoff, index_ranges, indexed_pod, plan

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


def test_work_queue_job_starts_no_pod_after_a_success_and_waits_for_the_rest() -> None:
    spec = job(completions=None, parallelism=3)
    assert plan(spec, [], NOW).create == 3
    one_done = [pod("a", "Succeeded"), pod("b", "Running"), pod("c", "Running")]
    waiting = plan(spec, one_done, NOW)
    assert waiting.create == 0 and waiting.delete == [] and conditions(waiting) == []
    all_done = [pod("a", "Succeeded"), pod("b", "Succeeded"), pod("c", "Failed")]
    assert conditions(plan(spec, all_done, NOW)) == [("Complete", "CompletionsReached")]


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


def failed_pod(name: str, started: datetime, stopped: datetime) -> dict[str, Any]:
    out = pod(name, "Failed", started)
    out["status"]["containerStatuses"] = [
        {"state": {"terminated": {"exitCode": 1, "finishedAt": rfc3339(stopped)}}}
    ]
    return out


def run_failing_pods(backoff_limit: int) -> tuple[list[float], Any]:
    """Time travel: every pod fails 1 s after it starts; time jumps by what each reconcile
    asks. Returns the delays between a failure and the next pod, and the final plan."""
    pods: list[dict[str, Any]] = []
    delays: list[float] = []
    now = stopped = NOW
    spec = job(backoffLimit=backoff_limit)
    while True:
        decided = plan(spec, pods, now)
        spec = {**spec, "status": decided.status}
        if conditions(decided):
            return delays, decided
        if decided.create:
            assert decided.create == 1
            if pods:
                delays.append((now - stopped).total_seconds())
            stopped = now + timedelta(seconds=1)
            pods.append(failed_pod(f"p{len(pods)}", now, stopped))
            now = stopped
        else:
            assert decided.requeue_after is not None
            now += timedelta(seconds=decided.requeue_after)


def test_backoff_limit_six_with_exponential_backoff() -> None:
    delays, final = run_failing_pods(6)
    assert delays == [10, 20, 40, 80, 160, 320]  # 7 pods: the 7th failure is one too many
    assert conditions(final) == [("Failed", "BackoffLimitExceeded")]
    assert final.status["failed"] == 7 and final.create == 0


def test_backoff_is_capped_at_six_minutes() -> None:
    delays, _ = run_failing_pods(9)
    assert delays == [10, 20, 40, 80, 160, 320, 360, 360, 360]


def test_backoff_counts_from_when_the_pod_stopped() -> None:
    ran_half_a_minute = [failed_pod("a", NOW, NOW + timedelta(seconds=30))]
    early = plan(job(), ran_half_a_minute, NOW + timedelta(seconds=35))
    assert early.create == 0 and early.requeue_after == 5
    assert plan(job(), ran_half_a_minute, NOW + timedelta(seconds=40)).create == 1


def test_backoff_restarts_after_a_success() -> None:
    pods = [failed_pod(f"f{i}", NOW, NOW + timedelta(seconds=i)) for i in range(3)]
    ok = pod("ok", "Succeeded")
    ok["status"]["containerStatuses"] = [
        {
            "state": {
                "terminated": {"exitCode": 0, "finishedAt": rfc3339(NOW + timedelta(seconds=10))}
            }
        }
    ]
    again = failed_pod("f3", NOW, NOW + timedelta(seconds=20))
    decided = plan(job(completions=3), [*pods, ok, again], NOW + timedelta(seconds=25))
    assert decided.create == 0 and decided.requeue_after == 5  # one failure since: 10 s
    assert decided.status["failed"] == 4


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


async def test_backoff_on_the_injected_clock_with_a_deadline_an_hour_away(plane: Any) -> None:
    """The controller, woken only by its queue's timers: each failed pod is replaced after
    10, 20, 40, ... s, although a timer for the Job's activeDeadlineSeconds is pending."""
    clock = ManualClock(NOW)
    p = await plane(JobController, clock=clock)
    created = job(activeDeadlineSeconds=3600)
    del created["metadata"]["uid"], created["status"]
    await p.client.create(created)
    seen: set[str] = set()

    async def new_pod() -> str:
        names = {q["metadata"]["name"] for q in await p.pods()} - seen
        return next(iter(names), "")

    async def settle(check: Any, what: str) -> Any:
        for _ in range(2000):
            found = await check()
            if found:
                return found
            await asyncio.sleep(0.0005)
        raise AssertionError(f"timed out waiting for {what}")

    for delay in [10, 20, 40, 80, 160, 320, None]:
        name = await settle(new_pod, "a pod")
        seen.add(name)
        stopped = rfc3339(clock.now())
        await p.client.patch(
            "v1",
            "Pod",
            name,
            {
                "status": {
                    "phase": "Failed",
                    "containerStatuses": [
                        {
                            "name": "c",
                            "image": "busybox",
                            "imageID": "",
                            "ready": False,
                            "restartCount": 0,
                            "state": {"terminated": {"exitCode": 1, "finishedAt": stopped}},
                        }
                    ],
                }
            },
            namespace="default",
            subresource="status",
        )
        if delay is None:
            break
        await asyncio.sleep(0.02)
        clock.advance(delay - 1)
        await asyncio.sleep(0.02)
        assert await new_pod() == "", f"a pod started before the {delay} s back-off"
        clock.advance(1)

    async def failed() -> list[Any]:
        got = await p.client.get("batch/v1", "Job", "j", "default")
        return conditions_of(got)

    assert await settle(failed, "the Failed condition") == [("Failed", "BackoffLimitExceeded")]
    assert len(seen) == 7
    status = (await p.client.get("batch/v1", "Job", "j", "default"))["status"]
    assert status["failed"] == 7 and status["active"] == 0


def conditions_of(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["type"], c["reason"]) for c in (obj.get("status") or {}).get("conditions", [])]


# -- Indexed Jobs -------------------------------------------------------------------------


def indexed(name: str, phase: str, index: int) -> dict[str, Any]:
    body = pod(name, phase)
    body["metadata"]["annotations"] = {"batch.kubernetes.io/job-completion-index": str(index)}
    return body


def test_indexed_jobs_run_each_missing_index_once() -> None:
    spec = job(completions=5, parallelism=2, completionMode="Indexed")
    first = plan(spec, [], NOW)
    assert first.create_indexes == [0, 1]
    pods = [indexed("a", "Succeeded", 0), indexed("b", "Running", 1), indexed("c", "Failed", 2)]
    later = plan(spec, pods, NOW + timedelta(minutes=1))
    assert later.create_indexes == [2]  # the failed index again, the lowest free one
    assert later.status["completedIndexes"] == "0" and later.status["succeeded"] == 1
    # a duplicate of a running index, an index out of range, a second pod for a done one: gone
    odd = [
        *pods,
        indexed("d", "Running", 1),
        indexed("e", "Running", 9),
        indexed("f", "Running", 0),
    ]
    assert sorted(plan(spec, odd, NOW).delete) == ["d", "e", "f"]
    done = [indexed(f"p{i}", "Succeeded", i) for i in (0, 1, 2, 4, 3)]
    finished = plan(spec, done, NOW)
    assert conditions(finished) == [("Complete", "CompletionsReached")]
    assert finished.status["completedIndexes"] == "0-4"
    assert index_ranges({0, 1, 2, 4, 7, 8}) == "0-2,4,7-8"


def test_an_indexed_pod_knows_its_index() -> None:
    template = {
        "metadata": {"name": "j-", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "x"}], "initContainers": [{"name": "i"}]},
    }
    made = indexed_pod(template, "render", 3)
    assert made["metadata"]["generateName"] == "render-3-"
    assert made["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "3"
    assert made["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == "3"
    assert made["spec"]["hostname"] == "render-3"
    path = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    for container in (*made["spec"]["containers"], *made["spec"]["initContainers"]):
        assert container["env"] == [
            {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {"fieldPath": path}}}
        ]


async def test_an_indexed_job_completes_against_the_embedded_server(plane: Any) -> None:
    p = await plane(JobController)
    kubelet = asyncio.create_task(fake_kubelet_completes(p))
    try:
        created = job(completions=3, parallelism=3, completionMode="Indexed")
        del created["metadata"]["uid"], created["status"]
        await p.client.create(created)

        async def complete() -> bool:
            got = await p.client.get("batch/v1", "Job", "j", "default")
            return got.get("status", {}).get("completedIndexes") == "0-2"

        await p.eventually(complete, timeout=10, what="every index completed")
        listed = await p.client.list("v1", "Pod", "default", label_selector="job-name=j")
        names = sorted(str(i["metadata"]["name"]).rsplit("-", 1)[0] for i in listed.items)
        assert names == ["j-0", "j-1", "j-2"]
    finally:
        kubelet.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await kubelet


# -- podFailurePolicy ---------------------------------------------------------------------


def failed(name: str, code: int, *conditions: str, container: str = "main") -> dict[str, Any]:
    body = pod(name, "Failed")
    body["metadata"]["namespace"] = "default"
    body["status"]["containerStatuses"] = [
        {"name": container, "state": {"terminated": {"exitCode": code}}}
    ]
    body["status"]["conditions"] = [{"type": c, "status": "True"} for c in conditions]
    return body


POLICY = {
    "rules": [
        {
            "action": "FailJob",
            "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]},
        },
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [0, 1]}},
    ]
}


def test_a_fail_job_rule_fails_the_job_at_once() -> None:
    spec = job(backoffLimit=6, podFailurePolicy=POLICY)
    p = plan(spec, [failed("a", 42), pod("b", "Running")], NOW)
    assert conditions(p) == [("Failed", "PodFailurePolicy")]
    message = p.status["conditions"][0]["message"]
    assert message == (
        "Container main for pod default/a failed with exit code 42 matching FailJob rule at index 0"
    )
    assert p.delete == ["b"] and p.create == 0


def test_ignored_failures_spend_no_back_off() -> None:
    spec = job(backoffLimit=0, podFailurePolicy=POLICY)
    evicted = [failed(f"e{i}", 137, "DisruptionTarget") for i in range(3)]
    p = plan(spec, evicted, NOW)
    assert conditions(p) == [] and p.create == 1  # replaced at once, no back-off
    assert p.status["failed"] == 0
    # a code no rule names counts as usual: over the limit of 0
    assert conditions(plan(spec, [*evicted, failed("x", 1)], NOW)) == [
        ("Failed", "BackoffLimitExceeded")
    ]
    # another container's 42 is not the rule's
    assert (
        conditions(plan(job(podFailurePolicy=POLICY), [failed("y", 42, container="side")], NOW))
        == []
    )


def test_a_success_policy_completes_an_indexed_job_early() -> None:
    rules = {"rules": [{"succeededIndexes": "0,2-3", "succeededCount": 2}, {"succeededCount": 4}]}
    spec = job(completions=6, parallelism=6, completionMode="Indexed", successPolicy=rules)
    running = [indexed(f"r{i}", "Running", i) for i in (1, 4, 5)]
    not_yet = plan(
        spec, [indexed("a", "Succeeded", 0), indexed("b", "Succeeded", 1), *running], NOW
    )
    assert conditions(not_yet) == []
    met = plan(spec, [indexed("a", "Succeeded", 0), indexed("c", "Succeeded", 3), *running], NOW)
    assert conditions(met) == [
        ("SuccessCriteriaMet", "SuccessPolicy"),
        ("Complete", "SuccessPolicy"),
    ]
    assert met.status["conditions"][1]["message"] == "Matched rules at index 0"
    assert sorted(met.delete) == ["r1", "r4", "r5"] and met.create == 0
    four = [indexed(f"s{i}", "Succeeded", i) for i in (1, 4, 5, 0)]
    # only 0 of the listed ones: the first rule is not met, the second (any 4) is
    assert plan(spec, four, NOW).status["conditions"][1]["message"] == "Matched rules at index 1"


def test_replacements_wait_for_terminating_pods_with_pod_replacement_policy_failed() -> None:
    going = pod("old", "Running")
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    default = plan(job(), [going], NOW)
    assert default.create == 1 and default.status["terminating"] == 1
    waiting = plan(job(podReplacementPolicy="Failed"), [going], NOW)
    assert waiting.create == 0 and waiting.status["terminating"] == 1
    going["status"]["phase"] = "Failed"  # it stopped: replaced once its back-off passed
    later = NOW + timedelta(seconds=11)
    assert plan(job(podReplacementPolicy="Failed"), [going], later).create == 1


def test_a_back_off_limit_per_index_gives_up_an_index_not_the_job() -> None:
    spec = job(completions=3, parallelism=3, completionMode="Indexed", backoffLimitPerIndex=1)
    pods = [
        indexed("a", "Failed", 1),
        indexed("b", "Failed", 1),  # index 1 failed twice: more than its limit of 1
        indexed("c", "Succeeded", 0),
        indexed("d", "Running", 2),
    ]
    later = NOW + timedelta(minutes=10)
    p = plan(spec, pods, later)
    assert conditions(p) == [] and p.create == 0  # index 1 is not run again
    assert p.status["failedIndexes"] == "1" and p.status["completedIndexes"] == "0"
    pods[3] = indexed("d", "Succeeded", 2)
    done = plan(spec, pods, later)
    assert conditions(done) == [("Failed", "FailedIndexes")]
    # a FailIndex rule gives the index up at once; maxFailedIndexes 0 then fails the Job
    fail_index = {
        "rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [7]}}]
    }
    bad = indexed("e", "Failed", 2)
    bad["metadata"]["namespace"] = "default"
    bad["status"]["containerStatuses"] = [{"name": "c", "state": {"terminated": {"exitCode": 7}}}]
    strict = job(
        completions=3,
        completionMode="Indexed",
        backoffLimitPerIndex=3,
        maxFailedIndexes=0,
        podFailurePolicy=fail_index,
    )
    assert conditions(plan(strict, [bad], later)) == [("Failed", "MaxFailedIndexesExceeded")]


async def test_a_job_managed_by_another_controller_is_left_alone(plane: Any) -> None:
    p = await plane(JobController)
    created = job(managedBy="example.com/multikueue")
    del created["metadata"]["uid"], created["status"]
    await p.client.create(created)
    ours = job()
    ours["metadata"]["name"] = "ours"
    del ours["metadata"]["uid"], ours["status"]
    await p.client.create(ours)

    async def ours_started() -> bool:
        listed = await p.client.list("v1", "Pod", "default", label_selector="job-name=ours")
        return bool(listed.items)

    await p.eventually(ours_started, what="the Job of ours got a pod")
    theirs = await p.client.list("v1", "Pod", "default", label_selector="job-name=j")
    assert theirs.items == []
    assert (
        not (await p.client.get("batch/v1", "Job", "j", "default"))
        .get("status", {})
        .get("startTime")
    )
