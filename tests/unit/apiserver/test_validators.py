"""The API server's validators see only the definitions a kind reaches, and judge alike."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.apiserver.validators import KindValidators, reachable
from reconciler.schema import definitions
from reconciler.schema.validation import DefinitionValidators

JSONDict = dict[str, Any]

DEFS = definitions.load(strict=True)
NAMES = {(g.api_version, g.kind): name for g, name in DEFS.kinds().items()}
POD_SPEC: JSONDict = {
    "containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]
}

CASES: list[tuple[str, str, JSONDict]] = [
    (
        "apps/v1",
        "Deployment",
        {"metadata": {"name": "d"}, "spec": {"selector": {}, "template": {"spec": POD_SPEC}}},
    ),
    (
        "apps/v1",
        "Deployment",
        {"metadata": {"name": "d"}, "spec": {"replicas": "three", "template": {}}},
    ),
    (
        "apps/v1",
        "Deployment",
        {"metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [{"nme": "x"}]}}}},
    ),
    ("v1", "Pod", {"metadata": {"name": "p", "labels": {"a": 1}}, "spec": POD_SPEC}),
    (
        "v1",
        "Pod",
        {
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": "x"}]}]},
        },
    ),
    (
        "v1",
        "Service",
        {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80, "targetPort": "http"}]}},
    ),
    (
        "v1",
        "Service",
        {"metadata": {"name": "s"}, "spec": {"ports": [{"port": "80"}], "bogus": True}},
    ),
    ("v1", "ConfigMap", {"metadata": {"name": "c"}, "data": {"k": 1}}),
    (
        "discovery.k8s.io/v1",
        "EndpointSlice",
        {"metadata": {"name": "e"}, "addressType": "IPv4", "endpoints": [{}]},
    ),
]


@pytest.fixture(scope="module")
def both() -> tuple[KindValidators, DefinitionValidators]:
    return KindValidators(DEFS), DefinitionValidators(DEFS)


@pytest.mark.parametrize(("api_version", "kind", "obj"), CASES)
def test_the_same_verdicts_as_with_every_definition(
    both: tuple[KindValidators, DefinitionValidators], api_version: str, kind: str, obj: JSONDict
) -> None:
    ours, every = both
    name = NAMES[(api_version, kind)]
    body = {"apiVersion": api_version, "kind": kind, **obj}
    assert ours.for_definition(name).errors(body) == every.for_definition(name).errors(body)


def test_only_what_the_kind_reaches() -> None:
    config_map = reachable(DEFS.defs, NAMES[("v1", "ConfigMap")])
    assert NAMES[("v1", "ConfigMap")] in config_map and len(config_map) < 10
    deployment = reachable(DEFS.defs, NAMES[("apps/v1", "Deployment")])
    assert NAMES[("v1", "ConfigMap")] not in deployment
    assert 50 < len(deployment) < len(DEFS.defs) / 4
    pod_spec = next(name for name in DEFS.defs if name.endswith(".PodSpec"))
    assert pod_spec in deployment
