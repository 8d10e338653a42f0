"""Kubernetes object semantics of ObjectService: metadata, concurrency, status, deletion, GC."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from reconciler.apiserver.errors import ApiError
from reconciler.apiserver.lifecycle import Lifecycle, namespace_conditions, resource_label
from reconciler.apiserver.objects import PATCH_MERGE, PATCH_STRATEGIC, ObjectService
from reconciler.apiserver.resources import ResourceRegistry, ResourceType, builtin_types
from reconciler.clock import ManualClock
from reconciler.schema.definitions import load
from reconciler.store.sqlite import Store


class Env:
    def __init__(self, path: Path) -> None:
        self.clock = ManualClock()
        self.store = Store(path / "state.db")
        self.registry = ResourceRegistry(builtin_types(load()))
        self.svc = ObjectService(self.store, self.registry, load(), load(strict=True), self.clock)
        for ns in ("default", "other"):
            self.svc.create(self.rt("v1", "Namespace"), "", ns_obj(ns))

    def rt(self, api_version: str, kind: str) -> ResourceType:
        found = self.registry.by_kind(api_version, kind)
        assert found is not None
        return found


def ns_obj(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def cm(name: str, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, **meta},
        "data": {"k": "v"},
    }


def deployment(name: str, replicas: Any = 1, image: str = "busybox") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
    }


@pytest.fixture
def env(tmp_path: Path) -> Any:
    e = Env(tmp_path)
    yield e
    e.store.close()


def test_create_stamps_server_metadata_and_defaults(env: Env) -> None:
    created = env.svc.create(env.rt("apps/v1", "Deployment"), "default", deployment("web"))
    meta = created["metadata"]
    assert meta["namespace"] == "default" and meta["generation"] == 1
    assert meta["uid"] and meta["creationTimestamp"] == "2026-01-01T00:00:00Z"
    assert int(meta["resourceVersion"]) == env.store.revision
    assert created["spec"]["strategy"]["rollingUpdate"] == {
        "maxSurge": "25%",
        "maxUnavailable": "25%",
    }
    container = created["spec"]["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "Always"  # untagged image means :latest


def test_invalid_object_is_422_with_paths_and_stores_nothing(env: Env) -> None:
    before = env.store.revision
    with pytest.raises(ApiError) as info:
        env.svc.create(env.rt("apps/v1", "Deployment"), "default", deployment("web", "two"))
    assert info.value.code == 422
    assert [c.field for c in info.value.causes] == ["spec.replicas"]
    assert env.store.revision == before


def test_unknown_field_is_rejected_only_when_strict(env: Env) -> None:
    bad = cm("x")
    bad["dta"] = {"typo": "1"}
    with pytest.raises(ApiError) as info:
        env.svc.create(env.rt("v1", "ConfigMap"), "default", bad, strict=True)
    assert "dta" in info.value.message
    created = env.svc.create(env.rt("v1", "ConfigMap"), "default", bad, strict=False)
    assert "dta" not in created


def test_bad_names_and_labels_are_invalid(env: Env) -> None:
    for obj, field in [
        (cm("Upper_Case"), "metadata.name"),
        (cm("ok", labels={"app": "has space"}), "metadata.labels"),
        (cm("ok", labels={"-bad": "x"}), "metadata.labels"),
    ]:
        with pytest.raises(ApiError) as info:
            env.svc.create(env.rt("v1", "ConfigMap"), "default", obj)
        assert info.value.code == 422 and info.value.causes[0].field == field


def test_create_in_missing_namespace_is_404(env: Env) -> None:
    with pytest.raises(ApiError) as info:
        env.svc.create(env.rt("v1", "ConfigMap"), "nowhere", cm("x"))
    assert info.value.code == 404 and "nowhere" in info.value.message


def test_generate_name(env: Env) -> None:
    obj = cm("")
    obj["metadata"] = {"generateName": "job-"}
    created = env.svc.create(env.rt("v1", "ConfigMap"), "default", obj)
    assert created["metadata"]["name"].startswith("job-")
    assert len(created["metadata"]["name"]) == len("job-") + 5


def test_stale_update_conflicts_and_unconditional_update_wins(env: Env) -> None:
    rt = env.rt("v1", "ConfigMap")
    first = env.svc.create(rt, "default", cm("x"))
    stale = dict(cm("x"), data={"k": "stale"})
    stale["metadata"]["resourceVersion"] = first["metadata"]["resourceVersion"]
    env.svc.update(rt, "default", "x", dict(cm("x"), data={"k": "new"}))
    with pytest.raises(ApiError) as info:
        env.svc.update(rt, "default", "x", stale)
    assert info.value.code == 409 and info.value.reason == "Conflict"
    assert env.svc.get(rt, "default", "x")["data"] == {"k": "new"}


@pytest.mark.parametrize(
    ("kind", "counts"),
    [
        ("StatefulSet", {"replicas": 0, "availableReplicas": 0}),
        (
            "DaemonSet",
            {
                "currentNumberScheduled": 0,
                "numberMisscheduled": 0,
                "desiredNumberScheduled": 0,
                "numberReady": 0,
            },
        ),
    ],
)
def test_new_workloads_carry_the_status_counts_kubernetes_always_shows(
    env: Env, kind: str, counts: dict[str, int]
) -> None:
    """As on Kubernetes (Go fields without omitempty); and a controller's first, partial
    status write (`collisionCount` alone) is then valid against the schema."""
    rt = env.rt("apps/v1", kind)
    body = deployment("web")
    body["kind"] = kind
    del body["spec"]["replicas"]
    created = env.svc.create(rt, "default", body)
    assert created["status"] == counts
    env.svc.patch(
        rt, "default", "web", PATCH_MERGE, {"status": {"collisionCount": 1}}, subresource="status"
    )
    assert env.svc.get(rt, "default", "web")["status"] == {**counts, "collisionCount": 1}


def test_generation_moves_with_spec_only_and_status_is_separate(env: Env) -> None:
    rt = env.rt("apps/v1", "Deployment")
    env.svc.create(rt, "default", deployment("web"))
    env.svc.patch(rt, "default", "web", PATCH_MERGE, {"metadata": {"labels": {"a": "b"}}})
    assert env.svc.get(rt, "default", "web")["metadata"]["generation"] == 1
    env.svc.patch(rt, "default", "web", PATCH_MERGE, {"status": {"replicas": 9}})
    assert "status" not in env.svc.get(rt, "default", "web")  # ignored on the main resource
    env.svc.patch(
        rt, "default", "web", PATCH_MERGE, {"status": {"replicas": 1}}, subresource="status"
    )
    got = env.svc.get(rt, "default", "web")
    assert got["status"] == {"replicas": 1} and got["metadata"]["generation"] == 1
    env.svc.patch(
        rt,
        "default",
        "web",
        PATCH_STRATEGIC,
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x:2"}]}}}},
    )
    got = env.svc.get(rt, "default", "web")
    assert got["metadata"]["generation"] == 2 and got["status"] == {"replicas": 1}


def test_a_status_write_decodes_the_stored_object_once_and_changes_only_status(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = env.rt("apps/v1", "Deployment")
    env.svc.create(rt, "default", deployment("web"))
    decoded: list[object] = []
    copy_of = Store.copy_of
    monkeypatch.setattr(Store, "copy_of", staticmethod(lambda s: decoded.append(s) or copy_of(s)))
    status = {"status": {"replicas": 2}}
    env.svc.patch(rt, "default", "web", PATCH_MERGE, status, subresource="status")
    assert len(decoded) == 1  # the patch's own copy, not a second one for the status
    sneaky = {
        "spec": {"replicas": 5},
        "metadata": {"labels": {"x": "y"}},
        "status": {"replicas": 3},
    }
    env.svc.patch(rt, "default", "web", PATCH_MERGE, sneaky, subresource="status")
    got = env.svc.get(rt, "default", "web")
    assert got["status"]["replicas"] == 3 and got["spec"]["replicas"] == 1
    assert "labels" not in got["metadata"] and len(decoded) == 3  # spec and metadata restored


def test_noop_write_keeps_the_revision(env: Env) -> None:
    rt = env.rt("v1", "ConfigMap")
    created = env.svc.create(rt, "default", cm("x"))
    same = env.svc.patch(rt, "default", "x", PATCH_MERGE, {"data": {"k": "v"}})
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_scale_subresource(env: Env) -> None:
    rt = env.rt("apps/v1", "Deployment")
    env.svc.create(rt, "default", deployment("web"))
    scale = env.svc.get_scale(rt, "default", "web")
    assert scale["spec"]["replicas"] == 1 and scale["status"]["selector"] == "app=web"
    env.svc.patch_scale(rt, "default", "web", PATCH_MERGE, {"spec": {"replicas": 4}})
    assert env.svc.get(rt, "default", "web")["spec"]["replicas"] == 4
    with pytest.raises(ApiError):
        env.svc.update_scale(rt, "default", "web", {"spec": {"replicas": -1}})


def test_replication_controller_scale_names_its_label_map_selector(env: Env) -> None:
    rt = env.rt("v1", "ReplicationController")
    rc = {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"app": "web", "tier": "front"},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "front"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }
    env.svc.create(rt, "default", rc)
    scale = env.svc.get_scale(rt, "default", "web")
    assert scale["spec"]["replicas"] == 2
    assert scale["status"]["selector"] == "app=web,tier=front"
    env.svc.patch_scale(rt, "default", "web", PATCH_MERGE, {"spec": {"replicas": 3}})
    assert env.svc.get(rt, "default", "web")["spec"]["replicas"] == 3


def test_dry_run_stores_nothing(env: Env) -> None:
    rt = env.rt("v1", "ConfigMap")
    before = env.store.revision
    out = env.svc.create(rt, "default", cm("x"), dry_run=True)
    assert out["metadata"]["uid"] and env.store.revision == before
    env.svc.create(rt, "default", cm("y"))
    env.svc.patch(rt, "default", "y", PATCH_MERGE, {"data": {"k": "2"}}, dry_run=True)
    env.svc.delete(rt, "default", "y", dry_run=True)
    assert env.svc.get(rt, "default", "y")["data"] == {"k": "v"}


def test_finalizers_hold_deletion_until_removed(env: Env) -> None:
    rt = env.rt("v1", "ConfigMap")
    env.svc.create(rt, "default", cm("x", finalizers=["example.com/hold"]))
    result = env.svc.delete(rt, "default", "x")
    assert not result.deleted and result.object["metadata"]["deletionTimestamp"]
    env.svc.patch(rt, "default", "x", PATCH_MERGE, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiError) as info:
        env.svc.get(rt, "default", "x")
    assert info.value.code == 404


def owned(name: str, owner: dict[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    ref = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return cm(name, ownerReferences=[ref])


async def settle(lifecycle: Lifecycle) -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.mark.parametrize("policy", ["Background", "Foreground", "Orphan"])
async def test_garbage_collection_propagation(env: Env, policy: str) -> None:
    lifecycle = Lifecycle(env.svc)
    lifecycle.start()
    cms, deploys = env.rt("v1", "ConfigMap"), env.rt("apps/v1", "Deployment")
    owner = env.svc.create(deploys, "default", deployment("web"))
    env.svc.create(cms, "default", owned("child-a", owner))
    env.svc.create(cms, "default", owned("child-b", owner))
    env.svc.delete(deploys, "default", "web", propagation=policy)
    await settle(lifecycle)
    names = [o["metadata"]["name"] for o in env.svc.list(cms, "default").items]
    if policy == "Orphan":
        assert names == ["child-a", "child-b"]
        assert all(
            "ownerReferences" not in o["metadata"] for o in env.svc.list(cms, "default").items
        )
    else:
        assert names == []
    assert env.store.find(deploys.storage_key, "default", "web") is None
    await lifecycle.stop()


async def test_namespace_deletion_removes_its_content(env: Env) -> None:
    lifecycle = Lifecycle(env.svc)
    lifecycle.start()
    cms, nss = env.rt("v1", "ConfigMap"), env.rt("v1", "Namespace")
    env.svc.create(cms, "other", cm("a"))
    env.svc.create(cms, "other", cm("b", finalizers=["example.com/hold"]))
    env.svc.create(cms, "default", cm("keep"))
    result = env.svc.delete(nss, "", "other")
    assert not result.deleted and result.object["status"]["phase"] == "Terminating"
    with pytest.raises(ApiError) as info:
        env.svc.create(cms, "other", cm("late"))
    assert info.value.code == 403
    await settle(lifecycle)
    assert [o["metadata"]["name"] for o in env.svc.list(cms, "other").items] == ["b"]
    assert env.store.find(nss.storage_key, "", "other") is not None  # held by b's finalizer
    # What it waits for is in its status, as `kubectl describe namespace` shows it.
    status = env.svc.get(nss, "", "other")["status"]
    conditions = {c["type"]: (c["status"], c["message"]) for c in status["conditions"]}
    assert status["phase"] == "Terminating"
    assert conditions["NamespaceContentRemaining"] == (
        "True",
        "Some resources are remaining: configmaps. has 1 resource instances",
    )
    assert conditions["NamespaceFinalizersRemaining"] == (
        "True",
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 "
        "resource instances",
    )
    env.svc.patch(cms, "other", "b", PATCH_MERGE, {"metadata": {"finalizers": None}})
    await settle(lifecycle)
    assert env.store.find(nss.storage_key, "", "other") is None
    assert [o["metadata"]["name"] for o in env.svc.list(cms, None).items] == ["keep"]
    await lifecycle.stop()


def test_resource_labels_are_upstreams() -> None:
    assert resource_label("core/pods") == "pods."
    assert resource_label("apps/deployments") == "deployments.apps"


def test_namespace_conditions_say_what_is_left_and_keep_their_transition_times() -> None:
    held = namespace_conditions({"pods.": 2, "configmaps.": 1}, {"x/hold": 1}, [], "t1")
    assert [c["type"] for c in held] == [
        "NamespaceDeletionDiscoveryFailure",
        "NamespaceDeletionGroupVersionParsingFailure",
        "NamespaceDeletionContentFailure",
        "NamespaceContentRemaining",
        "NamespaceFinalizersRemaining",
    ]
    assert [c["status"] for c in held] == ["False", "False", "False", "True", "True"]
    assert held[3]["message"] == (
        "Some resources are remaining: configmaps. has 1 resource instances, "
        "pods. has 2 resource instances"
    )
    assert held[4]["reason"] == "SomeFinalizersRemain"
    fewer = namespace_conditions({"pods.": 1}, {"x/hold": 1}, held, "t2")
    assert all(c["lastTransitionTime"] == "t1" for c in fewer)  # no status changed
    done = namespace_conditions({}, {}, fewer, "t3")
    assert [c["lastTransitionTime"] for c in done] == ["t1", "t1", "t1", "t3", "t3"]
    assert (done[3]["reason"], done[4]["reason"]) == ("ContentRemoved", "ContentHasNoFinalizers")


def test_label_and_field_selectors_and_pagination(env: Env) -> None:
    rt = env.rt("v1", "ConfigMap")
    for i in range(5):
        env.svc.create(rt, "default", cm(f"c{i}", labels={"tier": "web" if i % 2 else "db"}))
    sel = env.svc.selection(rt, "tier in (web)", None)
    assert [o["metadata"]["name"] for o in env.svc.list(rt, None, sel).items] == ["c1", "c3"]
    sel = env.svc.selection(rt, None, "metadata.name=c4")
    assert [o["metadata"]["name"] for o in env.svc.list(rt, None, sel).items] == ["c4"]
    with pytest.raises(ApiError) as info:
        env.svc.selection(rt, None, "spec.nodeName=x")
    assert info.value.code == 400
    page = env.svc.list(rt, "default", limit=2)
    assert [o["metadata"]["name"] for o in page.items] == ["c0", "c1"]
    assert page.remaining == 3 and page.continue_token
    rest = env.svc.list(rt, "default", limit=10, continue_token=page.continue_token)
    assert [o["metadata"]["name"] for o in rest.items] == ["c2", "c3", "c4"]
    assert rest.continue_token is None


def test_secret_values_never_reach_error_messages(env: Env) -> None:
    rt = env.rt("v1", "Secret")
    bad = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"password": "hunter2-not-base64!", "token": 12345},
    }
    with pytest.raises(ApiError) as info:
        env.svc.create(rt, "default", bad)
    text = info.value.message + repr(info.value.status())
    assert "hunter2" not in text and "12345" not in text
    assert {c.field for c in info.value.causes} == {"data.token", "data[password]"}
    created = env.svc.create(
        rt,
        "default",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "ok"},
            "stringData": {"password": "s3cret"},
        },
    )
    assert created["data"] == {"password": "czNjcmV0"} and "stringData" not in created


def test_unknown_fields_are_pruned_with_a_warning_when_not_strict(env: Env) -> None:
    rt = env.rt("apps/v1", "Deployment")
    obj = deployment("web")
    obj["spec"]["replica"] = 3
    obj["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    warnings: list[str] = []
    created = env.svc.create(rt, "default", obj, strict=False, warnings=warnings)
    assert "replica" not in created["spec"]
    assert "imagee" not in created["spec"]["template"]["spec"]["containers"][0]
    assert sorted(warnings) == [
        'unknown field "spec.replica"',
        'unknown field "spec.template.spec.containers[0].imagee"',
    ]


def test_custom_resources_get_their_schema_defaults(env: Env) -> None:
    import yaml

    crd = yaml.safe_load(
        (Path(__file__).parents[3] / "schemas" / "application-crd.yaml").read_text()
    )
    env.svc.create(env.rt("apiextensions.k8s.io/v1", "CustomResourceDefinition"), "", crd)
    app = env.svc.create(
        env.rt("recon.dev/v1alpha1", "Application"),
        "default",
        {
            "apiVersion": "recon.dev/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "a"},
            "spec": {"source": {"repoURL": "file:///r.git"}, "syncPolicy": {"automated": {}}},
        },
    )
    assert app["spec"]["source"]["targetRevision"] == "HEAD"
    assert app["spec"]["source"]["path"] == "."
    assert app["spec"]["syncPolicy"]["interval"] == "60s"
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": False, "selfHeal": False}
    assert "retry" not in app["spec"]["syncPolicy"]  # no parent, no defaults below it
    with pytest.raises(ApiError) as info:
        env.svc.create(
            env.rt("recon.dev/v1alpha1", "Application"),
            "default",
            {
                "apiVersion": "recon.dev/v1alpha1",
                "kind": "Application",
                "metadata": {"name": "b"},
                "spec": {"source": {}},
            },
        )
    assert info.value.code == 422 and "repoURL" in info.value.message
