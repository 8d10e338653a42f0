"""Job policies with the real kubectl on Docker: an Indexed Job's `successPolicy` (ends it
early, reason SuccessPolicy, the lingering pods stopped), `backoffLimitPerIndex` with
`maxFailedIndexes` (an index given up in `status.failedIndexes` while the others run; reasons
FailedIndexes and MaxFailedIndexesExceeded), `podReplacementPolicy: Failed` (no replacement
while the old pod is still terminating) and `spec.managedBy` (a Job another controller runs
is left alone). Each pod's busybox script picks its exit from `$JOB_COMPLETION_INDEX`.

The last test checks what upstream Kubernetes reports (its conformance and e2e suites, and
the batch/v1 API reference) where Recon used to differ: SuccessCriteriaMet before Complete
(and FailureTarget before Failed), Complete only once the lingering pods stopped, index sets
in upstream's notation, the per-index failure count on each pod, an immutable and validated
`spec.managedBy`, and a deleted pod counted as failed."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from tests.e2e.conftest import Kubectl, ReconServer, new_namespace
from tests.e2e.support import busybox_pod

pytestmark = pytest.mark.e2e

JSONDict = dict[str, Any]

INDEX = "batch.kubernetes.io/job-completion-index"
FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
SLOW_STOP = 'trap "sleep 4; exit 143" TERM; while true; do sleep 1; done'
"""Runs until SIGTERM, then takes 4 s to stop (as upstream's pod replacement e2e test)."""


def _job(namespace: str, name: str, script: str, grace: int = 0, **spec: Any) -> JSONDict:
    """A Job of `sh -c script` pods (`restartPolicy: Never`); `spec` adds to the Job's spec."""
    pod = busybox_pod(
        namespace,
        name,
        ["sh", "-c", script],
        restartPolicy="Never",
        terminationGracePeriodSeconds=grace,
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {**spec, "template": {"spec": pod["spec"]}},
    }


def _indexed(namespace: str, name: str, script: str, grace: int = 0, **spec: Any) -> JSONDict:
    """An Indexed Job of 3 (or `completions`) pods, all started at once."""
    completions = spec.pop("completions", 3)
    return _job(
        namespace,
        name,
        script,
        grace,
        completionMode="Indexed",
        completions=completions,
        parallelism=completions,
        **spec,
    )


def _apply(kubectl: Kubectl, *objects: JSONDict) -> None:
    kubectl.run(
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}),
    )


def _status(kubectl: Kubectl, namespace: str, job: str) -> JSONDict:
    return dict(kubectl.json("-n", namespace, "get", "job", job).get("status") or {})


def _conditions(status: JSONDict) -> list[tuple[str, str, str]]:
    return [
        (c["type"], c.get("reason", ""), c.get("message", ""))
        for c in status.get("conditions") or []
    ]


def _pods(kubectl: Kubectl, namespace: str, job: str) -> list[JSONDict]:
    return list(kubectl.json("-n", namespace, "get", "pods", "-l", f"job-name={job}")["items"])


def _phases(pods: list[JSONDict]) -> list[tuple[int, str]]:
    """(completion index, phase) of each pod, sorted."""
    return sorted((int(p["metadata"]["labels"][INDEX]), p["status"].get("phase", "")) for p in pods)


def _wait(
    kubectl: Kubectl, namespace: str, condition: str, *targets: str, timeout: int = 60
) -> None:
    kubectl.run(
        "-n",
        namespace,
        "wait",
        f"--for={condition}",
        *targets,
        f"--timeout={timeout}s",
        timeout=timeout + 10,
    )


def test_indexed_policies_end_a_job_and_another_manager_is_left_alone(
    docker_server: ReconServer,
) -> None:
    kubectl, ns = new_namespace(docker_server, "jobpol")
    # Applied first, and its status written as its controller would: by the time the other
    # Jobs have finished, the Job controller has seen it many times over.
    theirs = _job(ns, "theirs", "true", managedBy="example.com/other")
    _apply(kubectl, theirs)
    written = {"startTime": "2026-01-01T00:00:00Z", "active": 1}
    kubectl.run(
        "-n",
        ns,
        "patch",
        "job",
        "theirs",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": written}),
    )
    sleeps_unless = 'case "$JOB_COMPLETION_INDEX" in {}) exit {};; esac; exec sleep 3600'
    _apply(
        kubectl,
        # index 0 is all that counts: 1 and 2 are stopped once it succeeded
        _indexed(
            ns,
            "leader",
            sleeps_unless.format("0", 0),
            successPolicy={"rules": [{"succeededIndexes": "0"}]},
        ),
        # index 1 never finishes, so the first rule never holds; the second does with 0 and 2
        _indexed(
            ns,
            "quorum",
            sleeps_unless.format("0|2", 0),
            successPolicy={"rules": [{"succeededIndexes": "1"}, {"succeededCount": 2}]},
        ),
        # index 1 fails twice (its own limit is 1 retry) and is given up; 0 and 2 still run
        _indexed(
            ns,
            "retry",
            'test "$JOB_COMPLETION_INDEX" != 1',
            backoffLimitPerIndex=1,
            maxFailedIndexes=1,
        ),
        # index 2 fails once: one failed index more than allowed ends the Job at once
        _indexed(
            ns,
            "strict",
            sleeps_unless.format("2", 3),
            backoffLimitPerIndex=0,
            maxFailedIndexes=0,
        ),
    )
    _wait(kubectl, ns, "condition=complete", "job/leader", "job/quorum")
    _wait(kubectl, ns, "condition=failed", "job/retry", "job/strict")
    for job, kept in (("leader", "0"), ("quorum", "0,2"), ("strict", "2")):
        _wait(kubectl, ns, "delete", "pod", "-l", f"job-name={job},{INDEX} notin ({kept})")

    for job, rule, indexes, succeeded in (("leader", 0, "0", 1), ("quorum", 1, "0,2", 2)):
        status = _status(kubectl, ns, job)
        matched = f"Matched rules at index {rule}"
        assert _conditions(status) == [
            ("SuccessCriteriaMet", "SuccessPolicy", matched),
            ("Complete", "SuccessPolicy", matched),
        ], job
        assert (status["completedIndexes"], status["succeeded"]) == (indexes, succeeded), job
        assert status["active"] == 0 and status.get("completionTime"), job
    assert _phases(_pods(kubectl, ns, "leader")) == [(0, "Succeeded")]
    assert _phases(_pods(kubectl, ns, "quorum")) == [(0, "Succeeded"), (2, "Succeeded")]

    retry = _status(kubectl, ns, "retry")
    by_type = {c[0]: c[1:] for c in _conditions(retry)}
    assert by_type["Failed"] == ("FailedIndexes", "Job has failed indexes")
    assert "Complete" not in by_type and "completionTime" not in retry
    assert retry["failedIndexes"] == "1" and retry["completedIndexes"] == "0,2"
    assert (retry["failed"], retry["succeeded"], retry["active"]) == (2, 2, 0)
    assert _phases(_pods(kubectl, ns, "retry")) == [
        (0, "Succeeded"),
        (1, "Failed"),
        (1, "Failed"),
        (2, "Succeeded"),
    ]

    strict = _status(kubectl, ns, "strict")
    by_type = {c[0]: c[1:] for c in _conditions(strict)}
    assert by_type["Failed"] == (
        "MaxFailedIndexesExceeded",
        "Job has exceeded the specified maximal number of failed indexes",
    )
    assert strict["failedIndexes"] == "2" and not strict.get("completedIndexes")
    assert strict["active"] == 0
    assert _phases(_pods(kubectl, ns, "strict")) == [(2, "Failed")]  # not retried; 0, 1 stopped

    assert _pods(kubectl, ns, "theirs") == []
    assert _status(kubectl, ns, "theirs") == written


def test_policy_failed_replaces_a_deleted_pod_only_once_it_stopped(
    docker_server: ReconServer,
) -> None:
    kubectl, ns = new_namespace(docker_server, "jobrepl")
    _apply(
        kubectl,
        _job(ns, "patient", SLOW_STOP, grace=30, podReplacementPolicy="Failed"),
        _job(ns, "eager", SLOW_STOP, grace=30),  # the default: replaced once terminating
    )
    _wait(kubectl, ns, "jsonpath={.status.ready}=1", "job/patient", "job/eager")
    first = {job: _pods(kubectl, ns, job)[0]["metadata"]["name"] for job in ("patient", "eager")}
    kubectl.run("-n", ns, "delete", "pod", *first.values(), "--wait=false")
    # both were active=1 before: `terminating` shows the deletion was seen, then `active`
    # counts the replacement alone
    _wait(kubectl, ns, "jsonpath={.status.terminating}=1", "job/patient", "job/eager")
    _wait(kubectl, ns, "jsonpath={.status.active}=1", "job/eager")
    eager = _status(kubectl, ns, "eager")
    assert (eager["active"], eager["terminating"]) == (1, 1)
    pods = _pods(kubectl, ns, "eager")
    going = [p["metadata"]["name"] for p in pods if p["metadata"].get("deletionTimestamp")]
    assert len(pods) == 2 and going == [first["eager"]]  # the old one still stopping
    patient = _status(kubectl, ns, "patient")
    assert (patient["active"], patient["terminating"]) == (0, 1)
    assert [p["metadata"]["name"] for p in _pods(kubectl, ns, "patient")] == [first["patient"]]

    _wait(kubectl, ns, "jsonpath={.status.active}=1", "job/patient")
    patient = _status(kubectl, ns, "patient")
    assert (patient["active"], patient["terminating"]) == (1, 0)
    pods = _pods(kubectl, ns, "patient")
    assert len(pods) == 1 and pods[0]["metadata"]["name"] != first["patient"]
    gone = kubectl.run("-n", ns, "get", "pod", first["patient"], check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def _stamp(status: JSONDict, ctype: str) -> datetime:
    found = [c for c in status.get("conditions") or [] if c["type"] == ctype]
    return datetime.fromisoformat(found[0]["lastTransitionTime"].replace("Z", "+00:00"))


def test_jobs_end_count_and_refuse_changes_as_upstream(docker_server: ReconServer) -> None:
    kubectl, ns = new_namespace(docker_server, "jobgap")
    _apply(
        kubectl,
        _indexed(
            ns, "whole", "true", completions=2, successPolicy={"rules": [{"succeededCount": 2}]}
        ),
        _indexed(
            ns,
            "lingering",
            f'[ "$JOB_COMPLETION_INDEX" = 0 ] && sleep 2 && exit 0; {SLOW_STOP}',
            grace=30,
            completions=2,
            successPolicy={"rules": [{"succeededIndexes": "0"}]},
        ),
        _indexed(ns, "pair", 'test "$JOB_COMPLETION_INDEX" = 0', backoffLimitPerIndex=1),
        _job(ns, "theirs", "true", managedBy="example.com/other"),
        _job(ns, "patient", SLOW_STOP, grace=30, podReplacementPolicy="Failed"),
    )

    _wait(kubectl, ns, "jsonpath={.status.ready}=1", "job/patient")
    kubectl.run("-n", ns, "delete", "pod", "-l", "job-name=patient", "--wait=false")
    _wait(kubectl, ns, "jsonpath={.status.terminating}=1", "job/patient")

    # upstream conformance "with successPolicy should succeeded when all indexes succeeded"
    _wait(kubectl, ns, "condition=complete", "job/whole")
    got = [c[:2] for c in _conditions(_status(kubectl, ns, "whole"))]
    assert got == [("SuccessCriteriaMet", "SuccessPolicy"), ("Complete", "SuccessPolicy")]

    # upstream adds Complete once the lingering pods stopped (SuccessCriteriaMet meanwhile):
    # index 1 takes 4 s to stop
    _wait(kubectl, ns, "condition=complete", "job/lingering")
    stopping = [
        p["metadata"]["name"]
        for p in _pods(kubectl, ns, "lingering")
        if p["metadata"].get("deletionTimestamp")
    ]
    assert stopping == []
    lingering = _status(kubectl, ns, "lingering")
    assert [c[:2] for c in _conditions(lingering)] == [
        ("SuccessCriteriaMet", "SuccessPolicy"),
        ("Complete", "SuccessPolicy"),
    ]
    waited = _stamp(lingering, "Complete") - _stamp(lingering, "SuccessCriteriaMet")
    assert waited.total_seconds() >= 3, lingering["conditions"]
    assert (lingering["terminating"], lingering["active"], lingering["failed"]) == (0, 0, 0)

    # upstream's index sets compress only runs of three or more: {1, 2} is "1,2"
    _wait(kubectl, ns, "condition=failed", "job/pair")
    pair = _status(kubectl, ns, "pair")
    assert pair.get("failedIndexes") == "1,2"
    assert [c[:2] for c in _conditions(pair)] == [
        ("FailureTarget", "FailedIndexes"),
        ("Failed", "FailedIndexes"),
    ]
    # the retried pods count their index's failures so far (batch/v1 backoffLimitPerIndex)
    counts = sorted(
        (
            int(p["metadata"]["labels"][INDEX]),
            (p["metadata"].get("annotations") or {}).get(FAILURE_COUNT, ""),
        )
        for p in _pods(kubectl, ns, "pair")
    )
    assert counts == [(0, "0"), (1, "0"), (1, "1"), (2, "0"), (2, "1")]

    # batch/v1: spec.managedBy is immutable, and a domain-prefixed path
    flip = kubectl.run(
        "-n",
        ns,
        "patch",
        "job",
        "theirs",
        "--type=merge",
        "-p",
        '{"spec": {"managedBy": "kubernetes.io/job-controller"}}',
        check=False,
    )
    assert flip.returncode != 0
    assert 'spec.managedBy: Invalid value: "kubernetes.io/job-controller": field is immutable' in (
        flip.stderr
    )
    bad = kubectl.run(
        "apply",
        "-f",
        "-",
        input=json.dumps(_job(ns, "bad", "true", managedBy="other")),
        check=False,
    )
    assert bad.returncode != 0
    assert 'spec.managedBy: Invalid value: "other": must be a domain-prefixed path' in bad.stderr

    # upstream e2e "should recreate pods only after they have failed if pod replacement
    # policy is set to Failed": once replaced, the deleted pod counts as failed
    _wait(kubectl, ns, "jsonpath={.status.active}=1", "job/patient")
    patient = _status(kubectl, ns, "patient")
    assert (patient.get("failed"), patient.get("terminating")) == (1, 0)
