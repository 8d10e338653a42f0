"""LimitRanges (pure): the range's own defaults, container defaults with the annotation that
says which were set, and every bound with upstream's messages."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.limit_ranges import ANNOTATION, admit_claim, admit_pod, default_item

JSONDict = dict[str, Any]


def limit_range(*items: JSONDict) -> JSONDict:
    return {"metadata": {"name": "limits"}, "spec": {"limits": list(items)}}


def pod(*containers: JSONDict, init: list[JSONDict] | None = None) -> JSONDict:
    spec: JSONDict = {"containers": list(containers)}
    if init:
        spec["initContainers"] = init
    return {"metadata": {"name": "p"}, "spec": spec}


def container(name: str = "app", **resources: JSONDict) -> JSONDict:
    return {"name": name, "image": "x", "resources": dict(resources)}


def test_an_items_own_defaults_as_upstream() -> None:
    item: JSONDict = {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}
    default_item(item)
    assert item["default"] == {"cpu": "2"}  # a missing default limit is the max
    assert item["defaultRequest"] == {"cpu": "2", "memory": "64Mi"}  # else default, else min
    kept: JSONDict = {
        "type": "Container",
        "default": {"cpu": "1"},
        "defaultRequest": {"cpu": "500m"},
    }
    default_item(kept)
    assert kept["defaultRequest"] == {"cpu": "500m"}
    other: JSONDict = {"type": "Pod", "max": {"cpu": "4"}}
    default_item(other)
    assert other == {"type": "Pod", "max": {"cpu": "4"}}


def test_containers_get_defaults_and_the_annotation_says_which() -> None:
    ranges = [
        limit_range(
            {
                "type": "Container",
                "default": {"cpu": "500m", "memory": "256Mi"},
                "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
            }
        )
    ]
    body = pod(
        container("app"),
        container("side", limits={"cpu": "1"}, requests={"cpu": "1"}),
        init=[container("init")],
    )
    assert admit_pod(body, ranges) == []
    app = body["spec"]["containers"][0]["resources"]
    assert app == {
        "limits": {"cpu": "500m", "memory": "256Mi"},
        "requests": {"cpu": "100m", "memory": "128Mi"},
    }
    side = body["spec"]["containers"][1]["resources"]
    assert side == {
        "limits": {"cpu": "1", "memory": "256Mi"},
        "requests": {"cpu": "1", "memory": "128Mi"},
    }
    assert body["metadata"]["annotations"][ANNOTATION] == (
        "LimitRanger plugin set: cpu, memory request for init container init; cpu, memory "
        "limit for init container init; cpu, memory request for container app; cpu, memory "
        "limit for container app; memory request for container side; memory limit for "
        "container side"
    )
    untouched = pod(container("app"))
    assert admit_pod(untouched, [limit_range({"type": "Pod", "max": {"cpu": "4"}})]) != []
    assert "annotations" not in untouched["metadata"]


@pytest.mark.parametrize(
    ("item", "resources", "message"),
    [
        (
            {"type": "Container", "min": {"cpu": "100m"}},
            {"requests": {"cpu": "50m"}},
            "minimum cpu usage per Container is 100m, but request is 50m",
        ),
        (
            {"type": "Container", "min": {"cpu": "100m"}},
            {},
            "minimum cpu usage per Container is 100m.  No request is specified",
        ),
        (
            {"type": "Container", "max": {"memory": "1Gi"}},
            {"limits": {"memory": "2Gi"}},
            "maximum memory usage per Container is 1Gi, but limit is 2Gi",
        ),
        (
            {"type": "Container", "max": {"memory": "1Gi"}},
            {"requests": {"memory": "512Mi"}},
            "maximum memory usage per Container is 1Gi.  No limit is specified",
        ),
        (
            {"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}},
            {"limits": {"cpu": "1"}, "requests": {"cpu": "250m"}},
            "cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000",
        ),
        (
            {"type": "Pod", "max": {"cpu": "1"}},
            {"limits": {"cpu": "600m"}, "requests": {"cpu": "600m"}},
            "maximum cpu usage per Pod is 1, but limit is 1200m",
        ),
    ],
)
def test_bounds(item: JSONDict, resources: JSONDict, message: str) -> None:
    body = pod(container("a", **resources), container("b", **resources))
    errors = admit_pod(body, [limit_range(item)])
    assert errors[0] == message


def test_claims_are_held_to_their_request() -> None:
    ranges = [
        limit_range(
            {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "5Gi"}}
        )
    ]

    def claim(size: str) -> JSONDict:
        return {"spec": {"resources": {"requests": {"storage": size}}}}

    assert admit_claim(claim("2Gi"), ranges) == []
    assert admit_claim(claim("500Mi"), ranges) == [
        "minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"
    ]
    assert admit_claim(claim("10Gi"), ranges) == [
        "maximum storage usage per PersistentVolumeClaim is 5Gi, but request is 10Gi"
    ]
