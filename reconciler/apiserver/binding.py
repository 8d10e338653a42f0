"""`pods/binding`: how a scheduler assigns a pod to a node.

Recon's own scheduler patches `spec.nodeName`, but every other scheduler (a custom one named
in `schedulerName`, Volcano, a scheduler plugin under development against a local twin)
POSTs a `v1` Binding to `pods/NAME/binding`, as kube-scheduler does. Upstream's semantics
(`pkg/registry/core/pod/storage/storage.go`, `BindingREST`):

- the Binding is named as the pod (the URL's name; a different one is a 400) and targets
  a Node: `target.kind` empty or `Node`, `target.name` given (else a 422);
- a pod already assigned is a 409 (`pod web is already assigned to node "n1"`), one being
  deleted too; otherwise `spec.nodeName` is set, the Binding's annotations are added to the
  pod's, and its `PodScheduled` condition becomes True;
- the answer is a 201 `Status` Success. A dry run writes nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from reconciler.apiserver import errors
from reconciler.apiserver.errors import ApiError, Cause
from reconciler.apiserver.eviction import success_status
from reconciler.apiserver.objects import ObjectService
from reconciler.apiserver.resources import ResourceType
from reconciler.clock import Clock, rfc3339

__all__ = ["Bindings", "binding_target"]

JSONDict = dict[str, Any]


def binding_target(body: object, name: str) -> tuple[str, Mapping[str, str]]:
    """(the node, the annotations to add) of a Binding for pod `name`; raises ApiError."""
    if not isinstance(body, dict) or body.get("kind") not in (None, "Binding"):
        raise errors.bad_request("the body of pods/binding must be a v1 Binding")
    meta = body.get("metadata") or {}
    given = meta.get("name")
    if given and given != name:
        raise errors.bad_request("name in URL does not match name in Binding object")
    target = body.get("target") or {}
    causes = []
    if target.get("kind") not in (None, "", "Node"):
        causes.append(
            Cause(
                "target.kind",
                f"Unsupported value: {target.get('kind')!r}: must be empty or 'Node'",
                "FieldValueNotSupported",
            )
        )
    if not target.get("name"):
        causes.append(Cause("target.name", "Required value", "FieldValueRequired"))
    if causes:
        raise errors.invalid("Binding", name, "", causes)
    annotations = meta.get("annotations") or {}
    return str(target["name"]), {str(k): str(v) for k, v in annotations.items()}


class Bindings:
    """Assigns pods to nodes through the object service."""

    def __init__(self, service: ObjectService, pods: ResourceType, clock: Clock) -> None:
        self.service = service
        self.pods = pods
        self.clock = clock

    def bind(self, namespace: str, name: str, body: object, dry_run: bool) -> JSONDict:
        node, annotations = binding_target(body, name)
        pod = copy.deepcopy(self.service.get(self.pods, namespace, name))
        meta = pod.setdefault("metadata", {})
        if meta.get("deletionTimestamp"):
            raise errors.conflict(
                "pods/binding",
                name,
                "",
                f"pod {name} is being deleted, cannot be assigned to a host",
            )
        assigned = (pod.get("spec") or {}).get("nodeName")
        if assigned:
            raise errors.conflict(
                "pods/binding", name, "", f'pod {name} is already assigned to node "{assigned}"'
            )
        pod["spec"]["nodeName"] = node
        if annotations:
            meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
        bound = self.service.update(self.pods, namespace, name, pod, dry_run=dry_run)
        if not dry_run:
            self._scheduled(namespace, name, bound)
        return success_status()

    def _scheduled(self, namespace: str, name: str, pod: JSONDict) -> None:
        pod = copy.deepcopy(pod)
        status = pod.get("status") or {}
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": rfc3339(self.clock.now()),
            }
        )
        status["conditions"] = conditions
        try:
            pod["status"] = status
            self.service.update(self.pods, namespace, name, pod, subresource="status")
        except ApiError:
            pass  # the binding stands; the condition follows with the node's next write
