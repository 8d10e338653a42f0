"""Does a pod fit a node? The scheduler's and the DaemonSet controller's shared predicate.

Why it exists: a pod that cannot be placed must stay Pending with the reason the Kubernetes
scheduler would give ("node(s) didn't match Pod's node affinity/selector", "node(s) had
untolerated taint {k: v}"), and a DaemonSet must run only on the nodes its pods fit. Both
ask the same question of the same fields, so the answer lives in one pure function.

What is checked, as kube-scheduler's filter plugins do: `spec.nodeName`, node
unschedulable (`spec.unschedulable`, tolerated by the `node.kubernetes.io/unschedulable`
toleration), `nodeSelector`, required node affinity (`matchExpressions` with In, NotIn,
Exists, DoesNotExist, Gt, Lt and `matchFields` on `metadata.name`), taints with effect
NoSchedule / NoExecute against tolerations. Resource requests are checked against the
node's allocatable by `usage_fits`, given a `NodeUsage`: what the pods already on the node
take (how many, the sum of their requests and the host ports they hold, as the NodePorts
plugin sees them), as kube-scheduler's NodeInfo keeps it. The
scheduler keeps one per node up to date from pod events, so placing a pod costs O(nodes),
not O(pods on the node); `resources_fit` computes the usage from a list of pod specs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.quantity import cpu_millis, memory_bytes

__all__ = [
    "AFFINITY_MISMATCH",
    "PORTS_TAKEN",
    "HostPort",
    "NodeUsage",
    "Requests",
    "fits",
    "host_ports",
    "node_affinity_matches",
    "pod_requests",
    "resources_fit",
    "tolerates",
    "untolerated_taint",
    "usage_fits",
]

AFFINITY_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
PORTS_TAKEN = "node(s) didn't have free ports for the requested pod ports"


def fits(pod_spec: Mapping[str, Any], node: Mapping[str, Any]) -> str | None:
    """None when the pod may run on the node, else the scheduler's reason it may not. The
    checks run in kube-scheduler's filter order (NodeUnschedulable, NodeName,
    TaintToleration, NodeAffinity), so the first failing one gives the reason it gives."""
    node_name = node.get("metadata", {}).get("name", "")
    tolerations = pod_spec.get("tolerations") or []
    if node.get("spec", {}).get("unschedulable") and not tolerates(
        tolerations, {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
    ):
        return "node(s) were unschedulable"
    wanted = pod_spec.get("nodeName")
    if wanted and wanted != node_name:
        return "node(s) didn't match the requested node name"
    taint = untolerated_taint(tolerations, node.get("spec", {}).get("taints") or [])
    if taint is not None:
        # Upstream prints `{key: value}` even when the value is empty: `{key: }`.
        key, value = taint.get("key", ""), taint.get("value") or ""
        return f"node(s) had untolerated taint {{{key}: {value}}}"
    if not node_affinity_matches(pod_spec, node):
        return AFFINITY_MISMATCH
    return None


def node_affinity_matches(pod_spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """nodeSelector AND required node affinity (its terms ORed), as NodeAffinity filters."""
    labels: Mapping[str, str] = node.get("metadata", {}).get("labels") or {}
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = (
        ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms")
    if not required:
        return True
    fields = {"metadata.name": node.get("metadata", {}).get("name", "")}
    return any(_term_matches(term, labels, fields) for term in required)


def _term_matches(
    term: Mapping[str, Any], labels: Mapping[str, str], fields: Mapping[str, str]
) -> bool:
    expressions = term.get("matchExpressions") or []
    field_expressions = term.get("matchFields") or []
    if not expressions and not field_expressions:
        return False  # an empty term matches no node (Kubernetes semantics)
    return all(_expression_matches(e, labels) for e in expressions) and all(
        _expression_matches(e, fields) for e in field_expressions
    )


def _expression_matches(expr: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    key = expr.get("key", "")
    operator = expr.get("operator")
    wanted = [str(v) for v in expr.get("values") or []]
    present = key in values
    value = values.get(key, "")
    if operator == "In":
        return present and value in wanted
    if operator == "NotIn":
        return not present or value not in wanted
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and len(wanted) == 1:
        try:
            have, limit = int(value), int(wanted[0])
        except ValueError:
            return False
        return have > limit if operator == "Gt" else have < limit
    return False


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Whether any toleration tolerates the taint (`v1.Toleration.ToleratesTaint`): an empty
    effect or key matches any; operator Exists matches any value, Equal (or none) the same
    value; an unknown operator matches nothing."""
    for tol in tolerations:
        effect = tol.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        key = tol.get("key") or ""
        if key and key != taint.get("key"):
            continue
        operator = tol.get("operator") or "Equal"
        if operator == "Exists":
            return True
        if operator == "Equal" and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def untolerated_taint(
    tolerations: Iterable[Mapping[str, Any]], taints: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The first NoSchedule/NoExecute taint no toleration tolerates (PreferNoSchedule is a
    preference, never a filter)."""
    tols = list(tolerations)
    for taint in taints:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not tolerates(tols, taint):
            return taint
    return None


@dataclass(frozen=True, order=True)
class HostPort:
    """A port of the node a pod takes (`hostPort`; `hostIP` 0.0.0.0 means every address)."""

    port: int
    protocol: str = "TCP"
    host_ip: str = "0.0.0.0"

    def conflicts(self, other: HostPort) -> bool:
        """Upstream's `HostPortInfo.CheckConflict`: the same port and protocol, on the same
        address or with either on every address."""
        if (self.port, self.protocol) != (other.port, other.protocol):
            return False
        return "0.0.0.0" in (self.host_ip, other.host_ip) or self.host_ip == other.host_ip


def host_ports(pod_spec: Mapping[str, Any]) -> tuple[HostPort, ...]:
    """The node ports a pod takes: every container port with a `hostPort`, init containers
    included, as the NodePorts plugin counts them. Sorted, so equal pods compare equal."""
    found = []
    for group in ("initContainers", "containers"):
        for container in pod_spec.get(group) or []:
            for port in (container.get("ports") or []) if isinstance(container, dict) else []:
                number = port.get("hostPort") if isinstance(port, dict) else None
                if isinstance(number, int) and not isinstance(number, bool) and number > 0:
                    found.append(
                        HostPort(
                            number,
                            str(port.get("protocol") or "TCP"),
                            str(port.get("hostIP") or "0.0.0.0"),
                        )
                    )
    return tuple(sorted(found))


@dataclass(frozen=True)
class Requests:
    """What one pod charges a node: CPU in millicores, memory in bytes, host ports."""

    cpu_millis: int = 0
    memory_bytes: int = 0
    host_ports: tuple[HostPort, ...] = ()

    def __bool__(self) -> bool:
        """Whether it asks for anything beyond a place among the node's pods."""
        return bool(self.cpu_millis or self.memory_bytes or self.host_ports)


@dataclass(frozen=True)
class NodeUsage:
    """What the pods on a node take from it: how many, the sum of their requests and the
    host ports they hold (a sorted multiset: two pods may hold one port on two addresses).

    Worked example: pods requesting 100m/64Mi and nothing are on a node: NodeUsage(2, 100,
    67108864). The first finishes: `minus(Requests(100, 67108864))` gives NodeUsage(1, 0, 0).
    """

    pods: int = 0
    cpu_millis: int = 0
    memory_bytes: int = 0
    host_ports: tuple[HostPort, ...] = ()

    def plus(self, requests: Requests) -> NodeUsage:
        ports = self.host_ports
        if requests.host_ports:
            ports = tuple(sorted(ports + requests.host_ports))
        return NodeUsage(
            self.pods + 1,
            self.cpu_millis + requests.cpu_millis,
            self.memory_bytes + requests.memory_bytes,
            ports,
        )

    def minus(self, requests: Requests) -> NodeUsage:
        ports = self.host_ports
        if requests.host_ports:
            left = list(ports)
            for port in requests.host_ports:
                if port in left:
                    left.remove(port)
            ports = tuple(left)
        return NodeUsage(
            self.pods - 1,
            self.cpu_millis - requests.cpu_millis,
            self.memory_bytes - requests.memory_bytes,
            ports,
        )


def pod_requests(pod_spec: Mapping[str, Any]) -> Requests:
    """What the scheduler charges a node for the pod (`resourcehelper.PodRequests`), per
    resource: the app containers plus the sidecars (init containers with `restartPolicy:
    Always`, which keep running), or the largest one-at-a-time init step if bigger (an init
    container runs beside the sidecars started before it), plus the pod's `overhead`."""

    def one(resources: Mapping[str, Any]) -> tuple[int, int]:
        return cpu_millis(resources.get("cpu", 0)), memory_bytes(resources.get("memory", 0))

    def requests(container: Mapping[str, Any]) -> tuple[int, int]:
        return one((container.get("resources") or {}).get("requests") or {})

    apps = [requests(c) for c in pod_spec.get("containers") or []]
    cpu = sum(c for c, _ in apps)
    mem = sum(m for _, m in apps)
    sidecar_cpu = sidecar_mem = init_cpu = init_mem = 0
    for container in pod_spec.get("initContainers") or []:
        c, m = requests(container)
        if container.get("restartPolicy") == "Always":
            cpu, mem = cpu + c, mem + m
            sidecar_cpu, sidecar_mem = sidecar_cpu + c, sidecar_mem + m
            step_cpu, step_mem = sidecar_cpu, sidecar_mem
        else:
            step_cpu, step_mem = c + sidecar_cpu, m + sidecar_mem
        init_cpu, init_mem = max(init_cpu, step_cpu), max(init_mem, step_mem)
    overhead_cpu, overhead_mem = one(pod_spec.get("overhead") or {})
    return Requests(
        max(cpu, init_cpu) + overhead_cpu,
        max(mem, init_mem) + overhead_mem,
        host_ports(pod_spec),
    )


def resources_fit(
    pod_spec: Mapping[str, Any],
    allocatable: Mapping[str, Any],
    placed: Iterable[Mapping[str, Any]],
) -> str | None:
    """`usage_fits` with the usage of the `placed` pod specs. Their requests are added up only
    when the pod requests CPU, memory or host ports: otherwise only their number matters."""
    placed_specs = list(placed)
    want = pod_requests(pod_spec)
    usage = NodeUsage(pods=len(placed_specs))
    if want:
        usage = NodeUsage()
        for spec in placed_specs:
            usage = usage.plus(pod_requests(spec))
    return usage_fits(want, allocatable, usage)


def usage_fits(want: Requests, allocatable: Mapping[str, Any], usage: NodeUsage) -> str | None:
    """None when a pod requesting `want` fits what the node has left after `usage`, else
    the scheduler's reason: a host port taken (NodePorts, checked first as upstream), "Too
    many pods" / "Insufficient cpu" / "Insufficient memory" (NodeResourcesFit: a resource
    the pod does not request is not checked)."""
    for port in want.host_ports:
        if any(port.conflicts(held) for held in usage.host_ports):
            return PORTS_TAKEN
    max_pods = int(str(allocatable.get("pods", "110")))
    if usage.pods + 1 > max_pods:
        return "Too many pods"
    if want.cpu_millis and usage.cpu_millis + want.cpu_millis > cpu_millis(
        allocatable.get("cpu", 0)
    ):
        return "Insufficient cpu"
    if want.memory_bytes and usage.memory_bytes + want.memory_bytes > memory_bytes(
        allocatable.get("memory", 0)
    ):
        return "Insufficient memory"
    return None
