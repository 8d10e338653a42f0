"""Merge conformance: Recon's three-way patch is the patch `kubectl apply` sends, same result.

Each case is (original, modified, someone else's edit). On a real `recon serve` with the real
kubectl, all cases at once (each phase is one batch, split over four kubectl processes and a
few HTTP threads, so a few hundred cases take about twenty seconds):

1. `kubectl apply` every original (this creates them; their last-applied annotation must be
   byte for byte `last_applied_annotation(original)`);
2. another client edits each object (a strategic, merge or JSON patch straight to the API);
3. `current` is read back from the server and (A) Recon computes
   `three_way_patch(last-applied of current, modified, current)` and applies it locally
   (plus the server's defaulting), giving `ours`;
4. (B) `kubectl apply -v=9` every modified object; the PATCH bodies kubectl sent are read from
   its log, and the live objects afterwards are `theirs`.

A case passes when our patch equals kubectl's patch (same JSON, list order included; `{}`
when kubectl sent none) and `ours == theirs` without the server-managed fields (resource
version, generation, uid, creation time, managed fields, status, and the Deployment
controller's revision annotation). The last-applied annotations are compared as strings,
so the annotation kubectl wrote must be byte for byte the one Recon writes.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reconciler.apiserver.defaults import apply_defaults
from reconciler.merge import apply_merge_patch, apply_strategic_merge_patch
from reconciler.merge.three_way import (
    LAST_APPLIED,
    STRATEGIC_MERGE_PATCH,
    last_applied_annotation,
    last_applied_of,
    three_way_patch,
)
from reconciler.schema.definitions import load
from reconciler.schema.patchmeta import PatchMeta
from tests.e2e.conftest import Kubectl, ReconServer

pytestmark = pytest.mark.e2e

NS = "conformance"
Obj = dict[str, Any]
Mutation = Callable[[Obj], Any]


@dataclass(frozen=True)
class Edit:
    """Another client's change: a patch of `kind` strategic, merge or json."""

    kind: str
    body: Any


@dataclass(frozen=True)
class Case:
    name: str
    original: Obj
    modified: Obj
    edit: Edit | None = None


# --------------------------------------------------------------------------------------------
# Deployments: lists with merge keys, primitive lists, maps, retainKeys, nulls


def base_deployment() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"labels": {"app": "x", "tier": "web"}, "annotations": {"note": "hello"}},
        "spec": {
            "replicas": 0,  # no pods: the controllers stay out of the way
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
                            "ports": [
                                {"containerPort": 80, "name": "http"},
                                {"containerPort": 443},
                            ],
                            "volumeMounts": [
                                {"name": "data", "mountPath": "/data"},
                                {"name": "cfg", "mountPath": "/cfg"},
                            ],
                            "resources": {"limits": {"cpu": "1", "memory": "64Mi"}},
                            "readinessProbe": {
                                "httpGet": {"path": "/healthz", "port": 80},
                                "periodSeconds": 5,
                            },
                        },
                        {"name": "side", "image": "side:1"},
                    ],
                    "volumes": [
                        {"name": "data", "emptyDir": {}},
                        {"name": "cfg", "configMap": {"name": "cfg"}},
                    ],
                    "tolerations": [{"key": "k1", "operator": "Exists"}],
                    "nodeSelector": {"disk": "ssd"},
                    "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
                },
            },
        },
    }


def pod(o: Obj) -> Obj:
    spec: Obj = o["spec"]["template"]["spec"]
    return spec


def web(o: Obj) -> Obj:
    return next(c for c in pod(o)["containers"] if c["name"] == "web")


def containers_path(*rest: Any) -> dict[str, Any]:
    """A strategic patch body reaching into `spec.template.spec`."""
    return {"spec": {"template": {"spec": dict(rest)}}}


INJECT_ENV = Edit(
    "strategic",
    containers_path(("containers", [{"name": "web", "env": [{"name": "INJECTED", "value": "x"}]}])),
)
INJECT_CONTAINER = Edit(
    "strategic", containers_path(("containers", [{"name": "mesh", "image": "mesh:1"}]))
)
SET_IMAGE = Edit("strategic", containers_path(("containers", [{"name": "web", "image": "hot:1"}])))
RESOURCES = Edit(
    "strategic",
    containers_path(("containers", [{"name": "web", "resources": {"requests": {"cpu": "1m"}}}])),
)
SCALE = Edit("merge", {"spec": {"replicas": 2}})
ANNOTATE = Edit(
    "strategic",
    {
        "metadata": {"annotations": {"other-tool": "yes"}},
        "spec": {"template": {"metadata": {"annotations": {"restartedAt": "now"}}}},
    },
)
DROP_ENV_B = Edit("json", [{"op": "remove", "path": "/spec/template/spec/containers/0/env/1"}])
REORDER_CONTAINERS = Edit(
    "json",
    [
        {
            "op": "move",
            "from": "/spec/template/spec/containers/1",
            "path": "/spec/template/spec/containers/0",
        }
    ],
)
ADD_VOLUME = Edit(
    "strategic",
    containers_path(
        ("volumes", [{"name": "extra", "emptyDir": {}}]),
        ("containers", [{"name": "web", "volumeMounts": [{"name": "extra", "mountPath": "/x"}]}]),
    ),
)
ADD_TOLERATION = Edit(
    "strategic", containers_path(("tolerations", [{"key": "other", "operator": "Exists"}]))
)
NODE_SELECTOR = Edit("merge", containers_path(("nodeSelector", {"zone": "b"})))
DROP_LABEL = Edit("json", [{"op": "remove", "path": "/metadata/labels/tier"}])
OTHER_FINALIZER = Edit("strategic", {"metadata": {"finalizers": ["other.io/keep"]}})
DROP_STRATEGY = Edit("json", [{"op": "remove", "path": "/spec/strategy/rollingUpdate"}])
# As if the object had been made by `kubectl create` or a controller: no last-applied.
FORGET_APPLY = Edit(
    "json",
    [
        {
            "op": "remove",
            "path": "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
        }
    ],
)


def finalizers(*names: str) -> Mutation:
    return lambda o: o["metadata"].update(finalizers=list(names))


def set_strategy(strategy: Obj) -> Mutation:
    return lambda o: o["spec"].update(strategy=copy.deepcopy(strategy))


def both(*mutations: Mutation) -> Mutation:
    return lambda o: [mutation(o) for mutation in mutations]


# (name, mutation of modified, edits besides "none", mutation of original)
DEPLOYMENT_CHANGES: list[tuple[str, Mutation, list[Edit], Mutation | None]] = [
    # containers: merge key `name`
    ("image", lambda o: web(o).update(image="web:2"), [SET_IMAGE], None),
    (
        "add-container",
        lambda o: pod(o)["containers"].append({"name": "third", "image": "t:1"}),
        [INJECT_CONTAINER],
        None,
    ),
    ("remove-container", lambda o: pod(o)["containers"].pop(), [INJECT_CONTAINER], None),
    (
        "reorder-containers",
        lambda o: pod(o)["containers"].reverse(),
        [REORDER_CONTAINERS, INJECT_CONTAINER],
        None,
    ),
    (
        "swap-container",
        lambda o: pod(o).update(containers=[{"name": "new", "image": "n:1"}, web(o)]),
        [INJECT_ENV],
        None,
    ),
    ("args-removed", lambda o: web(o).pop("args"), [SCALE], None),
    ("command-added", lambda o: web(o).update(command=["/bin/web"]), [ANNOTATE], None),
    ("limit-removed", lambda o: web(o)["resources"]["limits"].pop("memory"), [RESOURCES], None),
    ("resources-removed", lambda o: web(o).pop("resources"), [RESOURCES], None),
    (
        "probe-switch",
        lambda o: web(o).update(readinessProbe={"tcpSocket": {"port": 80}}),
        [SCALE],
        None,
    ),
    ("probe-field-removed", lambda o: web(o)["readinessProbe"].pop("periodSeconds"), [], None),
    ("probe-removed", lambda o: web(o).pop("readinessProbe"), [ANNOTATE], None),
    # env: merge key `name`
    ("add-env", lambda o: web(o)["env"].append({"name": "C", "value": "3"}), [INJECT_ENV], None),
    ("remove-env", lambda o: web(o)["env"].pop(), [INJECT_ENV, DROP_ENV_B], None),
    ("change-env", lambda o: web(o)["env"][0].update(value="changed"), [DROP_ENV_B], None),
    ("reorder-env", lambda o: web(o)["env"].reverse(), [INJECT_ENV], None),
    (
        "env-value-from",
        lambda o: web(o)["env"].__setitem__(
            1, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        ),
        [INJECT_ENV],
        None,
    ),
    ("remove-all-env", lambda o: web(o).pop("env"), [INJECT_ENV], None),
    (
        "env-insert-front",
        lambda o: web(o)["env"].insert(0, {"name": "Z", "value": "0"}),
        [INJECT_ENV],
        None,
    ),
    (
        "env-duplicate-name",
        lambda o: web(o)["env"].append({"name": "A", "value": "again"}),
        [],
        None,
    ),
    (
        "env-duplicate-removed",
        lambda o: web(o)["env"].pop(),
        [],
        lambda o: web(o)["env"].append({"name": "A", "value": "again"}),
    ),
    # ports: merge key `containerPort`
    ("add-port", lambda o: web(o)["ports"].append({"containerPort": 8080}), [SCALE], None),
    ("remove-port", lambda o: web(o)["ports"].pop(), [], None),
    ("rename-port", lambda o: web(o)["ports"][0].update(name="web"), [], None),
    ("renumber-port", lambda o: web(o)["ports"][1].update(containerPort=8443), [], None),
    ("reorder-ports", lambda o: web(o)["ports"].reverse(), [], None),
    (
        "port-udp-twin",
        lambda o: web(o)["ports"].append({"containerPort": 80, "protocol": "UDP", "name": "u"}),
        [],
        None,
    ),
    # volumes: merge key `name`, retainKeys on each volume
    (
        "add-volume",
        lambda o: pod(o)["volumes"].append({"name": "tmp", "emptyDir": {}}),
        [ADD_VOLUME],
        None,
    ),
    (
        "remove-volume",
        lambda o: (pod(o)["volumes"].pop(), web(o)["volumeMounts"].pop()),
        [ADD_VOLUME],
        None,
    ),
    (
        "volume-source-switch",
        lambda o: pod(o)["volumes"].__setitem__(0, {"name": "data", "hostPath": {"path": "/t"}}),
        [ADD_VOLUME],
        None,
    ),
    (
        "volume-configmap-renamed",
        lambda o: pod(o)["volumes"][1]["configMap"].update(name="cfg2"),
        [],
        None,
    ),
    (
        "volume-configmap-items",
        lambda o: pod(o)["volumes"][1]["configMap"].update(items=[{"key": "k", "path": "p"}]),
        [],
        None,
    ),
    (
        "volume-emptydir-limit",
        lambda o: pod(o)["volumes"][0].update(emptyDir={"sizeLimit": "1Gi"}),
        [],
        None,
    ),
    # volumeMounts: merge key `mountPath`
    (
        "mount-readonly",
        lambda o: web(o)["volumeMounts"][0].update(readOnly=True),
        [ADD_VOLUME],
        None,
    ),
    ("mount-moved", lambda o: web(o)["volumeMounts"][1].update(mountPath="/config"), [], None),
    ("mount-removed", lambda o: web(o)["volumeMounts"].pop(), [ADD_VOLUME], None),
    ("mount-subpath", lambda o: web(o)["volumeMounts"][1].update(subPath="x"), [], None),
    # tolerations: atomic list
    (
        "add-toleration",
        lambda o: pod(o)["tolerations"].append({"key": "k2", "operator": "Exists"}),
        [ADD_TOLERATION],
        None,
    ),
    ("remove-tolerations", lambda o: pod(o).pop("tolerations"), [ADD_TOLERATION], None),
    (
        "change-toleration",
        lambda o: pod(o)["tolerations"][0].update(effect="NoSchedule"),
        [],
        None,
    ),
    # args: atomic list of primitives
    ("args-change", lambda o: web(o).update(args=["--c"]), [], None),
    ("args-reorder", lambda o: web(o)["args"].reverse(), [], None),
    # finalizers: primitive list with patch strategy merge
    ("finalizers-added", finalizers("example.com/a", "example.com/b"), [OTHER_FINALIZER], None),
    (
        "finalizers-one-removed",
        finalizers("example.com/a"),
        [OTHER_FINALIZER],
        finalizers("example.com/a", "example.com/b"),
    ),
    (
        "finalizers-reordered",
        finalizers("example.com/b", "example.com/a"),
        [],
        finalizers("example.com/a", "example.com/b"),
    ),
    (
        "finalizers-unsorted-unchanged",
        lambda o: None,
        [OTHER_FINALIZER],
        finalizers("z.example.com/z", "a.example.com/a"),
    ),
    (
        "finalizers-all-removed",
        lambda o: o["metadata"].pop("finalizers"),
        [OTHER_FINALIZER],
        finalizers("example.com/a", "example.com/b"),
    ),
    (
        "finalizers-replaced",
        finalizers("example.com/c"),
        [],
        finalizers("example.com/a", "example.com/b"),
    ),
    (
        "finalizers-emptied",
        finalizers(),
        [],
        finalizers("example.com/a", "example.com/b"),
    ),
    # maps
    ("label-add", lambda o: o["metadata"]["labels"].update(team="a"), [DROP_LABEL], None),
    ("label-remove", lambda o: o["metadata"]["labels"].pop("tier"), [DROP_LABEL], None),
    (
        "labels-removed",
        lambda o: o["metadata"].pop("labels"),
        [],
        None,
    ),
    ("annotation-add", lambda o: o["metadata"]["annotations"].update(b="2"), [ANNOTATE], None),
    ("annotations-removed", lambda o: o["metadata"].pop("annotations"), [ANNOTATE], None),
    (
        "template-annotations-removed",
        lambda o: o["spec"]["template"]["metadata"].pop("annotations"),
        [ANNOTATE],
        None,
    ),
    (
        "template-annotation-changed",
        lambda o: o["spec"]["template"]["metadata"]["annotations"].update(a="2"),
        [],
        None,
    ),
    (
        "node-selector-change",
        lambda o: pod(o).update(nodeSelector={"zone": "a"}),
        [NODE_SELECTOR],
        None,
    ),
    ("node-selector-removed", lambda o: pod(o).pop("nodeSelector"), [NODE_SELECTOR], None),
    ("node-selector-key-added", lambda o: pod(o)["nodeSelector"].update(gpu="no"), [], None),
    # retainKeys: Deployment strategy
    ("strategy-recreate", set_strategy({"type": "Recreate"}), [SCALE], None),
    (
        "strategy-back-to-rolling",
        set_strategy({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2}}),
        [],
        set_strategy({"type": "Recreate"}),
    ),
    (
        "strategy-surge",
        lambda o: o["spec"]["strategy"]["rollingUpdate"].update(maxSurge="50%"),
        [DROP_STRATEGY],
        None,
    ),
    ("strategy-removed", lambda o: o["spec"].pop("strategy"), [], None),
    ("strategy-type-only", set_strategy({"type": "RollingUpdate"}), [DROP_STRATEGY], None),
    # explicit nulls in the manifest
    ("replicas-null", lambda o: o["spec"].update(replicas=None), [SCALE], None),
    ("replicas-removed", lambda o: o["spec"].pop("replicas"), [SCALE], None),
    ("node-selector-null", lambda o: pod(o).update(nodeSelector=None), [NODE_SELECTOR], None),
    ("env-value-null", lambda o: web(o)["env"][0].update(value=None), [], None),
    (
        "template-annotations-null",
        lambda o: o["spec"]["template"]["metadata"].update(annotations=None),
        [],
        None,
    ),
    ("new-field-null", lambda o: o["spec"].update(minReadySeconds=None), [], None),
    ("nested-null", lambda o: pod(o)["securityContext"].update(runAsGroup=None), [], None),
    # nested deletions and additions
    ("nested-field-removed", lambda o: pod(o)["securityContext"].pop("runAsGroup"), [], None),
    ("nested-map-removed", lambda o: pod(o).pop("securityContext"), [], None),
    (
        "deep-field-removed",
        lambda o: web(o)["readinessProbe"]["httpGet"].pop("path"),
        [],
        None,
    ),
    ("defaulted-field-set", lambda o: o["spec"].update(revisionHistoryLimit=3), [], None),
    (
        "many-at-once",
        both(
            lambda o: web(o).update(image="web:3"),
            lambda o: web(o)["env"].pop(0),
            lambda o: pod(o)["containers"].pop(),
            lambda o: pod(o)["volumes"].append({"name": "more", "emptyDir": {}}),
            set_strategy({"type": "Recreate"}),
        ),
        [INJECT_ENV, INJECT_CONTAINER],
        None,
    ),
    # explicitly empty lists
    ("env-emptied", lambda o: web(o).update(env=[]), [INJECT_ENV], None),
    (
        "volumes-emptied",
        lambda o: (pod(o).update(volumes=[]), web(o).pop("volumeMounts")),
        [],
        None,
    ),
    ("tolerations-emptied", lambda o: pod(o).update(tolerations=[]), [ADD_TOLERATION], None),
    (
        "args-from-empty",
        lambda o: web(o).update(args=["--x"]),
        [],
        lambda o: web(o).update(args=[]),
    ),
    # merge keys whose text order differs from their numeric order ("1000" < "443" < "80")
    (
        "ports-removed-by-text-order",
        lambda o: web(o).update(ports=[{"containerPort": 443}]),
        [],
        lambda o: web(o)["ports"].append({"containerPort": 1000}),
    ),
    (
        "many-env",
        lambda o: web(o).update(
            env=[{"name": f"V{i}", "value": str(i)} for i in (14, 2, 11, 3, 10, 1, 0, 20, 7, 5)]
        ),
        [INJECT_ENV],
        lambda o: web(o).update(env=[{"name": f"V{i}", "value": "x"} for i in range(16)]),
    ),
    # an object that was never applied (or whose annotation someone dropped)
    ("forgotten-remove-env", lambda o: web(o)["env"].pop(), [FORGET_APPLY], None),
    ("forgotten-remove-container", lambda o: pod(o)["containers"].pop(), [FORGET_APPLY], None),
    ("forgotten-strategy-recreate", set_strategy({"type": "Recreate"}), [FORGET_APPLY], None),
    (
        "forgotten-finalizer-removed",
        finalizers("example.com/a"),
        [FORGET_APPLY],
        finalizers("example.com/a", "example.com/b"),
    ),
    # nothing changed in git, while others did things
    (
        "nothing",
        lambda o: None,
        [
            INJECT_ENV,
            INJECT_CONTAINER,
            SET_IMAGE,
            SCALE,
            ANNOTATE,
            DROP_ENV_B,
            REORDER_CONTAINERS,
            ADD_TOLERATION,
            NODE_SELECTOR,
            DROP_LABEL,
            DROP_STRATEGY,
            FORGET_APPLY,
        ],
        None,
    ),
]


def deployment_cases() -> Iterator[Case]:
    for name, mutate, edits, before in DEPLOYMENT_CHANGES:
        original = base_deployment()
        if before is not None:
            before(original)
        modified = copy.deepcopy(original)
        mutate(modified)
        for edit in [None, *edits]:
            label = "none" if edit is None else _edit_label(edit)
            yield Case(f"deploy-{name}+{label}", original, modified, edit)


_EDIT_LABELS = {
    id(edit): label
    for label, edit in {
        "inject-env": INJECT_ENV,
        "inject-container": INJECT_CONTAINER,
        "set-image": SET_IMAGE,
        "resources": RESOURCES,
        "scale": SCALE,
        "annotate": ANNOTATE,
        "drop-env-b": DROP_ENV_B,
        "reorder-containers": REORDER_CONTAINERS,
        "add-volume": ADD_VOLUME,
        "add-toleration": ADD_TOLERATION,
        "node-selector": NODE_SELECTOR,
        "drop-label": DROP_LABEL,
        "other-finalizer": OTHER_FINALIZER,
        "drop-strategy": DROP_STRATEGY,
        "forget-apply": FORGET_APPLY,
    }.items()
}


def _edit_label(edit: Edit) -> str:
    return _EDIT_LABELS.get(id(edit), edit.kind)


# --------------------------------------------------------------------------------------------
# other built-in kinds


def simple_cases(
    prefix: str, base: Obj, changes: dict[str, Mutation], edits: dict[str, Edit]
) -> Iterator[Case]:
    for name, mutate in changes.items():
        modified = copy.deepcopy(base)
        mutate(modified)
        yield Case(f"{prefix}-{name}+none", copy.deepcopy(base), modified)
        for label, edit in edits.items():
            yield Case(f"{prefix}-{name}+{label}", copy.deepcopy(base), modified, edit)


def configmap_cases() -> Iterator[Case]:
    base = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1", "b": "2"}}
    tricky = {
        "html": "<a href='x'>&amp;</a> > <",
        "unicode": "é ü 日本 \u2028 \u2029 \U0001f600",
        "control": "tab\tnewline\nback\bfeed\fbell\x07del\x7f",
        "quotes": 'say "hi" \\ bye',
    }
    yield from simple_cases(
        "cm",
        base,
        {
            "add": lambda o: o["data"].update(c="3"),
            "remove": lambda o: o["data"].pop("a"),
            "change": lambda o: o["data"].update(b="22"),
            "drop-data": lambda o: o.pop("data"),
            "binary-data": lambda o: o.update(binaryData={"bin": "AAEC"}),
            "annotated": lambda o: o.setdefault("metadata", {}).update(annotations={"x": "y"}),
            "unchanged": lambda o: None,
            "tricky-strings": lambda o: o["data"].update(tricky),
        },
        {
            "merge": Edit("merge", {"data": {"z": "from-someone-else"}}),
            "json": Edit("json", [{"op": "remove", "path": "/data/a"}]),
        },
    )


def service_cases() -> Iterator[Case]:
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
    yield from simple_cases(
        "svc",
        base,
        {
            "remove-port": lambda o: o["spec"]["ports"].pop(),
            "add-port": lambda o: o["spec"]["ports"].append({"name": "m", "port": 9090}),
            "target-change": lambda o: o["spec"]["ports"][0].update(targetPort=9090),
            "target-named": lambda o: o["spec"]["ports"][0].update(targetPort="http"),
            "rename-port": lambda o: o["spec"]["ports"][0].update(name="web"),
            "selector": lambda o: o["spec"].update(selector={"app": "other"}),
            "affinity": lambda o: o["spec"].update(sessionAffinity="ClientIP"),
            "udp-twin": lambda o: o["spec"]["ports"].append(
                {"name": "dns", "port": 80, "protocol": "UDP"}
            ),
        },
        {
            "label": Edit("strategic", {"metadata": {"labels": {"external": "x"}}}),
            "port": Edit(
                "strategic", {"spec": {"ports": [{"name": "other", "port": 7000, "targetPort": 7}]}}
            ),
        },
    )


def secret_cases() -> Iterator[Case]:
    base = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "stringData": {"user": "admin", "password": "s3cret"},
    }
    yield from simple_cases(
        "secret",
        base,
        {
            "value-changed": lambda o: o["stringData"].update(password="other"),
            "key-removed": lambda o: o["stringData"].pop("user"),
            "to-data": lambda o: (o.pop("stringData"), o.update(data={"user": "cm9vdA=="})),
        },
        {"data": Edit("merge", {"data": {"extra": "eA=="}})},
    )


def pdb_cases() -> Iterator[Case]:
    base = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "spec": {
            "minAvailable": 1,
            "selector": {
                "matchLabels": {"app": "x"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}],
            },
        },
    }
    yield from simple_cases(
        "pdb",
        base,
        {
            "unchanged": lambda o: None,
            "min-available": lambda o: o["spec"].update(minAvailable=2),
            "selector-label": lambda o: o["spec"]["selector"]["matchLabels"].update(more="y"),
            "selector-expressions-removed": lambda o: o["spec"]["selector"].pop("matchExpressions"),
        },
        {"annotate": Edit("merge", {"metadata": {"annotations": {"other": "x"}}})},
    )


def daemonset_cases() -> Iterator[Case]:
    base = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}},
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {
                    "nodeSelector": {"no-such-node": "true"},  # no pods
                    "containers": [{"name": "agent", "image": "agent:1"}],
                },
            },
        },
    }
    yield from simple_cases(
        "ds",
        base,
        {
            "on-delete": lambda o: o["spec"].update(updateStrategy={"type": "OnDelete"}),
            "max-unavailable": lambda o: o["spec"]["updateStrategy"]["rollingUpdate"].update(
                maxUnavailable="50%"
            ),
            "image": lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="a:2"),
        },
        {"strategy": Edit("merge", {"spec": {"updateStrategy": {"rollingUpdate": None}}})},
    )


# --------------------------------------------------------------------------------------------
# custom resources: JSON merge patch

GIZMO_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gizmos.conformance.example.com"},
    "spec": {
        "group": "conformance.example.com",
        "scope": "Namespaced",
        "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
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


def custom_resource_cases() -> Iterator[Case]:
    base = {
        "apiVersion": "conformance.example.com/v1",
        "kind": "Gizmo",
        "spec": {
            "size": 1,
            "color": "red",
            "nested": {"a": 1, "b": {"c": 2, "d": 3}},
            "list": [1, 2],
            "items": [{"name": "x", "tags": ["t"]}],
            "flags": {"on": True},
        },
    }
    yield from simple_cases(
        "cr",
        base,
        {
            "change": lambda o: o["spec"].update(size=2),
            "unchanged": lambda o: None,
            "nested-delete": lambda o: o["spec"]["nested"]["b"].pop("c"),
            "deep-add": lambda o: o["spec"]["nested"]["b"].update(e={"f": [1]}),
            "list-replace": lambda o: o["spec"].update(list=[3]),
            "items-changed": lambda o: o["spec"]["items"].append({"name": "y"}),
            "remove-nested": lambda o: o["spec"].pop("nested"),
            "null-value": lambda o: o["spec"].update(size=None),
            "null-new-key": lambda o: o["spec"].update(extra=None),
            "empty-map": lambda o: o["spec"].update(nested={}),
            "map-of-nulls": lambda o: o["spec"].update(fresh={"x": None}),
            "null-inside-list": lambda o: o["spec"].update(items=[{"name": "x", "tags": None}]),
            "type-change": lambda o: o["spec"].update(nested="flat"),
            "numbers": lambda o: o["spec"].update(ratio=0.5, tiny=1e-7, huge=1e21, whole=3.0),
            "labels": lambda o: o.setdefault("metadata", {}).update(labels={"l": "1"}),
        },
        {
            "merge": Edit("merge", {"spec": {"owner": "ops", "nested": {"z": 9}}}),
            "json": Edit("json", [{"op": "remove", "path": "/spec/color"}]),
            "forget-apply": FORGET_APPLY,
        },
    )


CASES: list[Case] = [
    *deployment_cases(),
    *configmap_cases(),
    *service_cases(),
    *secret_cases(),
    *pdb_cases(),
    *daemonset_cases(),
    *custom_resource_cases(),
]


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 80
    assert len({case.name for case in CASES}) == len(CASES)


# --------------------------------------------------------------------------------------------
# running all cases at once

PLURALS = {
    "Deployment": "deployments",
    "DaemonSet": "daemonsets",
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Service": "services",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "Gizmo": "gizmos",
}
EDIT_TYPES = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
}
DEFS = load()
KINDS = {(gvk.api_version, gvk.kind): name for gvk, name in DEFS.kinds().items()}
SERVER_FIELDS = ("resourceVersion", "generation", "managedFields", "uid", "creationTimestamp")


def meta_for(obj: Obj) -> PatchMeta | None:
    name = KINDS.get((obj["apiVersion"], obj["kind"]))
    return None if name is None else PatchMeta.for_definition(DEFS, name)


def named(obj: Obj, index: int) -> Obj:
    """The case's object under its own name (and selector: overlapping ones would fight)."""
    name = f"c{index:03d}"
    text = json.dumps(obj).replace('"app": "x"', f'"app": "{name}"')
    out: Obj = json.loads(text)
    out.setdefault("metadata", {})["name"] = name
    out["metadata"]["namespace"] = NS
    return out


def api_path(obj: Obj) -> str:
    api = obj["apiVersion"]
    prefix = f"/api/{api}" if "/" not in api else f"/apis/{api}"
    return f"{prefix}/namespaces/{NS}/{PLURALS[obj['kind']]}/{obj['metadata']['name']}"


def documents(objs: list[Obj]) -> str:
    """A stream of JSON objects: kubectl decodes it as JSON (not YAML), value for value."""
    return "".join(json.dumps(obj) + "\n" for obj in objs)


def comparable(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata", {})
    for key in SERVER_FIELDS:
        meta.pop(key, None)
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        # Written by the Deployment controller whenever it likes, by neither apply.
        annotations.pop("deployment.kubernetes.io/revision", None)
    return out


_REQUEST_BODY = re.compile(r'"Request Body" body="(?P<body>.*)"$')
_PATCH_URL = re.compile(r"-XPATCH .*'https://[^']*/(?P<name>c\d{3})\?")


def patches_sent(log: str) -> dict[str, Any]:
    """The PATCH bodies in kubectl's `-v=9` log, by object name."""
    out: dict[str, Any] = {}
    body: str | None = None
    for line in log.splitlines():
        found = _REQUEST_BODY.search(line)
        if found:
            body = ast.literal_eval('"' + found.group("body") + '"')
            continue
        url = _PATCH_URL.search(line)
        if url and body is not None:
            out[url.group("name")] = json.loads(body)
            body = None
    return out


@dataclass
class Outcome:
    created_annotation: str | None = None
    expected_created_annotation: str = ""
    ours_patch: Any = None
    ours_content_type: str = ""
    ours: Obj = field(default_factory=dict)
    error: str | None = None


@dataclass
class Run:
    outcomes: list[Outcome]
    kubectl_patches: dict[str, Any]
    theirs: list[Obj]
    kubectl_exit_code: int
    kubectl_stderr: str
    seconds: float
    phases: dict[str, float]


def edit_object(server: ReconServer, path: str, edit: Edit) -> None:
    status, body = server.request("PATCH", path, edit.body, content_type=EDIT_TYPES[edit.kind])
    assert status == 200, (path, body)


def our_result(current: Obj, desired: Obj) -> tuple[Any, str, Obj]:
    meta = meta_for(desired)
    patch, content_type = three_way_patch(last_applied_of(current), desired, current, meta)
    if not patch:
        result = copy.deepcopy(current)
    elif content_type == STRATEGIC_MERGE_PATCH:
        assert meta is not None
        result = apply_strategic_merge_patch(current, patch, meta)
    else:
        result = apply_merge_patch(current, patch)
    group = desired["apiVersion"].rpartition("/")[0]
    apply_defaults(group, desired["kind"], result)  # what the server adds on write
    return patch, content_type, result


KUBECTL_PROCESSES = 4  # kubectl applies one object at a time: split the batch
HTTP_THREADS = 8


def kubectl_apply_all(
    kubectl: Kubectl, folder: Path, stem: str, objs: list[Obj], *args: str
) -> list[subprocess.CompletedProcess[str]]:
    """`kubectl apply` of `objs`, split over a few kubectl processes running side by side."""
    files = []
    for part in range(KUBECTL_PROCESSES):
        path = folder / f"{stem}-{part}.json"
        path.write_text(documents(objs[part::KUBECTL_PROCESSES]))
        files.append(path)
    with ThreadPoolExecutor(KUBECTL_PROCESSES) as pool:
        return list(
            pool.map(
                lambda path: kubectl.run("apply", *args, "-f", str(path), timeout=180, check=False),
                files,
            )
        )


@pytest.fixture(scope="module")
def run(server: ReconServer, tmp_path_factory: pytest.TempPathFactory) -> Run:
    started = time.monotonic()
    kubectl = Kubectl(server)
    tmp = tmp_path_factory.mktemp("conformance")
    kubectl.run("create", "namespace", NS)
    kubectl.run("apply", "-f", "-", input=json.dumps(GIZMO_CRD))
    deadline = time.monotonic() + 20
    while (
        server.request("GET", f"/apis/conformance.example.com/v1/namespaces/{NS}/gizmos")[0] != 200
    ):
        assert time.monotonic() < deadline, "the Gizmo CRD was never served"
        time.sleep(0.1)
    originals = [named(case.original, i) for i, case in enumerate(CASES)]
    modifieds = [named(case.modified, i) for i, case in enumerate(CASES)]
    outcomes = [Outcome() for _ in CASES]
    http = ThreadPoolExecutor(HTTP_THREADS)
    phases: dict[str, float] = {}
    mark = started

    def phase(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases[name] = round(now - mark, 2)
        mark = now

    phase("setup")

    def get(index: int) -> Obj:
        status, obj = server.request("GET", api_path(originals[index]))
        assert status == 200 and isinstance(obj, dict), obj
        return obj

    # 1. kubectl creates every original.
    created = kubectl_apply_all(kubectl, tmp, "original", originals)
    for done in created:
        assert done.returncode == 0, done.stderr
    phase("kubectl-create")

    # 2. Someone else edits them.
    def edit(index: int) -> None:
        outcome = outcomes[index]
        outcome.created_annotation = get(index)["metadata"]["annotations"].get(LAST_APPLIED)
        outcome.expected_created_annotation = last_applied_annotation(originals[index])
        case = CASES[index]
        if case.edit is not None:
            edit_object(server, api_path(originals[index]), case.edit)

    list(http.map(edit, range(len(CASES))))
    phase("edits")

    # 3. Recon's patch from what the server has now.
    def ours(index: int) -> None:
        current = get(index)
        outcome = outcomes[index]
        try:
            outcome.ours_patch, outcome.ours_content_type, outcome.ours = our_result(
                current, modifieds[index]
            )
        except Exception as e:  # reported per case below
            outcome.error = f"{type(e).__name__}: {e}"

    list(http.map(ours, range(len(CASES))))
    phase("recon-patches")

    # 4. kubectl applies every modified object; its PATCH bodies come from its log.
    applied = kubectl_apply_all(kubectl, tmp, "modified", modifieds, "-v=9")
    phase("kubectl-apply")
    theirs = list(http.map(get, range(len(CASES))))
    http.shutdown()
    phase("read-back")
    logs = "\n".join(done.stderr for done in applied)
    return Run(
        outcomes,
        patches_sent(logs),
        theirs,
        max(done.returncode for done in applied),
        "\n".join(line for line in logs.splitlines() if "error" in line.lower()),
        time.monotonic() - started,
        phases,
    )


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case.name for case in CASES])
def test_recon_patch_and_result_equal_kubectl_apply(run: Run, index: int) -> None:
    outcome = run.outcomes[index]
    assert outcome.error is None, outcome.error
    assert outcome.created_annotation == outcome.expected_created_annotation, (
        "the annotation kubectl wrote on create differs from Recon's"
    )
    name = f"c{index:03d}"
    theirs_patch = run.kubectl_patches.get(name, {})
    ours_patch = json.loads(json.dumps(outcome.ours_patch))
    assert ours_patch == theirs_patch, (
        f"patch differs\nours:    {json.dumps(ours_patch, sort_keys=True)}\n"
        f"kubectl: {json.dumps(theirs_patch, sort_keys=True)}\n{run.kubectl_stderr}"
    )
    assert comparable(outcome.ours) == comparable(run.theirs[index])


def test_kubectl_applied_every_case(run: Run) -> None:
    assert run.kubectl_exit_code == 0, run.kubectl_stderr
    # Most cases change something, so kubectl sent a patch for them.
    assert len(run.kubectl_patches) > len(CASES) * 3 // 4


def test_the_suite_is_quick(run: Run) -> None:
    assert run.seconds < 60, f"the conformance run took {run.seconds:.1f} s: {run.phases}"
