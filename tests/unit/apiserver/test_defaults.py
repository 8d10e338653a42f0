"""Defaulting on write (pure): a Job's back-off limit and pod replacement policy, as
upstream's `SetDefaults_Job`."""

from __future__ import annotations

from typing import Any

from reconciler.apiserver.defaults import apply_defaults


def defaulted_job(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"spec": {"template": {"spec": {"containers": []}}, **spec}}
    apply_defaults("batch", "Job", obj)
    return dict(obj["spec"])


def test_a_job_replaces_terminating_pods_and_retries_six_times_by_default() -> None:
    spec = defaulted_job()
    assert (spec["backoffLimit"], spec["podReplacementPolicy"]) == (6, "TerminatingOrFailed")
    assert (spec["completions"], spec["parallelism"], spec["completionMode"]) == (
        1,
        1,
        "NonIndexed",
    )


def test_a_pod_failure_policy_waits_for_failed_pods() -> None:
    assert defaulted_job(podFailurePolicy={"rules": []})["podReplacementPolicy"] == "Failed"
    given = defaulted_job(podReplacementPolicy="Failed")
    assert given["podReplacementPolicy"] == "Failed"


def test_a_limit_per_index_leaves_the_job_limit_at_max_int32() -> None:
    spec = defaulted_job(completionMode="Indexed", completions=3, backoffLimitPerIndex=1)
    assert spec["backoffLimit"] == 2147483647
    assert defaulted_job(backoffLimitPerIndex=1, backoffLimit=4)["backoffLimit"] == 4


def test_a_replication_controller_takes_its_selector_and_labels_from_its_template() -> None:
    rc: dict[str, Any] = {
        "metadata": {"name": "web"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            }
        },
    }
    apply_defaults("", "ReplicationController", rc)
    assert rc["spec"]["selector"] == {"app": "web"}
    assert rc["metadata"]["labels"] == {"app": "web"}
    assert rc["spec"]["replicas"] == 1
    assert rc["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    # what the user set is kept
    own: dict[str, Any] = {
        "metadata": {"labels": {"team": "a"}},
        "spec": {"selector": {"app": "web", "tier": "1"}, "replicas": 0, "template": {}},
    }
    apply_defaults("", "ReplicationController", own)
    assert own["spec"]["selector"] == {"app": "web", "tier": "1"}
    assert own["metadata"]["labels"] == {"team": "a"} and own["spec"]["replicas"] == 0
