"""Merge conformance: our three-way apply ends exactly where `kubectl apply` does.

Each case is (original, modified, someone else's edit). For every case, on a real
`recon serve`: kubectl applies `original`; another client makes the edit; we read `current`
back; then (A) Recon's `apply_three_way(last-applied, modified, current)` is computed and
sent as a server-side dry run, and (B) kubectl applies `modified` for real. A and B must be
the same object. Phases are batched (one kubectl call for every case) to stay fast.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.gitops.apply import PatchMetas, comparable
from reconciler.merge.three_way import apply_three_way, last_applied_of
from tests.e2e.conftest import Kubectl, ReconServer

pytestmark = pytest.mark.e2e

NS = "conformance"
Obj = dict[str, Any]
Mutation = Callable[[Obj], None]


def base_deployment() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"labels": {"app": "x"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "x"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": {"app": "x"}, "annotations": {"a": "1"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "web:1",
                            "args": ["--a", "--b"],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "ports": [{"containerPort": 80}, {"containerPort": 443}],
                            "volumeMounts": [
                                {"name": "data", "mountPath": "/data"},
                                {"name": "cfg", "mountPath": "/cfg"},
                            ],
                        },
                        {"name": "side", "image": "side:1"},
                    ],
                    "volumes": [
                        {"name": "data", "emptyDir": {}},
                        {"name": "cfg", "configMap": {"name": "cfg"}},
                    ],
                    "tolerations": [{"key": "k1", "operator": "Exists"}],
                    "nodeSelector": {"disk": "ssd"},
                },
            },
        },
    }


def web(o: Obj) -> Obj:
    return o["spec"]["template"]["spec"]["containers"][0]


def pod_spec(o: Obj) -> Obj:
    return o["spec"]["template"]["spec"]


DEPLOYMENT_MUTATIONS: dict[str, Mutation] = {
    "image": lambda o: web(o).update(image="web:2"),
    "add-env": lambda o: web(o)["env"].append({"name": "C", "value": "3"}),
    "remove-env": lambda o: web(o)["env"].pop(),
    "change-env": lambda o: web(o)["env"][0].update(value="changed"),
    "reorder-env": lambda o: web(o).update(env=list(reversed(web(o)["env"]))),
    "env-valuefrom": lambda o: web(o)["env"].__setitem__(
        1, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    ),
    "remove-all-env": lambda o: web(o).pop("env"),
    "add-port": lambda o: web(o)["ports"].append({"containerPort": 8080}),
    "remove-port": lambda o: web(o)["ports"].pop(0),
    "name-port": lambda o: web(o)["ports"][0].update(name="http"),
    "remove-container": lambda o: pod_spec(o)["containers"].pop(),
    "add-container": lambda o: pod_spec(o)["containers"].append({"name": "third", "image": "t:1"}),
    "reorder-containers": lambda o: pod_spec(o).update(
        containers=list(reversed(pod_spec(o)["containers"]))
    ),
    "args-change": lambda o: web(o).update(args=["--c"]),
    "args-remove": lambda o: web(o).pop("args"),
    "add-volume": lambda o: pod_spec(o)["volumes"].append({"name": "tmp", "emptyDir": {}}),
    "remove-volume": lambda o: (pod_spec(o)["volumes"].pop(), web(o)["volumeMounts"].pop()),
    "volume-source-switch": lambda o: pod_spec(o)["volumes"][0].update(
        {"emptyDir": None, "hostPath": {"path": "/tmp"}}
    ),
    "mount-readonly": lambda o: web(o)["volumeMounts"][0].update(readOnly=True),
    "add-toleration": lambda o: pod_spec(o)["tolerations"].append(
        {"key": "k2", "operator": "Equal", "value": "v", "effect": "NoSchedule"}
    ),
    "remove-tolerations": lambda o: pod_spec(o).pop("tolerations"),
    "node-selector-change": lambda o: pod_spec(o).update(nodeSelector={"zone": "a"}),
    "node-selector-remove": lambda o: pod_spec(o).pop("nodeSelector"),
    "replicas": lambda o: o["spec"].update(replicas=5),
    "replicas-removed": lambda o: o["spec"].pop("replicas"),
    "strategy-recreate": lambda o: o["spec"].update(strategy={"type": "Recreate"}),
    "strategy-surge": lambda o: o["spec"]["strategy"]["rollingUpdate"].update(maxSurge="50%"),
    "label-add": lambda o: o["metadata"]["labels"].update(tier="web"),
    "label-remove": lambda o: o["metadata"].pop("labels"),
    "annotation-add": lambda o: o["metadata"].update(annotations={"note": "x"}),
    "template-annotation-remove": lambda o: o["spec"]["template"]["metadata"].pop("annotations"),
    "resources-add": lambda o: web(o).update(resources={"limits": {"cpu": "1"}}),
    "probe-add": lambda o: web(o).update(readinessProbe={"tcpSocket": {"port": 80}}),
    "security-context": lambda o: pod_spec(o).update(securityContext={"runAsUser": 1000}),
    "nothing": lambda o: None,
}

EDITS: dict[str, Any] = {
    "none": None,
    "inject-env": {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "web", "env": [{"name": "INJECTED", "value": "x"}]}]
                }
            }
        }
    },
    "inject-container": {
        "spec": {"template": {"spec": {"containers": [{"name": "mesh", "image": "mesh:1"}]}}}
    },
    "scale": {"spec": {"replicas": 7}},
    "annotate": {
        "metadata": {"annotations": {"other-tool": "yes"}},
        "spec": {"template": {"metadata": {"annotations": {"restartedAt": "now"}}}},
    },
}


def deployment_cases() -> list[tuple[str, Obj, Obj, Any]]:
    cases = []
    for i, (mutation_name, mutate) in enumerate(DEPLOYMENT_MUTATIONS.items()):
        # Every mutation alone, and with the edits that commonly meet it in real life.
        edits = ["none", list(EDITS)[1 + i % (len(EDITS) - 1)]]
        for edit in edits:
            original = base_deployment()
            modified = copy.deepcopy(original)
            mutate(modified)
            cases.append((f"{mutation_name}+{edit}", original, modified, EDITS[edit]))
    return cases


def configmap_cases() -> list[tuple[str, Obj, Obj, Any]]:
    base = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1", "b": "2"}}
    changes: dict[str, Mutation] = {
        "cm-add": lambda o: o["data"].update(c="3"),
        "cm-remove": lambda o: o["data"].pop("a"),
        "cm-change": lambda o: o["data"].update(b="22"),
        "cm-drop-data": lambda o: o.pop("data"),
    }
    out = []
    for name, mutate in changes.items():
        for edit in (None, {"data": {"z": "from-someone-else"}}):
            modified = copy.deepcopy(base)
            mutate(modified)
            out.append(
                (f"{name}+{'edit' if edit else 'none'}", copy.deepcopy(base), modified, edit)
            )
    return out


def service_cases() -> list[tuple[str, Obj, Obj, Any]]:
    base = {
        "apiVersion": "v1",
        "kind": "Service",
        "spec": {
            "selector": {"app": "x"},
            "ports": [
                {"name": "http", "port": 80, "targetPort": 8080},
                {"name": "https", "port": 443, "targetPort": 8443},
            ],
        },
    }
    changes: dict[str, Mutation] = {
        "svc-remove-port": lambda o: o["spec"]["ports"].pop(),
        "svc-target-change": lambda o: o["spec"]["ports"][0].update(targetPort=9090),
        "svc-selector": lambda o: o["spec"].update(selector={"app": "other"}),
        "svc-type-nodeport": lambda o: o["spec"].update(type="NodePort"),
    }
    out = []
    for name, mutate in changes.items():
        for edit in (None, {"metadata": {"labels": {"external": "x"}}}):
            modified = copy.deepcopy(base)
            mutate(modified)
            out.append(
                (f"{name}+{'edit' if edit else 'none'}", copy.deepcopy(base), modified, edit)
            )
    return out


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gizmos.conformance.example.com"},
    "spec": {
        "group": "conformance.example.com",
        "scope": "Namespaced",
        "names": {"plural": "gizmos", "kind": "Gizmo"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                        },
                    }
                },
            }
        ],
    },
}


def custom_resource_cases() -> list[tuple[str, Obj, Obj, Any]]:
    base = {
        "apiVersion": "conformance.example.com/v1",
        "kind": "Gizmo",
        "spec": {"size": 1, "nested": {"a": 1, "b": {"c": 2}}, "list": [1, 2]},
    }
    changes: dict[str, Mutation] = {
        "cr-change": lambda o: o["spec"].update(size=2),
        "cr-nested-delete": lambda o: o["spec"]["nested"]["b"].pop("c"),
        "cr-list-replace": lambda o: o["spec"].update(list=[3]),
        "cr-remove-key": lambda o: o["spec"].pop("nested"),
        "cr-null-value": lambda o: o["spec"].update(size=None),
    }
    out = []
    for name, mutate in changes.items():
        for edit in (None, {"spec": {"owner": "ops"}}):
            modified = copy.deepcopy(base)
            mutate(modified)
            out.append(
                (f"{name}+{'edit' if edit else 'none'}", copy.deepcopy(base), modified, edit)
            )
    return out


CASES = deployment_cases() + configmap_cases() + service_cases() + custom_resource_cases()


def named(obj: Obj, index: int) -> Obj:
    """The case's object with its own name (and selector: overlapping ones would fight)."""
    text = json.dumps(obj).replace('"app": "x"', f'"app": "case-{index}"')
    out: Obj = json.loads(text)
    out.setdefault("metadata", {})["name"] = f"case-{index}"
    out["metadata"]["namespace"] = NS
    return out


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 80


def _path(obj: Obj) -> str:
    api = obj["apiVersion"]
    prefix = f"/api/{api}" if "/" not in api else f"/apis/{api}"
    plural = {
        "Deployment": "deployments",
        "ConfigMap": "configmaps",
        "Service": "services",
        "Gizmo": "gizmos",
    }[obj["kind"]]
    return f"{prefix}/namespaces/{NS}/{plural}/{obj['metadata']['name']}"


def _normal(obj: Obj | None) -> Obj | None:
    """Compare without server-managed fields and without the annotation's byte form."""
    out = comparable(obj)
    if out is not None:
        annotations = out.get("metadata", {}).get("annotations") or {}
        # Written by the Deployment controller after kubectl's apply, not by either apply.
        annotations.pop("deployment.kubernetes.io/revision", None)
        text = annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
        if text:
            annotations["last-applied"] = json.loads(text)
        if not annotations:
            out.get("metadata", {}).pop("annotations", None)
    return out


def test_our_apply_equals_kubectl_apply(
    server: ReconServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    kubectl.run("create", "namespace", NS)
    kubectl.run("apply", "-f", "-", input=yaml.safe_dump(WIDGET_CRD))
    originals = [named(original, i) for i, (_, original, _, _) in enumerate(CASES)]
    (tmp_path / "original.yaml").write_text(yaml.safe_dump_all(originals))
    kubectl.run("apply", "-f", str(tmp_path / "original.yaml"), timeout=120)
    for i, (_, _, _, edit) in enumerate(CASES):
        if edit is None:
            continue
        obj = originals[i]
        kind = "strategic" if obj["kind"] != "Gizmo" else "merge"
        status, body = server.request(
            "PATCH",
            _path(obj),
            edit,
            content_type=f"application/{kind}-merge-patch+json"
            if kind == "strategic"
            else "application/merge-patch+json",
        )
        assert status == 200, (CASES[i][0], body)
    metas = PatchMetas()
    ours: list[Obj] = []
    for i, (_, _, modified, _) in enumerate(CASES):
        status, current = server.request("GET", _path(originals[i]))
        assert status == 200
        desired = named(modified, i)
        meta = metas.for_kind(desired["apiVersion"], desired["kind"])
        merged = apply_three_way(last_applied_of(current), desired, current, meta)
        merged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        merged.pop("status", None)
        status, dry = server.request("PUT", _path(originals[i]) + "?dryRun=All", merged)
        assert status == 200, (CASES[i][0], dry)
        ours.append(dry)
    modifieds = [named(modified, i) for i, (_, _, modified, _) in enumerate(CASES)]
    (tmp_path / "modified.yaml").write_text(yaml.safe_dump_all(modifieds))
    kubectl.run("apply", "-f", str(tmp_path / "modified.yaml"), timeout=120)
    mismatches = []
    for i, (name, _, _, _) in enumerate(CASES):
        _, theirs = server.request("GET", _path(originals[i]))
        if _normal(ours[i]) != _normal(theirs):
            mismatches.append(name)

    assert mismatches == [], f"{len(mismatches)} of {len(CASES)} cases differ: {mismatches}"
