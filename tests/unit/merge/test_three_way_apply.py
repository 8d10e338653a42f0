"""kubectl's three-way apply rules and its last-applied annotation format."""

from __future__ import annotations

import json
from typing import Any

from reconciler.merge.three_way import (
    LAST_APPLIED,
    apply_three_way,
    last_applied_annotation,
    last_applied_of,
)
from reconciler.schema.definitions import load
from reconciler.schema.patchmeta import PatchMeta

META = PatchMeta.for_definition(load(), "io.k8s.api.apps.v1.Deployment")


def deploy(containers: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", **meta},
        "spec": {"template": {"spec": {"containers": containers}}},
    }


def test_annotation_is_what_kubectl_writes() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "default"},
        "data": {"html": "<b>&</b>"},
    }
    assert last_applied_annotation(obj) == (
        '{"apiVersion":"v1","data":{"html":"\\u003cb\\u003e\\u0026\\u003c/b\\u003e"},'
        '"kind":"ConfigMap","metadata":{"annotations":{},"name":"x","namespace":"default"}}\n'
    )


def test_removed_fields_go_others_fields_stay() -> None:
    last = deploy(
        [
            {
                "name": "web",
                "image": "a",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            }
        ]
    )
    live = json.loads(json.dumps(last))
    live["metadata"]["annotations"] = {LAST_APPLIED: last_applied_annotation(last)}
    live["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "C", "value": "3"})
    live["spec"]["replicas"] = 3  # set by someone else (kubectl scale)
    desired = deploy([{"name": "web", "image": "b", "env": [{"name": "A", "value": "1"}]}])
    result = apply_three_way(last_applied_of(live), desired, live, META)
    web = result["spec"]["template"]["spec"]["containers"][0]
    assert web["image"] == "b"
    assert [e["name"] for e in web["env"]] == ["A", "C"]
    assert result["spec"]["replicas"] == 3
    assert last_applied_of(result) == json.loads(last_applied_annotation(desired))


def test_custom_resources_use_json_merge() -> None:
    last = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 1, "color": "red", "tags": ["a"]},
    }
    live = {**json.loads(json.dumps(last)), "status": {"ok": True}}
    live["spec"]["owner"] = "ops"
    desired = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 2, "tags": ["b"]},
    }
    result = apply_three_way(last, desired, live, None)
    assert result["spec"] == {"size": 2, "tags": ["b"], "owner": "ops"}
    assert result["status"] == {"ok": True}


def test_first_apply_over_an_object_created_otherwise_removes_nothing() -> None:
    live = deploy([{"name": "web", "image": "a"}, {"name": "side", "image": "s"}])
    desired = deploy([{"name": "web", "image": "b"}])
    result = apply_three_way(None, desired, live, META)
    assert [c["name"] for c in result["spec"]["template"]["spec"]["containers"]] == ["web", "side"]
