"""Which nodes a DaemonSet runs on, and the pod it runs there.

Pure helpers of `daemonset_plan`: the default DaemonSet tolerations
(`AddOrUpdateDaemonPodTolerations`), the per-node verdict (`NodeShouldRunDaemonPod`, on
`nodefit`), the pod pinned to its node by a required `matchFields` node affinity, and the
node an unbound daemon pod is meant for.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from reconciler.controllers.nodefit import fits, node_affinity_matches, untolerated_taint
from reconciler.controllers.podutil import owner_reference
from reconciler.controllers.revision_history import normalized

__all__ = [
    "DAEMON_TOLERATIONS",
    "GENERATION_LABEL",
    "HASH_LABEL",
    "daemon_pod",
    "node_should_run",
    "target_node",
    "with_daemon_tolerations",
]

JSONDict = dict[str, Any]

HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"

DAEMON_TOLERATIONS: tuple[JSONDict, ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
_NETWORK_UNAVAILABLE: JSONDict = {
    "key": "node.kubernetes.io/network-unavailable",
    "operator": "Exists",
    "effect": "NoSchedule",
}


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("name", ""))


def _same_toleration(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """`Toleration.MatchToleration`: same key, operator, value and effect."""

    def operator(t: Mapping[str, Any]) -> str:
        return str(t.get("operator") or "Equal")

    return operator(a) == operator(b) and all(
        (a.get(k) or "") == (b.get(k) or "") for k in ("key", "value", "effect")
    )


def with_daemon_tolerations(spec: Mapping[str, Any]) -> JSONDict:
    """A copy of a pod spec with the DaemonSet tolerations added or updated in place
    (`AddOrUpdateDaemonPodTolerations`): a matching toleration with, say, a
    `tolerationSeconds` is replaced by the unbounded one."""
    out: JSONDict = copy.deepcopy(dict(spec))
    tolerations = [dict(t) for t in out.get("tolerations") or []]
    wanted = list(DAEMON_TOLERATIONS)
    if out.get("hostNetwork"):
        wanted.append(_NETWORK_UNAVAILABLE)
    for tol in wanted:
        matched = False
        for i, existing in enumerate(tolerations):
            if _same_toleration(existing, tol):
                tolerations[i] = dict(tol)
                matched = True
        if not matched:
            tolerations.append(dict(tol))
    out["tolerations"] = tolerations
    return out


def node_should_run(template_spec: Mapping[str, Any], node: Mapping[str, Any]) -> tuple[bool, bool]:
    """(should a new pod start here, may a pod already here keep running)."""
    node_name = _name(node)
    wanted = template_spec.get("nodeName")
    if wanted and wanted != node_name:
        return False, False
    spec = with_daemon_tolerations(template_spec)
    spec["nodeName"] = node_name
    if fits(spec, node) is None:
        return True, True
    if not node_affinity_matches(spec, node):
        return False, False
    no_execute = [
        t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"
    ]
    return False, untolerated_taint(spec["tolerations"], no_execute) is None


def _pin_to_node(affinity: Mapping[str, Any] | None, node_name: str) -> JSONDict:
    """`ReplaceDaemonSetPodNodeNameNodeAffinity`: required terms become one matchFields term."""
    out: JSONDict = copy.deepcopy(dict(affinity or {}))
    node_affinity = out.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
        ]
    }
    return out


def daemon_pod(ds: Mapping[str, Any], node_name: str, hash_: str) -> JSONDict:
    """The pod `ds` runs on `node_name`, at the revision with hash `hash_`."""
    meta = _meta(ds)
    template = (ds.get("spec") or {}).get("template") or {}
    tmeta = template.get("metadata") or {}
    spec = with_daemon_tolerations(normalized(template.get("spec") or {}))
    spec["affinity"] = _pin_to_node(spec.get("affinity"), node_name)
    pod_meta: JSONDict = {
        "generateName": f"{meta.get('name')}-",
        "namespace": meta.get("namespace"),
        "labels": {
            **(tmeta.get("labels") or {}),
            HASH_LABEL: hash_,
            GENERATION_LABEL: str(meta.get("generation", 1)),
        },
        "ownerReferences": [owner_reference(ds)],
    }
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


def target_node(pod: Mapping[str, Any]) -> str | None:
    """The node a daemon pod is for: its `nodeName`, or before binding the one its
    `matchFields metadata.name In [...]` names (`GetTargetNodeName`)."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms") or []
    for term in required:
        for expr in term.get("matchFields") or []:
            values = expr.get("values") or []
            if expr.get("key") == "metadata.name" and expr.get("operator") == "In":
                return str(values[0]) if len(values) == 1 else None
    return None
