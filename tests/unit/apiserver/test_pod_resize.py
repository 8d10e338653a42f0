"""`pods/NAME/resize` (pure): what a resize may change, and upstream's refusals."""

from __future__ import annotations

import copy
from typing import Any

from reconciler.apiserver.pod_resize import resize_update
from reconciler.pod_qos import qos_class


def pod(**resources: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web"},
        "spec": {
            "containers": [{"name": "app", "image": "x", "resources": resources}],
            "restartPolicy": "Always",
        },
        "status": {"qosClass": qos_class({"containers": [{"resources": resources}]})},
    }


def resize(stored: dict[str, Any], **resources: Any) -> tuple[dict[str, Any], list[str]]:
    request = {"spec": {"containers": [{"name": "app", "resources": resources}]}}
    new, causes = resize_update(copy.deepcopy(stored), request)
    return new, [f"{c.field}: {c.message}" for c in causes]


BURSTABLE = pod(requests={"cpu": "100m"}, limits={"cpu": "200m", "memory": "64Mi"})


def test_resources_change_and_nothing_else() -> None:
    request = {
        "metadata": {"labels": {"sneaky": "yes"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "app",
                    "image": "other",
                    "resources": {
                        "requests": {"cpu": "150m"},
                        "limits": {"cpu": "300m", "memory": "96Mi"},
                    },
                    "resizePolicy": [
                        {"resourceName": "memory", "restartPolicy": "RestartContainer"}
                    ],
                }
            ],
        },
    }
    new, causes = resize_update(copy.deepcopy(BURSTABLE), request)
    assert causes == []
    container = new["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "300m", "memory": "96Mi"}
    assert container["resizePolicy"][0]["restartPolicy"] == "RestartContainer"
    assert container["image"] == "x" and new["spec"]["restartPolicy"] == "Always"
    assert "labels" not in new["metadata"]


def test_the_qos_class_may_not_change() -> None:
    _, causes = resize(
        BURSTABLE,
        requests={"cpu": "200m", "memory": "64Mi"},
        limits={"cpu": "200m", "memory": "64Mi"},
    )
    assert causes == [
        'spec: Invalid value: "Burstable": Pod QOS Class may not change as a result of resizing'
    ]
    best_effort = pod()
    _, causes = resize(best_effort, requests={"memory": "40Mi"})
    assert causes == [
        'spec: Invalid value: "BestEffort": Pod QOS Class may not change as a result of resizing'
    ]


def test_limits_stay_set_and_above_requests() -> None:
    _, causes = resize(BURSTABLE, requests={"cpu": "100m"}, limits={"cpu": "200m"})
    assert causes == [
        "spec.containers[0].resources.limits[memory]: Forbidden: resource limits cannot be removed"
    ]
    _, causes = resize(
        BURSTABLE, requests={"cpu": "500m"}, limits={"cpu": "300m", "memory": "64Mi"}
    )
    assert causes == [
        'spec.containers[0].resources.requests: Invalid value: "500m": must be less than or '
        "equal to cpu limit of 300m"
    ]
    storage = pod(limits={"cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi"})
    _, causes = resize(storage, limits={"cpu": "1", "memory": "1Gi", "ephemeral-storage": "2Gi"})
    assert causes == ["spec: Forbidden: only cpu and memory resources are mutable"]


def test_qos_compares_quantities_by_value() -> None:
    same = {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "0.5", "memory": "1024Mi"},
    }
    assert qos_class({"containers": [{"resources": same}]}) == "Guaranteed"
    init_unlimited = {"containers": [{"resources": same}], "initContainers": [{"resources": {}}]}
    assert qos_class(init_unlimited) == "Burstable"
    assert qos_class({"containers": [{}]}) == "BestEffort"
