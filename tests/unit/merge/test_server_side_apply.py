"""Server-side apply on the upstream schemas: field sets as upstream writes them, ownership,
conflicts, removal of fields an applier stops applying, and Update tracking."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reconciler.merge.field_set import (
    decode_fields,
    encode_fields,
    fields_of,
    render_path,
    value_at,
)
from reconciler.merge.server_side_apply import ApplyConflictError, apply, track_update
from reconciler.schema.definitions import load
from reconciler.schema.patchmeta import PatchMeta

JSONDict = dict[str, Any]
META = PatchMeta.for_definition(load(), "io.k8s.api.apps.v1.Deployment")
NOW = "2026-12-03T00:00:00Z"


def deployment(image: str = "web:1", replicas: int = 2, **labels: str) -> JSONDict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", **labels}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": image, "ports": [{"containerPort": 80}]}
                    ],
                    "tolerations": [{"key": "a", "operator": "Exists"}],
                },
            },
        },
    }


def by(obj: JSONDict, manager: str) -> set[tuple[str, ...]]:
    for entry in obj["metadata"].get("managedFields") or []:
        if entry["manager"] == manager:
            return decode_fields(entry["fieldsV1"])
    return set()


def test_the_field_set_has_upstreams_shape() -> None:
    fields = encode_fields(fields_of(deployment(), META))
    assert fields["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    spec = fields["f:spec"]
    assert spec["f:selector"] == {}  # an atomic map: owned as a whole
    pod = spec["f:template"]["f:spec"]
    assert pod["f:tolerations"] == {}  # an atomic list
    assert pod["f:containers"] == {
        'k:{"name":"web"}': {
            ".": {},
            "f:image": {},
            "f:name": {},
            # the defaulted key field is part of the key, as upstream writes it
            "f:ports": {
                'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}
            },
        }
    }
    assert decode_fields(fields) == fields_of(deployment(), META)


def test_paths_read_values_and_render_as_upstreams_messages() -> None:
    path = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}', "f:image")
    assert value_at(deployment(), path) == "web:1"
    assert render_path(path) == '.spec.template.spec.containers[name="web"].image'
    finalizers = PatchMeta.for_definition(load(), "io.k8s.api.core.v1.ConfigMap")
    cm = {"metadata": {"finalizers": ["a/b"]}, "data": {"k": "v"}}
    assert ("f:metadata", "f:finalizers", 'v:"a/b"') in fields_of(cm, finalizers)
    assert render_path(("f:metadata", "f:finalizers", 'v:"a/b"')) == '.metadata.finalizers[="a/b"]'


def test_first_apply_creates_and_owns_exactly_the_applied_fields() -> None:
    created = apply(None, deployment(), META, manager="ci", api_version="apps/v1", now=NOW)
    (entry,) = created["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["time"]) == ("ci", "Apply", NOW)
    assert by(created, "ci") == fields_of(deployment(), META)


def test_a_changed_field_owned_by_another_manager_conflicts_unless_forced() -> None:
    live = apply(None, deployment(), META, manager="ci", api_version="apps/v1", now=NOW)
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    track_update(live, scaled, META, manager="kubectl", api_version="apps/v1", now=NOW)
    assert by(scaled, "kubectl") == {("f:spec", "f:replicas")}
    assert ("f:spec", "f:replicas") not in by(scaled, "ci")
    with pytest.raises(ApplyConflictError) as caught:
        apply(scaled, deployment(), META, manager="ci", api_version="apps/v1", now=NOW)
    assert str(caught.value) == (
        'Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas'
    )
    # applying the live value shares the field: no conflict
    shared = apply(
        scaled, deployment(replicas=5), META, manager="ci", api_version="apps/v1", now=NOW
    )
    assert ("f:spec", "f:replicas") in by(shared, "ci") & by(shared, "kubectl")
    forced = apply(
        scaled, deployment(), META, manager="ci", api_version="apps/v1", now=NOW, force=True
    )
    assert forced["spec"]["replicas"] == 2
    assert by(forced, "kubectl") == set()
    assert [e["manager"] for e in forced["metadata"]["managedFields"]] == ["ci"]


def test_fields_the_applier_stops_applying_go_unless_someone_else_owns_them() -> None:
    live = apply(
        None, deployment(tier="web", team="a"), META, manager="ci", api_version="apps/v1", now=NOW
    )
    labelled = copy.deepcopy(live)
    labelled["metadata"]["labels"]["team"] = "b"
    track_update(live, labelled, META, manager="kubectl-label", api_version="apps/v1", now=NOW)
    again = apply(labelled, deployment(), META, manager="ci", api_version="apps/v1", now=NOW)
    # tier was the applier's alone: gone; team is kubectl-label's now: kept
    assert again["metadata"]["labels"] == {"app": "web", "team": "b"}
    # a container left out is removed with everything below it
    two = deployment()
    two["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "s:1"})
    with_side = apply(again, two, META, manager="ci", api_version="apps/v1", now=NOW)
    assert [c["name"] for c in with_side["spec"]["template"]["spec"]["containers"]] == [
        "web",
        "side",
    ]
    without = apply(with_side, deployment(), META, manager="ci", api_version="apps/v1", now=NOW)
    assert [c["name"] for c in without["spec"]["template"]["spec"]["containers"]] == ["web"]


def test_an_item_applied_without_its_defaulted_key_is_the_live_item() -> None:
    live = apply(None, deployment(), META, manager="ci", api_version="apps/v1", now=NOW)
    live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP"  # defaulted
    again = apply(
        live, deployment(image="web:2"), META, manager="ci", api_version="apps/v1", now=NOW
    )
    (container,) = again["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "web:2"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


def test_an_object_never_applied_gets_a_before_first_apply_owner() -> None:
    live = deployment(replicas=3)
    live["spec"]["paused"] = True
    with pytest.raises(ApplyConflictError) as caught:
        apply(live, deployment(), META, manager="ci", api_version="apps/v1", now=NOW)
    assert 'conflict with "before-first-apply" using apps/v1: .spec.replicas' in str(caught.value)
    merged = apply(live, deployment(replicas=3), META, manager="ci", api_version="apps/v1", now=NOW)
    assert merged["spec"]["paused"] is True  # the applier never owned it
    assert ("f:spec", "f:paused") in by(merged, "before-first-apply")


def test_updates_of_objects_never_applied_record_nothing() -> None:
    old = deployment()
    new = deployment(replicas=4)
    new["metadata"]["managedFields"] = [{"manager": "sneaky", "fieldsV1": {}}]
    track_update(old, new, META, manager="kubectl", api_version="apps/v1", now=NOW)
    assert "managedFields" not in new["metadata"]


def test_status_writes_are_owned_apart_from_the_spec() -> None:
    live = apply(None, deployment(), META, manager="ci", api_version="apps/v1", now=NOW)
    with_status = copy.deepcopy(live)
    with_status["status"] = {"replicas": 2}
    track_update(
        live,
        with_status,
        META,
        manager="ctrl",
        api_version="apps/v1",
        now=NOW,
        subresource="status",
    )
    entries = {
        (e["manager"], e.get("subresource", "")) for e in with_status["metadata"]["managedFields"]
    }
    assert entries == {("ci", ""), ("ctrl", "status")}
    assert by(with_status, "ctrl") == {("f:status", "f:replicas")}
    # the status is not the applier's to conflict with
    apply(with_status, deployment(), META, manager="ci", api_version="apps/v1", now=NOW)
