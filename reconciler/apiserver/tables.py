"""Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` renders.

Why this exists: kubectl does not know how to print a Pod. It asks the server, with
`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, and prints the columns it is given.
So the familiar `NAME READY STATUS RESTARTS AGE` is the API server's job, and a
Kubernetes-compatible server must compute the same cells the real printers
(`pkg/printers/internalversion`) compute, from the same fields, with the same edge cases
("CrashLoopBackOff", "Init:1/2", "3 (2m ago)", "<none>", "<pending>").

Where it sits: the REST layer calls `build_table(kind, objects, now, include_object,
printer_columns)` for a get or list that asked for a Table, then fills the table's
`metadata` (resourceVersion, continue) itself. Pure: dicts in, a dict out, time injected.

Rules taken from the real servers:
- Cells are always generated in wide mode; columns with priority 1 are the `-o wide` ones,
  and kubectl hides them otherwise.
- Objects are read as the API stores them (defaulted): where our store may lack a field
  that Kubernetes always defaults (replicas 1, Service type ClusterIP, protocol TCP, Secret
  type Opaque, volumeMode Filesystem...), the default is assumed.
- A custom resource gets NAME plus its version's `additionalPrinterColumns`; only when it
  has none does it get AGE (the apiextensions server adds AGE only then). Kinds with no
  printer of their own in Kubernetes (CustomResourceDefinition, Role, ClusterRole,
  LimitRange) get the default convertor's NAME + CREATED AT (an RFC 3339 time); any other
  kind gets NAME + AGE.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from reconciler.selectors import SelectorError, label_selector_from_spec

__all__ = ["build_table", "human_duration", "pod_summary", "table_columns"]

JSON = dict[str, Any]
Cell = str | int | float | bool | None
_Printer = Callable[[Mapping[str, Any], datetime], list[Cell]]

_NS = 1_000_000_000


def human_duration(seconds: float) -> str:
    """Kubernetes' `duration.HumanDuration`: about 2-3 significant figures.

    Worked examples: 5 -> "5s", 119 -> "119s", 192 -> "3m12s", 600 -> "10m", 179 min ->
    "179m", 5h03m -> "5h3m", 8h30m -> "8h", 47h -> "47h", 51h -> "2d3h", 8d -> "8d",
    729d -> "729d", 770d -> "2y40d", 8y -> "8y". Up to 2 s in the future (clock skew) is
    "0s"; further in the future is "<invalid>".
    """
    ns = round(seconds * _NS)
    whole_seconds = ns // _NS if ns >= 0 else -((-ns) // _NS)  # Go truncates toward zero
    if whole_seconds < -1:
        return "<invalid>"
    if whole_seconds < 0:
        return "0s"
    if whole_seconds < 120:
        return f"{whole_seconds}s"
    minutes = ns // (60 * _NS)
    if minutes < 10:
        s = whole_seconds % 60
        return f"{minutes}m{s}s" if s else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = ns // (3600 * _NS)
    if hours < 8:
        m = minutes % 60
        return f"{hours}h{m}m" if m else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d{h}h" if h else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // 24 // 365}y"


# ---------------------------------------------------------------------------------------------
# Small readers over raw JSON objects


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) and value else default


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return default


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)  # Go's zero time.Time, as JSON would carry it


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def _since(value: Any, now: datetime) -> str:
    """`translateTimestampSince`: "<unknown>" for an absent time, else a human age."""
    when = _parse_time(value)
    if when is None or when == _ZERO_TIME:
        return "<unknown>"
    return human_duration((_aware(now) - when).total_seconds())


def _age(obj: Mapping[str, Any], now: datetime) -> str:
    return _since(_get(obj, "metadata", "creationTimestamp"), now)


def _name(obj: Mapping[str, Any]) -> str:
    return _str(_get(obj, "metadata", "name"))


def _deleting(obj: Mapping[str, Any]) -> bool:
    return _get(obj, "metadata", "deletionTimestamp") is not None


def _format_labels(labels: Any) -> str:
    """`labels.FormatLabels`: sorted `k=v` pairs, or "<none>"."""
    items = sorted(_map(labels).items())
    return ",".join(f"{k}={v}" for k, v in items) or "<none>"


def _selector_string(spec: Any, empty: str, invalid: str) -> str:
    try:
        text = str(label_selector_from_spec(spec if isinstance(spec, Mapping) else None))
    except SelectorError:
        return invalid
    return text or empty


def _format_selector(spec: Any) -> str:
    """`metav1.FormatLabelSelector`: canonical string, "<none>" when empty or absent."""
    return _selector_string(spec, "<none>", "<error>")


def _containers(pod_spec: Any) -> tuple[str, str]:
    containers = [_map(c) for c in _list(_get(pod_spec, "containers"))]
    names = ",".join(_str(c.get("name")) for c in containers)
    images = ",".join(_str(c.get("image")) for c in containers)
    return names, images


def _condition_true(conditions: Any, kind: str) -> bool:
    """The first condition of `kind` decides (as Go's `hasJobCondition`)."""
    for cond in _list(conditions):
        if _get(cond, "type") == kind:
            return bool(_get(cond, "status") == "True")
    return False


# ---------------------------------------------------------------------------------------------
# Column definitions

_DESC_NAME = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_DESC_AGE = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
_DESC_CONTAINERS = "Names of each container in the template."
_DESC_IMAGES = "Images referenced by each container in the template."


def _col(name: str, type_: str, description: str, priority: int = 0, format_: str = "") -> JSON:
    return {
        "name": name,
        "type": type_,
        "format": format_,
        "description": description,
        "priority": priority,
    }


_NAME = _col("Name", "string", _DESC_NAME, format_="name")
_AGE = _col("Age", "string", _DESC_AGE)
_CREATED_AT = _col("Created At", "date", _DESC_AGE)
_WIDE_TEMPLATE = [
    _col("Containers", "string", _DESC_CONTAINERS, 1),
    _col("Images", "string", _DESC_IMAGES, 1),
    _col("Selector", "string", "A label query over pods that should match the replicas.", 1),
]

_COLUMNS: dict[str, list[JSON]] = {
    "Pod": [
        _NAME,
        _col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
        _col("Status", "string", "The aggregate status of the containers in this pod."),
        _col(
            "Restarts",
            "string",
            "The number of times the containers in this pod have been restarted and when the "
            "last container in this pod has restarted.",
        ),
        _AGE,
        _col("IP", "string", "IP address allocated to the pod.", 1),
        _col("Node", "string", "The node the pod is scheduled onto.", 1),
        _col("Nominated Node", "string", "The node the scheduler nominated for preemption.", 1),
        _col("Readiness Gates", "string", "Pod readiness gates that are satisfied.", 1),
    ],
    "Deployment": [
        _NAME,
        _col("Ready", "string", "Number of the pod with ready state"),
        _col(
            "Up-to-date",
            "string",
            "Total number of non-terminated pods that have the desired template spec.",
        ),
        _col(
            "Available",
            "string",
            "Total number of available pods (ready for at least minReadySeconds).",
        ),
        _AGE,
        *_WIDE_TEMPLATE,
    ],
    "ReplicaSet": [
        _NAME,
        _col("Desired", "integer", "Replicas is the number of desired pods."),
        _col("Current", "integer", "Replicas is the most recently observed number of pods."),
        _col("Ready", "integer", "The number of pods with a Ready condition."),
        _AGE,
        *_WIDE_TEMPLATE,
    ],
    "StatefulSet": [
        _NAME,
        _col("Ready", "string", "Number of the pod with ready state"),
        _AGE,
        *_WIDE_TEMPLATE[:2],
    ],
    "DaemonSet": [
        _NAME,
        _col(
            "Desired", "integer", "The total number of nodes that should be running the daemon pod."
        ),
        _col(
            "Current", "integer", "The number of nodes running at least one daemon pod that should."
        ),
        _col("Ready", "integer", "The number of nodes whose daemon pod is ready."),
        _col("Up-to-date", "integer", "The number of nodes running the updated daemon pod."),
        _col("Available", "integer", "The number of nodes whose daemon pod is available."),
        _col("Node Selector", "string", "The node selector of the pod template."),
        _AGE,
        *_WIDE_TEMPLATE,
    ],
    "Service": [
        _NAME,
        _col("Type", "string", "How the Service is exposed."),
        _col("Cluster-IP", "string", "The IP address of the service inside the cluster."),
        _col("External-IP", "string", "The IP addresses the service is reachable at from outside."),
        _col("Port(s)", "string", "The ports the service exposes."),
        _AGE,
        _col("Selector", "string", "Route service traffic to pods with labels matching it.", 1),
    ],
    "Job": [
        _NAME,
        _col("Status", "string", "Status of the job."),
        _col("Completions", "string", "The number of pods which reached phase Succeeded."),
        _col("Duration", "string", "Time required to complete the job."),
        _AGE,
        *_WIDE_TEMPLATE,
    ],
    "CronJob": [
        _NAME,
        _col("Schedule", "string", "The schedule in Cron format."),
        _col("Timezone", "string", "The time zone name for the given schedule."),
        _col("Suspend", "boolean", "Whether subsequent executions are suspended."),
        _col("Active", "integer", "The number of currently running jobs."),
        _col("Last Schedule", "string", "When the job was last successfully scheduled."),
        _AGE,
        *_WIDE_TEMPLATE,
    ],
    "ConfigMap": [_NAME, _col("Data", "string", "The number of data and binaryData keys."), _AGE],
    "Secret": [
        _NAME,
        _col("Type", "string", "Used to facilitate programmatic handling of secret data."),
        _col("Data", "string", "The number of data keys."),
        _AGE,
    ],
    "Namespace": [_NAME, _col("Status", "string", "The status of the namespace"), _AGE],
    "ComponentStatus": [
        _NAME,
        _col("Status", "string", "Status of the component conditions"),
        _col("Message", "string", "Message of the component conditions"),
        _col("Error", "string", "Error of the component conditions"),
    ],
    "Node": [
        _NAME,
        _col("Status", "string", "The status of the node"),
        _col("Roles", "string", "The roles of the node"),
        _AGE,
        _col("Version", "string", "Kubelet Version reported by the node."),
        _col("Internal-IP", "string", "The node's first InternalIP address.", 1),
        _col("External-IP", "string", "The node's first ExternalIP address.", 1),
        _col("OS-Image", "string", "OS Image reported by the node.", 1),
        _col("Kernel-Version", "string", "Kernel Version reported by the node.", 1),
        _col("Container-Runtime", "string", "ContainerRuntime Version reported by the node.", 1),
    ],
    "PersistentVolumeClaim": [
        _NAME,
        _col("Status", "string", "The current phase of PersistentVolumeClaim."),
        _col("Volume", "string", "The binding reference to the PersistentVolume."),
        _col("Capacity", "string", "The actual resources of the underlying volume."),
        _col("Access Modes", "string", "The actual access modes the volume backing the PVC has."),
        _col("StorageClass", "string", "StorageClass of the pvc"),
        _col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
        _AGE,
        _col("VolumeMode", "string", "What type of volume is required by the claim.", 1),
    ],
    "PersistentVolume": [
        _NAME,
        _col("Capacity", "string", "The capacity of the volume."),
        _col("Access Modes", "string", "The ways the volume can be mounted."),
        _col("Reclaim Policy", "string", "What happens to the volume when released."),
        _col("Status", "string", "The current phase of the volume."),
        _col("Claim", "string", "The claim bound to the volume."),
        _col("StorageClass", "string", "StorageClass of the pv"),
        _col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
        _col("Reason", "string", "Why the volume is in its phase."),
        _AGE,
        _col("VolumeMode", "string", "Whether the volume is a filesystem or a block device.", 1),
    ],
    "Event": [
        _col("Last Seen", "string", "The time at which the most recent occurrence was recorded."),
        _col("Type", "string", "Type of this event (Normal, Warning)."),
        _col("Reason", "string", "A short reason for the transition into the object's state."),
        _col("Object", "string", "The object that this event is about."),
        _col("Subobject", "string", "The part of the object the event is about.", 1),
        _col("Source", "string", "The component reporting this event.", 1),
        _col("Message", "string", "A human-readable description of the status of this operation."),
        _col("First Seen", "string", "The time at which the event was first recorded.", 1),
        _col("Count", "string", "The number of times this event has occurred.", 1),
        _col("Name", "string", _DESC_NAME, 1, "name"),
    ],
    "ServiceAccount": [_NAME, _col("Secrets", "string", "The number of secrets listed."), _AGE],
    "Endpoints": [_NAME, _col("Endpoints", "string", "The set of addresses and ports."), _AGE],
    "StorageClass": [
        _NAME,
        _col("Provisioner", "string", "Indicates the type of the provisioner."),
        _col("ReclaimPolicy", "string", "Indicates the type of the reclaim policy."),
        _col(
            "VolumeBindingMode",
            "string",
            "Indicates how PersistentVolumeClaims should be provisioned and bound.",
        ),
        _col(
            "AllowVolumeExpansion",
            "string",
            "Indicates whether the storage class allow volume expand.",
        ),
        _AGE,
    ],
    "ResourceQuota": [
        _NAME,
        _AGE,
        _col(
            "Request",
            "string",
            "Request represents a minimum amount of cpu/memory that a container may consume.",
        ),
        _col(
            "Limit",
            "string",
            "Limits control the maximum amount of cpu/memory that a container may use "
            "independent of contention on the node.",
        ),
    ],
    "LimitRange": [
        _NAME,
        _col("Created At", "date", "Creation timestamp of the LimitRange"),
    ],
    "PriorityClass": [
        _NAME,
        _col("Value", "integer", "value represents the integer value of this priority class."),
        _col(
            "Global-Default",
            "boolean",
            "globalDefault specifies whether this PriorityClass should be considered as the "
            "default priority for pods that do not have any priority class.",
        ),
        _AGE,
        _col(
            "PreemptionPolicy",
            "string",
            "preemptionPolicy is the Policy for preempting pods with lower priority.",
        ),
    ],
    "PodDisruptionBudget": [
        _NAME,
        _col("Min Available", "string", "The minimum number of pods that must be available."),
        _col("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
        _col(
            "Allowed Disruptions",
            "integer",
            "Calculated number of pods that may be disrupted at this time.",
        ),
        _AGE,
    ],
    "HorizontalPodAutoscaler": [
        _NAME,
        _col(
            "Reference",
            "string",
            "scaleTargetRef points to the target resource to scale, and is used to the pods "
            "for which metrics should be collected, as well as to actually change the replica "
            "count.",
        ),
        _col(
            "Targets",
            "string",
            "metrics contains the specifications for which to use to calculate the desired "
            "replica count (the maximum replica count across all metrics will be used).",
        ),
        _col(
            "MinPods",
            "string",
            "minReplicas is the lower limit for the number of replicas to which the "
            "autoscaler can scale down.",
        ),
        _col(
            "MaxPods",
            "integer",
            "maxReplicas is the upper limit for the number of replicas to which the "
            "autoscaler can scale up.",
        ),
        _col(
            "Replicas",
            "integer",
            "currentReplicas is current number of replicas of pods managed by this "
            "autoscaler, as last seen by the autoscaler.",
        ),
        _AGE,
    ],
    "Ingress": [
        _NAME,
        _col("Class", "string", "The name of the IngressClass resource."),
        _col("Hosts", "string", "Hosts that incoming requests are matched against."),
        _col(
            "Address",
            "string",
            "Address is a list containing ingress points for the load-balancer.",
        ),
        _col("Ports", "string", "Ports of TLS configurations that open."),
        _AGE,
    ],
    "IngressClass": [
        _NAME,
        _col("Controller", "string", "Controller that is responsible for handling this class."),
        _col("Parameters", "string", "A reference to a resource with additional parameters."),
        _AGE,
    ],
}
_COLUMNS["ReplicationController"] = _COLUMNS["ReplicaSet"]
_COLUMNS["CertificateSigningRequest"] = [
    _NAME,
    _AGE,
    _col(
        "SignerName",
        "string",
        "signerName indicates the requested signer, and is a qualified name.",
    ),
    _col("Requestor", "string", "request contains an x509 certificate signing request."),
    _col(
        "RequestedDuration",
        "string",
        "expirationSeconds is the requested duration of validity of the issued certificate.",
    ),
    _col("Condition", "string", "conditions applied to the request."),
]

# Kinds that Kubernetes serves with its default table convertor.
_DEFAULT_CONVERTOR_KINDS = frozenset(
    {"CustomResourceDefinition", "Role", "ClusterRole", "LimitRange"}
)


# ---------------------------------------------------------------------------------------------
# Printers, one per kind


def _pod_status(pod: Mapping[str, Any]) -> tuple[str, int, int, datetime | None]:
    """(STATUS, ready containers, restarts, last restart) the way kubectl's printer decides.

    Init containers run first: a failing or waiting one shows as "Init:<reason>", a pending
    one as "Init:<i>/<n>"; sidecars (init containers with restartPolicy Always) count as
    containers once started. Then the last app container with a waiting or terminated reason
    wins ("CrashLoopBackOff", "Error", "Completed", "ContainerCreating"...).
    """
    spec, status = _map(pod.get("spec")), _map(pod.get("status"))
    init_specs = [_map(c) for c in _list(spec.get("initContainers"))]
    sidecars = {_str(c.get("name")) for c in init_specs if c.get("restartPolicy") == "Always"}
    phase = _str(status.get("phase"), "Pending")
    reason = _str(status.get("reason"), phase)
    for cond in _list(status.get("conditions")):
        if _get(cond, "type") == "PodScheduled" and _get(cond, "reason") == "SchedulingGated":
            reason = "SchedulingGated"

    ready = restarts = sidecar_restarts = 0
    last: datetime | None = None
    sidecar_last: datetime | None = None
    initializing = False
    for i, cs in enumerate(_map(c) for c in _list(status.get("initContainerStatuses"))):
        count = _int(cs.get("restartCount"))
        finished = _parse_time(_get(cs, "lastState", "terminated", "finishedAt"))
        restarts += count
        last = _later(last, finished)
        is_sidecar = _str(cs.get("name")) in sidecars
        if is_sidecar:
            sidecar_restarts += count
            sidecar_last = _later(sidecar_last, finished)
        terminated = _get(cs, "state", "terminated")
        waiting_reason = _str(_get(cs, "state", "waiting", "reason"))
        if isinstance(terminated, Mapping) and _int(terminated.get("exitCode")) == 0:
            continue
        if is_sidecar and cs.get("started") is True:
            ready += 1 if cs.get("ready") is True else 0
            continue
        initializing = True
        if isinstance(terminated, Mapping):
            reason = "Init:" + _exit_reason(terminated)
        elif waiting_reason and waiting_reason != "PodInitializing":
            reason = "Init:" + waiting_reason
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        break

    if not initializing or _condition_true(status.get("conditions"), "Initialized"):
        restarts, last = sidecar_restarts, sidecar_last
        has_running = False
        for cs in reversed([_map(c) for c in _list(status.get("containerStatuses"))]):
            restarts += _int(cs.get("restartCount"))
            last = _later(last, _parse_time(_get(cs, "lastState", "terminated", "finishedAt")))
            terminated = _get(cs, "state", "terminated")
            waiting_reason = _str(_get(cs, "state", "waiting", "reason"))
            if waiting_reason:
                reason = waiting_reason
            elif isinstance(terminated, Mapping):
                reason = _exit_reason(terminated)
            elif cs.get("ready") is True and isinstance(_get(cs, "state", "running"), Mapping):
                has_running = True
                ready += 1
        # A pod whose last container completed but another still runs is not "Completed".
        if reason == "Completed" and has_running:
            ready_cond = _condition_true(status.get("conditions"), "Ready")
            reason = "Running" if ready_cond else "NotReady"

    if _deleting(pod) and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif _deleting(pod) and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return reason, ready, restarts, last


def _exit_reason(terminated: Mapping[str, Any]) -> str:
    reason = _str(terminated.get("reason"))
    if reason:
        return reason
    signal = _int(terminated.get("signal"))
    return f"Signal:{signal}" if signal else f"ExitCode:{_int(terminated.get('exitCode'))}"


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or (b is not None and b > a):
        return b
    return a


def pod_summary(pod: Mapping[str, Any]) -> tuple[str, str, int]:
    """(STATUS, READY as "1/2", RESTARTS) as `kubectl get pods` shows them: for clients
    that print pods themselves (`recon status`)."""
    reason, ready, restarts, _ = _pod_status(pod)
    return reason, f"{ready}/{_pod_containers(pod)}", restarts


def _pod_containers(pod: Mapping[str, Any]) -> int:
    spec = _map(pod.get("spec"))
    return len(_list(spec.get("containers"))) + sum(
        1 for c in _list(spec.get("initContainers")) if _get(c, "restartPolicy") == "Always"
    )


def _print_pod(pod: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec, status = _map(pod.get("spec")), _map(pod.get("status"))
    reason, ready, restarts, last = _pod_status(pod)
    total = _pod_containers(pod)
    restarts_text = str(restarts)
    if restarts and last is not None:
        restarts_text = f"{restarts} ({human_duration((_aware(now) - last).total_seconds())} ago)"
    # status.podIP wins over status.podIPs[0] when both are set (v1 conversion rule).
    ip = _str(status.get("podIP"))
    ips = _list(status.get("podIPs"))
    if not ip and ips:
        ip = _str(_get(ips[0], "ip"))
    gates = _list(spec.get("readinessGates"))
    readiness = "<none>"
    if gates:
        true_count = sum(
            1
            for g in gates
            if _condition_true(status.get("conditions"), _str(_get(g, "conditionType")))
        )
        readiness = f"{true_count}/{len(gates)}"
    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts_text,
        _age(pod, now),
        ip or "<none>",
        _str(spec.get("nodeName"), "<none>"),
        _str(status.get("nominatedNodeName"), "<none>"),
        readiness,
    ]


def _print_deployment(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    names, images = _containers(_get(spec, "template", "spec"))
    selector = _selector_string(spec.get("selector"), "", "<invalid>")
    return [
        _name(obj),
        f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas'), 1)}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        _age(obj, now),
        names,
        images,
        selector,
    ]


def _print_replica_set(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    names, images = _containers(_get(spec, "template", "spec"))
    if obj.get("kind") == "ReplicationController":
        selector = _format_labels(spec.get("selector"))
    else:
        selector = _format_selector(spec.get("selector"))
    return [
        _name(obj),
        _int(spec.get("replicas"), 1),
        _int(status.get("replicas")),
        _int(status.get("readyReplicas")),
        _age(obj, now),
        names,
        images,
        selector,
    ]


def _print_stateful_set(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    names, images = _containers(_get(spec, "template", "spec"))
    ready = f"{_int(status.get('readyReplicas'))}/{_int(spec.get('replicas'), 1)}"
    return [_name(obj), ready, _age(obj, now), names, images]


def _print_daemon_set(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    pod_spec = _get(spec, "template", "spec")
    names, images = _containers(pod_spec)
    return [
        _name(obj),
        _int(status.get("desiredNumberScheduled")),
        _int(status.get("currentNumberScheduled")),
        _int(status.get("numberReady")),
        _int(status.get("updatedNumberScheduled")),
        _int(status.get("numberAvailable")),
        _format_labels(_get(pod_spec, "nodeSelector")),
        _age(obj, now),
        names,
        images,
        _format_selector(spec.get("selector")),
    ]


def _service_external_ip(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    svc_type = _str(spec.get("type"), "ClusterIP")
    external = [_str(ip) for ip in _list(spec.get("externalIPs"))]
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if svc_type == "LoadBalancer":
        ingress = {
            _str(_get(i, "ip")) or _str(_get(i, "hostname"))
            for i in _list(_get(status, "loadBalancer", "ingress"))
        } - {""}
        found = sorted(ingress) + external
        return ",".join(found) or "<pending>"
    if svc_type == "ExternalName":
        return _str(spec.get("externalName"))
    return "<unknown>"


def _print_service(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    cluster_ips = _list(spec.get("clusterIPs"))
    cluster_ip = _str(cluster_ips[0] if cluster_ips else None) or _str(spec.get("clusterIP"))
    ports = []
    for p in (_map(p) for p in _list(spec.get("ports"))):
        protocol = _str(p.get("protocol"), "TCP")
        node_port = _int(p.get("nodePort"))
        middle = f":{node_port}" if node_port > 0 else ""
        ports.append(f"{_int(p.get('port'))}{middle}/{protocol}")
    return [
        _name(obj),
        _str(spec.get("type"), "ClusterIP"),
        cluster_ip or "<none>",
        _service_external_ip(spec, status),
        ",".join(ports) or "<none>",
        _age(obj, now),
        _format_labels(spec.get("selector")),
    ]


def _print_job(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    succeeded = _int(status.get("succeeded"))
    if isinstance(spec.get("completions"), int):
        completions = f"{succeeded}/{spec['completions']}"
    elif _int(spec.get("parallelism")) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    started = _parse_time(status.get("startTime"))
    finished = _parse_time(status.get("completionTime"))
    duration = ""
    if started is not None:
        end = finished if finished is not None else _aware(now)
        duration = human_duration((end - started).total_seconds())
    conditions = status.get("conditions")
    if _condition_true(conditions, "Complete"):
        state = "Complete"
    elif _condition_true(conditions, "Failed"):
        state = "Failed"
    elif _deleting(obj):
        state = "Terminating"
    elif _condition_true(conditions, "Suspended"):
        state = "Suspended"
    elif _condition_true(conditions, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    names, images = _containers(_get(spec, "template", "spec"))
    selector = _format_selector(spec.get("selector"))
    return [_name(obj), state, completions, duration, _age(obj, now), names, images, selector]


def _print_cron_job(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    job_spec = _get(spec, "jobTemplate", "spec")
    names, images = _containers(_get(job_spec, "template", "spec"))
    last = status.get("lastScheduleTime")
    suspend = spec.get("suspend") is True  # the API defaults an absent suspend to false
    return [
        _name(obj),
        _str(spec.get("schedule")),
        _str(spec.get("timeZone"), "<none>"),
        "True" if suspend else "False",
        len(_list(status.get("active"))),
        _since(last, now) if last is not None else "<none>",
        _age(obj, now),
        names,
        images,
        _format_selector(_get(job_spec, "selector")),
    ]


def _print_config_map(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    count = len(_map(obj.get("data"))) + len(_map(obj.get("binaryData")))
    return [_name(obj), count, _age(obj, now)]


def _print_secret(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    # stringData is write-only and merged into data on write; count both, without duplicates.
    keys = set(_map(obj.get("data"))) | set(_map(obj.get("stringData")))
    return [_name(obj), _str(obj.get("type"), "Opaque"), len(keys), _age(obj, now)]


def _print_storage_class(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    name = _name(obj)
    annotations = _map(_get(obj, "metadata", "annotations"))
    if annotations.get("storageclass.kubernetes.io/is-default-class") == "true":
        name += " (default)"
    return [
        name,
        _str(obj.get("provisioner")),
        _str(obj.get("reclaimPolicy"), "Delete"),
        _str(obj.get("volumeBindingMode"), "Immediate"),
        "true" if obj.get("allowVolumeExpansion") is True else "false",
        _age(obj, now),
    ]


def _print_resource_quota(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    """`pods: 1/10, requests.cpu: 500m/2` and `limits.cpu: 1/4`, as kubectl shows them."""
    status = _map(obj.get("status"))
    hard, used = _map(status.get("hard")), _map(status.get("used"))
    requests: list[str] = []
    limits: list[str] = []
    for name in sorted(hard):
        cell = f"{name}: {used.get(name, 0)}/{hard[name]}"
        (limits if name.startswith("limits.") else requests).append(cell)
    return [_name(obj), _age(obj, now), ", ".join(requests), ", ".join(limits)]


def _print_limit_range(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [_name(obj), _str(_get(obj, "metadata", "creationTimestamp"), "")]


def _print_priority_class(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    value = obj.get("value")
    return [
        _name(obj),
        value if isinstance(value, int) else 0,
        obj.get("globalDefault") is True,
        _age(obj, now),
        _str(obj.get("preemptionPolicy"), ""),
    ]


def _print_csr(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    """kubectl's CSR row: the condition reads Pending, Approved or Denied, then ",Failed"
    and ",Issued" as they apply."""
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    kinds = {_str(c.get("type")) for c in _list(status.get("conditions")) if isinstance(c, dict)}
    condition = "Denied" if "Denied" in kinds else "Approved" if "Approved" in kinds else "Pending"
    if "Failed" in kinds:
        condition += ",Failed"
    if status.get("certificate"):
        condition += ",Issued"
    seconds = spec.get("expirationSeconds")
    requested = human_duration(seconds) if isinstance(seconds, int) else "<none>"
    return [
        _name(obj),
        _age(obj, now),
        _str(spec.get("signerName"), "<none>") or "<none>",
        _str(spec.get("username")),
        requested,
        condition,
    ]


def _print_namespace(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    default = "Terminating" if _deleting(obj) else "Active"
    return [_name(obj), _str(_get(obj, "status", "phase"), default), _age(obj, now)]


def _print_component_status(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    for cond in _list(obj.get("conditions")):
        if _get(cond, "type") == "Healthy":
            status = "Healthy" if _get(cond, "status") == "True" else "Unhealthy"
            return [_name(obj), status, _str(_get(cond, "message")), _str(_get(cond, "error"))]
    return [_name(obj), "Unknown", "", ""]


_ROLE_PREFIX = "node-role.kubernetes.io/"


def _print_node(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    status = _map(obj.get("status"))
    states = []
    for cond in _list(status.get("conditions")):
        if _get(cond, "type") == "Ready":
            states = ["Ready" if _get(cond, "status") == "True" else "NotReady"]
    states = states or ["Unknown"]
    if _get(obj, "spec", "unschedulable") is True:
        states.append("SchedulingDisabled")
    roles = set()
    for key, value in _map(_get(obj, "metadata", "labels")).items():
        if key.startswith(_ROLE_PREFIX) and len(key) > len(_ROLE_PREFIX):
            roles.add(key[len(_ROLE_PREFIX) :])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    info = _map(status.get("nodeInfo"))

    def address(kind: str) -> str:
        for a in _list(status.get("addresses")):
            if _get(a, "type") == kind:
                return _str(_get(a, "address"))
        return "<none>"

    return [
        _name(obj),
        ",".join(states),
        ",".join(sorted(roles)) or "<none>",
        _age(obj, now),
        _str(info.get("kubeletVersion")),
        address("InternalIP"),
        address("ExternalIP"),
        _str(info.get("osImage"), "<unknown>"),
        _str(info.get("kernelVersion"), "<unknown>"),
        _str(info.get("containerRuntimeVersion"), "<unknown>"),
    ]


_ACCESS_MODES = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)


def _access_modes(modes: Any) -> str:
    present = set(_list(modes))
    return ",".join(short for mode, short in _ACCESS_MODES if mode in present)


def _storage_class(obj: Mapping[str, Any]) -> str:
    annotations = _map(_get(obj, "metadata", "annotations"))
    beta = annotations.get("volume.beta.kubernetes.io/storage-class")
    if isinstance(beta, str):
        return beta
    return _str(_get(obj, "spec", "storageClassName"))


def _print_pvc(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    phase = "Terminating" if _deleting(obj) else _str(status.get("phase"), "Pending")
    volume = _str(spec.get("volumeName"))
    capacity = _quantity(_get(status, "capacity", "storage")) if volume else ""
    modes = _access_modes(status.get("accessModes")) if volume else ""
    return [
        _name(obj),
        phase,
        volume,
        capacity,
        modes,
        _storage_class(obj),
        _str(spec.get("volumeAttributesClassName"), "<unset>"),
        _age(obj, now),
        _str(spec.get("volumeMode"), "Filesystem"),
    ]


def _print_pv(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    claim = spec.get("claimRef")
    claim_text = ""
    if isinstance(claim, Mapping):
        claim_text = f"{_str(claim.get('namespace'))}/{_str(claim.get('name'))}"
    return [
        _name(obj),
        _quantity(_get(spec, "capacity", "storage")),
        _access_modes(spec.get("accessModes")),
        _str(spec.get("persistentVolumeReclaimPolicy"), "Retain"),
        "Terminating" if _deleting(obj) else _str(status.get("phase"), "Pending"),
        claim_text,
        _storage_class(obj),
        _str(spec.get("volumeAttributesClassName"), "<unset>"),
        _str(status.get("reason")),
        _age(obj, now),
        _str(spec.get("volumeMode"), "Filesystem"),
    ]


def _quantity(value: Any) -> str:
    """A resource quantity as stored (not re-canonicalised: "1024Mi" stays "1024Mi")."""
    if isinstance(value, bool) or value is None:
        return "0"
    return str(value)


def _event_view(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """An events.k8s.io/v1 Event seen with core/v1 field names (the printer is shared)."""
    if not _str(obj.get("apiVersion")).startswith("events.k8s.io/"):
        return obj
    return {
        **obj,
        "involvedObject": obj.get("regarding"),
        "message": obj.get("note"),
        "source": obj.get("deprecatedSource"),
        "firstTimestamp": obj.get("deprecatedFirstTimestamp"),
        "lastTimestamp": obj.get("deprecatedLastTimestamp"),
        "count": obj.get("deprecatedCount"),
        "reportingComponent": obj.get("reportingController"),
    }


def _print_event(raw: Mapping[str, Any], now: datetime) -> list[Cell]:
    obj = _event_view(raw)
    first = obj.get("firstTimestamp")
    first_seen = _since(first, now) if first else _since(obj.get("eventTime"), now)
    last = obj.get("lastTimestamp")
    last_seen = _since(last, now) if last else first_seen
    count = _int(obj.get("count"))
    series = obj.get("series")
    if isinstance(series, Mapping):
        last_seen = _since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1  # singleton events in the new API carry no count
    involved = _map(obj.get("involvedObject"))
    kind = _str(involved.get("kind")).lower()
    target = f"{kind}/{involved['name']}" if _str(involved.get("name")) else kind
    source = _map(obj.get("source"))
    component = _str(source.get("component")) or _str(obj.get("reportingComponent"))
    host = _str(source.get("host")) or _str(obj.get("reportingInstance"))
    return [
        last_seen,
        _str(obj.get("type")),
        _str(obj.get("reason")),
        target,
        _str(involved.get("fieldPath")),
        f"{component}, {host}" if host else component,
        _str(obj.get("message")).strip(),
        first_seen,
        count,
        _name(obj),
    ]


def _print_service_account(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [_name(obj), len(_list(obj.get("secrets"))), _age(obj, now)]


def _print_endpoints(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    shown: list[str] = []
    count = 0
    for subset in (_map(s) for s in _list(obj.get("subsets"))):
        ips = [_str(_get(a, "ip")) for a in _list(subset.get("addresses"))]
        ports = [_int(_get(p, "port")) for p in _list(subset.get("ports"))]
        if not ports:  # headless services may have no ports
            entries = ips
        else:
            entries = [
                f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}" for port in ports for ip in ips
            ]
        count += len(entries)
        shown.extend(entries[: max(0, 3 - len(shown))])
    if not _list(obj.get("subsets")):
        text = "<none>"
    elif count > 3:
        text = f"{','.join(shown)} + {count - 3} more..."
    else:
        text = ",".join(shown)
    return [_name(obj), text, _age(obj, now)]


def _int_or_string(value: Any) -> str:
    """An IntOrString as Go's `IntOrString.String()` prints it; "N/A" when absent."""
    if value is None:
        return "N/A"
    return str(value)


def _print_pdb(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec = _map(obj.get("spec"))
    return [
        _name(obj),
        _int_or_string(spec.get("minAvailable")),
        _int_or_string(spec.get("maxUnavailable")),
        _int(_get(obj, "status", "disruptionsAllowed")),
        _age(obj, now),
    ]


def _hpa_target(spec: Any, status: Any) -> str:
    """One Resource or ContainerResource metric as `kubectl get hpa` prints it:
    "cpu: 12%/50%", "memory: 20Mi/100Mi", "<unknown>" for what is not measured yet."""
    target = _map(_map(spec).get("target"))
    current = _map(_map(status).get("current"))
    name = _str(_map(spec).get("name"))
    if target.get("averageValue") is not None:
        now_value = _str(current.get("averageValue"), "<unknown>")
        return f"{name}: {now_value}/{_str(target.get('averageValue'))}"
    utilization = current.get("averageUtilization")
    now_pct = f"{utilization}%" if isinstance(utilization, int) else "<unknown>"
    wanted = target.get("averageUtilization")
    shown = f"{wanted}%" if isinstance(wanted, int) else "<auto>"
    return f"{name}: {now_pct}/{shown}"


def _hpa_metric(spec: Mapping[str, Any], status: Mapping[str, Any] | None) -> str:
    kind = spec.get("type")
    field = {
        "Resource": "resource",
        "ContainerResource": "containerResource",
        "Pods": "pods",
        "Object": "object",
        "External": "external",
    }.get(_str(kind))
    if field is None:
        return "<unknown type>"
    source = _map(spec.get(field))
    current_source = status.get(field) if status is not None else None
    if field in ("resource", "containerResource"):
        return _hpa_target(source, current_source)
    target = _map(source.get("target"))
    current = _map(_map(current_source).get("current"))
    seen = current_source is not None
    if field == "pods":
        now_value = _str(current.get("averageValue"), "<unknown>") if seen else "<unknown>"
        return f"{now_value}/{_str(target.get('averageValue'))}"
    if target.get("averageValue") is not None:
        now_value = _str(current.get("averageValue"), "<unknown>") if seen else "<unknown>"
        return f"{now_value}/{_str(target.get('averageValue'))} (avg)"
    now_value = _str(current.get("value"), "<unknown>") if seen else "<unknown>"
    return f"{now_value}/{_str(target.get('value'))}"


def _hpa_metrics(specs: list[Any], statuses: list[Any]) -> str:
    """As upstream's formatHPAMetrics: status entries pair with spec entries by position;
    at most two are shown, then "+ N more..."."""
    if not specs:
        return "<none>"
    shown = [
        _hpa_metric(
            _map(spec),
            _map(statuses[i]) if i < len(statuses) and isinstance(statuses[i], dict) else None,
        )
        for i, spec in enumerate(specs)
    ]
    text = ", ".join(shown[:2])
    return f"{text} + {len(shown) - 2} more..." if len(shown) > 2 else text


def _print_hpa(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec = _map(obj.get("spec"))
    ref = _map(spec.get("scaleTargetRef"))
    minimum = spec.get("minReplicas")
    return [
        _name(obj),
        f"{_str(ref.get('kind'))}/{_str(ref.get('name'))}",
        _hpa_metrics(_list(spec.get("metrics")), _list(_get(obj, "status", "currentMetrics"))),
        str(minimum) if isinstance(minimum, int) else "<unset>",
        _int(spec.get("maxReplicas")),
        _int(_get(obj, "status", "currentReplicas")),
        _age(obj, now),
    ]


def _print_ingress(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    """As kubectl's printer: at most three hosts ("*" for none), the load-balancer points."""
    spec = _map(obj.get("spec"))
    rules = _list(spec.get("rules"))
    hosts = [str(r["host"]) for r in rules[:3] if isinstance(r, dict) and r.get("host")]
    shown = ",".join(hosts) if hosts else "*"
    if len(rules) > 3:
        shown += f" + {len(rules) - 3} more..."
    points = [
        str(p.get("ip") or p.get("hostname") or "")
        for p in _list(_get(obj, "status", "loadBalancer", "ingress"))
        if isinstance(p, dict)
    ]
    address = ",".join(p for p in points if p)
    if len(address) > 16:
        address = address[:13] + "..."
    return [
        _name(obj),
        _str(spec.get("ingressClassName"), "<none>"),
        shown,
        address,
        "80, 443" if _list(spec.get("tls")) else "80",
        _age(obj, now),
    ]


def _print_ingress_class(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec = _map(obj.get("spec"))
    parameters = _map(spec.get("parameters"))
    shown = "<none>"
    if parameters:
        group = parameters.get("apiGroup")
        kind = _str(parameters.get("kind")) + (f".{group}" if group else "")
        shown = f"{kind}/{_str(parameters.get('name'))}"
    return [_name(obj), _str(spec.get("controller")), shown, _age(obj, now)]


def _print_default_convertor(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    created = _parse_time(_get(obj, "metadata", "creationTimestamp"))
    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if created else None
    return [_name(obj), stamp or "0001-01-01T00:00:00Z"]


def _print_generic(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    return [_name(obj), _age(obj, now)]


_PRINTERS: dict[str, _Printer] = {
    "Pod": _print_pod,
    "Deployment": _print_deployment,
    "ReplicaSet": _print_replica_set,
    "ReplicationController": _print_replica_set,
    "StatefulSet": _print_stateful_set,
    "DaemonSet": _print_daemon_set,
    "Service": _print_service,
    "Job": _print_job,
    "CronJob": _print_cron_job,
    "ConfigMap": _print_config_map,
    "Secret": _print_secret,
    "Namespace": _print_namespace,
    "ComponentStatus": _print_component_status,
    "Node": _print_node,
    "PersistentVolumeClaim": _print_pvc,
    "PersistentVolume": _print_pv,
    "Event": _print_event,
    "ServiceAccount": _print_service_account,
    "Endpoints": _print_endpoints,
    "PodDisruptionBudget": _print_pdb,
    "PriorityClass": _print_priority_class,
    "ResourceQuota": _print_resource_quota,
    "StorageClass": _print_storage_class,
    "LimitRange": _print_limit_range,
    "HorizontalPodAutoscaler": _print_hpa,
    "Ingress": _print_ingress,
    "IngressClass": _print_ingress_class,
    "CertificateSigningRequest": _print_csr,
}


# ---------------------------------------------------------------------------------------------
# additionalPrinterColumns: a small JSONPath subset
#
# Supported, as CRDs use them: `.a.b`, `.a['b.c']`, `.a[0]`, `.a[*].b`,
# `.a[?(@.type=="Ready")].status` (== or !=, quoted string, number or true/false).

_FILTER = re.compile(r"""\?\(@((?:\.[^=!\s]+)+)\s*(==|!=)\s*(?:"([^"]*)"|'([^']*)'|(\S+?))\s*\)""")


def _jsonpath_steps(path: str) -> list[tuple[str, Any]]:
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    text = text.removeprefix("$")
    steps: list[tuple[str, Any]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == ".":
            j = i + 1
            name: list[str] = []
            while j < len(text) and text[j] not in ".[":
                if text[j] == "\\" and j + 1 < len(text):
                    j += 1
                name.append(text[j])
                j += 1
            if name:
                steps.append(("key", "".join(name)))
            i = j
        elif ch == "[":
            end = text.find("]", i)
            if end < 0:
                raise ValueError(f"unterminated '[' in JSONPath {path!r}")
            inner = text[i + 1 : end].strip()
            if inner.startswith("?("):
                # a filter may contain ']' inside quotes; find its closing ')]'
                end = text.find(")]", i)
                if end < 0:
                    raise ValueError(f"unterminated filter in JSONPath {path!r}")
                inner = text[i + 1 : end + 1].strip()
                end += 1
                match = _FILTER.fullmatch(inner)
                if not match:
                    raise ValueError(f"unsupported filter {inner!r} in JSONPath {path!r}")
                field, op, dq, sq, bare = match.groups()
                literal: Any = dq if dq is not None else sq
                if literal is None:
                    literal = json.loads(bare) if bare in ("true", "false") else _number(bare)
                steps.append(("filter", (field[1:].split("."), op, literal)))
            elif inner == "*":
                steps.append(("all", None))
            elif inner[:1] in "'\"" and inner[-1:] == inner[:1]:
                steps.append(("key", inner[1:-1]))
            else:
                steps.append(("index", int(inner)))
            i = end + 1
        else:
            raise ValueError(f"unsupported JSONPath {path!r}")
    return steps


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _jsonpath_first(obj: Any, path: str) -> tuple[bool, Any]:
    """(found, value) of the first result of `path` on `obj`; missing keys are no result."""
    current = [obj]
    for step, arg in _jsonpath_steps(path):
        following: list[Any] = []
        for node in current:
            keyed = step == "key" and isinstance(node, Mapping) and arg in node
            indexed = step == "index" and isinstance(node, list) and -len(node) <= arg < len(node)
            if keyed or indexed:
                following.append(node[arg])
            elif step == "all" and isinstance(node, list):
                following.extend(node)
            elif step == "all" and isinstance(node, Mapping):
                following.extend(node.values())
            elif step == "filter" and isinstance(node, list):
                keys, op, literal = arg
                for item in node:
                    value = _get(item, *keys)
                    if (value == literal and type(value) is type(literal)) == (op == "=="):
                        following.append(item)
        current = following
    return (True, current[0]) if current else (False, None)


def _go_text(value: Any) -> str:
    """How the JSONPath printer writes a value into a string column."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _custom_cell(obj: Mapping[str, Any], column: Mapping[str, Any], now: datetime) -> Cell:
    try:
        found, value = _jsonpath_first(obj, _str(column.get("jsonPath")))
    except ValueError:
        return None
    if not found or value is None:
        return None
    col_type = column.get("type")
    if col_type == "string":
        return _go_text(value)
    if col_type == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if col_type == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if col_type == "boolean" and isinstance(value, bool):
        return value
    if col_type == "date" and isinstance(value, str):
        when = _parse_time(value)
        return "<invalid>" if when is None else _since(value, now)
    return None


def _custom_columns(printer_columns: Sequence[Mapping[str, Any]]) -> list[JSON]:
    columns = [_NAME]
    for col in printer_columns:
        json_path = _str(col.get("jsonPath"))
        description = _str(col.get("description")) or (
            f"Custom resource definition column (in JSONPath format): {json_path}"
        )
        columns.append(
            _col(
                _str(col.get("name")),
                _str(col.get("type"), "string"),
                description,
                _int(col.get("priority")),
                _str(col.get("format")),
            )
        )
    return columns


# ---------------------------------------------------------------------------------------------
# The table


def table_columns(kind: str, printer_columns: Sequence[Mapping[str, Any]] = ()) -> list[JSON]:
    """The column definitions `build_table` uses for `kind` (copies, safe to modify)."""
    if printer_columns:
        columns = _custom_columns(printer_columns)
    elif kind in _COLUMNS:
        columns = _COLUMNS[kind]
    elif kind in _DEFAULT_CONVERTOR_KINDS:
        columns = [_NAME, _CREATED_AT]
    else:
        columns = [_NAME, _AGE]
    return [dict(c) for c in columns]


def _row_object(obj: Mapping[str, Any], include_object: str) -> JSON | None:
    if include_object == "Object":
        return dict(obj)
    if include_object == "Metadata":
        return {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": dict(_map(obj.get("metadata"))),
        }
    return None


def _pod_conditions(pod: Mapping[str, Any]) -> list[JSON]:
    phase = _get(pod, "status", "phase")
    message = {"Succeeded": "The pod has completed successfully.", "Failed": "The pod failed."}
    if phase not in message:
        return []
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message[phase]}]


def build_table(
    kind: str,
    objects: list[dict[str, Any]],
    now: datetime,
    include_object: str = "Metadata",
    printer_columns: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A `meta.k8s.io/v1` Table of `objects` (all of `kind`), aged against `now`.

    `include_object` is the request's `includeObject`: "Object" embeds each object,
    "Metadata" (the default) a PartialObjectMetadata, "None" nothing. `printer_columns` are a
    CRD version's `additionalPrinterColumns`; given, they replace the built-in columns.
    """
    if include_object not in ("None", "Metadata", "Object"):
        raise ValueError(
            f"includeObject must be one of None, Metadata or Object, not {include_object!r}"
        )
    columns = table_columns(kind, printer_columns)
    printer: _Printer
    if printer_columns:

        def printer(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
            return [_name(obj), *(_custom_cell(obj, c, now) for c in printer_columns)]

    elif kind in _DEFAULT_CONVERTOR_KINDS and kind not in _PRINTERS:
        printer = _print_default_convertor
    else:
        printer = _PRINTERS.get(kind, _print_generic)
    rows: list[JSON] = []
    for obj in objects:
        row: JSON = {"cells": printer(obj, now)}
        if kind == "Pod" and not printer_columns:
            conditions = _pod_conditions(obj)
            if conditions:
                row["conditions"] = conditions
        embedded = _row_object(obj, include_object)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": columns,
        "rows": rows,
    }
