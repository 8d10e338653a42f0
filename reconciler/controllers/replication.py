"""The replication manager: keep `replicas` pods of a v1 ReplicationController running.

ReplicationController is the ReplicaSet's predecessor, still served as v1 and still what
older tutorials write. Upstream's replication manager (pkg/controller/replication) is its
ReplicaSet controller run on another kind, and so is this one: `ReplicaSetController` with
the ReplicationController's API version, kind and selector. Everything else (adoption and
release by selector, creating and deleting pods worst first, expectations, status with
fullyLabeledReplicas, readyReplicas, availableReplicas after minReadySeconds,
observedGeneration, the ReplicaFailure condition when the API refuses pods) is shared.

The one real difference is the selector: a plain map of labels, every one required
(`selector: {app: web}`), where a ReplicaSet has a LabelSelector (`matchLabels`,
`matchExpressions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from reconciler.controllers.replicaset import ReplicaSetController, Replicated
from reconciler.selectors import LabelSelector, SelectorError, label_selector_from_spec

__all__ = ["REPLICATION_CONTROLLER", "ReplicationManager", "replication_controller_selector"]

JSONDict = dict[str, Any]


def replication_controller_selector(spec: JSONDict) -> LabelSelector:
    """A ReplicationController's `spec.selector`: equality on every label of the map.

    Upstream's apiserver defaults an empty selector to the template's labels and refuses
    one the template's labels do not match, so its controller never meets either. Here
    both are refused again (`SelectorError`: the controller then writes status only):
    pods created from such a template would not match, be released at once and be
    replaced without end.
    """
    selector_map = spec.get("selector")
    if not isinstance(selector_map, Mapping) or not selector_map:
        raise SelectorError("spec.selector: Required value: a map of labels is required")
    selector = label_selector_from_spec({"matchLabels": selector_map})
    template_meta = (spec.get("template") or {}).get("metadata") or {}
    labels = template_meta.get("labels") or {}
    if not selector.matches({str(k): str(v) for k, v in labels.items()}):
        raise SelectorError(
            "spec.template.metadata.labels: Invalid value: `selector` does not match "
            "template `labels`"
        )
    return selector


REPLICATION_CONTROLLER = Replicated(
    "v1", "ReplicationController", replication_controller_selector, "replication-controller"
)


class ReplicationManager(ReplicaSetController):
    """Keeps the pods of ReplicationControllers, as the ReplicaSet controller keeps those
    of ReplicaSets."""

    name = "replicationcontroller"
    replicated: ClassVar[Replicated] = REPLICATION_CONTROLLER
