"""PatchMeta: navigating the upstream schemas for strategic-merge patch metadata."""

from __future__ import annotations

import dataclasses

import pytest

from reconciler.schema.definitions import Definitions, load
from reconciler.schema.patchmeta import PatchMeta

DEFS = load()
DEPLOYMENT = PatchMeta.for_definition(DEFS, "io.k8s.api.apps.v1.Deployment")
POD_SPEC = DEPLOYMENT.field("spec").field("template").field("spec")
CONTAINER = POD_SPEC.field("containers").item()

MERGE = frozenset({"merge"})


@pytest.mark.parametrize(
    ("meta", "strategy", "merge_key", "list_type"),
    [
        pytest.param(POD_SPEC.field("containers"), MERGE, "name", "map", id="containers"),
        pytest.param(POD_SPEC.field("initContainers"), MERGE, "name", "map", id="initContainers"),
        pytest.param(CONTAINER.field("env"), MERGE, "name", "map", id="env"),
        pytest.param(CONTAINER.field("ports"), MERGE, "containerPort", "map", id="ports"),
        pytest.param(CONTAINER.field("volumeMounts"), MERGE, "mountPath", "map", id="mounts"),
        pytest.param(
            POD_SPEC.field("volumes"),
            frozenset({"merge", "retainKeys"}),
            "name",
            "map",
            id="volumes-merge-retainKeys",
        ),
        pytest.param(POD_SPEC.field("tolerations"), frozenset(), None, "atomic", id="tolerations"),
        pytest.param(CONTAINER.field("args"), frozenset(), None, "atomic", id="args"),
        pytest.param(
            DEPLOYMENT.field("metadata").field("finalizers"), MERGE, None, "set", id="finalizers"
        ),
        pytest.param(
            DEPLOYMENT.field("spec").field("strategy"),
            frozenset({"retainKeys"}),
            None,
            None,
            id="deployment-strategy",
        ),
        pytest.param(
            PatchMeta.for_definition(DEFS, "io.k8s.api.policy.v1.PodDisruptionBudget")
            .field("spec")
            .field("selector"),
            frozenset({"replace"}),
            None,
            None,
            id="pdb-selector-replace",
        ),
        pytest.param(
            PatchMeta.for_definition(DEFS, "io.k8s.api.core.v1.Service")
            .field("spec")
            .field("ports"),
            MERGE,
            "port",
            "map",
            id="service-ports",
        ),
    ],
)
def test_field_metadata(
    meta: PatchMeta,
    strategy: frozenset[str],
    merge_key: str | None,
    list_type: str | None,
) -> None:
    assert meta.strategy == strategy
    assert meta.merge_key == merge_key
    assert meta.list_type == list_type


def test_list_map_keys_are_read() -> None:
    assert CONTAINER.field("ports").list_map_keys == ("containerPort", "protocol")
    assert POD_SPEC.field("tolerations").list_map_keys == ()


def test_refs_resolve_to_their_definition() -> None:
    assert DEPLOYMENT.definition == "io.k8s.api.apps.v1.Deployment"
    assert DEPLOYMENT.field("metadata").definition == (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    )
    assert CONTAINER.definition == "io.k8s.api.core.v1.Container"
    assert DEPLOYMENT.field("spec").field("strategy").definition == (
        "io.k8s.api.apps.v1.DeploymentStrategy"
    )


def test_map_values_descend_through_additional_properties() -> None:
    limits = CONTAINER.field("resources").field("limits")
    assert limits.field("cpu").definition == "io.k8s.apimachinery.pkg.api.resource.Quantity"
    # Any key of a map leads to the same value schema.
    assert limits.field("memory") is limits.field("cpu")
    labels = DEPLOYMENT.field("metadata").field("labels")
    assert labels.field("app.kubernetes.io/name").strategy == frozenset()


def test_the_strategy_belongs_to_the_field_not_to_the_referenced_type() -> None:
    # DeploymentStrategy reached through `spec.strategy` is retainKeys; its own fields are not.
    strategy = DEPLOYMENT.field("spec").field("strategy")
    assert strategy.field("rollingUpdate").strategy == frozenset()
    assert strategy.field("rollingUpdate").definition == (
        "io.k8s.api.apps.v1.RollingUpdateDeployment"
    )


@pytest.mark.parametrize(
    "meta",
    [
        pytest.param(DEPLOYMENT.field("nope"), id="unknown-field"),
        pytest.param(DEPLOYMENT.field("spec").field("replicas").field("x"), id="below-a-scalar"),
        pytest.param(POD_SPEC.field("containers").field("name"), id="field-of-an-array"),
        pytest.param(CONTAINER.item(), id="item-of-an-object"),
        pytest.param(PatchMeta.empty().field("a").item().field("b"), id="below-empty"),
    ],
)
def test_unknown_paths_give_the_empty_meta(meta: PatchMeta) -> None:
    assert meta == PatchMeta.empty()
    assert meta.strategy == frozenset()
    assert meta.merge_key is None
    assert meta.list_type is None
    assert meta.definition is None


def test_navigation_is_cached() -> None:
    again = PatchMeta.for_definition(DEFS, "io.k8s.api.apps.v1.Deployment")
    assert again is DEPLOYMENT
    path = again.field("spec").field("template").field("spec").field("containers")
    assert path is POD_SPEC.field("containers")
    assert path.item() is CONTAINER
    # The same definition reached from another kind shares its node.
    pod = PatchMeta.for_definition(DEFS, "io.k8s.api.core.v1.Pod")
    assert pod.field("spec").field("containers").item().field("env") is CONTAINER.field("env")


def test_unknown_names_do_not_grow_the_cache() -> None:
    for index in range(50):
        assert DEPLOYMENT.field(f"made-up-{index}") is PatchMeta.empty()
    assert "made-up-0" not in DEPLOYMENT._node._fields


def test_patch_meta_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEPLOYMENT.merge_key = "name"  # type: ignore[misc]


def test_unknown_definition_raises_key_error() -> None:
    with pytest.raises(KeyError, match=r"io\.k8s\.api\.apps\.v1\.Nope"):
        PatchMeta.for_definition(DEFS, "io.k8s.api.apps.v1.Nope")


def test_single_ref_all_of_and_comma_strategies_are_understood() -> None:
    defs = Definitions(
        version="0.0.0",
        strict=False,
        defs={
            "test.Outer": {
                "type": "object",
                "properties": {
                    "wrapped": {
                        "allOf": [{"$ref": "#/$defs/test.Inner"}],
                        "x-kubernetes-patch-strategy": "retainKeys, merge",
                        "x-kubernetes-patch-merge-key": "id",
                    },
                    "dangling": {"$ref": "#/$defs/test.Missing"},
                },
            },
            "test.Inner": {
                "type": "array",
                "items": {"type": "object", "properties": {"id": {"type": "string"}}},
            },
        },
    )
    outer = PatchMeta.for_definition(defs, "test.Outer")
    wrapped = outer.field("wrapped")
    assert wrapped.strategy == frozenset({"merge", "retainKeys"})
    assert wrapped.merge_key == "id"
    assert wrapped.definition == "test.Inner"
    assert wrapped.item().field("id").strategy == frozenset()
    assert wrapped.item().field("id").field("x") is PatchMeta.empty()
    assert outer.field("dangling").field("x") is PatchMeta.empty()
