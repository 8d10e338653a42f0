"""apply_strategic_merge_patch against the real upstream schemas: one row per behaviour.

Expected results follow the Kubernetes API server's rules, including its list order: patch
elements in patch order, live-only elements kept in live order and placed before the first
patch element that followed them in the live list (so a new element with no
`$setElementOrder` comes first).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reconciler.merge import PatchError, apply_strategic_merge_patch
from reconciler.schema.definitions import load
from reconciler.schema.patchmeta import PatchMeta

DEFS = load()
KINDS = {
    "Pod": PatchMeta.for_definition(DEFS, "io.k8s.api.core.v1.Pod"),
    "Deployment": PatchMeta.for_definition(DEFS, "io.k8s.api.apps.v1.Deployment"),
    "PDB": PatchMeta.for_definition(DEFS, "io.k8s.api.policy.v1.PodDisruptionBudget"),
    "Service": PatchMeta.for_definition(DEFS, "io.k8s.api.core.v1.Service"),
}

JSON = dict[str, Any]


def c(name: str, **fields: Any) -> JSON:
    """A container."""
    return {"name": name, **fields}


def pod(**spec: Any) -> JSON:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


def meta(**metadata: Any) -> JSON:
    return {"metadata": {"name": "p", **metadata}}


def deploy(**spec: Any) -> JSON:
    return {"kind": "Deployment", "spec": spec}


def strategy(**fields: Any) -> JSON:
    return deploy(strategy=fields)


ROLLING = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}

# (kind, original, patch, expected)
CASES: list[Any] = [
    # --- maps and null ------------------------------------------------------------------
    pytest.param(
        "Pod",
        meta(labels={"app": "web"}),
        {"metadata": {"labels": {"tier": "fe"}}},
        meta(labels={"app": "web", "tier": "fe"}),
        id="map-adds-key",
    ),
    pytest.param(
        "Pod",
        meta(labels={"app": "web", "tier": "fe"}),
        {"metadata": {"labels": {"app": "api"}}},
        meta(labels={"app": "api", "tier": "fe"}),
        id="map-changes-key-keeps-others",
    ),
    pytest.param(
        "Pod",
        meta(labels={"app": "web", "tier": "fe"}),
        {"metadata": {"labels": {"tier": None}}},
        meta(labels={"app": "web"}),
        id="null-deletes-key",
    ),
    pytest.param(
        "Pod",
        meta(labels={"app": "web"}),
        {"metadata": {"labels": None}},
        meta(),
        id="null-deletes-whole-map",
    ),
    pytest.param(
        "Pod",
        meta(labels={"app": "web"}),
        {"metadata": {"labels": {"absent": None}}},
        meta(labels={"app": "web"}),
        id="null-for-absent-key-is-a-no-op",
    ),
    pytest.param(
        "Deployment",
        deploy(replicas=1),
        {"spec": {"template": {"metadata": {"annotations": {"a": "1", "b": None}}}}},
        deploy(replicas=1, template={"metadata": {"annotations": {"a": "1"}}}),
        id="new-subtree-drops-its-nulls",
    ),
    pytest.param(
        "Deployment",
        deploy(replicas=1, paused=False),
        {"spec": {"replicas": 3}},
        deploy(replicas=3, paused=False),
        id="scalar-replaced",
    ),
    pytest.param(
        "Deployment",
        strategy(**ROLLING),
        {"spec": {"strategy": {"rollingUpdate": {"maxSurge": "25%"}}}},
        strategy(type="RollingUpdate", rollingUpdate={"maxSurge": "25%", "maxUnavailable": 0}),
        id="int-or-string-changes-type",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web", image="nginx:1")]),
        {},
        pod(containers=[c("web", image="nginx:1")]),
        id="empty-patch",
    ),
    pytest.param(
        "Pod",
        {"spec": {"customMap": {"a": 1}, "customList": [1, 2]}},
        {"spec": {"customMap": {"b": 2}, "customList": [3]}},
        {"spec": {"customMap": {"a": 1, "b": 2}, "customList": [3]}},
        id="unknown-fields-merge-maps-replace-lists",
    ),
    # --- containers (merge key name) ----------------------------------------------------
    pytest.param(
        "Pod",
        pod(containers=[c("web", image="nginx:1", args=["-v"]), c("log", image="fluent:1")]),
        {"spec": {"containers": [c("web", image="nginx:2")]}},
        pod(containers=[c("web", image="nginx:2", args=["-v"]), c("log", image="fluent:1")]),
        id="containers-update-by-name",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web", image="nginx:1")]),
        {"spec": {"containers": [c("sidecar", image="envoy:1")]}},
        pod(containers=[c("sidecar", image="envoy:1"), c("web", image="nginx:1")]),
        id="containers-new-item-leads",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web", image="nginx:1")]),
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                "containers": [c("sidecar", image="envoy:1")],
            }
        },
        pod(containers=[c("web", image="nginx:1"), c("sidecar", image="envoy:1")]),
        id="containers-append-with-set-element-order",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web"), c("log"), c("proxy")]),
        {"spec": {"containers": [{"name": "log", "$patch": "delete"}]}},
        pod(containers=[c("web"), c("proxy")]),
        id="containers-patch-delete",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web")]),
        {"spec": {"containers": [{"name": "ghost", "$patch": "delete"}]}},
        pod(containers=[c("web")]),
        id="containers-delete-absent-is-a-no-op",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web", image="nginx:1"), c("log")]),
        {"spec": {"containers": [c("new", image="x:1"), {"$patch": "replace"}]}},
        pod(containers=[c("new", image="x:1")]),
        id="containers-patch-replace-element",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("a", image="1"), c("b", image="1"), c("c", image="1")]),
        {"spec": {"containers": [c("c", image="2"), c("a", image="2")]}},
        pod(containers=[c("b", image="1"), c("c", image="2"), c("a", image="2")]),
        id="containers-patch-order-wins-live-only-keeps-place",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("a"), c("b"), c("c")]),
        {"spec": {"containers": [c("d"), c("b", image="2")]}},
        pod(containers=[c("d"), c("a"), c("b", image="2"), c("c")]),
        id="containers-upstream-order-example",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web", image="1")]),
        {"spec": {"containers": [c("web", image="2"), c("web", imagePullPolicy="Always")]}},
        pod(containers=[c("web", image="2", imagePullPolicy="Always")]),
        id="containers-same-key-twice-merges-twice",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web")]),
        {"spec": {"initContainers": [{"name": "gone", "$patch": "delete"}, c("init")]}},
        pod(containers=[c("web")], initContainers=[c("init")]),
        id="new-merge-list-processes-directives",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("a"), c("c")]),
        {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}]}},
        pod(containers=[c("c"), c("a")]),
        id="set-element-order-names-an-absent-item",
    ),
    # --- env (merge key name) -----------------------------------------------------------
    pytest.param(
        "Pod",
        pod(containers=[c("web", env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])]),
        {"spec": {"containers": [c("web", env=[{"name": "B", "value": "3"}])]}},
        pod(containers=[c("web", env=[{"name": "A", "value": "1"}, {"name": "B", "value": "3"}])]),
        id="env-update-by-name",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web", env=[{"name": "A", "value": "1"}])]),
        {
            "spec": {
                "containers": [
                    c(
                        "web",
                        env=[
                            {
                                "name": "A",
                                "value": None,
                                "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
                            }
                        ],
                    )
                ]
            }
        },
        pod(
            containers=[
                c(
                    "web",
                    env=[{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                )
            ]
        ),
        id="env-value-to-value-from",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web", env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])]),
        {"spec": {"containers": [c("web", env=[{"name": "A", "$patch": "delete"}])]}},
        pod(containers=[c("web", env=[{"name": "B", "value": "2"}])]),
        id="env-delete",
    ),
    # --- ports (merge key containerPort), Service ports (merge key port) ----------------
    pytest.param(
        "Pod",
        pod(
            containers=[
                c("web", ports=[{"containerPort": 80, "name": "http"}, {"containerPort": 443}])
            ]
        ),
        {"spec": {"containers": [c("web", ports=[{"containerPort": 80, "protocol": "TCP"}])]}},
        pod(
            containers=[
                c(
                    "web",
                    ports=[
                        {"containerPort": 80, "name": "http", "protocol": "TCP"},
                        {"containerPort": 443},
                    ],
                )
            ]
        ),
        id="ports-update-by-container-port",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web", ports=[{"containerPort": 80}, {"containerPort": 443}])]),
        {"spec": {"containers": [c("web", ports=[{"containerPort": 8080}])]}},
        pod(
            containers=[
                c(
                    "web",
                    ports=[{"containerPort": 8080}, {"containerPort": 80}, {"containerPort": 443}],
                )
            ]
        ),
        id="ports-add",
    ),
    pytest.param(
        "Service",
        {"spec": {"ports": [{"port": 80, "targetPort": 8080}]}},
        {"spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 443}]}},
        {"spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 443}]}},
        id="service-ports-by-port",
    ),
    # --- volumes (merge,retainKeys by name) and volumeMounts (by mountPath) -------------
    pytest.param(
        "Pod",
        pod(volumes=[{"name": "data", "emptyDir": {}}]),
        {"spec": {"volumes": [{"name": "cfg", "configMap": {"name": "app"}}]}},
        pod(
            volumes=[
                {"name": "cfg", "configMap": {"name": "app"}},
                {"name": "data", "emptyDir": {}},
            ]
        ),
        id="volumes-add",
    ),
    pytest.param(
        "Pod",
        pod(volumes=[{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]),
        {
            "spec": {
                "volumes": [
                    {
                        "name": "data",
                        "configMap": {"name": "app"},
                        "$retainKeys": ["configMap", "name"],
                    }
                ]
            }
        },
        pod(
            volumes=[
                {"name": "data", "configMap": {"name": "app"}},
                {"name": "tmp", "emptyDir": {}},
            ]
        ),
        id="volumes-retain-keys-switches-source",
    ),
    pytest.param(
        "Pod",
        pod(volumes=[{"name": "data", "emptyDir": {}}]),
        {"spec": {"volumes": [{"name": "data", "configMap": {"name": "app"}}]}},
        pod(volumes=[{"name": "data", "emptyDir": {}, "configMap": {"name": "app"}}]),
        id="volumes-without-retain-keys-merge",
    ),
    pytest.param(
        "Pod",
        pod(
            containers=[
                c(
                    "web",
                    volumeMounts=[
                        {"name": "data", "mountPath": "/data"},
                        {"name": "cfg", "mountPath": "/etc/cfg"},
                    ],
                )
            ]
        ),
        {
            "spec": {
                "containers": [c("web", volumeMounts=[{"mountPath": "/data", "readOnly": True}])]
            }
        },
        pod(
            containers=[
                c(
                    "web",
                    volumeMounts=[
                        {"name": "data", "mountPath": "/data", "readOnly": True},
                        {"name": "cfg", "mountPath": "/etc/cfg"},
                    ],
                )
            ]
        ),
        id="volume-mounts-update-by-mount-path",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web", volumeMounts=[{"name": "data", "mountPath": "/data"}])]),
        {
            "spec": {
                "containers": [c("web", volumeMounts=[{"name": "data", "mountPath": "/backup"}])]
            }
        },
        pod(
            containers=[
                c(
                    "web",
                    volumeMounts=[
                        {"name": "data", "mountPath": "/backup"},
                        {"name": "data", "mountPath": "/data"},
                    ],
                )
            ]
        ),
        id="volume-mounts-keyed-by-path-not-name",
    ),
    # --- atomic lists -------------------------------------------------------------------
    pytest.param(
        "Pod",
        pod(tolerations=[{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]),
        {"spec": {"tolerations": [{"key": "c", "operator": "Exists"}]}},
        pod(tolerations=[{"key": "c", "operator": "Exists"}]),
        id="tolerations-atomic",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web", args=["--a", "--b"], command=["run"])]),
        {"spec": {"containers": [c("web", args=["--c"])]}},
        pod(containers=[c("web", args=["--c"], command=["run"])]),
        id="args-atomic",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web", args=["--a"], command=["run"])]),
        {"spec": {"containers": [c("web", command=None)]}},
        pod(containers=[c("web", args=["--a"])]),
        id="atomic-list-deleted-by-null",
    ),
    # --- finalizers (primitive list, strategy merge) ------------------------------------
    pytest.param(
        "Pod",
        meta(finalizers=["a", "b"]),
        {"metadata": {"finalizers": ["c", "a"]}},
        meta(finalizers=["c", "a", "b"]),
        id="finalizers-union-in-upstream-order",
    ),
    pytest.param(
        "Pod",
        meta(),
        {"metadata": {"finalizers": ["a", "a", "b"]}},
        meta(finalizers=["a", "b"]),
        id="finalizers-deduplicated",
    ),
    pytest.param(
        "Pod",
        meta(finalizers=["a", "b", "c", "b"]),
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zzz"]}},
        meta(finalizers=["a", "c"]),
        id="delete-from-primitive-list",
    ),
    pytest.param(
        "Pod",
        meta(),
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}},
        meta(),
        id="delete-from-absent-primitive-list",
    ),
    pytest.param(
        "Pod",
        meta(finalizers=["a", "b", "c"]),
        {"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"]}},
        meta(finalizers=["c", "b", "a"]),
        id="set-element-order-primitives",
    ),
    pytest.param(
        "Pod",
        meta(finalizers=["a", "b", "c"]),
        {
            "metadata": {
                "finalizers": ["d"],
                "$deleteFromPrimitiveList/finalizers": ["b"],
                "$setElementOrder/finalizers": ["c", "a", "d"],
            }
        },
        meta(finalizers=["c", "a", "d"]),
        id="primitive-add-delete-order-as-kubectl-sends",
    ),
    pytest.param(
        "Pod",
        meta(finalizers=["a", "b", "c", "x"]),
        {"metadata": {"$setElementOrder/finalizers": ["c", "a"]}},
        meta(finalizers=["b", "c", "a", "x"]),
        id="set-element-order-keeps-unnamed-items-in-live-place",
    ),
    # --- retainKeys on Deployment.spec.strategy -----------------------------------------
    pytest.param(
        "Deployment",
        strategy(**ROLLING),
        {"spec": {"strategy": {"type": "Recreate", "$retainKeys": ["type"]}}},
        strategy(type="Recreate"),
        id="retain-keys-clears-unlisted",
    ),
    pytest.param(
        "Deployment",
        strategy(**ROLLING),
        {
            "spec": {
                "strategy": {"type": "Recreate", "rollingUpdate": None, "$retainKeys": ["type"]}
            }
        },
        strategy(type="Recreate"),
        id="retain-keys-with-explicit-null",
    ),
    pytest.param(
        "Deployment",
        strategy(**ROLLING),
        {"spec": {"strategy": {"rollingUpdate": {"maxSurge": 2}}}},
        strategy(type="RollingUpdate", rollingUpdate={"maxSurge": 2, "maxUnavailable": 0}),
        id="retain-keys-strategy-without-directive-merges",
    ),
    pytest.param(
        "Deployment",
        strategy(type="Recreate"),
        {
            "spec": {
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 1},
                    "$retainKeys": ["rollingUpdate", "type"],
                }
            }
        },
        strategy(type="RollingUpdate", rollingUpdate={"maxSurge": 1}),
        id="retain-keys-adds-listed",
    ),
    # --- $patch on maps -----------------------------------------------------------------
    pytest.param(
        "Pod",
        meta(labels={"app": "web", "tier": "fe"}),
        {"metadata": {"labels": {"$patch": "replace", "app": "api"}}},
        meta(labels={"app": "api"}),
        id="map-patch-replace",
    ),
    pytest.param(
        "Deployment",
        strategy(**ROLLING),
        {"spec": {"strategy": {"rollingUpdate": {"$patch": "delete"}}}},
        strategy(type="RollingUpdate"),
        id="map-patch-delete",
    ),
    pytest.param(
        "Deployment",
        strategy(type="Recreate"),
        {"spec": {"strategy": {"rollingUpdate": {"$patch": "delete"}}}},
        strategy(type="Recreate"),
        id="map-patch-delete-absent",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web")]),
        {"$patch": "replace", "metadata": {"name": "q"}, "spec": {"containers": [c("x")]}},
        {"metadata": {"name": "q"}, "spec": {"containers": [c("x")]}},
        id="top-level-patch-replace",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web")]),
        {"$patch": "delete"},
        {},
        id="top-level-patch-delete",
    ),
    pytest.param(
        "Pod",
        pod(
            containers=[
                c(
                    "web",
                    resources={"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1"}},
                )
            ]
        ),
        {
            "spec": {
                "containers": [c("web", resources={"limits": {"$patch": "replace", "cpu": "2"}})]
            }
        },
        pod(containers=[c("web", resources={"limits": {"cpu": "2"}, "requests": {"cpu": "1"}})]),
        id="nested-map-patch-replace",
    ),
    pytest.param(
        "Pod",
        meta(labels={"a": "1"}),
        {"metadata": {"labels": {"$patch": "replace", "b": "2", "c": None}}},
        meta(labels={"b": "2"}),
        id="patch-replace-drops-nulls",
    ),
    # --- replace strategy ---------------------------------------------------------------
    pytest.param(
        "PDB",
        {
            "spec": {
                "minAvailable": 1,
                "selector": {
                    "matchLabels": {"app": "a"},
                    "matchExpressions": [{"key": "x", "operator": "Exists"}],
                },
            }
        },
        {"spec": {"selector": {"matchLabels": {"app": "b"}}}},
        {"spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "b"}}}},
        id="pdb-selector-replace-strategy",
    ),
    # --- other merge-keyed lists --------------------------------------------------------
    pytest.param(
        "Pod",
        pod(imagePullSecrets=[{"name": "a"}]),
        {"spec": {"imagePullSecrets": [{"name": "b"}]}},
        pod(imagePullSecrets=[{"name": "b"}, {"name": "a"}]),
        id="image-pull-secrets-by-name",
    ),
    pytest.param(
        "Deployment",
        deploy(
            template={
                "spec": {"containers": [c("web", env=[{"name": "A", "value": "1"}]), c("log")]}
            }
        ),
        {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "log"}, {"name": "web"}],
                        "containers": [c("web", env=[{"name": "B", "value": "2"}])],
                    }
                }
            }
        },
        deploy(
            template={
                "spec": {
                    "containers": [
                        c("log"),
                        c("web", env=[{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]),
                    ]
                }
            }
        ),
        id="deployment-nested-merge-and-reorder",
    ),
]


@pytest.mark.parametrize(("kind", "original", "patch", "expected"), CASES)
def test_apply(kind: str, original: JSON, patch: JSON, expected: JSON) -> None:
    original_before = copy.deepcopy(original)
    patch_before = copy.deepcopy(patch)

    result = apply_strategic_merge_patch(original, patch, KINDS[kind])

    assert result == expected
    assert original == original_before, "the original must not be mutated"
    assert patch == patch_before, "the patch must not be mutated"


def test_there_are_at_least_forty_apply_cases() -> None:
    assert len(CASES) >= 40


def test_result_shares_no_containers_with_the_inputs() -> None:
    original = pod(containers=[c("web", args=["-v"])], tolerations=[{"key": "a"}])
    patch = {"spec": {"nodeSelector": {"disk": "ssd"}, "tolerations": [{"key": "b"}]}}
    result = apply_strategic_merge_patch(original, patch, KINDS["Pod"])
    result["spec"]["containers"][0]["args"].append("-x")
    result["spec"]["nodeSelector"]["zone"] = "a"
    result["spec"]["tolerations"][0]["key"] = "z"
    assert original["spec"]["containers"][0]["args"] == ["-v"]
    assert patch["spec"]["nodeSelector"] == {"disk": "ssd"}
    assert patch["spec"]["tolerations"] == [{"key": "b"}]


# (kind, original, patch, error path, message fragment)
ERRORS: list[Any] = [
    pytest.param(
        "Pod",
        pod(containers=[c("web")]),
        {"spec": {"containers": [{"image": "x"}]}},
        "spec.containers[0]",
        "no merge key 'name'",
        id="missing-merge-key",
    ),
    pytest.param(
        "Deployment",
        deploy(template={"spec": {"containers": [c("a"), c("b")]}}),
        {"spec": {"template": {"spec": {"containers": [c("a"), c("b", env=[{"value": "1"}])]}}}},
        "spec.template.spec.containers[1].env[0]",
        "no merge key 'name'",
        id="missing-merge-key-deep",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web")]),
        {"spec": {"containers": ["web"]}},
        "spec.containers[0]",
        "must be an object with merge key 'name', not string",
        id="list-element-not-an-object",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web")]),
        {"spec": {"containers": [{"name": {"a": 1}}]}},
        "spec.containers[0]",
        "merge key 'name' must be a scalar",
        id="merge-key-not-scalar",
    ),
    pytest.param(
        "Pod",
        meta(labels={"a": "1"}),
        {"metadata": {"labels": {"$patch": "bogus"}}},
        "metadata.labels.$patch",
        "unknown $patch directive 'bogus'",
        id="unknown-map-directive",
    ),
    pytest.param(
        "Pod",
        meta(labels={"a": "1"}),
        {"metadata": {"labels": {"$patch": "merge"}}},
        "metadata.labels.$patch",
        "unknown $patch directive 'merge'",
        id="merge-directive-on-map",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web")]),
        {"spec": {"containers": [{"name": "web", "$patch": "merge"}]}},
        "spec.containers[0]",
        "'$patch: merge' is not supported",
        id="merge-directive-in-list",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web")]),
        {"spec": {"containers": [{"name": "web", "$patch": 1}]}},
        "spec.containers[0].$patch",
        "unknown $patch directive number",
        id="non-string-directive-in-list",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web")]),
        {"spec": {"containers": [{"$patch": "delete"}]}},
        "spec.containers[0]",
        "'$patch: delete' element has no merge key 'name'",
        id="delete-without-merge-key",
    ),
    pytest.param(
        "Deployment",
        strategy(**ROLLING),
        {"spec": {"strategy": {"type": "Recreate", "$retainKeys": "type"}}},
        "spec.strategy.$retainKeys",
        "must be a list of field names",
        id="retain-keys-not-a-list",
    ),
    pytest.param(
        "Deployment",
        strategy(**ROLLING),
        {"spec": {"strategy": {"type": "Recreate", "$retainKeys": ["rollingUpdate"]}}},
        "spec.strategy.$retainKeys",
        "sets 'type', which $retainKeys does not list",
        id="retain-keys-missing-a-set-field",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web")]),
        {"spec": {"$setElementOrder/containers": {"name": "web"}}},
        "spec.$setElementOrder/containers",
        "must be a list, not object",
        id="set-element-order-not-a-list",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("a"), c("b")]),
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "containers": [c("b", image="2"), c("a", image="2")],
            }
        },
        "spec.$setElementOrder/containers",
        "element [1] of the patch list is out of the order",
        id="set-element-order-contradicts-patch-order",
    ),
    pytest.param(
        "Pod",
        meta(finalizers=["a"]),
        {"metadata": {"$setElementOrder/finalizers": ["a"], "finalizers": ["b"]}},
        "metadata.$setElementOrder/finalizers",
        "element [0] of the patch list is not in this list",
        id="set-element-order-misses-a-patch-item",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("a")]),
        {"spec": {"$setElementOrder/containers": ["a"]}},
        "spec.$setElementOrder/containers[0]",
        "must be an object with merge key 'name'",
        id="set-element-order-entry-without-merge-key",
    ),
    pytest.param(
        "Pod",
        meta(finalizers=["a"]),
        {"metadata": {"$setElementOrder": ["a"]}},
        "metadata.$setElementOrder",
        "malformed directive",
        id="set-element-order-without-field",
    ),
    pytest.param(
        "Pod",
        meta(finalizers=["a"]),
        {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
        "metadata.$deleteFromPrimitiveList/finalizers",
        "must be a list, not string",
        id="delete-from-primitive-list-not-a-list",
    ),
    pytest.param(
        "Pod",
        pod(containers=[c("web", args=["-a"])]),
        {"spec": {"containers": [c("web", **{"$deleteFromPrimitiveList/args": ["-a"]})]}},
        "spec.containers[0].$deleteFromPrimitiveList/args",
        "not a list of primitives with patch strategy merge",
        id="delete-from-atomic-list",
    ),
    pytest.param(
        "Pod",
        meta(finalizers=["a"]),
        {"metadata": {"finalizers": [{"name": "a"}]}},
        "metadata.finalizers[0]",
        "must be a string, number, boolean or null, not object",
        id="object-in-primitive-set",
    ),
]


@pytest.mark.parametrize(("kind", "original", "patch", "path", "message"), ERRORS)
def test_invalid_patches_raise_patch_error(
    kind: str, original: JSON, patch: JSON, path: str, message: str
) -> None:
    with pytest.raises(PatchError) as caught:
        apply_strategic_merge_patch(original, patch, KINDS[kind])
    assert caught.value.path == path
    assert message in caught.value.reason
    assert str(caught.value) == f"{path}: {caught.value.reason}"


def test_patch_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^spec\.containers\[0\]: "):
        apply_strategic_merge_patch(
            pod(containers=[c("a")]), {"spec": {"containers": [{}]}}, KINDS["Pod"]
        )


@pytest.mark.parametrize("patch", [[], "x", None])
def test_patch_must_be_an_object(patch: Any) -> None:
    with pytest.raises(PatchError, match="must be a JSON object"):
        apply_strategic_merge_patch(pod(), patch, KINDS["Pod"])


@pytest.mark.parametrize(
    "patch",
    [
        pytest.param(
            {"spec": {"containers": [c("web", env=[{"value": "hunter2-secret"}])]}},
            id="element-without-merge-key",
        ),
        pytest.param(
            {"spec": {"containers": [c("web", env="hunter2-secret")]}}, id="wrong-type-replaces"
        ),
        pytest.param(
            {"metadata": {"finalizers": [{"password": "hunter2-secret"}]}}, id="object-in-set"
        ),
        pytest.param(
            {"metadata": {"$deleteFromPrimitiveList/finalizers": "hunter2-secret"}},
            id="directive-of-wrong-type",
        ),
    ],
)
def test_errors_do_not_quote_document_values(patch: JSON) -> None:
    original = pod(containers=[c("web", env=[{"name": "PASSWORD", "value": "hunter2-live"}])])
    try:
        result = apply_strategic_merge_patch(original, patch, KINDS["Pod"])
    except PatchError as exc:
        assert "hunter2" not in str(exc)
        return
    # A value of the wrong type for a list replaces it, as on the API server; schema
    # validation rejects it afterwards.
    assert result["spec"]["containers"][0]["env"] == "hunter2-secret"


def test_empty_meta_merges_maps_and_replaces_lists() -> None:
    result = apply_strategic_merge_patch(
        {"a": {"x": 1}, "l": [{"name": "a"}], "s": [1, 2]},
        {"a": {"y": 2}, "l": [{"name": "b"}], "s": [3]},
        PatchMeta.empty(),
    )
    assert result == {"a": {"x": 1, "y": 2}, "l": [{"name": "b"}], "s": [3]}


def test_true_is_not_one_in_primitive_sets() -> None:
    # Python considers True == 1; JSON does not, so both stay in the set.
    defs_meta = KINDS["Pod"].field("metadata").field("finalizers")
    assert defs_meta.strategy == frozenset({"merge"})
    result = apply_strategic_merge_patch(
        meta(finalizers=[1]), {"metadata": {"finalizers": [True]}}, KINDS["Pod"]
    )
    assert result["metadata"]["finalizers"] == [True, 1]
