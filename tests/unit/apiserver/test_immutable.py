"""Fields an update may not change (pure), in the apiserver's words."""

from __future__ import annotations

from typing import Any

from reconciler.apiserver.immutable import immutable_errors


def messages(group: str, kind: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in immutable_errors(group, kind, old, new)]


def test_selectors_job_templates_and_statefulset_specs() -> None:
    old = {"spec": {"selector": {"matchLabels": {"app": "web"}}, "replicas": 1}}
    new = {"spec": {"selector": {"matchLabels": {"app": "api"}}, "replicas": 3}}
    assert messages("apps", "Deployment", old, new) == [
        'spec.selector: Invalid value: {"matchLabels":{"app":"api"}}: field is immutable'
    ]
    assert messages("apps", "Deployment", old, {"spec": {**old["spec"], "replicas": 5}}) == []
    job = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "a"}]}}}}
    changed = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "b"}]}}}}
    assert messages("batch", "Job", job, changed)[0].startswith("spec.template: Invalid value: ")
    assert messages("batch", "Job", job, changed)[0].endswith(": field is immutable")
    sts = {"spec": {"serviceName": "web", "replicas": 1, "template": {}}}
    assert messages("apps", "StatefulSet", sts, {"spec": {**sts["spec"], "replicas": 4}}) == []
    assert messages("apps", "StatefulSet", sts, {"spec": {**sts["spec"], "serviceName": "x"}}) == [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', "
        "'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' "
        "and 'minReadySeconds' are forbidden"
    ]


def test_a_jobs_manager_is_kept() -> None:
    old = {"spec": {"managedBy": "example.com/other", "parallelism": 1}}
    new = {"spec": {"managedBy": "kubernetes.io/job-controller", "parallelism": 1}}
    assert messages("batch", "Job", old, new) == [
        'spec.managedBy: Invalid value: "kubernetes.io/job-controller": field is immutable'
    ]
    assert messages("batch", "Job", {"spec": {}}, {"spec": {"managedBy": "example.com/x"}}) == [
        'spec.managedBy: Invalid value: "example.com/x": field is immutable'
    ]
    scaled = {"spec": {**old["spec"], "parallelism": 3}}
    assert messages("batch", "Job", old, scaled) == []


def test_an_immutable_config_map_keeps_its_data_and_its_mark() -> None:
    old = {"immutable": True, "data": {"k": "v"}}
    assert messages("", "ConfigMap", old, {"immutable": True, "data": {"k": "w"}}) == [
        "data: Forbidden: field is immutable when `immutable` is set"
    ]
    assert messages("", "Secret", old, {"data": {"k": "v"}}) == [
        "immutable: Forbidden: field is immutable when `immutable` is set"
    ]
    assert messages("", "ConfigMap", {"data": {"k": "v"}}, {"data": {"k": "w"}}) == []


def test_a_jobs_completions_and_policies_are_fixed_but_elastic_indexed_jobs_scale() -> None:
    plain = {"spec": {"completions": 3, "parallelism": 3, "completionMode": "NonIndexed"}}
    more = {"spec": {**plain["spec"], "completions": 5, "parallelism": 5}}
    assert messages("batch", "Job", plain, more) == [
        "spec.completions: Invalid value: 5: field is immutable"
    ]
    indexed = {"spec": {"completions": 3, "parallelism": 3, "completionMode": "Indexed"}}
    scaled = {"spec": {**indexed["spec"], "completions": 5, "parallelism": 5}}
    assert messages("batch", "Job", indexed, scaled) == []
    alone = {"spec": {**indexed["spec"], "completions": 5}}
    assert messages("batch", "Job", indexed, alone) == [
        "spec.completions: Invalid value: 5: can only be modified in tandem with spec.parallelism"
    ]
    policy = {"spec": {"podFailurePolicy": {"rules": []}, "backoffLimitPerIndex": 1}}
    changed = {
        "spec": {
            "podFailurePolicy": {"rules": [{"action": "Ignore"}]},
            "backoffLimitPerIndex": 2,
            "successPolicy": {"rules": [{"succeededCount": 1}]},
        }
    }
    assert [m.split(":")[0] for m in messages("batch", "Job", policy, changed)] == [
        "spec.podFailurePolicy",
        "spec.backoffLimitPerIndex",
        "spec.successPolicy",
    ]


def test_a_statefulset_selector_change_is_the_general_refusal() -> None:
    old = {"spec": {"selector": {"matchLabels": {"app": "db"}}, "serviceName": "db"}}
    new = {"spec": {"selector": {"matchLabels": {"app": "other"}}, "serviceName": "db"}}
    assert messages("apps", "StatefulSet", old, new) == [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', "
        "'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' "
        "and 'minReadySeconds' are forbidden"
    ]
