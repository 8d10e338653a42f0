"""nodefit: does a pod fit a node, and if not, which reason the scheduler would give."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.controllers.nodefit import (
    AFFINITY_MISMATCH,
    fits,
    node_affinity_matches,
    resources_fit,
    tolerates,
    untolerated_taint,
)


def node(
    name: str = "n1",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, Any]] | None = None,
    unschedulable: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}
            }
        }
    }


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    out: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        out["values"] = list(values)
    return out


GPU = {"key": "gpu", "value": "a100", "effect": "NoSchedule"}
CONTROL_PLANE = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("spec", "the_node", "reason"),
    [
        ({}, node(), None),
        ({"nodeName": "n1"}, node(), None),
        ({"nodeName": "n2"}, node(), "node(s) didn't match the requested node name"),
        ({}, node(unschedulable=True), "node(s) were unschedulable"),
        (
            {"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}]},
            node(unschedulable=True),
            None,
        ),
        ({"nodeSelector": {"disk": "ssd"}}, node(labels={"disk": "ssd"}), None),
        ({"nodeSelector": {"disk": "ssd"}}, node(labels={"disk": "hdd"}), AFFINITY_MISMATCH),
        ({}, node(taints=[GPU]), "node(s) had untolerated taint {gpu: a100}"),
        (
            {},
            node(taints=[CONTROL_PLANE]),
            "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",
        ),
        ({}, node(taints=[{"key": "soft", "effect": "PreferNoSchedule"}]), None),
        # kube-scheduler's filter order decides the reason when several checks fail:
        # NodeUnschedulable, NodeName, TaintToleration, then NodeAffinity.
        ({"nodeName": "n2"}, node(unschedulable=True), "node(s) were unschedulable"),
        (
            {"nodeSelector": {"disk": "ssd"}},
            node(taints=[GPU]),
            "node(s) had untolerated taint {gpu: a100}",
        ),
        ({"nodeName": "n2"}, node(taints=[GPU]), "node(s) didn't match the requested node name"),
    ],
)
def test_fits(spec: dict[str, Any], the_node: dict[str, Any], reason: str | None) -> None:
    assert fits(spec, the_node) == reason


@pytest.mark.parametrize(
    ("terms", "labels", "matches"),
    [
        ([{"matchExpressions": [expr("zone", "In", "a", "b")]}], {"zone": "b"}, True),
        ([{"matchExpressions": [expr("zone", "In", "a")]}], {"zone": "b"}, False),
        ([{"matchExpressions": [expr("zone", "NotIn", "a")]}], {}, True),
        ([{"matchExpressions": [expr("zone", "Exists")]}], {"zone": ""}, True),
        ([{"matchExpressions": [expr("zone", "DoesNotExist")]}], {"zone": "a"}, False),
        ([{"matchExpressions": [expr("cores", "Gt", "4")]}], {"cores": "8"}, True),
        ([{"matchExpressions": [expr("cores", "Lt", "4")]}], {"cores": "8"}, False),
        ([{"matchExpressions": [expr("cores", "Gt", "4")]}], {"cores": "many"}, False),
        # terms are ORed, expressions within a term ANDed
        (
            [
                {"matchExpressions": [expr("zone", "In", "a"), expr("disk", "Exists")]},
                {"matchExpressions": [expr("zone", "In", "b")]},
            ],
            {"zone": "a"},
            False,
        ),
        (
            [
                {"matchExpressions": [expr("zone", "In", "a")]},
                {"matchFields": [expr("metadata.name", "In", "n1")]},
            ],
            {},
            True,
        ),
        ([{"matchFields": [expr("metadata.name", "In", "n2")]}], {}, False),
        ([{"matchFields": [expr("metadata.name", "NotIn", "n2")]}], {}, True),
        ([{}], {}, False),  # an empty term matches no node
    ],
)
def test_required_node_affinity(
    terms: list[dict[str, Any]], labels: dict[str, str], matches: bool
) -> None:
    assert node_affinity_matches(required(*terms), node(labels=labels)) is matches


def test_node_selector_and_affinity_must_both_match() -> None:
    spec = {**required({"matchExpressions": [expr("zone", "In", "a")]}), "nodeSelector": {"d": "1"}}
    assert node_affinity_matches(spec, node(labels={"zone": "a", "d": "1"}))
    assert not node_affinity_matches(spec, node(labels={"zone": "a"}))


@pytest.mark.parametrize(
    ("toleration", "taint", "tolerated"),
    [
        ({"key": "gpu", "operator": "Equal", "value": "a100"}, GPU, True),
        ({"key": "gpu", "value": "a100"}, GPU, True),  # no operator means Equal
        ({"key": "gpu", "operator": "Equal", "value": "h100"}, GPU, False),
        ({"key": "gpu", "operator": "Exists"}, GPU, True),
        ({"key": "gpu", "operator": "Exists", "effect": "NoExecute"}, GPU, False),
        ({"operator": "Exists"}, GPU, True),  # empty key + Exists tolerates everything
        ({"operator": "Exists", "effect": "NoExecute"}, GPU, False),
        ({"operator": "Equal", "value": "a100"}, GPU, True),  # empty key matches any key
        ({"key": "gpu", "operator": "Bogus", "value": "a100"}, GPU, False),
        ({"key": "other", "operator": "Exists"}, GPU, False),
        (
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"},
            CONTROL_PLANE,
            True,
        ),
    ],
)
def test_tolerates(toleration: dict[str, Any], taint: dict[str, Any], tolerated: bool) -> None:
    assert tolerates([toleration], taint) is tolerated


def test_untolerated_taint_skips_preferences_and_reports_the_first() -> None:
    soft = {"key": "soft", "effect": "PreferNoSchedule"}
    evict = {"key": "evict", "effect": "NoExecute"}
    assert untolerated_taint([], [soft, evict, GPU]) == evict
    assert untolerated_taint([{"key": "evict", "operator": "Exists"}], [soft, evict, GPU]) == GPU
    assert untolerated_taint([{"operator": "Exists"}], [soft, evict, GPU]) is None


def pod(cpu: str = "0", memory: str = "0", **spec: Any) -> dict[str, Any]:
    return {"containers": [{"resources": {"requests": {"cpu": cpu, "memory": memory}}}], **spec}


def init(cpu: str, memory: str = "0", sidecar: bool = False) -> dict[str, Any]:
    c: dict[str, Any] = {"resources": {"requests": {"cpu": cpu, "memory": memory}}}
    if sidecar:
        c["restartPolicy"] = "Always"
    return c


ALLOCATABLE = {"cpu": "2", "memory": "1Gi", "pods": "3"}


@pytest.mark.parametrize(
    ("spec", "placed", "reason"),
    [
        (pod("1", "512Mi"), [], None),
        (pod("1", "512Mi"), [pod("1")], None),
        (pod("1500m"), [pod("1")], "Insufficient cpu"),
        (pod("0", "600Mi"), [pod("0", "500Mi")], "Insufficient memory"),
        (pod(), [pod(), pod(), pod()], "Too many pods"),
        (pod(), [pod(), pod()], None),
        # an init container runs alone: the larger of it and the app containers counts
        (pod("500m", initContainers=[init("2")]), [], None),
        (pod("500m", initContainers=[init("2500m")]), [], "Insufficient cpu"),
        # a sidecar keeps running: it adds to the app containers ...
        (pod("1500m", initContainers=[init("600m", sidecar=True)]), [], "Insufficient cpu"),
        # ... and to every init container started after it
        (
            pod("100m", initContainers=[init("1", sidecar=True), init("1500m")]),
            [],
            "Insufficient cpu",
        ),
        (pod("1500m", overhead={"cpu": "600m"}), [], "Insufficient cpu"),
        (pod("1500m", overhead={"cpu": "500m"}), [], None),
    ],
)
def test_resources_fit(
    spec: dict[str, Any], placed: list[dict[str, Any]], reason: str | None
) -> None:
    assert resources_fit(spec, ALLOCATABLE, placed) == reason
