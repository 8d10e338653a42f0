"""The node-port routing table: which host ports serve each node port. Pure.

Worked example. Service `web` (type NodePort) has port `http` 80 → targetPort 8080 with
nodePort 30080. Its Endpoints (written by the Endpoints controller) say::

    subsets: [{addresses:    [{ip: 172.18.0.5, targetRef: {kind: Pod, name: web-a}}],
               notReadyAddresses: [{ip: 172.18.0.6, targetRef: {kind: Pod, name: web-b}}],
               ports: [{name: http, port: 8080, protocol: TCP}]}]

and the node agent published `web-a`'s container port 8080 on the host, recording
`recon.dev/published-ports: {"8080/TCP": 41234}` on the pod. The route for 30080 is then
`backends=(41234,)`: only ready addresses count, the endpoint port is matched to the
Service port by name (as kube-proxy does), and the pod's annotation turns the endpoint
port into a port on 127.0.0.1. A ready pod without its host port yet is left out until the
annotation appears.

The pod itself has the last word: an address the Endpoints still list as ready is left out
as soon as the pod (from the proxy's own pod cache, which can be newer than the Endpoints)
is terminating, finished, or has its Ready condition False. The node agent sends SIGTERM
when it sees `deletionTimestamp`; a route that waited for the Endpoints controller's next
write would keep sending new connections to a pod that is shutting down.

TCP and UDP are planned apart (`plan_node_ports(..., protocol="UDP")`): a Service may
have port 53 over both, sharing one node port number, and a UDP port's backends are the
pods' published UDP ports (`"5353/UDP": 41235`). SCTP is not routed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.controllers.podutil import is_active, ready_condition
from reconciler.node.pod_sandbox import PUBLISHED_PORTS_ANNOTATION

__all__ = [
    "NodePortRoute",
    "address_status_patch",
    "affinity_of",
    "load_balancer_status_patch",
    "plan_node_ports",
    "published_ports",
    "ready_backends",
    "serving",
]

JSONDict = dict[str, Any]
Lookup = Callable[[str, str], JSONDict | None]  # (namespace, name) -> object from a cache


@dataclass(frozen=True)
class NodePortRoute:
    """One listening node port and the host ports (on 127.0.0.1) of its ready backends."""

    node_port: int
    namespace: str
    service: str
    port_name: str
    backends: tuple[int, ...]
    affinity_s: float | None = None
    """`sessionAffinity: ClientIP`: how long a client keeps its backend (None: no affinity)."""
    protocol: str = "TCP"


DEFAULT_AFFINITY_S = 10800.0  # Kubernetes' sessionAffinityConfig.clientIP.timeoutSeconds


def affinity_of(spec: JSONDict) -> float | None:
    """The ClientIP affinity timeout of a Service spec, or None without affinity."""
    if spec.get("sessionAffinity") != "ClientIP":
        return None
    timeout = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get(
        "timeoutSeconds"
    )
    return float(timeout) if isinstance(timeout, int) and timeout > 0 else DEFAULT_AFFINITY_S


def published_ports(pod: JSONDict) -> dict[str, int]:
    """The pod's `recon.dev/published-ports` annotation: `"8080/TCP"` -> host port."""
    text = ((pod.get("metadata") or {}).get("annotations") or {}).get(PUBLISHED_PORTS_ANNOTATION)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool)}


def serving(pod: JSONDict) -> bool:
    """May take new connections as far as the pod says: not terminating, not finished, and
    not marked unready (a pod without a Ready condition is left to its Endpoints)."""
    condition = ready_condition(pod)
    return is_active(pod) and (condition is None or condition.get("status") == "True")


def _endpoint_port(subset: JSONDict, name: str, protocol: str) -> int | None:
    for port in subset.get("ports") or []:
        same_name = str(port.get("name") or "") == name
        if same_name and str(port.get("protocol") or "TCP") == protocol:
            number = port.get("port")
            return number if isinstance(number, int) else None
    return None


def _backend(address: JSONDict, namespace: str, key: str, pods: Lookup) -> int | None:
    ref = address.get("targetRef") or {}
    if ref.get("kind", "Pod") != "Pod" or not ref.get("name"):
        return None
    pod = pods(str(ref.get("namespace") or namespace), str(ref["name"]))
    if pod is None:
        return None
    uid = ref.get("uid")
    if uid and (pod.get("metadata") or {}).get("uid") != uid:
        return None  # a pod of the same name, not the one the endpoint means
    if not serving(pod):
        return None  # terminating or unready since the Endpoints were written
    return published_ports(pod).get(key)


def ready_backends(
    endpoints: JSONDict | None, namespace: str, name: str, protocol: str, pods: Lookup
) -> tuple[int, ...]:
    """The host ports (on 127.0.0.1) of the ready endpoints of a Service's port `name`."""
    found: list[int] = []
    for subset in (endpoints or {}).get("subsets") or []:
        target = _endpoint_port(subset, name, protocol)
        if target is None:
            continue
        for address in subset.get("addresses") or []:  # ready ones only
            host_port = _backend(address, namespace, f"{target}/{protocol}", pods)
            if host_port is not None and host_port not in found:
                found.append(host_port)
    return tuple(found)


def plan_node_ports(
    services: Iterable[JSONDict], endpoints: Lookup, pods: Lookup, protocol: str = "TCP"
) -> dict[int, NodePortRoute]:
    """Every `protocol` node port of the NodePort and LoadBalancer Services, with its
    backends.

    Services are taken in (namespace, name) order; should two claim one node port (the
    API server does not allow it, a foreign one might), the first keeps it.
    """

    def order(service: JSONDict) -> tuple[str, str]:
        meta = service.get("metadata") or {}
        return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))

    routes: dict[int, NodePortRoute] = {}
    for service in sorted(services, key=order):
        spec = service.get("spec") or {}
        if spec.get("type") not in ("NodePort", "LoadBalancer"):
            continue
        namespace, name = order(service)
        if (service.get("metadata") or {}).get("deletionTimestamp"):
            continue
        for port in spec.get("ports") or []:
            node_port = port.get("nodePort")
            if str(port.get("protocol") or "TCP") != protocol:
                continue
            if not isinstance(node_port, int) or node_port <= 0:
                continue
            if node_port in routes:
                continue
            port_name = str(port.get("name") or "")
            routes[node_port] = NodePortRoute(
                node_port,
                namespace,
                name,
                port_name,
                ready_backends(endpoints(namespace, name), namespace, port_name, protocol, pods),
                affinity_of(spec),
                protocol,
            )
    return routes


def address_status_patch(obj: JSONDict, host: str, serving: bool) -> JSONDict | None:
    """The status patch that shows `host` in `status.loadBalancer.ingress` while this host
    serves the object (a LoadBalancer Service, an Ingress), and takes it away once it no
    longer does; None when nothing is to change."""
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    ours = [{"ip": host}]
    if serving:
        if [{"ip": i.get("ip")} for i in ingress if isinstance(i, dict)] == ours:
            return None
        return {"status": {"loadBalancer": {"ingress": ours}}}
    if ingress and all(isinstance(i, dict) and i.get("ip") == host for i in ingress):
        return {"status": {"loadBalancer": {"ingress": None}}}
    return None


def load_balancer_status_patch(service: JSONDict, host: str) -> JSONDict | None:
    """`address_status_patch` for a Service: shown while it is a LoadBalancer."""
    serving = (service.get("spec") or {}).get("type") == "LoadBalancer"
    return address_status_patch(service, host, serving)
