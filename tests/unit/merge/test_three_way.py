"""three_way_patch and the last-applied annotation: kubectl's exact bytes and patches.

The expected values are what kubectl 1.32 writes and sends (checked against the real kubectl
by `tests/e2e/test_merge_conformance.py`); the quirks kept on purpose are named in the ids.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from reconciler.merge import PatchError, apply_merge_patch, apply_strategic_merge_patch
from reconciler.merge.three_way import (
    LAST_APPLIED,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    apply_three_way,
    desired_with_annotation,
    go_json,
    last_applied_annotation,
    last_applied_of,
    three_way_patch,
)
from reconciler.schema.definitions import load
from reconciler.schema.patchmeta import PatchMeta

JSON = dict[str, Any]
DEFS = load()
DEPLOYMENT = PatchMeta.for_definition(DEFS, "io.k8s.api.apps.v1.Deployment")
SERVICE = PatchMeta.for_definition(DEFS, "io.k8s.api.core.v1.Service")
CONFIGMAP = PatchMeta.for_definition(DEFS, "io.k8s.api.core.v1.ConfigMap")
PDB = PatchMeta.for_definition(DEFS, "io.k8s.api.policy.v1.PodDisruptionBudget")


# --------------------------------------------------------------------------------------------
# the annotation


def test_annotation_bytes_match_kubectl_for_awkward_strings() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "t", "namespace": "default"},
        "data": {
            "html": "<a href='x'>&amp;</a>",
            "u": "é 日本 \u2028\u2029 \U0001f600",
            "c": "\t\n\b\f\x07\x7f",
            "q": 'say "hi" \\',
        },
    }
    # Read back from an object `kubectl apply` (v1.32) created.
    assert last_applied_annotation(obj) == (
        '{"apiVersion":"v1","data":{"c":"\\t\\n\\b\\f\\u0007\x7f",'
        '"html":"\\u003ca href=\'x\'\\u003e\\u0026amp;\\u003c/a\\u003e",'
        '"q":"say \\"hi\\" \\\\","u":"é 日本 \\u2028\\u2029 😀"},"kind":"ConfigMap",'
        '"metadata":{"annotations":{},"name":"t","namespace":"default"}}\n'
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(2, "2", id="int"),
        pytest.param(2.0, "2", id="integral-float-is-int64-to-kubectl"),
        pytest.param(0.5, "0.5", id="fraction"),
        pytest.param(-1.25, "-1.25", id="negative"),
        pytest.param(1e-7, "1e-7", id="small-exponent-without-leading-zero"),
        pytest.param(1.5e-7, "1.5e-7", id="small-with-digits"),
        pytest.param(0.000001, "0.000001", id="smallest-plain"),
        pytest.param(1e20 + 0.5, "100000000000000000000", id="large-plain"),
        pytest.param(1.5e21, "1.5e+21", id="large-exponent"),
        pytest.param(10**21, "1e+21", id="int-beyond-int64-is-float64"),
        pytest.param(2**63 - 1, "9223372036854775807", id="int64-max"),
        pytest.param(True, "true", id="bool"),
        pytest.param(None, "null", id="null"),
        pytest.param("\ud800x", '"\ufffdx"', id="lone-surrogate-reads-as-replacement"),
        pytest.param([1.0, {"b": 1, "a": [0.5]}], '[1,{"a":[0.5],"b":1}]', id="nested"),
    ],
)
def test_go_json_numbers_and_strings(value: Any, text: str) -> None:
    assert go_json(value) == text + "\n"


def test_go_json_refuses_nan() -> None:
    with pytest.raises(PatchError, match="NaN"):
        go_json({"x": float("nan")})


def test_annotation_drops_itself_and_keeps_other_annotations() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "annotations": {"team": "a", LAST_APPLIED: "old"}},
    }
    before = copy.deepcopy(obj)
    text = last_applied_annotation(obj)
    assert json.loads(text)["metadata"]["annotations"] == {"team": "a"}
    assert obj == before


@pytest.mark.parametrize("annotations", [None, {}], ids=["null", "empty"])
def test_an_object_without_annotations_gets_an_empty_map(annotations: Any) -> None:
    obj: JSON = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    if annotations is not None:
        obj["metadata"]["annotations"] = annotations
    assert '"metadata":{"annotations":{},"name":"x"}' in last_applied_annotation(obj)


def test_desired_with_annotation_carries_its_own_configuration() -> None:
    desired = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}}
    modified = desired_with_annotation(desired)
    assert modified["metadata"]["annotations"] == {LAST_APPLIED: last_applied_annotation(desired)}
    assert "annotations" not in desired["metadata"]
    assert last_applied_of(modified) == {**desired, "metadata": {"name": "x", "annotations": {}}}


@pytest.mark.parametrize("text", ["", "not json", "[1]", "null"])
def test_unusable_annotations_count_as_never_applied(text: str) -> None:
    assert last_applied_of({"metadata": {"annotations": {LAST_APPLIED: text}}}) is None


# --------------------------------------------------------------------------------------------
# strategic merge patch (built-in kinds)


def deployment(*containers: JSON, **spec: Any) -> JSON:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {**spec, "template": {"spec": {"containers": list(containers)}}},
    }


def live_from(last: JSON, edit: Any = None) -> JSON:
    """`last` as the server holds it after an apply, then changed by someone else."""
    live = desired_with_annotation(last)
    live["metadata"]["resourceVersion"] = "7"
    live["status"] = {"observedGeneration": 1}
    if edit is not None:
        edit(live)
    return live


def spec_of(patch: JSON) -> Any:
    """The patch without the annotation it always carries when anything changed."""
    out = copy.deepcopy(patch)
    annotations = out.get("metadata", {}).get("annotations", {})
    annotations.pop(LAST_APPLIED, None)
    if not annotations:
        out.get("metadata", {}).pop("annotations", None)
    if out.get("metadata") == {}:
        out.pop("metadata")
    return out


def test_nothing_to_do_is_an_empty_patch() -> None:
    last = deployment({"name": "web", "image": "a"}, replicas=2)
    live = live_from(last, lambda o: o["spec"].update(paused=True))  # set by someone else
    assert three_way_patch(last_applied_of(live), last, live, DEPLOYMENT) == (
        {},
        STRATEGIC_MERGE_PATCH,
    )
    assert apply_three_way(last_applied_of(live), last, live, DEPLOYMENT) == live


def test_the_patch_sets_the_new_annotation() -> None:
    last = deployment({"name": "web", "image": "a"})
    desired = deployment({"name": "web", "image": "b"})
    live = live_from(last)
    patch, _ = three_way_patch(last, desired, live, DEPLOYMENT)
    assert patch["metadata"] == {"annotations": {LAST_APPLIED: last_applied_annotation(desired)}}


def test_removed_fields_go_and_others_fields_stay() -> None:
    env = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    last = deployment({"name": "web", "image": "a", "env": env}, replicas=2)
    desired = deployment({"name": "web", "image": "b", "env": env[:1]})

    def edit(live: JSON) -> None:
        live["spec"]["replicas"] = 3
        live["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "C"})

    live = live_from(last, edit)
    patch, content_type = three_way_patch(last_applied_of(live), desired, live, DEPLOYMENT)
    assert content_type == STRATEGIC_MERGE_PATCH
    assert spec_of(patch) == {
        "spec": {
            "replicas": None,
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "web"}],
                    "containers": [
                        {
                            "name": "web",
                            "image": "b",
                            "$setElementOrder/env": [{"name": "A"}],
                            "env": [{"name": "B", "$patch": "delete"}],
                        }
                    ],
                }
            },
        }
    }
    result = apply_three_way(last_applied_of(live), desired, live, DEPLOYMENT)
    web = result["spec"]["template"]["spec"]["containers"][0]
    assert web["image"] == "b"
    assert [e["name"] for e in web["env"]] == ["A", "C"]
    assert "replicas" not in result["spec"]  # declared before, not any more
    assert result["status"] == live["status"]


def test_first_apply_over_an_object_made_otherwise_removes_nothing() -> None:
    live = deployment({"name": "web", "image": "a"}, {"name": "side", "image": "s"})
    desired = deployment({"name": "web", "image": "b"})
    result = apply_three_way(None, desired, live, DEPLOYMENT)
    assert [c["name"] for c in result["spec"]["template"]["spec"]["containers"]] == [
        "web",
        "side",
    ]


def test_deletions_follow_changes_in_sorted_order() -> None:
    env = [{"name": n, "value": "1"} for n in ("D", "B", "A", "C")]
    last = deployment({"name": "web", "env": env})
    desired = deployment({"name": "web", "env": [env[0], {"name": "Z", "value": "z"}]})
    live = live_from(last)
    patch, _ = three_way_patch(last, desired, live, DEPLOYMENT)
    web = patch["spec"]["template"]["spec"]["containers"][0]
    assert web["env"] == [
        {"name": "Z", "value": "z"},
        {"name": "A", "$patch": "delete"},
        {"name": "B", "$patch": "delete"},
        {"name": "C", "$patch": "delete"},
    ]
    assert web["$setElementOrder/env"] == [{"name": "D"}, {"name": "Z"}]


def test_a_deletion_and_a_change_in_one_element_merge() -> None:
    last = deployment({"name": "web", "image": "a", "args": ["-x"], "command": ["run"]})
    desired = deployment({"name": "web", "image": "b", "command": ["run"]})
    live = live_from(last)
    patch, _ = three_way_patch(last, desired, live, DEPLOYMENT)
    assert patch["spec"]["template"]["spec"]["containers"] == [
        {"name": "web", "args": None, "image": "b"}
    ]


def test_retain_keys_for_a_strategy_switch() -> None:
    rolling = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
    last = deployment({"name": "web"}, strategy=rolling)
    desired = deployment({"name": "web"}, strategy={"type": "Recreate"})
    live = live_from(last)
    patch, _ = three_way_patch(last, desired, live, DEPLOYMENT)
    assert patch["spec"]["strategy"] == {
        "$retainKeys": ["type"],
        "rollingUpdate": None,
        "type": "Recreate",
    }
    result = apply_three_way(last, desired, live, DEPLOYMENT)
    assert result["spec"]["strategy"] == {"type": "Recreate"}


def test_explicit_null_in_the_manifest_deletes() -> None:
    last = deployment({"name": "web"}, replicas=2)
    desired = deployment({"name": "web"}, replicas=None)
    live = live_from(last)
    patch, _ = three_way_patch(last, desired, live, DEPLOYMENT)
    assert spec_of(patch) == {"spec": {"replicas": None}}


def finalizer_object(*names: str) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "default", "finalizers": list(names)},
    }


def test_finalizers_removed_by_value_sorted() -> None:
    last = finalizer_object("z/b", "a/c", "m/a")
    desired = finalizer_object("a/c")
    live = live_from(last, lambda o: o["metadata"]["finalizers"].append("other/keep"))
    patch, _ = three_way_patch(last, desired, live, CONFIGMAP)
    assert spec_of(patch) == {
        "metadata": {
            "$deleteFromPrimitiveList/finalizers": ["m/a", "z/b"],
            "$setElementOrder/finalizers": ["a/c"],
        }
    }
    result = apply_three_way(last, desired, live, CONFIGMAP)
    assert result["metadata"]["finalizers"] == ["a/c", "other/keep"]


def test_unsorted_unchanged_finalizers_still_send_an_order() -> None:
    # kubectl sorts the live list in place before comparing it with the manifest.
    last = finalizer_object("z/z", "a/a")
    live = live_from(last)
    patch, _ = three_way_patch(last, last, live, CONFIGMAP)
    assert patch == {"metadata": {"$setElementOrder/finalizers": ["z/z", "a/a"]}}


def test_a_replace_map_is_always_sent() -> None:
    # PodDisruptionBudget's selector has patch strategy `replace`: kubectl sends it whole in
    # every patch, so such objects are "configured" by each apply.
    last = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "x"}}},
    }
    live = live_from(last)
    patch, _ = three_way_patch(last, last, live, PDB)
    assert patch == {"spec": {"selector": {"matchLabels": {"app": "x"}}}}


def test_repeated_merge_keys_pair_up_as_kubectl_pairs_them() -> None:
    # Service ports merge by `port` alone, so TCP and UDP 80 share a key. kubectl sorts both
    # lists (reversing equal keys) and pairs the live http port with the new UDP port.
    ports = [
        {"name": "http", "port": 80, "targetPort": 8080},
        {"name": "https", "port": 443, "targetPort": 8443},
    ]
    last: JSON = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"ports": ports},
    }
    desired = copy.deepcopy(last)
    desired["spec"]["ports"].append({"name": "dns", "port": 80, "protocol": "UDP"})

    def defaults(live: JSON) -> None:
        for port in live["spec"]["ports"]:
            port["protocol"] = "TCP"

    live = live_from(last, defaults)
    patch, _ = three_way_patch(last, desired, live, SERVICE)
    assert spec_of(patch) == {
        "spec": {
            "$setElementOrder/ports": [{"port": 80}, {"port": 443}, {"port": 80}],
            "ports": [{"name": "http", "port": 80, "protocol": "UDP", "targetPort": 8080}],
        }
    }
    # The API server accepts the repeated key in the order list, and (as with kubectl) the
    # TCP port turns into UDP instead of a UDP port being added.
    result = apply_strategic_merge_patch(live, patch, SERVICE)
    assert [(p["port"], p["protocol"]) for p in result["spec"]["ports"]] == [
        (80, "UDP"),
        (443, "TCP"),
    ]


def test_inputs_are_not_changed() -> None:
    last = deployment({"name": "web", "image": "a", "env": [{"name": "A"}]})
    desired = deployment({"name": "web", "image": "b"})
    live = live_from(last, lambda o: o["spec"].update(replicas=3))
    before = copy.deepcopy((last, desired, live))
    three_way_patch(last, desired, live, DEPLOYMENT)
    apply_three_way(last, desired, live, DEPLOYMENT)
    assert (last, desired, live) == before


def test_a_list_element_without_its_merge_key_is_an_error() -> None:
    desired = deployment({"image": "a"})
    live = live_from(deployment({"name": "web"}))
    with pytest.raises(PatchError, match="merge key 'name'"):
        three_way_patch(None, desired, live, DEPLOYMENT)


# --------------------------------------------------------------------------------------------
# JSON merge patch (custom resources)


def gizmo(**spec: Any) -> JSON:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Gizmo",
        "metadata": {"name": "g", "namespace": "default"},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("last", "desired", "edit", "patch_spec", "result_spec"),
    [
        pytest.param(
            {"size": 1, "tags": ["a"]},
            {"size": 2, "tags": ["b"]},
            {"owner": "ops"},
            {"size": 2, "tags": ["b"]},
            {"size": 2, "tags": ["b"], "owner": "ops"},
            id="changes-win-others-stay",
        ),
        pytest.param(
            {"size": 1, "nested": {"a": 1, "b": 2}},
            {"size": 1, "nested": {"a": 1}},
            {"nested": {"c": 3}},
            {"nested": {"b": None}},
            {"size": 1, "nested": {"a": 1, "c": 3}},
            id="nested-deletion",
        ),
        pytest.param(
            {"size": 1},
            {"size": None},
            None,
            {"size": None},
            {},
            id="null-deletes",
        ),
        pytest.param(
            {"size": 1},
            {"size": 1, "fresh": {"x": None}},
            None,
            {"fresh": {"x": None}},
            {"size": 1, "fresh": {}},
            id="map-of-nulls-leaves-an-empty-map",
        ),
        pytest.param(
            {"size": 1},
            {"size": 1, "empty": {}},
            None,
            {"empty": {}},
            {"size": 1, "empty": {}},
            id="empty-map-is-a-value",
        ),
        pytest.param(
            {"items": [{"name": "x"}]},
            {"items": [{"name": "x", "tags": None}, None]},
            None,
            {"items": [{"name": "x"}, None]},
            {"items": [{"name": "x"}, None]},
            id="nulls-inside-added-lists-are-pruned",
        ),
        pytest.param(
            {"nested": {"a": 1}},
            {"nested": "flat"},
            None,
            {"nested": "flat"},
            {"nested": "flat"},
            id="type-change",
        ),
    ],
)
def test_custom_resources_use_json_merge(
    last: JSON, desired: JSON, edit: JSON | None, patch_spec: JSON | None, result_spec: JSON
) -> None:
    live = live_from(gizmo(**last))
    if edit is not None:
        live = apply_merge_patch(live, {"spec": edit})
    patch, content_type = three_way_patch(gizmo(**last), gizmo(**desired), live, None)
    assert content_type == MERGE_PATCH
    expected: JSON = {
        "metadata": {"annotations": {LAST_APPLIED: last_applied_annotation(gizmo(**desired))}}
    }
    if patch_spec is not None:
        expected["spec"] = patch_spec
    assert patch == expected
    result = apply_three_way(gizmo(**last), gizmo(**desired), live, None)
    assert result["spec"] == result_spec
    assert result["status"] == live["status"]


def test_custom_resource_unchanged() -> None:
    last = gizmo(size=1)
    live = live_from(last, lambda o: o["spec"].update(owner="ops"))
    assert three_way_patch(last, last, live, None) == ({}, MERGE_PATCH)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda o: o.update(kind="Other"), id="kind"),
        pytest.param(lambda o: o.update(apiVersion="example.com/v2"), id="apiVersion"),
        pytest.param(lambda o: o["metadata"].update(name="h"), id="name"),
    ],
)
def test_custom_resource_identity_must_not_change(change: Any) -> None:
    last = gizmo(size=1)
    live = live_from(last)
    desired = gizmo(size=1)
    change(desired)
    with pytest.raises(PatchError, match="apiVersion, kind and name"):
        three_way_patch(last, desired, live, None)
