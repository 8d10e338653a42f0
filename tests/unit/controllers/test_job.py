"""The Job controller: completions, parallelism, back-off, deadlines, TTL — with a clock."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.clock import ManualClock, rfc3339
from reconciler.controllers.job import (
    JobController,
    Ledger,
    backoff,
    index_ranges,
    indexed_pod,
    plan,
)
from reconciler.controllers.job_indexes import IndexFailures

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


COMPLETE = [("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached")]


def failed_with(reason: str) -> list[tuple[str, str]]:
    """A failure once no pod is left running: FailureTarget, then Failed (upstream 1.31+)."""
    return [("FailureTarget", reason), ("Failed", reason)]


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
    assert conditions(plan(spec, all_done, NOW)) == COMPLETE


def test_complete_when_enough_pods_succeeded() -> None:
    p = plan(job(completions=2), [pod("a", "Succeeded"), pod("b", "Succeeded")], NOW)
    assert conditions(p) == COMPLETE
    assert p.status["completionTime"] == "2026-01-01T00:00:00Z" and p.create == 0


def test_failures_back_off_then_hit_the_limit() -> None:
    failed = [pod("a", "Failed", NOW)]
    early = plan(job(), failed, NOW + timedelta(seconds=5))
    assert early.create == 0 and early.requeue_after == 5
    assert plan(job(), failed, NOW + timedelta(seconds=10)).create == 1
    many = [pod(f"f{i}", "Failed") for i in range(3)]
    p = plan(job(backoffLimit=2), many, NOW)
    assert conditions(p) == failed_with("BackoffLimitExceeded") and p.create == 0


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
    assert conditions(final) == failed_with("BackoffLimitExceeded")
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
    # the running pod is deleted first: Failed once it is gone
    assert conditions(p) == [("FailureTarget", "BackoffLimitExceeded")] and p.delete == ["a"]
    assert p.status["terminating"] == 1 and p.status["active"] == 0
    gone = plan({**spec, "status": p.status}, [], NOW)
    assert conditions(gone) == failed_with("BackoffLimitExceeded") and gone.delete == []


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
    assert conditions(p) == [("FailureTarget", "DeadlineExceeded")] and p.delete == ["a"]


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
        # `kubectl describe job`: each pod made, then the ending.
        made = {f"Created pod: {q['metadata']['name']}" for q in listed.items}

        async def all_made() -> bool:
            return await p.events("j", "SuccessfulCreate") == made

        await p.eventually(all_made, what="an event per pod")
        assert await p.eventually(lambda: p.events("j", "Completed")) == {"Job completed"}
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

    assert await settle(failed, "the Failed condition") == failed_with("BackoffLimitExceeded")
    assert len(seen) == 7
    status = (await p.client.get("batch/v1", "Job", "j", "default"))["status"]
    assert status["failed"] == 7 and status["active"] == 0
    ending = {"Job has reached the specified backoff limit"}
    assert await p.eventually(lambda: p.events("j", "BackoffLimitExceeded")) == ending


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
    assert conditions(finished) == COMPLETE
    assert finished.status["completedIndexes"] == "0-4"
    # upstream's notation: a range for three or more in a row, two neighbours listed
    assert index_ranges({0, 1, 2, 4, 7, 8}) == "0-2,4,7,8"
    assert index_ranges({1, 2}) == "1,2" and index_ranges({3}) == "3" and index_ranges([]) == ""


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
    assert conditions(p) == [("FailureTarget", "PodFailurePolicy")]
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
    assert conditions(plan(spec, [*evicted, failed("x", 1)], NOW)) == failed_with(
        "BackoffLimitExceeded"
    )
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
    # the rest is stopped first (not as failures): Complete once none is left terminating
    assert conditions(met) == [("SuccessCriteriaMet", "SuccessPolicy")]
    assert met.status["conditions"][0]["message"] == "Matched rules at index 0"
    assert sorted(met.delete) == ["r1", "r4", "r5"] and met.create == 0
    assert sorted(met.uncounted) == ["r1", "r4", "r5"] and met.status["terminating"] == 3
    assert "completionTime" not in met.status
    stopping = [indexed("a", "Succeeded", 0), indexed("c", "Succeeded", 3), *running]
    for r in stopping[2:]:
        r["metadata"]["deletionTimestamp"] = rfc3339(NOW)
    ledger = Ledger(seeded=True, uncounted=frozenset(met.uncounted))  # the controller's
    still = plan({**spec, "status": met.status}, stopping, NOW + timedelta(seconds=1), ledger)
    assert conditions(still) == [("SuccessCriteriaMet", "SuccessPolicy")]
    assert still.status["terminating"] == 3 and still.status["failed"] == 0
    later = NOW + timedelta(seconds=2)
    ended = plan({**spec, "status": still.status}, stopping[:2], later, ledger)
    assert conditions(ended) == [
        ("SuccessCriteriaMet", "SuccessPolicy"),
        ("Complete", "SuccessPolicy"),
    ]
    assert ended.status["conditions"][1]["message"] == "Matched rules at index 0"
    assert ended.status["completionTime"] == rfc3339(later)
    assert ended.status["terminating"] == 0 and ended.status["failed"] == 0
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
    assert conditions(done) == failed_with("FailedIndexes")
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
    assert conditions(plan(strict, [bad], later)) == failed_with("MaxFailedIndexesExceeded")


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


# -- how a Job ends (upstream 1.31+) --------------------------------------------------------


def deleted(body: dict[str, Any], at: datetime = NOW, grace: int = 30) -> dict[str, Any]:
    body["metadata"]["deletionTimestamp"] = rfc3339(at + timedelta(seconds=grace))
    body["metadata"]["deletionGracePeriodSeconds"] = grace
    return body


def test_a_success_policy_met_by_the_last_index_ends_by_the_policy() -> None:
    # upstream conformance: "with successPolicy should succeeded when all indexes succeeded"
    rules = {"rules": [{"succeededCount": 2}]}
    spec = job(completions=2, parallelism=2, completionMode="Indexed", successPolicy=rules)
    both = plan(spec, [indexed("a", "Succeeded", 0), indexed("b", "Succeeded", 1)], NOW)
    assert conditions(both) == [
        ("SuccessCriteriaMet", "SuccessPolicy"),
        ("Complete", "SuccessPolicy"),
    ]
    assert {c["message"] for c in both.status["conditions"]} == {"Matched rules at index 0"}


def test_complete_waits_for_the_pods_still_terminating() -> None:
    spec = job(completions=2, parallelism=3)
    surplus = deleted(pod("c", "Running"))
    pods = [pod("a", "Succeeded"), pod("b", "Succeeded"), surplus]
    ledger = Ledger(seeded=True, uncounted=frozenset({"c"}))  # the controller deleted it
    met = plan(spec, pods, NOW, ledger)
    assert conditions(met) == [("SuccessCriteriaMet", "CompletionsReached")]
    assert met.status["conditions"][0]["message"] == "Reached expected number of succeeded pods"
    assert met.status["terminating"] == 1 and "completionTime" not in met.status
    assert met.create == 0 and met.status["failed"] == 0
    # kept while it stops, whatever else happens; then Complete, with the same reason
    again = plan({**spec, "status": met.status}, pods, NOW + timedelta(seconds=3), ledger)
    assert conditions(again) == [("SuccessCriteriaMet", "CompletionsReached")]
    later = NOW + timedelta(seconds=5)
    done = plan({**spec, "status": again.status}, pods[:2], later, ledger)
    assert conditions(done) == COMPLETE
    assert done.status["completionTime"] == rfc3339(later)
    assert done.status["conditions"][0]["lastTransitionTime"] == rfc3339(NOW)
    assert done.status["conditions"][1]["message"] == "Reached expected number of succeeded pods"


def test_failed_comes_after_failure_target_with_its_reason_and_message() -> None:
    spec = job(backoffLimit=1)
    pods = [pod("f0", "Failed"), pod("f1", "Failed"), pod("r", "Running")]
    target = plan(spec, pods, NOW)
    assert conditions(target) == [("FailureTarget", "BackoffLimitExceeded")]
    assert target.delete == ["r"] and target.uncounted == []  # it counts as failed
    assert (target.status["active"], target.status["terminating"]) == (0, 1)
    stopping = [*pods[:2], deleted(pod("r", "Running"))]
    still = plan({**spec, "status": target.status}, stopping, NOW, Ledger(seeded=True))
    assert conditions(still) == [("FailureTarget", "BackoffLimitExceeded")]
    assert still.delete == [] and still.status["failed"] == 3  # deleted while running
    gone = Ledger(seeded=True, gone_failed=1)
    failed = plan({**spec, "status": still.status}, pods[:2], NOW, gone)
    assert conditions(failed) == failed_with("BackoffLimitExceeded")
    messages = {c["message"] for c in failed.status["conditions"]}
    assert messages == {"Job has reached the specified backoff limit"}
    assert failed.status["failed"] == 3 and "completionTime" not in failed.status


# -- pods deleted while running -----------------------------------------------------------


def test_a_pod_deleted_while_running_is_a_failure() -> None:
    # TerminatingOrFailed (the default): a failure at once, replaced at once
    going = deleted(pod("old", "Running"))
    now = plan(job(), [going], NOW)
    assert now.status["failed"] == 1 and now.create == 1
    assert (now.status["terminating"], now.status["active"]) == (1, 0)
    # gone: the controller's ledger keeps the count
    assert (
        plan(job(status=now.status), [], NOW, Ledger(seeded=True, gone_failed=1)).status["failed"]
        == 1
    )
    # Failed: not while it stops, nor replaced; once gone, both
    policy_failed = job(podReplacementPolicy="Failed")
    stopping = plan(policy_failed, [going], NOW)
    assert stopping.status["failed"] == 0 and stopping.create == 0
    gone = plan(policy_failed, [], NOW, Ledger(seeded=True, gone_failed=1))
    assert gone.status["failed"] == 1 and gone.create == 1
    # ... and toward the backoffLimit
    strict = job(podReplacementPolicy="Failed", backoffLimit=0)
    assert conditions(plan(strict, [], NOW, Ledger(seeded=True, gone_failed=1))) == failed_with(
        "BackoffLimitExceeded"
    )
    # the pods the controller deletes itself (surplus, duplicates, suspension) are not
    assert (
        plan(job(), [going], NOW, Ledger(seeded=True, uncounted=frozenset({"old"}))).status[
            "failed"
        ]
        == 0
    )


def test_a_new_ledger_recovers_the_gone_failures_from_the_status() -> None:
    # the controller restarted: two failed pods are gone, one is still there
    spec = job(status={"failed": 3, "startTime": rfc3339(NOW)})
    decided = plan(spec, [pod("f", "Failed")], NOW + timedelta(minutes=10))
    assert decided.gone_failed == 2 and decided.status["failed"] == 3
    seeded = Ledger(seeded=True, gone_failed=2)
    later = plan(spec, [pod("f", "Failed"), pod("g", "Failed")], NOW, seeded)
    assert later.status["failed"] == 4


async def test_the_controller_counts_a_deleted_pod_once_it_is_gone(plane: Any) -> None:
    p = await plane(JobController)
    created = job(podReplacementPolicy="Failed")
    del created["metadata"]["uid"], created["status"]
    await p.client.create(created)
    first = (await p.eventually(p.pods, what="a pod"))[0]["metadata"]["name"]
    await p.client.delete("v1", "Pod", first, "default")

    async def replaced() -> Any:
        status = (await p.client.get("batch/v1", "Job", "j", "default")).get("status") or {}
        names = {q["metadata"]["name"] for q in await p.pods()}
        return status.get("failed") == 1 and names and first not in names

    await p.eventually(replaced, what="the deleted pod counted and replaced")


# -- backoffLimitPerIndex -----------------------------------------------------------------


def index_pod(name: str, state: str, index: int, count: int, stopped: datetime = NOW) -> Any:
    body = indexed(name, state, index)
    body["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] = str(count)
    body["metadata"]["namespace"] = "default"
    if state == "Failed":
        terminated = {"exitCode": 1, "finishedAt": rfc3339(stopped)}
        body["status"]["containerStatuses"] = [{"name": "c", "state": {"terminated": terminated}}]
    return body


def test_each_index_backs_off_and_its_pods_carry_its_failure_count() -> None:
    spec = job(completions=2, parallelism=2, completionMode="Indexed", backoffLimitPerIndex=2)
    first = plan(spec, [], NOW)
    assert first.create_indexes == [0, 1]
    assert first.index_failures == {0: IndexFailures(), 1: IndexFailures()}
    pods = [index_pod("a", "Failed", 0, 0), index_pod("b", "Running", 1, 0)]
    early = plan(spec, pods, NOW + timedelta(seconds=4))
    assert early.create_indexes == [] and early.requeue_after == 6  # 10 s after it stopped
    retry = plan(spec, pods, NOW + timedelta(seconds=10))
    assert retry.create_indexes == [0] and retry.index_failures[0].counted == 1
    # the second failure of index 0: 20 s
    pods += [index_pod("c", "Failed", 0, 1, NOW + timedelta(seconds=15))]
    assert plan(spec, pods, NOW + timedelta(seconds=34)).requeue_after == 1
    again = plan(spec, pods, NOW + timedelta(seconds=35))
    assert again.create_indexes == [0] and again.index_failures[0].counted == 2
    assert conditions(again) == [] and "failedIndexes" not in again.status
    # the third is one too many for a limit of 2: the index is given up, not run again
    pods += [index_pod("d", "Failed", 0, 2, NOW + timedelta(seconds=40))]
    given_up = plan(spec, pods, NOW + timedelta(hours=1))
    assert given_up.status["failedIndexes"] == "0" and given_up.create == 0
    assert given_up.status["failed"] == 3
    # the annotation carries the count although the earlier pods are gone
    alone = plan(spec, [pods[-1], pods[1]], NOW + timedelta(hours=1))
    assert alone.status["failedIndexes"] == "0"


def test_an_index_pod_is_annotated_with_its_failures() -> None:
    template = {"metadata": {"name": "j-", "namespace": "default"}, "spec": {"containers": []}}
    made = indexed_pod(template, "render", 3, IndexFailures(counted=2, ignored=1))
    annotations = made["metadata"]["annotations"]
    assert annotations["batch.kubernetes.io/job-index-failure-count"] == "2"
    assert annotations["batch.kubernetes.io/job-index-ignored-failure-count"] == "1"
    first = indexed_pod({"metadata": {"name": "j-"}, "spec": {}}, "render", 0, IndexFailures())[
        "metadata"
    ]["annotations"]
    assert first["batch.kubernetes.io/job-index-failure-count"] == "0"
    assert "batch.kubernetes.io/job-index-ignored-failure-count" not in first
    plain = indexed_pod({"metadata": {"name": "j-"}, "spec": {}}, "render", 0)
    assert "batch.kubernetes.io/job-index-failure-count" not in plain["metadata"]["annotations"]


def test_an_ignored_failure_spends_no_index_limit_but_backs_off() -> None:
    ignore = {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [1]}}]}
    spec = job(
        completions=1,
        completionMode="Indexed",
        backoffLimitPerIndex=0,
        podFailurePolicy=ignore,
    )
    pods = [index_pod("a", "Failed", 0, 0)]
    assert plan(spec, pods, NOW + timedelta(seconds=5)).requeue_after == 5
    retry = plan(spec, pods, NOW + timedelta(seconds=10))
    assert retry.create_indexes == [0]
    assert retry.index_failures[0] == IndexFailures(counted=0, ignored=1)
    assert retry.status["failed"] == 0 and "failedIndexes" not in retry.status


def test_the_backoff_limit_defaults_to_max_int32_with_a_limit_per_index() -> None:
    spec = job(completions=3, parallelism=3, completionMode="Indexed", backoffLimitPerIndex=9)
    del spec["spec"]["backoffLimit"]
    pods = [index_pod(f"f{i}", "Failed", i % 3, i // 3) for i in range(9)]
    assert conditions(plan(spec, pods, NOW + timedelta(hours=1))) == []
