"""What each Service's gateway container must be, from the Services and Endpoints. Pure.

Inside the cluster a pod reaches a Service by name or cluster IP. With no kube-proxy on one
Docker host, each ClusterIP Service gets a small gateway container (busybox `nc` forwarding
each TCP connection to one ready endpoint; its UDP ports are relayed by `recon serve`
itself, from sockets it opens inside the gateway's network namespace, see
`service_gateway_udp.py`, since busybox has no UDP server):

- on the Service's namespace network (`recon-<ns>`), where it can reach the pods, answering
  to the Service's short names (`web`, `web.ns`, `web.ns.svc`);
- on the services network, at the Service's cluster IP, answering to the qualified names
  (`web.ns.svc.cluster.local`, `web.ns.svc`, `web.ns`), so `$WEB_SERVICE_HOST`, the names
  and the cluster IP work from any pod.

A pod's resolver tries `web.<ns>.svc.cluster.local` first (search list, ndots:5), which
only the services network knows, so Docker's embedded DNS answers it with the cluster IP,
as on Kubernetes (were the full name on the namespace network too, Docker would answer
with the gateway's address there). The cluster DNS (`cluster_dns.py`) gives the same answer
to whatever Docker does not know; the short names are what is left when neither the
services network nor the cluster DNS can be had.

Worked example. Service `web` in `shop`, cluster IP 10.96.4.7, port `http` 80 → 8080; its
Endpoints have ready 10.0.3.5 and 10.0.3.6 and not-ready 10.0.3.7 on port `http` 8080.
The plan: listen on 80, forward to `10.0.3.5 8080` and `10.0.3.6 8080` (one, chosen at
random, per connection); 10.0.3.7 gets nothing until it is ready. Had `web` also port
`dns` 53/UDP → 5353, with the Endpoints' port `dns` 5353/UDP, the plan would add
`udp_backends {53: (10.0.3.5, 5353), (10.0.3.6, 5353)}`: one of them per client session.
A Service with UDP ports only gets a gateway all the same (it holds the cluster IP and the
names; its script only sleeps).

Headless and ExternalName Services get no gateway: their names are the cluster DNS's
(`cluster_dns.py`), which answers a headless Service with its pods' addresses and an
ExternalName with a CNAME, as on Kubernetes; a gateway's network alias would shadow those
answers (Docker's embedded DNS answers container names before it forwards).

The backends are files the gateway reads on every connection, so an endpoint change only
rewrites files; the container is re-created only when its spec hash changes (ports, names,
addresses, image; not the UDP ports, which the container does not serve). Endpoints on
loopback (pods on the host's network of a node at 127.0.0.1) are reached at the host's
side of the services bridge. Not done: SCTP ports, `sessionAffinity` (the node-port proxy
has it).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from reconciler.cluster_network import CLUSTER_DOMAIN, SERVICES_BRIDGE_ADDRESS

__all__ = [
    "FORWARD_SCRIPT",
    "RUN_SCRIPT",
    "GatewayPlan",
    "backends_text",
    "plan_gateway",
    "plan_gateways",
]

JSONDict = dict[str, Any]
Lookup = Callable[[str, str], JSONDict | None]

# Per connection: pick one line of /gw/backends-<port> at random and splice to it. An empty
# list closes the connection at once, as a Service without ready endpoints refuses it.
FORWARD_SCRIPT = """#!/bin/sh
f=/gw/backends-$1
n=$(grep -c . "$f" 2>/dev/null)
[ "${n:-0}" -gt 0 ] || exit 1
i=$(( $(od -An -N2 -tu2 /dev/urandom) % n + 1 ))
set -- $(grep . "$f" | sed -n "${i}p")
exec nc "$1" "$2"
"""

# One persistent `nc` listener per TCP port (it forks FORWARD_SCRIPT per connection). With
# no TCP port (a UDP-only Service) it only holds the addresses: `recon serve` relays UDP.
RUN_SCRIPT = """#!/bin/sh
[ -s /gw/ports ] || exec sleep 2147483647
for port in $(cat /gw/ports); do
  nc -ll -p "$port" -e /gw/forward "$port" &
done
wait
"""


@dataclass(frozen=True)
class GatewayPlan:
    namespace: str
    name: str
    uid: str
    cluster_ip: str | None
    """Its fixed address on the services network (None: not allocated yet)."""
    ports: tuple[int, ...]
    """TCP ports (the container's `nc` listeners)."""
    local_names: tuple[str, ...]
    """Names on the namespace network."""
    qualified_names: tuple[str, ...]
    """Names on the services network (unique across namespaces)."""
    backends: dict[int, tuple[tuple[str, int], ...]] = field(compare=False, hash=False)
    """TCP port -> (host, port) to forward to."""
    udp_backends: dict[int, tuple[tuple[str, int], ...]] = field(
        default_factory=dict, compare=False, hash=False
    )
    """UDP port -> (host, port) to relay to (from inside the gateway's namespace)."""

    @property
    def udp_ports(self) -> tuple[int, ...]:
        return tuple(sorted(self.udp_backends))

    @property
    def spec_hash(self) -> str:
        """What the container is made from; a change re-creates it (backends are files)."""
        material = json.dumps(
            [self.cluster_ip, self.ports, self.local_names, self.qualified_names],
            separators=(",", ":"),
        )
        return hashlib.sha256(material.encode()).hexdigest()[:16]


def _ports(spec: JSONDict, protocol: str) -> list[JSONDict]:
    return [
        p
        for p in spec.get("ports") or []
        if str(p.get("protocol") or "TCP") == protocol and isinstance(p.get("port"), int)
    ]


def _ready_backends(
    endpoints: JSONDict | None, port_name: str, protocol: str = "TCP"
) -> tuple[tuple[str, int], ...]:
    """Ready addresses with the endpoint port of the same name and protocol (kube-proxy's
    matching)."""
    found: list[tuple[str, int]] = []
    for subset in (endpoints or {}).get("subsets") or []:
        number = None
        for port in subset.get("ports") or []:
            if (
                str(port.get("name") or "") == port_name
                and str(port.get("protocol") or "TCP") == protocol
            ):
                number = port.get("port")
        if not isinstance(number, int):
            continue
        for address in subset.get("addresses") or []:
            ip = address.get("ip")
            if isinstance(ip, str) and ip:
                found.append((_from_gateway(ip), number))
    return tuple(sorted(set(found)))


def _from_gateway(ip: str) -> str:
    """The address the gateway reaches an endpoint at. A pod on the host's network has the
    node's address, which is loopback on a node at 127.0.0.1: the gateway's own there, so
    it goes to the host's side of the services bridge instead (the pod must listen on
    more than loopback to be reached, as from other nodes on Kubernetes)."""
    try:
        loopback = ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return ip
    return str(SERVICES_BRIDGE_ADDRESS) if loopback else ip


def plan_gateway(service: JSONDict, endpoints: JSONDict | None) -> GatewayPlan | None:
    """The gateway `service` needs, or None when it needs none (no TCP or UDP port,
    headless, ExternalName)."""
    meta = service.get("metadata") or {}
    spec = service.get("spec") or {}
    if meta.get("deletionTimestamp"):
        return None
    ports, udp = _ports(spec, "TCP"), _ports(spec, "UDP")
    if not ports and not udp:
        return None
    namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name") or "")
    cluster_ip = str(spec.get("clusterIP") or "")
    if str(spec.get("type") or "ClusterIP") == "ExternalName" or cluster_ip == "None":
        return None  # names only: the cluster DNS answers them
    backends: dict[int, tuple[tuple[str, int], ...]] = {}
    for port in ports:
        backends[int(port["port"])] = _ready_backends(endpoints, str(port.get("name") or ""))
    udp_backends = {
        int(port["port"]): _ready_backends(endpoints, str(port.get("name") or ""), "UDP")
        for port in udp
    }
    qualified = (
        f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}",
        f"{name}.{namespace}.svc",
        f"{name}.{namespace}",
    )
    return GatewayPlan(
        namespace=namespace,
        name=name,
        uid=str(meta.get("uid") or ""),
        cluster_ip=cluster_ip or None,
        ports=tuple(sorted(backends)),
        local_names=(name, *qualified[1:]),
        qualified_names=qualified,
        backends=backends,
        udp_backends=udp_backends,
    )


def plan_gateways(services: Iterable[JSONDict], endpoints: Lookup) -> dict[str, GatewayPlan]:
    """Service uid -> its gateway, for every Service that needs one."""
    plans: dict[str, GatewayPlan] = {}
    for service in services:
        meta = service.get("metadata") or {}
        found = endpoints(str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        plan = plan_gateway(service, found)
        if plan is not None and plan.uid:
            plans[plan.uid] = plan
    return plans


def backends_text(backends: Iterable[tuple[str, int]]) -> str:
    """One `host port` line per backend (the format FORWARD_SCRIPT reads)."""
    return "".join(f"{host} {port}\n" for host, port in backends)
